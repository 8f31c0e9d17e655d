"""Follow-up end to end, as case workers do it: DGME registers a returnee whose consent covers IOM and
the Red Cross for follow-up; DGME hands the follow-up to IOM, which then reads the case and saves a
reintegration plan; IOM hands it on to the Red Cross and loses its view; an uninvolved organisation
sees nothing throughout; the Red Cross closes and re-opens. A hand-over without a basis is refused.
Follow-up events carry no name and no plan text, and intake applies a redelivered hand-over once.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import nats
import psycopg
import pytest

from contracts.channels import CASE_ASSIGNED
from tests.e2e.conftest import Api, arrival, eventually

pytestmark = pytest.mark.e2e

CASE = "query($id: ID!) { case(id: $id) { id givenName access { purpose legalBasis } } }"
FOLLOWUP = """query($case: ID!) { followupCase(caseId: $case) { caseId managerOrgId manager { id } status
  closureReason version planDueOn planOverdue plan { savedByOrgId goals { dimension description actions { id
  description status targetDate overdue } } } assignments { fromOrgId toOrgId reasonCode legalBasis } } }"""
ASSIGN = """mutation($case: ID!, $org: ID!) { assignCaseManagement(caseId: $case, organizationId: $org,
  reason: SPECIALISED_SUPPORT) { managerOrgId version } }"""
SAVE = """mutation($case: ID!, $version: Int!, $key: String!, $goals: [PlanGoalInput!]!) {
  savePlan(caseId: $case, version: $version, goals: $goals, idempotencyKey: $key) { version plan { goals {
  actions { id status } } } } }"""
UPDATE = """mutation($case: ID!, $action: ID!, $version: Int!) { updatePlanAction(caseId: $case, actionId: $action,
  version: $version, status: IN_PROGRESS) { version } }"""
CLOSE = """mutation($case: ID!, $version: Int!) { closeCase(caseId: $case, reason: REINTEGRATED, version: $version) {
  status closureReason version plan { goals { actions { status } } } } }"""
REOPEN = """mutation($case: ID!, $version: Int!) { reopenCase(caseId: $case, reason: CONTACT_RESUMED,
  version: $version) { status version } }"""
MISSING = "{ plansMissing(first: 100) { nodes { caseId planDueOn overdue } pageInfo { hasNextPage endCursor } } }"
GOAL_TEXT = "Relancer un petit commerce de tissus au marché de Gao"
ACTION_TEXT = "Formation en gestion à la chambre de commerce"


def code(body: dict[str, Any]) -> tuple[str, str | None]:
    [error] = body["errors"]
    return error["extensions"]["code"], error["extensions"].get("field")


def reads(api: Api, org: str, case_id: str) -> bool:
    body = api.gql(org, CASE, {"id": case_id})
    if body.get("errors"):
        assert code(body)[0] == "NOT_FOUND", body
        return False
    return True


def followup(api: Api, org: str, case_id: str) -> dict[str, Any]:
    body = api.gql(org, FOLLOWUP, {"case": case_id})
    assert not body.get("errors"), body
    return body["data"]["followupCase"]


@pytest.fixture(scope="module")
def returnee(api: Api) -> dict[str, str]:
    """An adult returned from Algeria, going to Gao; consent to IOM and the Red Cross for follow-up only."""
    name = f"Boubacar{uuid.uuid4().hex[:6]}"
    body = api.register("dgme", arrival(
        givenName=name, familyName="Maïga", sex="MALE", estimatedAge=28, countryReturnedFrom="DZ",
        arrivalPoint="GAO", vulnerabilities=[],
        consent={"given": True, "recipientOrgIds": ["iom", "croix-rouge"], "purposes": ["FOLLOW_UP"]}))
    case_id = body["data"]["registerArrival"]["id"]
    eventually(lambda: not api.gql("dgme", FOLLOWUP, {"case": case_id}).get("errors"))
    return {"case": case_id, "name": name}


def test_follow_up_moves_between_organisations_with_the_access_it_opens(api: Api, returnee: dict[str, str]) -> None:
    case_id = returnee["case"]
    start = followup(api, "dgme", case_id)
    assert (start["managerOrgId"], start["status"], start["plan"]) == ("dgme", "OPEN", None)
    assert not reads(api, "iom", case_id)  # consent alone opens nothing: management (or a referral) does

    # Without consent or another basis covering UNHCR for follow-up, the hand-over is refused.
    refused = api.gql("dgme", ASSIGN, {"case": case_id, "org": "unhcr"})
    assert refused["data"] is None and code(refused) == ("NO_LEGAL_BASIS", "organizationId"), refused
    unknown = api.gql("dgme", ASSIGN, {"case": case_id, "org": "no-such-org"})
    assert code(unknown) == ("BAD_USER_INPUT", "organizationId")

    assigned = api.gql("dgme", ASSIGN, {"case": case_id, "org": "iom"})["data"]["assignCaseManagement"]
    assert assigned["managerOrgId"] == "iom"
    eventually(lambda: reads(api, "iom", case_id))  # intake learned of it from followup.case_assigned.v1
    seen = api.gql("iom", CASE, {"id": case_id})["data"]["case"]
    assert seen["access"] == {"purpose": "FOLLOW_UP", "legalBasis": "CONSENT"}
    assert case_id in [n["caseId"] for n in api.gql("iom", MISSING)["data"]["plansMissing"]["nodes"]]

    current = followup(api, "iom", case_id)
    goals = [{"dimension": "ECONOMIC", "description": GOAL_TEXT,
              "actions": [{"description": ACTION_TEXT, "targetDate": "2027-01-15"}]},
             {"dimension": "PSYCHOSOCIAL", "description": "Écoute et soutien", "actions": []}]
    stale = api.gql("iom", SAVE, {"case": case_id, "version": current["version"] - 1, "goals": goals,
                                  "key": f"iom-{case_id}-0"})
    assert code(stale) == ("CONFLICT", "version")
    saved = api.gql("iom", SAVE, {"case": case_id, "version": current["version"], "goals": goals,
                                  "key": f"iom-{case_id}-1"})["data"]["savePlan"]
    action = saved["plan"]["goals"][0]["actions"][0]["id"]
    again = api.gql("iom", SAVE, {"case": case_id, "version": current["version"], "goals": goals,
                                  "key": f"iom-{case_id}-1"})["data"]["savePlan"]
    assert again["version"] == saved["version"]  # the retry saved nothing more
    assert case_id not in [n["caseId"] for n in api.gql("iom", MISSING)["data"]["plansMissing"]["nodes"]]
    moved = api.gql("iom", UPDATE, {"case": case_id, "action": action, "version": saved["version"]})
    assert not moved.get("errors"), moved
    forbidden = api.gql("dgme", SAVE, {"case": case_id, "version": saved["version"] + 1, "goals": goals,
                                       "key": f"dgme-{case_id}-1"})
    assert code(forbidden) == ("FORBIDDEN", "caseId")  # the owner reads, only the manager writes
    owner_view = followup(api, "dgme", case_id)
    assert owner_view["plan"]["goals"][0]["description"] == GOAL_TEXT

    # An uninvolved organisation sees neither the case nor its follow-up, nor it in a work list.
    assert not reads(api, "ame", case_id)
    assert code(api.gql("ame", FOLLOWUP, {"case": case_id})) == ("NOT_FOUND", "caseId")
    assert case_id not in [n["caseId"] for n in api.gql("ame", MISSING)["data"]["plansMissing"]["nodes"]]

    # IOM hands the follow-up on to the Red Cross: IOM, not the owner, loses its view.
    api.gql("iom", ASSIGN, {"case": case_id, "org": "croix-rouge"})
    eventually(lambda: reads(api, "croix-rouge", case_id) and not reads(api, "iom", case_id))
    assert code(api.gql("iom", FOLLOWUP, {"case": case_id})) == ("NOT_FOUND", "caseId")
    assert reads(api, "dgme", case_id)
    handed = followup(api, "croix-rouge", case_id)
    assert [(a["fromOrgId"], a["toOrgId"]) for a in handed["assignments"]] == [
        (None, "dgme"), ("dgme", "iom"), ("iom", "croix-rouge")]
    assert handed["manager"] == {"id": "croix-rouge"}

    closed = api.gql("croix-rouge", CLOSE, {"case": case_id, "version": handed["version"]})["data"]["closeCase"]
    assert (closed["status"], closed["closureReason"]) == ("CLOSED", "REINTEGRATED")
    assert closed["plan"]["goals"][0]["actions"][0]["status"] == "CANCELLED"
    reopened = api.gql("croix-rouge", REOPEN, {"case": case_id, "version": closed["version"]})["data"]["reopenCase"]
    assert reopened["status"] == "OPEN"


def test_follow_up_events_logs_and_trail_carry_no_name_nor_plan_text(api: Api, returnee: dict[str, str]) -> None:
    case_id = returnee["case"]
    eventually(lambda: _events(api, case_id, sent_only=True))
    events = _events(api, case_id)
    kinds = {e["type"].split(".")[3] for e in events}
    assert {"case_assigned", "plan_saved", "plan_action_updated", "case_closed", "case_reopened"} <= kinds, kinds
    text = json.dumps(events, ensure_ascii=False)
    for private in (returnee["name"], "Maïga", GOAL_TEXT, ACTION_TEXT, "tissus"):
        assert private not in text
    # Nor do the logs of any process, nor the follow-up audit trail.
    for process in ("gateway", "intake", "followup"):
        logged = (api.platform.log_dir / f"{process}.log").read_text()
        assert GOAL_TEXT not in logged and ACTION_TEXT not in logged and returnee["name"] not in logged, process
    with psycopg.connect(api.platform.database_url) as conn:
        trail = json.dumps([list(r) for r in conn.execute("select * from followup.audit_log").fetchall()],
                           default=str, ensure_ascii=False)
    assert "tissus" not in trail and "commerce" not in trail


def _events(api: Api, case_id: str, *, sent_only: bool = False) -> list[dict[str, Any]]:
    with psycopg.connect(api.platform.database_url) as conn:
        rows = conn.execute("select envelope from followup.outbox where envelope->>'subject' = %s"
                            + (" and published_at is not null" if sent_only else "") + " order by created_at",
                            (case_id,)).fetchall()
    return [r[0] for r in rows]


def test_intake_applies_a_redelivered_hand_over_once(api: Api, returnee: dict[str, str]) -> None:
    """The hand-over event published again (as a relay would after a crash between publish and mark):
    intake's inbox absorbs it, and the manager stays who the latest hand-over named."""
    case_id = returnee["case"]
    [last] = [e for e in _events(api, case_id) if e["type"] == CASE_ASSIGNED.event_type][-1:]

    async def publish_again() -> None:
        nc = await nats.connect(**api.platform.nats_options())
        try:
            js = nc.jetstream()
            await js.publish(CASE_ASSIGNED.subject, json.dumps(last).encode(),
                             headers={"Nats-Msg-Id": f"{last['id']}-again"})
            deadline = asyncio.get_running_loop().time() + 30
            while asyncio.get_running_loop().time() < deadline:
                info = await js.consumer_info("FOLLOWUP_EVENTS", "intake-followup")
                if info.num_pending == 0 and info.num_ack_pending == 0:
                    return
                await asyncio.sleep(0.2)
            raise AssertionError("intake did not take the redelivered event")
        finally:
            await nc.close()

    asyncio.run(publish_again())
    with psycopg.connect(api.platform.database_url) as conn:
        handled = conn.execute("select count(*) from intake.inbox where consumer = 'intake-followup'"
                               " and event_id = %s", (last["id"],)).fetchone()
        manager = conn.execute("select org_id, version from intake.management_grants where case_id = %s",
                               (case_id,)).fetchone()
    assert handled == (1,)
    assert manager == (last["data"]["to_org_id"], last["data"]["version"])


DSAR = """query($id: ID!) { subjectAccessRequest(caseId: $id) { followup accessLogComplete
  accessLog { orgId operation outcome purpose } } }"""


def test_the_steward_export_holds_the_follow_up_and_who_touched_it(api: Api, returnee: dict[str, str]) -> None:
    """Runs after the flow above (same case): the plan, the hand-overs and the follow-up trail are in the export."""
    body = api.gql("segin-steward", DSAR, {"id": returnee["case"]})
    assert not body.get("errors"), body
    export = body["data"]["subjectAccessRequest"]
    [held] = export["followup"]
    assert held["plan"]["goals"][0]["description"] == GOAL_TEXT
    assert [a["to_org_id"] for a in held["assignments"]] == ["dgme", "iom", "croix-rouge"]
    log = {(e["orgId"], e["operation"], e["outcome"], e["purpose"]) for e in export["accessLog"]}
    assert ("iom", "followup.save_plan", "allowed", "follow_up") in log
    assert ("ame", "followup.read", "denied", "access_check") in log
    assert ("iom", "case.read", "allowed", "follow_up") in log  # intake's trail: the manager read the case
    assert export["accessLogComplete"] is True


def test_a_manager_without_the_cases_sensitive_scope_works_on_the_plan_without_its_text(api: Api) -> None:
    """On a GBV survivor's case, AME (no sensitive:gbv) manages the follow-up: it sees the plan's
    structure, not its text (RESTRICTED), and changes the plan by ids, leaving the text it cannot read
    out; the text is kept, as the steward's export shows."""
    body = api.register("dgme", arrival(
        givenName=f"Kadi{uuid.uuid4().hex[:6]}", sex="FEMALE", estimatedAge=26, vulnerabilities=["GBV_SURVIVOR"],
        consent={"given": True, "recipientOrgIds": ["ame"], "purposes": ["FOLLOW_UP"]}))
    case_id = body["data"]["registerArrival"]["id"]
    eventually(lambda: (api.gql("dgme", FOLLOWUP, {"case": case_id}).get("data") or {}).get("followupCase"))
    ids = """mutation($case: ID!, $version: Int!, $key: String!, $goals: [PlanGoalInput!]!) {
      savePlan(caseId: $case, version: $version, goals: $goals, idempotencyKey: $key) { version plan { goals {
      id dimension actions { id status targetDate } } } } }"""
    first = api.gql("dgme", ids, {"case": case_id, "version": 0, "key": f"gbv-{uuid.uuid4()}", "goals": [
        {"dimension": "PSYCHOSOCIAL", "description": GOAL_TEXT, "actions": [
            {"description": ACTION_TEXT, "targetDate": "2027-01-15"}]}]})
    assert not first.get("errors"), first
    [goal] = first["data"]["savePlan"]["plan"]["goals"]
    handed = api.gql("dgme", ASSIGN, {"case": case_id, "org": "ame"})
    assert not handed.get("errors"), handed
    seen = api.gql("ame", FOLLOWUP, {"case": case_id})
    assert {e["extensions"]["code"] for e in seen["errors"]} == {"RESTRICTED"}
    assert GOAL_TEXT not in json.dumps(seen, ensure_ascii=False) and ACTION_TEXT not in json.dumps(seen,
                                                                                                ensure_ascii=False)
    plan = seen["data"]["followupCase"]["plan"]
    assert [(a["status"], a["targetDate"]) for a in plan["goals"][0]["actions"]] == [("PLANNED", "2027-01-15")]
    again = api.gql("ame", ids, {"case": case_id, "version": seen["data"]["followupCase"]["version"],
                                 "key": f"gbv-{uuid.uuid4()}", "goals": [
        {"id": goal["id"], "dimension": "PSYCHOSOCIAL", "actions": [
            {"id": goal["actions"][0]["id"], "targetDate": "2027-01-15", "status": "IN_PROGRESS"},
            {"description": "Groupe de parole au centre", "targetDate": "2027-02-01"}]}]})
    assert not again.get("errors"), again
    export = api.gql("segin-steward", DSAR, {"id": case_id})["data"]["subjectAccessRequest"]["followup"]
    [held] = export
    assert held["plan"]["goals"][0]["description"] == GOAL_TEXT
    assert [(a["description"], a["status"]) for a in held["plan"]["goals"][0]["actions"]] == [
        (ACTION_TEXT, "IN_PROGRESS"), ("Groupe de parole au centre", "PLANNED")]
