"""Issue 9, done: one person followed from arrival to re-opening, through the public GraphQL API.

DGME registers an adult returned from Libya; her consent covers AME and IOM for follow-up only.
DGME hands her follow-up to AME, which reads her case for that purpose; AME hands it on to IOM and
loses that view (DGME, the owner, keeps its own). IOM saves her plan. A month passes: the one-month
contact falls due, IOM is told once and logs a visit that reached her; two months later the
three-month contact likewise. Then four attempts in a row fail: she is flagged unreachable after
three (the schedule's threshold), IOM is told once. IOM finds her again, records her survey under
RSS version 1 (taken at the one-month visit) and another under version 2 (the latest); the
version-1 scores stay as they were recorded. IOM closes the follow-up with a reason and re-opens it
with another. Finally every message in every JetStream stream is read: none carries her names, the
plan's text, a note, a next step or a survey answer.

The clock is controlled as in test_followup_contacts.py: on a platform of its own scanning every
second, "time passes" by moving the case's arrival and logged contacts back in the follow-up
service's tables and resetting ``next_check_on``, so the next scan looks at the case again.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import nats
import psycopg
import pytest
from nats.js.errors import NotFoundError

from contracts.channels import FOLLOWUP_STREAM, STREAMS
from devstack.platform import Platform
from tests.e2e.conftest import Api, arrival, eventually, start_platform, stop_platform
from tests.survey_answers import RSS_VISIT as VISIT

pytestmark = pytest.mark.e2e

MARK = uuid.uuid4().hex[:8]
GIVEN = f"Kadiatou{MARK}"
FAMILY = f"Sangare{MARK}"
GOAL_TEXT = f"Ouvrir un atelier de couture a Kayes {MARK}G"
ACTION_TEXT = f"Formation en coupe chez la cooperative {MARK}A"
NOTE = f"Elle vit chez son oncle, dette envers le passeur {MARK}N"
NEXT_STEP = f"Revoir apres la foire de Kayes {MARK}S"
PRIVATE = (GIVEN, FAMILY, GOAL_TEXT, ACTION_TEXT, NOTE, NEXT_STEP, f"{MARK}G", f"{MARK}A", f"{MARK}N", f"{MARK}S")

# The scores these answers get under each version (test_followup_surveys.py): version 2 scores the
# same answers differently, which is what makes "version 1's scores unchanged" mean something.
V1_SCORES = {"instrumentVersion": 1, "economic": 0.63, "social": 0.6, "psychosocial": 0.6, "composite": 0.61,
             "compositeBand": "PARTIAL"}
V2_SCORES = {"instrumentVersion": 2, "economic": 0.68, "social": 0.6, "psychosocial": 0.53, "composite": 0.6,
             "compositeBand": "PARTIAL"}

CASE = "query($id: ID!) { case(id: $id) { id givenName familyName access { purpose legalBasis } } }"
FOLLOWUP = """query($case: ID!) { followupCase(caseId: $case) { caseId ownerOrgId managerOrgId status closureReason
  version planOverdue plan { savedByOrgId goals { dimension description actions { id description status } } }
  assignments { fromOrgId toOrgId reasonCode legalBasis } failedInARow unreachable
  schedule { code state doneOn onTime } contacts { date mode reached nextStep note }
  surveys { id takenOn instrumentId instrumentVersion economic social psychosocial composite compositeBand
  answers { indicator option } psychosocialAnswers { indicator option } recordedByOrgId } } }"""
ASSIGN = """mutation($case: ID!, $org: ID!, $reason: AssignmentReason!) { assignCaseManagement(caseId: $case,
  organizationId: $org, reason: $reason) { managerOrgId version } }"""
SAVE = """mutation($case: ID!, $version: Int!, $key: String!, $goals: [PlanGoalInput!]!) {
  savePlan(caseId: $case, version: $version, goals: $goals, idempotencyKey: $key) { managerOrgId version
  planOverdue plan { savedByOrgId goals { dimension actions { id status } } } } }"""
LOG = """mutation($case: ID!, $key: String!, $input: ContactInput!) { logContact(caseId: $case, input: $input,
  idempotencyKey: $key) { failedInARow unreachable schedule { code state } contacts { reached note } } }"""
RECORD = """mutation($case: ID!, $key: String!, $input: SurveyInput!) { recordSurvey(caseId: $case, input: $input,
  idempotencyKey: $key) { id takenOn instrumentVersion economic social psychosocial composite compositeBand } }"""
CLOSE = """mutation($case: ID!, $version: Int!) { closeCase(caseId: $case, reason: REINTEGRATED, version: $version) {
  status closureReason version plan { goals { actions { status } } } } }"""
REOPEN = """mutation($case: ID!, $version: Int!) { reopenCase(caseId: $case, reason: CONTACT_RESUMED,
  version: $version) { status closureReason version } }"""
LISTS = """{ followupsDue(first: 100, withinDays: 7) { nodes { caseId contactCode state } }
  unreachableCases(first: 100) { nodes { caseId failedInARow } }
  plansMissing(first: 100) { nodes { caseId } } }"""
NOTICES = """query($after: String) { notifications(first: 100, after: $after) { nodes { kind caseId
  titleEn: title(lang: "en") } pageInfo { hasNextPage endCursor } } }"""


@pytest.fixture(scope="module")
def scanning() -> Iterator[tuple[Platform, Api]]:
    """A platform of its own scanning every second, so that moved dates are looked at promptly."""
    p = start_platform("segin-journey-", extra_env={"SEGIN_FOLLOWUP_SCAN_SECONDS": "1"})
    yield p, Api(p, {})
    stop_platform(p)


# --- the clock, exactly as test_followup_contacts.py moves it ------------------------------------


def rows(platform: Platform, query: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(platform.database_url) as conn:
        return conn.execute(query, params).fetchall()


def time_passes(platform: Platform, case_id: str, days: int) -> None:
    """``days`` pass for this case: its arrival and contacts move back, and the next scan looks again."""
    with psycopg.connect(platform.database_url) as conn:
        conn.execute("update followup.contacts set contact_date = contact_date - %s where case_id = %s",
                     (days, case_id))
        conn.execute("update followup.cases set arrival_date = arrival_date - %s, next_check_on = '0001-01-01'"
                     " where case_id = %s", (days, case_id))


def looked_at(platform: Platform, case_id: str) -> bool:
    """The case has been through a scan since it was created or its dates moved."""
    return not rows(platform, "select 1 from followup.cases where case_id = %s and next_check_on = '0001-01-01'",
                    case_id)


# --- the API ----------------------------------------------------------------------------------------


def code(body: dict[str, Any]) -> str:
    [error] = body["errors"]
    return error["extensions"]["code"]


def ok(body: dict[str, Any]) -> dict[str, Any]:
    assert not body.get("errors"), body
    return body["data"]


def reads_case(api: Api, org: str, case_id: str) -> dict[str, Any] | None:
    """The case as ``org`` reads it, or None when it is NOT_FOUND to ``org`` (as an absent case)."""
    body = api.gql(org, CASE, {"id": case_id})
    if body.get("errors"):
        assert body["data"] is None and code(body) == "NOT_FOUND", body
        return None
    return body["data"]["case"]


def followup(api: Api, org: str, case_id: str) -> dict[str, Any]:
    return ok(api.gql(org, FOLLOWUP, {"case": case_id}))["followupCase"]


def lists(api: Api, org: str, case_id: str) -> dict[str, list[dict[str, Any]]]:
    """``org``'s work lists, this case's rows only."""
    found = ok(api.gql(org, LISTS))
    return {name: [n for n in found[name]["nodes"] if n["caseId"] == case_id] for name in found}


def notices(api: Api, org: str, case_id: str) -> list[dict[str, Any]]:
    """Every notification ``org`` holds about this case, oldest first."""
    nodes: list[dict[str, Any]] = []
    after = None
    for _ in range(50):
        page = ok(api.gql(org, NOTICES, {"after": after}))["notifications"]
        nodes += page["nodes"]
        if not page["pageInfo"]["hasNextPage"]:
            return [n for n in reversed(nodes) if n["caseId"] == case_id]
        after = page["pageInfo"]["endCursor"]
    raise AssertionError("more than 50 pages of notifications")


def kinds(api: Api, org: str, case_id: str) -> dict[str, int]:
    counted: dict[str, int] = {}
    for n in notices(api, org, case_id):
        counted[n["kind"]] = counted.get(n["kind"], 0) + 1
    return counted


def log(api: Api, case_id: str, reached: bool, on: date) -> dict[str, Any]:
    return ok(api.gql("iom", LOG, {"case": case_id, "key": f"journey-{uuid.uuid4()}", "input": {
        "date": on.isoformat(), "mode": "VISIT" if reached else "PHONE", "reached": reached,
        "nextStep": NEXT_STEP, "note": NOTE}}))["logContact"]


def survey(version: int | None, taken_on: date) -> dict[str, Any]:
    return {"takenOn": taken_on.isoformat(), **({"instrumentVersion": version} if version else {}),
            "answers": [{"indicator": k, "option": v} for k, v in VISIT.items()]}


def scores(recorded: dict[str, Any]) -> dict[str, Any]:
    return {k: recorded[k] for k in V1_SCORES}


# --- the streams ------------------------------------------------------------------------------------


def stream_messages(platform: Platform) -> list[tuple[str, str, str]]:
    """Every message held in every JetStream stream: (stream, subject, body as text)."""

    async def read() -> list[tuple[str, str, str]]:
        nc = await nats.connect(**platform.nats_options())
        try:
            js = nc.jetstream()
            found: list[tuple[str, str, str]] = []
            for spec in STREAMS:
                state = (await js.stream_info(spec.name)).state
                if not state.messages:
                    continue
                for seq in range(state.first_seq, state.last_seq + 1):
                    try:
                        msg = await js.get_msg(spec.name, seq)
                    except NotFoundError:
                        continue
                    found.append((spec.name, msg.subject, (msg.data or b"").decode("utf-8")))
            return found
        finally:
            await nc.close()

    return asyncio.run(read())


def followup_drained(platform: Platform) -> bool:
    """Notifications has taken every follow-up event published so far."""

    async def check() -> bool:
        nc = await nats.connect(**platform.nats_options())
        try:
            info = await nc.jetstream().consumer_info(FOLLOWUP_STREAM.name, "notifications-followup-events")
            return info.num_pending == 0 and info.num_ack_pending == 0
        finally:
            await nc.close()

    return asyncio.run(check())


def strings(value: Any) -> Iterator[str]:
    """Every key and string value in a decoded JSON document."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)
    elif isinstance(value, str):
        yield value


def followup_event_counts(platform: Platform, case_id: str) -> dict[str, int]:
    counted: dict[str, int] = {}
    for stream, _subject, body in stream_messages(platform):
        if stream == FOLLOWUP_STREAM.name and case_id in body:
            kind = json.loads(body)["type"].split(".")[3]
            counted[kind] = counted.get(kind, 0) + 1
    return counted


# --- the journey ------------------------------------------------------------------------------------


def test_one_person_from_arrival_through_hand_overs_plan_contacts_surveys_to_closure_and_reopening(
        scanning: tuple[Platform, Api]) -> None:
    platform, api = scanning
    today = datetime.now(UTC).date()

    # 1. DGME registers her; her consent covers AME and IOM for follow-up (and nothing else).
    registered = ok(api.register("dgme", arrival(
        givenName=GIVEN, familyName=FAMILY, sex="FEMALE", estimatedAge=27, countryReturnedFrom="LY",
        arrivalPoint="BAMAKO_AIRPORT", arrivalDate=today.isoformat(), destinationRegion="01", vulnerabilities=[],
        consent={"given": True, "recipientOrgIds": ["ame", "iom"], "purposes": ["FOLLOW_UP"]}),
        key=f"journey-{MARK}"))["registerArrival"]
    case_id = registered["id"]
    assert (registered["givenName"], registered["familyName"]) == (GIVEN, FAMILY)
    start = eventually(lambda: (api.gql("dgme", FOLLOWUP, {"case": case_id}).get("data") or {}).get("followupCase"),
                       timeout=60)
    assert (start["ownerOrgId"], start["managerOrgId"], start["status"], start["plan"]) == (
        "dgme", "dgme", "OPEN", None)
    assert [s["code"] for s in start["schedule"]] == ["M1", "M3", "M6", "M12"]
    # Consent alone opens nothing: management (or a referral) does.
    assert reads_case(api, "ame", case_id) is None and reads_case(api, "iom", case_id) is None
    eventually(lambda: looked_at(platform, case_id), timeout=60)

    # DGME hands her follow-up to AME, which may then read her case for that purpose.
    assigned = ok(api.gql("dgme", ASSIGN, {"case": case_id, "org": "ame", "reason": "SPECIALISED_SUPPORT"}))
    assert assigned["assignCaseManagement"]["managerOrgId"] == "ame"
    seen = eventually(lambda: reads_case(api, "ame", case_id), timeout=60)
    assert (seen["givenName"], seen["access"]) == (GIVEN, {"purpose": "FOLLOW_UP", "legalBasis": "CONSENT"})
    assert followup(api, "ame", case_id)["managerOrgId"] == "ame"
    assert [n["caseId"] for n in lists(api, "ame", case_id)["plansMissing"]] == [case_id]

    # AME hands it on to IOM: AME, the previous manager, loses its view of the case and of the
    # follow-up; DGME, the owner, keeps its own.
    version = followup(api, "ame", case_id)["version"]
    ok(api.gql("ame", ASSIGN, {"case": case_id, "org": "iom", "reason": "SPECIALISED_SUPPORT"}))
    eventually(lambda: reads_case(api, "iom", case_id) and not reads_case(api, "ame", case_id), timeout=60)
    assert reads_case(api, "iom", case_id)["access"] == {"purpose": "FOLLOW_UP", "legalBasis": "CONSENT"}
    assert reads_case(api, "dgme", case_id)["access"] == {"purpose": "CASE_MANAGEMENT", "legalBasis": None}
    assert code(api.gql("ame", FOLLOWUP, {"case": case_id})) == "NOT_FOUND"
    assert code(api.gql("ame", ASSIGN, {"case": case_id, "org": "ame", "reason": "SPECIALISED_SUPPORT"})) == "NOT_FOUND"
    assert lists(api, "ame", case_id)["plansMissing"] == []
    handed = followup(api, "iom", case_id)
    assert handed["version"] > version
    assert [(a["fromOrgId"], a["toOrgId"], a["legalBasis"]) for a in handed["assignments"]] == [
        (None, "dgme", None), ("dgme", "ame", "CONSENT"), ("ame", "iom", "CONSENT")]
    assert [n["caseId"] for n in lists(api, "iom", case_id)["plansMissing"]] == [case_id]
    eventually(lambda: kinds(api, "iom", case_id) == {"followup.case_assigned": 1}, timeout=60)
    assert kinds(api, "ame", case_id) == {"followup.case_assigned": 1}

    # 2. IOM, the manager, saves her plan (on time: nothing is overdue).
    goals = [{"dimension": "ECONOMIC", "description": GOAL_TEXT,
              "actions": [{"description": ACTION_TEXT, "targetDate": (today + timedelta(days=60)).isoformat()}]}]
    saved = ok(api.gql("iom", SAVE, {"case": case_id, "version": handed["version"], "goals": goals,
                                     "key": f"iom-{case_id}-plan"}))["savePlan"]
    assert (saved["managerOrgId"], saved["version"], saved["planOverdue"]) == ("iom", handed["version"] + 1, False)
    assert saved["plan"]["savedByOrgId"] == "iom"
    assert [[a["status"] for a in g["actions"]] for g in saved["plan"]["goals"]] == [["PLANNED"]]
    assert lists(api, "iom", case_id)["plansMissing"] == []
    assert followup(api, "dgme", case_id)["plan"]["goals"][0]["description"] == GOAL_TEXT  # the owner reads it

    # 3. A month on, the one-month contact falls due: IOM is told once (a second scan of the case,
    # with the contact still due, tells nothing more), then logs a visit that reached her.
    time_passes(platform, case_id, 30)
    eventually(lambda: kinds(api, "iom", case_id).get("followup.contact_due") == 1, timeout=60)
    assert {"caseId": case_id, "contactCode": "M1", "state": "DUE"} in lists(api, "iom", case_id)["followupsDue"]
    time_passes(platform, case_id, 0)
    eventually(lambda: looked_at(platform, case_id), timeout=60)
    assert [s["state"] for s in followup(api, "iom", case_id)["schedule"]] == ["DUE", "UPCOMING", "UPCOMING",
                                                                               "UPCOMING"]
    m1 = log(api, case_id, True, today)
    assert [s["state"] for s in m1["schedule"]] == ["DONE", "UPCOMING", "UPCOMING", "UPCOMING"]
    assert (m1["failedInARow"], m1["unreachable"]) == (0, False)

    # Two months later, the three-month contact falls due, is told once, and is logged.
    time_passes(platform, case_id, 61)
    m1_day = today - timedelta(days=61)  # the day of the one-month visit, now that time has passed
    eventually(lambda: kinds(api, "iom", case_id).get("followup.contact_due") == 2, timeout=60)
    assert {"caseId": case_id, "contactCode": "M3", "state": "DUE"} in lists(api, "iom", case_id)["followupsDue"]
    due = [n["titleEn"] for n in notices(api, "iom", case_id) if n["kind"] == "followup.contact_due"]
    assert [t.split(",")[0] for t in due] == ["Follow-up contact due (M1", "Follow-up contact due (M3"], due
    m3 = log(api, case_id, True, today)
    assert [s["state"] for s in m3["schedule"]] == ["DONE", "DONE", "UPCOMING", "UPCOMING"]
    after_m3 = followup(api, "iom", case_id)
    assert [(s["code"], s["state"], s["doneOn"], s["onTime"]) for s in after_m3["schedule"][:2]] == [
        ("M1", "DONE", m1_day.isoformat(), True), ("M3", "DONE", today.isoformat(), True)]
    assert lists(api, "iom", case_id)["followupsDue"] == []

    # 4. Attempts fail: after the third in a row (the schedule's threshold) she is unreachable, in
    # IOM's work list, and IOM is told; a fourth failure tells nothing more.
    failed = [log(api, case_id, False, today) for _ in range(3)]
    assert [(f["failedInARow"], f["unreachable"]) for f in failed] == [(1, False), (2, False), (3, True)]
    assert lists(api, "iom", case_id)["unreachableCases"] == [{"caseId": case_id, "failedInARow": 3}]
    assert lists(api, "dgme", case_id)["unreachableCases"] == []  # the manager's list, not the owner's
    eventually(lambda: kinds(api, "iom", case_id).get("followup.case_unreachable") == 1, timeout=60)
    fourth = log(api, case_id, False, today)
    assert (fourth["failedInARow"], fourth["unreachable"]) == (4, True)
    assert lists(api, "iom", case_id)["unreachableCases"] == [{"caseId": case_id, "failedInARow": 4}]
    # (that the fourth failure told nothing more is checked below, once the stream is drained)

    # 5. IOM finds her again (the unreachable flag clears), records the survey taken at the one-month
    # visit under RSS version 1, and today's under the latest version (2).
    found = log(api, case_id, True, today)
    assert (found["failedInARow"], found["unreachable"]) == (0, False)
    assert lists(api, "iom", case_id)["unreachableCases"] == []
    first = ok(api.gql("iom", RECORD, {"case": case_id, "key": f"iom-{case_id}-rss-1",
                                       "input": survey(1, m1_day)}))["recordSurvey"]
    assert scores(first) == V1_SCORES and first["takenOn"] == m1_day.isoformat()
    second = ok(api.gql("iom", RECORD, {"case": case_id, "key": f"iom-{case_id}-rss-2",
                                        "input": survey(None, today)}))["recordSurvey"]
    assert scores(second) == V2_SCORES
    history = followup(api, "iom", case_id)["surveys"]
    assert [(s["id"], s["takenOn"], s["recordedByOrgId"]) for s in history] == [
        (first["id"], m1_day.isoformat(), "iom"), (second["id"], today.isoformat(), "iom")]
    assert [scores(s) for s in history] == [V1_SCORES, V2_SCORES]
    assert {a["indicator"]: a["option"] for a in history[0]["answers"] + history[0]["psychosocialAnswers"]} == VISIT

    # 6. IOM closes her follow-up (the open action is cancelled), then re-opens it.
    current = followup(api, "iom", case_id)
    closed = ok(api.gql("iom", CLOSE, {"case": case_id, "version": current["version"]}))["closeCase"]
    assert (closed["status"], closed["closureReason"]) == ("CLOSED", "REINTEGRATED")
    assert closed["plan"]["goals"][0]["actions"][0]["status"] == "CANCELLED"
    assert followup(api, "dgme", case_id)["status"] == "CLOSED"
    reopened = ok(api.gql("iom", REOPEN, {"case": case_id, "version": closed["version"]}))["reopenCase"]
    assert (reopened["status"], reopened["closureReason"], reopened["version"]) == ("OPEN", None,
                                                                                    closed["version"] + 1)
    final = followup(api, "iom", case_id)
    assert (final["managerOrgId"], final["status"]) == ("iom", "OPEN")
    assert [scores(s) for s in final["surveys"]] == [V1_SCORES, V2_SCORES]  # the history is as recorded
    assert [(c["reached"], c["note"], c["nextStep"]) for c in final["contacts"]] == (
        [(True, NOTE, NEXT_STEP)] + [(False, NOTE, NEXT_STEP)] * 4 + [(True, NOTE, NEXT_STEP)] * 2)
    assert reads_case(api, "ame", case_id) is None  # still nothing for the previous manager

    # Every notice about her, once follow-up's stream is drained: told once each, the right organisation.
    expected_events = {"case_assigned": 2, "plan_saved": 1, "contact_due": 2, "contact_logged": 7,
                       "case_unreachable": 1, "survey_recorded": 2, "case_closed": 1, "case_reopened": 1}
    eventually(lambda: followup_event_counts(platform, case_id) == expected_events, timeout=60)
    eventually(lambda: followup_drained(platform), timeout=60)
    assert kinds(api, "iom", case_id) == {"followup.case_assigned": 1, "followup.contact_due": 2,
                                          "followup.case_unreachable": 1}
    assert kinds(api, "ame", case_id) == {"followup.case_assigned": 1}
    for notice in notices(api, "iom", case_id):
        assert not any(p in notice["titleEn"] for p in PRIVATE), notice

    # 7. Every message of every stream: none carries her names, the plan's text, a note, a next step
    # or a survey answer (her events carry ids, codes, dates, counts and scores only).
    messages = stream_messages(platform)
    for stream, subject, body in messages:
        text = json.dumps(json.loads(body), ensure_ascii=False) if body.startswith("{") else body
        for private in PRIVATE:
            assert private not in body and private not in text, (stream, subject, private)
    hers = [(stream, json.loads(body)) for stream, _subject, body in messages if case_id in body]
    assert {stream for stream, _ in hers} >= {"INTAKE_EVENTS", "FOLLOWUP_EVENTS"}
    assert "DEAD_LETTERS" not in {stream for stream, _ in hers}
    answers = set(VISIT.values())
    for stream, event in hers:
        leaked = answers & set(strings(event))
        assert not leaked, (stream, event["type"], leaked)
    surveyed = [e["data"] for _s, e in hers if e["type"] == "ml.segin.followup.survey_recorded.v1"]
    assert [(e["instrument_version"], e["composite"]) for e in surveyed] == [(1, 0.61), (2, 0.6)]
    assert set(surveyed[0]) == {"survey_id", "case_id", "manager_org_id", "instrument_id", "instrument_version",
                                "taken_on", "economic", "social", "psychosocial", "composite"}
