"""The Reintegration Sustainability Survey, administered: recording one for a case, and reading an
instrument's form.

Who: the organisation managing the case's follow-up records (the rule for plan writes); the owner
and the manager read the history (``followupCase.surveys``, in ``handlers._view``). The answers are
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
from kernel.db import idempotent
from kernel.errors import SeginError, parse_id
from kernel.outbox import add_event
from kernel.tokens import Principal
from services.followup import answering, domain, instrument, store, views


async def record_survey(pool: AsyncConnectionPool, principal: Principal, request: RecordSurvey, *,
                        clock: Clock = utcnow, instruments: instrument.Registry | None = None) -> SurveyView:
    """Record one administration of a survey, once per idempotency key (the managing organisation)."""
    case_id = parse_id(request.case_id, "caseId")
    registry = instruments if instruments is not None else instrument.active()
    today = clock().date()
    refusal: SeginError | None = None
    survey: dict[str, Any] | None = None
    standing: str | None = None
    async with pool.connection() as conn, conn.transaction():
        row = await store.get_case(conn, case_id, lock=True)
        if row is None:
            refusal = answering.not_found()
        else:
            case = store.to_case(row)
            try:
                async with conn.transaction():  # a refusal leaves nothing behind but its audit record
                    domain.may_write(case, principal.org_id, principal.org_type)
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

                    done = await idempotent(conn, store.SCHEMA, org_id=principal.org_id, subject=principal.subject,
                                            operation="record_survey", key=request.idempotency_key, produce=produce,
                                            request=request.model_dump(mode="json", exclude={"idempotency_key"}))
                    survey = await store.survey(conn, uuid.UUID(done["survey_id"]))
            except domain.Refused as exc:
                refusal = answering.refusal(exc)
            except SeginError as exc:
                refusal = exc
        if refusal is not None or survey is None:
            await store.TRAIL.denied(conn, principal, "followup.record_survey", [case_id])
        else:
            await store.TRAIL.allowed(conn, principal, "followup.record_survey", [case_id],
                                      answering.FOLLOW_UP + answering.SURVEYS + answering.PSYCHOSOCIAL_ANSWERS,
                                      answering.purpose(standing))
    if refusal is not None:
        raise refusal
    assert survey is not None
    return views.survey_view(survey, psychosocial_answers=answering.sees_psychosocial_answers(principal))


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
