"""The Reintegration Sustainability Survey, administered: recording one for a case, and reading an
instrument's form.

Who: the organisation managing the case's follow-up records (the rule for plan writes, through
``handlers.command`` like every other write); the owner and the manager read the history
(``followupCase.surveys``, in ``handlers._view``). The answers are
checked against the exact instrument version (every problem named by its indicator, nothing stored
unless all pass); the scores and bands are computed once, here, and stored with the version and
digest: reads never recompute, so a corrected instrument (a new version) moves no past score. The
event carries ids, the version, the day and the four scores; never an answer.
"""

from __future__ import annotations

import uuid
from typing import Any

from psycopg_pool import AsyncConnectionPool

from contracts.channels import SURVEY_RECORDED
from contracts.commands import InstrumentRef, RecordSurvey
from contracts.events import SurveyRecordedV1
from contracts.replies import InstrumentView, SurveyView
from kernel.clock import Clock, utcnow
from kernel.db import Connection
from kernel.errors import parse_id
from kernel.outbox import add_event
from kernel.tokens import Principal
from services.followup import answering, domain, handlers, instrument, store, views


async def record_survey(pool: AsyncConnectionPool, principal: Principal, request: RecordSurvey, *,
                        clock: Clock = utcnow, instruments: instrument.Registry | None = None) -> SurveyView:
    """Record one administration of a survey, once per idempotency key (the managing organisation)."""
    case_id = parse_id(request.case_id, "caseId")
    registry = instruments if instruments is not None else instrument.active()
    today = clock().date()
    standing: str | None = None

    async def decide(conn: Connection, row: dict[str, Any], case: domain.FollowupCase) -> dict[str, Any]:
        nonlocal standing
        domain.may_write(case, principal.org_id, principal.org_type)  # before the key, as for every write
        standing = domain.standing(case, principal.org_id, principal.org_type)

        async def produce() -> dict[str, Any]:
            domain.check_survey(case, request.taken_on, today, await store.count(conn, "surveys", case_id))
            used = domain.resolve_instrument(registry, request.instrument_id, request.instrument_version)
            given = domain.survey_answers(used, request.answers)
            assessment = instrument.administer(used, given)
            answers = [{"indicator": i.code, "dimension": i.dimension.value, "option": given[i.code]}
                       for i in used.indicators]
            survey_id = await store.insert_survey(conn, case_id, assessment, request.taken_on, answers,
                                                  principal.org_id)
            s = assessment.scores
            await add_event(conn, store.SCHEMA, SURVEY_RECORDED, SurveyRecordedV1(
                survey_id=str(survey_id), case_id=str(case_id), manager_org_id=principal.org_id,
                instrument_id=used.id, instrument_version=used.version, taken_on=request.taken_on,
                economic=s.economic, social=s.social, psychosocial=s.psychosocial,
                composite=s.composite), subject=str(case_id))
            return {"survey_id": str(survey_id)}

        done = await store.once(conn, principal, "record_survey", request, produce)
        survey = await store.survey(conn, uuid.UUID(done["survey_id"]))
        assert survey is not None
        return survey

    async def answer(conn: Connection, survey: dict[str, Any]) -> tuple[SurveyView, str | None, list[str]]:
        view = views.survey_view(survey, psychosocial_answers=answering.sees_psychosocial_answers(principal))
        shown = answering.FOLLOW_UP + answering.SURVEYS
        if view.psychosocial_answers is not None:
            shown += answering.PSYCHOSOCIAL_ANSWERS
        return view, standing, shown

    reply: SurveyView = await handlers.command(pool, principal, case_id, "record_survey", decide, clock(), answer)
    return reply


async def get_instrument(pool: AsyncConnectionPool, principal: Principal, request: InstrumentRef, *,
                         instruments: instrument.Registry | None = None) -> InstrumentView:
    """One version of an instrument (none: the latest), for a client to render the form. No personal
    data, so no audit record; any follow-up scope may read it."""
    registry = instruments if instruments is not None else instrument.active()
    try:
        found = domain.resolve_instrument(registry, request.id, request.version)
    except domain.Refused as exc:
        raise answering.refusal(exc) from None
    return views.instrument_view(found, registry.latest(found.id).version)
