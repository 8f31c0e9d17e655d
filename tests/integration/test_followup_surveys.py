"""Surveys at the service level (real PostgreSQL, fresh database, no gateway, no NATS): the manager
records the Reintegration Sustainability Survey under version 1 and version 2 and the version-1
scores stay as stored; bad answers are refused with every problem named and nothing written; a
retried key records once; who may record and read, and what the psychosocial answers need; the
data-subject export; and follow-up statistics with intake's suppression rule."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from contracts.channels import ARRIVAL_REGISTERED, SURVEY_RECORDED
from contracts.commands import CloseCase, FollowupStatisticsRequest, LogContact
from contracts.events import ArrivalRegisteredV1
from contracts.reference import ArrivalPoint, Purpose, Vulnerability
from kernel.errors import SeginError
from kernel.tokens import Principal
from services.followup import handlers, instrument, statistics
from services.followup.app import APP as FOLLOWUP
from tests.integration.services import audit_rows, call, deliver, outbox, principal
from tests.survey_answers import RSS_VISIT as VISIT

OWNER, MANAGER, STRANGER = "dgme", "iom", "ame"
V1, V2 = instrument.active()[("RSS", 1)], instrument.active()[("RSS", 2)]


def caller(org: str, org_type: str, scopes: str = "followup:read followup:write") -> Principal:
    return replace(principal(org, scopes), org_type=org_type)


DGME = caller(OWNER, "STATE")
IOM = caller(MANAGER, "INTERNATIONAL", "followup:read followup:write sensitive:health")
IOM_PLAIN = caller(MANAGER, "INTERNATIONAL")  # without sensitive:health
AME = caller(STRANGER, "NGO")


def answers(visit: dict[str, str] | None = None) -> list[dict[str, str]]:
    return [{"indicator": k, "option": v} for k, v in (visit or VISIT).items()]


async def new_case(pool: AsyncConnectionPool, *, owner: str = OWNER, region: str = "07",
                   arrival_date: date = date(2026, 11, 1)) -> str:
    case_id = str(uuid.uuid4())
    await deliver(pool, handlers.on_arrival_registered, ARRIVAL_REGISTERED, ArrivalRegisteredV1(
        case_id=case_id, owner_org_id=owner, arrival_point=ArrivalPoint.BAMAKO_AIRPORT, arrival_date=arrival_date,
        destination_region=region, is_child=False, vulnerabilities=[Vulnerability.MENTAL_HEALTH_NEEDS],
        consent_given=True, consent_recipient_org_ids=[MANAGER], consent_purposes=[Purpose.FOLLOW_UP]), case_id)
    return case_id


@pytest.fixture
async def case_id(followup_pool: AsyncConnectionPool) -> str:
    """DGME's case, handed to IOM (consent covers IOM for follow-up)."""
    case_id = await new_case(followup_pool)
    await ask(followup_pool, DGME, "assign", case_id=case_id, organization_id=MANAGER,
              organization_type="INTERNATIONAL", reason="SPECIALISED_SUPPORT")
    return case_id


async def ask(pool: AsyncConnectionPool, who: Any, endpoint: str, **payload: Any) -> Any:
    return await call(FOLLOWUP, endpoint, pool, who, payload)


async def refused(pool: AsyncConnectionPool, who: Any, endpoint: str, **payload: Any) -> SeginError:
    with pytest.raises(SeginError) as caught:
        await ask(pool, who, endpoint, **payload)
    return caught.value


async def record(pool: AsyncConnectionPool, who: Principal, case_id: str, *, version: int | None = None,
                 taken_on: str = "2026-11-20", key: str | None = None, visit: dict[str, str] | None = None) -> Any:
    return await ask(pool, who, "record_survey", case_id=case_id, instrument_version=version, taken_on=taken_on,
                     answers=answers(visit), idempotency_key=key or str(uuid.uuid4()))


def scores(survey: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(survey[k] for k in ("instrument_version", "economic", "social", "psychosocial", "composite",
                                     "composite_band"))


async def test_a_survey_under_v1_keeps_its_scores_after_v2_exists_and_reads_never_recompute(
        followup_pool: AsyncConnectionPool, case_id: str) -> None:
    first = await record(followup_pool, IOM, case_id, version=1, taken_on="2026-11-20")
    second = await record(followup_pool, IOM, case_id, taken_on="2026-12-01")  # no version: the latest, v2
    # The hand computation of tests/unit/test_survey_instrument.py: v2 values the repaid debt and the wish to
    # leave again differently.
    assert scores(first) == (1, 0.63, 0.6, 0.6, 0.61, "PARTIAL")
    assert scores(second) == (2, 0.68, 0.6, 0.53, 0.6, "PARTIAL")
    assert (first["instrument_digest"], second["instrument_digest"]) == (V1.digest, V2.digest)

    # Scores are stored, not recomputed on read: overwrite a stored score and the read shows the stored value.
    async with followup_pool.connection() as conn:
        await conn.execute("update followup.surveys set economic = 0.11 where id = %s", (first["id"],))
    history = (await ask(followup_pool, IOM, "get_case", case_id=case_id))["surveys"]
    assert [s["id"] for s in history] == [first["id"], second["id"]]  # oldest first
    assert scores(history[0]) == (1, 0.11, 0.6, 0.6, 0.61, "PARTIAL")
    assert scores(history[1]) == scores(second)
    assert [a["indicator"] for a in history[0]["answers"]] == list(VISIT)[:10]
    assert [a["indicator"] for a in history[0]["psychosocial_answers"]] == list(VISIT)[10:]

    # The event: ids, the version, the day and the four scores; no answer.
    events = [e for e in await outbox(followup_pool, "followup", case_id) if e["type"] == SURVEY_RECORDED.event_type]
    assert [e["data"] for e in events] == [
        {"survey_id": first["id"], "case_id": case_id, "manager_org_id": MANAGER, "instrument_id": "RSS",
         "instrument_version": 1, "taken_on": "2026-11-20", "economic": 0.63, "social": 0.6, "psychosocial": 0.6,
         "composite": 0.61},
        {"survey_id": second["id"], "case_id": case_id, "manager_org_id": MANAGER, "instrument_id": "RSS",
         "instrument_version": 2, "taken_on": "2026-12-01", "economic": 0.68, "social": 0.6, "psychosocial": 0.53,
         "composite": 0.6}]
    text = json.dumps(events)
    assert not any(option in text for option in ("IRREGULAR", "DISTRESS_SUPPORTED", "BY_NECESSITY", "ECO_DEBT"))


async def test_bad_answers_are_refused_with_every_problem_named_and_nothing_written(
        followup_pool: AsyncConnectionPool, case_id: str) -> None:
    visit = dict(VISIT, ECO_DEBT="SOME", PSY_SAFETY="MAYBE")
    del visit["SOC_HOUSING"]
    visit["NO_SUCH_INDICATOR"] = "YES"
    bad = answers(visit) + [{"indicator": "ECO_INCOME_SOURCE", "option": "NONE"}]
    error = await refused(followup_pool, IOM, "record_survey", case_id=case_id, instrument_version=1,
                          taken_on="2026-11-20", answers=bad, idempotency_key="iom-survey-bad-1")
    assert error.code == "BAD_USER_INPUT"
    problems = {(p["indicator"], p["field"]) for p in error.problems}
    assert problems == {("ECO_INCOME_SOURCE", "answers.15.indicator"), ("NO_SUCH_INDICATOR", "answers.14.indicator"),
                        ("ECO_DEBT", "answers.2.option"), ("SOC_HOUSING", "answers"),
                        ("PSY_SAFETY", "answers.10.option")}
    assert all(p["message"].startswith(p["indicator"] + ": ") for p in error.problems)
    assert await outbox(followup_pool, "followup", case_id) == [e for e in await outbox(
        followup_pool, "followup", case_id) if e["type"] != SURVEY_RECORDED.event_type]
    assert (await ask(followup_pool, IOM, "get_case", case_id=case_id))["surveys"] == []
    # The key was not spent on a refusal: the corrected answers go through with it.
    assert (await record(followup_pool, IOM, case_id, version=1, key="iom-survey-bad-1"))["composite"] == 0.61

    # An option of version 2 only, the future, before arrival, an unknown version: refused, nothing written.
    assert (await refused(followup_pool, IOM, "record_survey", case_id=case_id, instrument_version=3,
                          taken_on="2026-11-20", answers=answers(), idempotency_key="iom-survey-bad-2")).field == (
        "instrument_version")
    assert (await refused(followup_pool, IOM, "record_survey", case_id=case_id, instrument_id="NOPE",
                          taken_on="2026-11-20", answers=answers(), idempotency_key="iom-survey-bad-3")).field == (
        "instrument_id")
    tomorrow = (datetime.now(UTC).date() + timedelta(days=1)).isoformat()
    assert (await refused(followup_pool, IOM, "record_survey", case_id=case_id, taken_on=tomorrow,
                          answers=answers(), idempotency_key="iom-survey-bad-4")).field == "taken_on"
    assert (await refused(followup_pool, IOM, "record_survey", case_id=case_id, taken_on="2026-10-31",
                          answers=answers(), idempotency_key="iom-survey-bad-5")).field == "taken_on"
    assert len((await ask(followup_pool, IOM, "get_case", case_id=case_id))["surveys"]) == 1
    assert [r["outcome"] for r in await audit_rows(followup_pool, "followup")
            if r["operation"] == "followup.record_survey"] == ["denied", "allowed", "denied", "denied", "denied",
                                                              "denied"]


async def test_a_retried_key_records_once_and_a_reused_key_is_refused(
        followup_pool: AsyncConnectionPool, case_id: str) -> None:
    first = await record(followup_pool, IOM, case_id, key="iom-survey-0001")
    again = await record(followup_pool, IOM, case_id, key="iom-survey-0001")
    assert first == again
    assert len((await ask(followup_pool, IOM, "get_case", case_id=case_id))["surveys"]) == 1
    error = await refused(followup_pool, IOM, "record_survey", case_id=case_id, taken_on="2026-11-21",
                          answers=answers(), idempotency_key="iom-survey-0001")
    assert (error.code, error.field) == ("IDEMPOTENCY_KEY_REUSED", "idempotencyKey")
    assert len([e for e in await outbox(followup_pool, "followup", case_id)
                if e["type"] == SURVEY_RECORDED.event_type]) == 1


async def test_only_the_manager_records_the_owner_and_manager_read_and_psychosocial_answers_need_health_scope(
        followup_pool: AsyncConnectionPool, case_id: str) -> None:
    assert (await refused(followup_pool, DGME, "record_survey", case_id=case_id, taken_on="2026-11-20",
                          answers=answers(), idempotency_key="dgme-survey-1")).code == "FORBIDDEN"
    for who in (AME, caller(STRANGER, "NGO", "followup:write")):
        error = await refused(followup_pool, who, "record_survey", case_id=case_id, taken_on="2026-11-20",
                              answers=answers(), idempotency_key="ame-survey-1")
        assert (error.code, error.field) == ("NOT_FOUND", "caseId")
    missing = str(uuid.uuid4())
    assert (await refused(followup_pool, IOM, "record_survey", case_id=missing, taken_on="2026-11-20",
                          answers=answers(), idempotency_key="iom-survey-x")).code == "NOT_FOUND"
    assert (await refused(followup_pool, caller(MANAGER, "INTERNATIONAL", "followup:read"), "record_survey",
                          case_id=case_id, taken_on="2026-11-20", answers=answers(),
                          idempotency_key="iom-survey-y")).code == "INSUFFICIENT_SCOPE"

    recorded = await record(followup_pool, IOM_PLAIN, case_id)
    assert recorded["psychosocial_answers"] is None and recorded["psychosocial"] == 0.53  # the score stays
    owner_view = (await ask(followup_pool, DGME, "get_case", case_id=case_id))["surveys"]
    assert [s["composite"] for s in owner_view] == [0.6] and owner_view[0]["psychosocial_answers"] is None
    assert len(owner_view[0]["answers"]) == 10
    with_scope = (await ask(followup_pool, replace(DGME, scopes=DGME.scopes | {"sensitive:health"}), "get_case",
                            case_id=case_id))["surveys"]
    assert len(with_scope[0]["psychosocial_answers"]) == 5
    assert (await refused(followup_pool, AME, "get_case", case_id=case_id)).code == "NOT_FOUND"

    reads = [r for r in await audit_rows(followup_pool, "followup") if r["operation"] == "followup.read"
             and r["outcome"] == "allowed"]
    # No plan yet: the reads showed the follow-up and the surveys, not a plan.
    assert [r["field_categories"] for r in reads][-2:] == [
        ["follow_up", "survey"], ["follow_up", "survey", "survey_psychosocial"]]
    assert "DISTRESS" not in json.dumps([dict(r) for r in await audit_rows(followup_pool, "followup")], default=str)

    # A closed follow-up takes no survey.
    version = (await ask(followup_pool, IOM, "get_case", case_id=case_id))["version"]
    await ask(followup_pool, IOM, "close", case_id=case_id, reason="UNREACHABLE", version=version)
    assert (await refused(followup_pool, IOM, "record_survey", case_id=case_id, taken_on="2026-11-20",
                          answers=answers(), idempotency_key="iom-survey-closed")).code == "CASE_CLOSED"


async def test_the_instrument_form_is_readable_with_any_follow_up_scope(followup_pool: AsyncConnectionPool) -> None:
    latest = await ask(followup_pool, caller("segin-steward", "STATE", "followup:manage"), "instrument")
    assert (latest["id"], latest["version"], latest["latest_version"], len(latest["indicators"])) == ("RSS", 2, 2, 15)
    first = await ask(followup_pool, DGME, "instrument", id="RSS", version=1)
    debt = next(i for i in first["indicators"] if i["code"] == "ECO_DEBT")
    assert debt["question_fr"] and [o["code"] for o in debt["options"]] == ["NO_DEBT", "MANAGEABLE", "UNMANAGEABLE"]
    assert first["digest"] == V1.digest
    assert (await refused(followup_pool, DGME, "instrument", id="RSS", version=9)).field == "instrument_version"
    assert (await refused(followup_pool, caller("cnrm", "STATE", "statistics:read"), "instrument")).code == (
        "INSUFFICIENT_SCOPE")


async def test_the_subject_access_export_holds_every_answer_and_score(
        followup_pool: AsyncConnectionPool, case_id: str) -> None:
    await record(followup_pool, IOM_PLAIN, case_id)
    [export] = await ask(followup_pool, caller("segin-steward", "STATE", "audit:read"), "subject_access",
                         case_id=case_id)
    [survey] = export["surveys"]
    assert {a["indicator"]: a["option"] for a in survey["answers"] + survey["psychosocial_answers"]} == VISIT
    assert (survey["composite"], survey["instrument_version"]) == (0.6, 2)


# --- statistics -------------------------------------------------------------------------------------------

CNRM = caller("cnrm", "STATE", "statistics:read")
TODAY = datetime(2027, 3, 1, 12, tzinfo=UTC)


async def stats(pool: AsyncConnectionPool, who: Principal) -> dict[str, Any]:
    view = await statistics.statistics(pool, who, FollowupStatisticsRequest(), clock=lambda: TODAY)
    return view.model_dump(mode="json")


def cell(cells: list[dict[str, Any]], *keys: str) -> int | None:
    return next((c["count"] for c in cells if c["keys"] == list(keys)), None)


async def plan_saved(pool: AsyncConnectionPool, case_id: str, on: date) -> None:
    """Backdate a first plan save (the statistics read the day it happened)."""
    async with pool.connection() as conn:
        await conn.execute("update followup.cases set has_plan = true, first_plan_saved_at = %s,"
                           " plan_saved_by_org_id = owner_org_id, plan_saved_at = %s where case_id = %s",
                           (datetime(on.year, on.month, on.day, 10, tzinfo=UTC),) * 2 + (case_id,))


async def test_statistics_count_plans_on_time_and_latest_scores_and_hide_small_cells(
        followup_pool: AsyncConnectionPool) -> None:
    arrival = date(2026, 11, 1)  # plan due by 2026-12-01
    on_time = [await new_case(followup_pool, owner="ame", region="07", arrival_date=arrival) for _ in range(6)]
    for c in on_time:
        await plan_saved(followup_pool, c, date(2026, 11, 20))
    late = [await new_case(followup_pool, owner="ame", region="07", arrival_date=arrival) for _ in range(2)]
    await plan_saved(followup_pool, late[0], date(2026, 12, 15))  # saved, but after its due day
    lone = await new_case(followup_pool, owner="ame", region="09", arrival_date=arrival)  # one case in Taoudénit
    fresh = [await new_case(followup_pool, owner="ame", region="07", arrival_date=date(2027, 2, 20))
             for _ in range(5)]

    # Five cases surveyed twice by AME (managing its own cases): first LOW, then PARTIAL; only the latest counts.
    ame = caller("ame", "NGO", "followup:read followup:write")
    worst = {i.code: min(i.options, key=lambda o: o.score).code for i in V1.indicators}
    for c in on_time[:5]:
        assert (await record(followup_pool, ame, c, taken_on="2026-11-05", visit=worst))["composite_band"] == "LOW"
        await record(followup_pool, ame, c, taken_on="2026-11-25", version=1)

    seen = await stats(followup_pool, CNRM)
    assert (seen["plan_due_days"], seen["minimum_cell"]) == (30, 5)
    # Nobody was contacted: the nine cases of November missed their first two contacts (nine, shown as ten).
    assert seen["contacts_on_time"] == [{"keys": ["M1", "NOT_MADE"], "count": 10},
                                        {"keys": ["M3", "NOT_MADE"], "count": 10}]
    assert cell(seen["plans_by_region"], "07", "PLAN_ON_TIME") == 5  # six, rounded to a multiple of five
    assert cell(seen["plans_by_region"], "07", "NO_PLAN_ON_TIME") is None  # two: suppressed
    assert cell(seen["plans_by_region"], "09", "NO_PLAN_ON_TIME") is None  # one person: never shown
    assert cell(seen["plans_by_region"], "07", "NOT_YET_DUE") == 5
    assert cell(seen["plans_by_arrival_month"], "2026-11", "PLAN_ON_TIME") == 5
    assert cell(seen["plans_by_arrival_month"], "2026-11", "NO_PLAN_ON_TIME") is None  # three: suppressed
    assert cell(seen["composite_by_region"], "07", "PARTIAL") == 5
    assert cell(seen["composite_by_months_since_return"], "0-3", "PARTIAL") == 5
    assert cell(seen["composite_by_region"], "07", "LOW") is None  # earlier surveys do not count
    assert all(c["count"] % 5 == 0 for k in ("plans_by_region", "plans_by_arrival_month", "composite_by_region",
                                             "composite_by_months_since_return") for c in seen[k])

    # To AME, whose own cases they all are, nothing is shown: its own records never make a cell appear.
    assert (await stats(followup_pool, caller("ame", "NGO", "statistics:read")))["plans_by_region"] == []
    # Nor to the manager of enough of them to bring a cell under the threshold.
    for c in on_time[:2]:
        await ask(followup_pool, ame, "assign", case_id=c, organization_id=MANAGER, organization_type="INTERNATIONAL",
                  reason="SPECIALISED_SUPPORT")
    iom = await stats(followup_pool, caller(MANAGER, "INTERNATIONAL", "statistics:read"))
    assert cell(iom["plans_by_region"], "07", "PLAN_ON_TIME") is None  # 6 cases, 2 of them IOM's: 4 others
    assert cell(iom["composite_by_region"], "07", "PARTIAL") is None
    assert cell(iom["plans_by_region"], "07", "NOT_YET_DUE") == 5
    assert lone and late and fresh


async def test_statistics_count_contacts_made_on_time_late_or_not_at_all_by_scheduled_contact(
        followup_pool: AsyncConnectionPool) -> None:
    """Arrived 1 November: M1 due 1 December (on time until 15 December), M3 due 1 February (on time
    from 18 January until 15 February). As of 1 March both are decided for every case."""
    ame = caller("ame", "NGO", "followup:read followup:write")

    async def contact(case_id: str, on: date, reached: bool = True) -> None:
        await handlers.log_contact(followup_pool, ame, LogContact(
            idempotency_key=str(uuid.uuid4()), case_id=case_id,
            input={"date": on, "mode": "PHONE", "reached": reached}), clock=lambda: TODAY)

    regular = [await new_case(followup_pool, owner="ame") for _ in range(5)]
    for c in regular:  # M1 on time, M3 a few days late
        await contact(c, date(2026, 11, 28))
        await contact(c, date(2027, 2, 20))
    skipped = [await new_case(followup_pool, owner="ame") for _ in range(5)]
    for c in skipped:  # nobody reached at one month (a failed call), reached at three: M1 missed, M3 on time
        await contact(c, date(2026, 12, 5), reached=False)
        await contact(c, date(2027, 1, 25))
    forgotten = await new_case(followup_pool, owner="ame")  # never contacted: both not made
    closed = [await new_case(followup_pool, owner="ame") for _ in range(5)]
    for c in closed:  # closed in November: their contacts were no longer due, not forgotten
        await handlers.close_case(followup_pool, ame, CloseCase(case_id=c, reason="RE_MIGRATED", version=0))

    seen = (await stats(followup_pool, CNRM))["contacts_on_time"]
    assert cell(seen, "M1", "ON_TIME") == 5
    assert cell(seen, "M3", "LATE") == 5
    assert cell(seen, "M3", "ON_TIME") == 5
    assert cell(seen, "M1", "NOT_MADE") == 5  # six (five missed, one forgotten), rounded to five
    assert cell(seen, "M3", "NOT_MADE") is None  # one: suppressed; the closed cases do not count
    assert [c["keys"][0] for c in seen] == sorted(c["keys"][0] for c in seen)  # only M1 and M3 are decided yet
    assert {c["keys"][0] for c in seen} == {"M1", "M3"} and forgotten
    # AME's own cases never make a cell appear to AME.
    assert (await stats(followup_pool, caller("ame", "NGO", "statistics:read")))["contacts_on_time"] == []


async def test_a_case_keeps_at_most_a_hundred_surveys(followup_pool: AsyncConnectionPool, case_id: str) -> None:
    """So that its history (and the steward's export) stays within what the bus carries."""
    await record(followup_pool, IOM, case_id)
    columns = ("case_id, instrument_id, instrument_version, instrument_digest, taken_on, answers, economic, social,"
               " psychosocial, composite, economic_band, social_band, psychosocial_band, composite_band,"
               " recorded_by_org_id")
    async with followup_pool.connection() as conn:  # 99 more: a hundred in all
        await conn.execute(f"insert into followup.surveys (id, {columns}) select gen_random_uuid(), {columns}"
                           " from followup.surveys, generate_series(1, 99) where case_id = %s", (uuid.UUID(case_id),))
    error = await refused(followup_pool, IOM, "record_survey", case_id=case_id, taken_on="2026-11-21",
                          answers=answers(), idempotency_key=str(uuid.uuid4()))
    assert (error.code, error.field) == ("LIMIT_REACHED", "caseId")
    async with followup_pool.connection() as conn:
        cur = await conn.execute("select count(*) as n from followup.surveys where case_id = %s", (uuid.UUID(case_id),))
        assert (await cur.fetchone())["n"] == 100


async def test_recording_audits_the_psychosocial_answers_only_when_the_reply_showed_them(
        followup_pool: AsyncConnectionPool, case_id: str) -> None:
    """The audit trail says what a reply showed: without sensitive:health the psychosocial answers
    were left out of it, so its entry does not name them."""
    await record(followup_pool, IOM_PLAIN, case_id)
    await record(followup_pool, IOM, case_id)
    entries = [r["field_categories"] for r in await audit_rows(followup_pool, "followup")
               if r["operation"] == "followup.record_survey" and r["outcome"] == "allowed"]
    assert entries == [["follow_up", "survey"], ["follow_up", "survey", "survey_psychosocial"]]
