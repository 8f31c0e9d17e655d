"""Security review of follow-up (review2): the platform attacked as each kind of organisation.

Each test names the attack; the assertions are what must hold.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import psycopg
import pytest

from tests.e2e.conftest import Api, arrival, eventually
from tests.e2e.test_followup import ASSIGN, CLOSE, FOLLOWUP, MISSING, REOPEN, SAVE, UPDATE, code, followup, reads

pytestmark = pytest.mark.e2e

WITHDRAW = """mutation($case: ID!, $consent: ID!) { withdrawConsent(caseId: $case, consentId: $consent) {
  sharing { id withdrawnAt } } }"""
FULL = """mutation($case: ID!, $version: Int!, $key: String!, $goals: [PlanGoalInput!]!) {
  savePlan(caseId: $case, version: $version, goals: $goals, idempotencyKey: $key) { caseId ownerOrgId managerOrgId
  status closureReason arrivalDate destinationRegion { code } version assignments { fromOrgId toOrgId reasonCode }
  plan { goals { description } } } }"""
GOALS = [{"dimension": "ECONOMIC", "description": "Reprendre l'élevage de chèvres à Kidal",
          "actions": [{"description": "Achat de cinq chèvres", "targetDate": "2027-01-15"}]}]


def new_case(api: Api, org: str = "dgme", **consent: Any) -> tuple[str, str]:
    """A case of ``org`` (an adult), consent as given; its id and consent id, once follow-up knows it."""
    body = api.register(org, arrival(
        givenName=f"Revue{uuid.uuid4().hex[:6]}", sex="MALE", estimatedAge=30, vulnerabilities=[],
        consent={"given": True, "purposes": ["FOLLOW_UP"], **consent}))
    assert not body.get("errors"), body
    case = body["data"]["registerArrival"]
    eventually(lambda: not api.gql(org, FOLLOWUP, {"case": case["id"]}).get("errors"))
    return case["id"], case["sharing"][0]["id"]


def handed(api: Api, case_id: str, frm: str, to: str) -> None:
    body = api.gql(frm, ASSIGN, {"case": case_id, "org": to})
    assert not body.get("errors"), body
    eventually(lambda: reads(api, to, case_id))


def hidden_from(api: Api, org: str, case_id: str) -> bool:
    body = api.gql(org, FOLLOWUP, {"case": case_id})
    return bool(body.get("errors")) and code(body) == ("NOT_FOUND", "caseId")


# --- idempotency keys: a replay must not skip the access check ---------------------------------------


def test_a_previous_manager_replaying_its_plan_key_learns_nothing(api: Api) -> None:
    case_id, _ = new_case(api, recipientOrgIds=["iom", "croix-rouge"])
    handed(api, case_id, "dgme", "iom")
    version = followup(api, "iom", case_id)["version"]
    key = f"review-{uuid.uuid4()}"
    saved = api.gql("iom", FULL, {"case": case_id, "version": version, "goals": GOALS, "key": key})
    assert not saved.get("errors"), saved
    handed(api, case_id, "iom", "croix-rouge")
    api.gql("croix-rouge", CLOSE, {"case": case_id, "version": followup(api, "croix-rouge", case_id)["version"]})
    # IOM no longer manages the case: the same request again must be refused as for any stranger,
    # not answered with who manages the case now, its state, closure reason and hand-overs.
    replay = api.gql("iom", FULL, {"case": case_id, "version": version, "goals": GOALS, "key": key})
    assert replay["data"] is None and code(replay) == ("NOT_FOUND", "caseId"), replay


def test_a_reused_key_on_someone_elses_case_does_not_tell_it_exists(api: Api) -> None:
    own, _ = new_case(api, "ame", recipientOrgIds=["iom"])
    key = f"review-{uuid.uuid4()}"
    first = api.gql("ame", SAVE, {"case": own, "version": followup(api, "ame", own)["version"], "goals": GOALS,
                                  "key": key})
    assert not first.get("errors"), first
    theirs, _ = new_case(api, "dgme", recipientOrgIds=["iom"])
    absent = str(uuid.uuid4())
    answers = {name: code(api.gql("ame", SAVE, {"case": case, "version": 0, "goals": GOALS, "key": key}))
               for name, case in (("theirs", theirs), ("absent", absent))}
    assert answers["theirs"] == answers["absent"] == ("NOT_FOUND", "caseId"), answers


# --- who may act -------------------------------------------------------------------------------------


def test_previous_manager_owner_and_strangers_cannot_write_and_cannot_tell_cases_apart(api: Api) -> None:
    case_id, _ = new_case(api, recipientOrgIds=["iom", "croix-rouge"])
    handed(api, case_id, "dgme", "iom")
    saved = api.gql("iom", SAVE, {"case": case_id, "version": followup(api, "iom", case_id)["version"],
                                  "goals": GOALS, "key": f"review-{uuid.uuid4()}"})["data"]["savePlan"]
    action = saved["plan"]["goals"][0]["actions"][0]["id"]
    handed(api, case_id, "iom", "croix-rouge")
    eventually(lambda: not reads(api, "iom", case_id))
    version = followup(api, "croix-rouge", case_id)["version"]
    absent = str(uuid.uuid4())
    for org in ("iom", "ame", "unicef"):  # previous manager, uninvolved, referral-capable org
        for case in (case_id, absent):
            assert code(api.gql(org, FOLLOWUP, {"case": case})) == ("NOT_FOUND", "caseId"), (org, case)
            assert code(api.gql(org, ASSIGN, {"case": case, "org": "dgme"})) == ("NOT_FOUND", "caseId"), (org, case)
            assert code(api.gql(org, CLOSE, {"case": case, "version": version})) == ("NOT_FOUND", "caseId")
            assert code(api.gql(org, UPDATE, {"case": case, "action": action, "version": version})) == (
                "NOT_FOUND", "caseId")
        assert case_id not in [n["caseId"] for n in api.gql(org, MISSING)["data"]["plansMissing"]["nodes"]]
    # The owner is told why (it knows the case), and still cannot write.
    assert code(api.gql("dgme", CLOSE, {"case": case_id, "version": version})) == ("FORBIDDEN", "caseId")
    assert code(api.gql("dgme", REOPEN, {"case": case_id, "version": version})) == ("FORBIDDEN", "caseId")


def test_statistics_only_client_and_steward_cannot_read_follow_up(api: Api) -> None:
    case_id, _ = new_case(api, recipientOrgIds=["iom"])
    for org in ("cnrm", "segin-steward"):
        for case in (case_id, str(uuid.uuid4())):
            body = api.gql(org, FOLLOWUP, {"case": case})
            assert body["data"] is None and code(body)[0] == "INSUFFICIENT_SCOPE", (org, body)
        assert code(api.gql(org, MISSING))[0] == "INSUFFICIENT_SCOPE"
    assert code(api.gql("cnrm", ASSIGN, {"case": case_id, "org": "iom"}))[0] == "INSUFFICIENT_SCOPE"


def test_consent_to_a_type_covers_a_manager_of_that_type_and_no_other(api: Api) -> None:
    case_id, _ = new_case(api, recipientOrgTypes=["INTERNATIONAL"])
    refused = api.gql("dgme", ASSIGN, {"case": case_id, "org": "croix-rouge"})  # an NGO
    assert code(refused) == ("NO_LEGAL_BASIS", "organizationId"), refused
    handed(api, case_id, "dgme", "iom")
    assert followup(api, "iom", case_id)["managerOrgId"] == "iom"
    assert not reads(api, "unicef", case_id)  # same type, not the manager


def test_handing_back_to_the_owner_closes_the_previous_managers_view(api: Api) -> None:
    case_id, _ = new_case(api, recipientOrgIds=["iom"])
    handed(api, case_id, "dgme", "iom")
    assert not api.gql("iom", ASSIGN, {"case": case_id, "org": "dgme"}).get("errors")
    eventually(lambda: not reads(api, "iom", case_id))
    assert code(api.gql("iom", FOLLOWUP, {"case": case_id})) == ("NOT_FOUND", "caseId")
    assert followup(api, "dgme", case_id)["managerOrgId"] == "dgme"


# --- consent withdrawn -------------------------------------------------------------------------------


def test_after_withdrawal_the_manager_can_neither_act_nor_hand_over(api: Api) -> None:
    case_id, consent_id = new_case(api, recipientOrgIds=["iom", "croix-rouge"])
    handed(api, case_id, "dgme", "iom")
    version = followup(api, "iom", case_id)["version"]
    assert api.gql("dgme", WITHDRAW, {"case": case_id, "consent": consent_id})["data"]["withdrawConsent"]
    eventually(lambda: hidden_from(api, "iom", case_id))
    assert code(api.gql("iom", ASSIGN, {"case": case_id, "org": "croix-rouge"})) == ("NOT_FOUND", "caseId")
    assert code(api.gql("iom", SAVE, {"case": case_id, "version": version, "goals": GOALS,
                                      "key": f"review-{uuid.uuid4()}"})) == ("NOT_FOUND", "caseId")
    # The steward cannot hand it to an organisation the withdrawn consent named.
    assert code(api.gql("segin-steward", ASSIGN, {"case": case_id, "org": "croix-rouge"})) == (
        "NO_LEGAL_BASIS", "organizationId")


# --- what reaches logs and error messages -----------------------------------------------------------


def test_refused_plan_text_is_not_echoed_nor_logged(api: Api) -> None:
    case_id, _ = new_case(api, recipientOrgIds=["iom"])
    marker = f"Fatoumata{uuid.uuid4().hex[:8]}"
    version = followup(api, "dgme", case_id)["version"]
    bad = [{"dimension": "SOCIAL", "description": f"{marker} " + "x" * 600, "actions": []},
           {"dimension": "SOCIAL", "description": f"{marker}\x07bell", "actions": []}]
    body = api.gql("dgme", SAVE, {"case": case_id, "version": version, "goals": bad, "key": f"review-{uuid.uuid4()}"})
    assert body["data"] is None and code(body)[0] == "BAD_USER_INPUT"
    assert marker not in json.dumps(body), body
    time.sleep(1)
    for process in ("gateway", "intake", "followup"):
        assert marker not in (api.platform.log_dir / f"{process}.log").read_text(), process


# --- cost --------------------------------------------------------------------------------------------


def test_a_largest_plan_costs_bounded_work(api: Api) -> None:
    case_id, _ = new_case(api, recipientOrgIds=["iom"])
    goals = [{"dimension": "ECONOMIC", "description": "g" * 500,
              "actions": [{"description": "a" * 400, "targetDate": "2027-01-15"} for _ in range(30)]}
             for _ in range(30)]
    version = followup(api, "dgme", case_id)["version"]
    started = time.monotonic()
    body = api.gql("dgme", SAVE, {"case": case_id, "version": version, "goals": goals,
                                  "key": f"review-{uuid.uuid4()}"})
    took = time.monotonic() - started
    print(f"largest plan: {took:.2f}s, errors={body.get('errors')}")
    with psycopg.connect(api.platform.database_url) as conn:
        [(actions,)] = conn.execute("select count(*) from followup.plan_actions where case_id = %s",
                                    (case_id,)).fetchall()
    print(f"actions stored: {actions}")
    assert took < 10


# --- the steward ---------------------------------------------------------------------------------------

UPDATE_FULL = """mutation($case: ID!, $action: ID!, $version: Int!) { updatePlanAction(caseId: $case, actionId: $action,
  version: $version, status: IN_PROGRESS) { managerOrgId plan { goals { description actions { description } } } } }"""


def test_the_steward_cannot_make_itself_manager_to_read_the_plan(api: Api) -> None:
    """followup:manage hands a case over "without reading the case": it must not hand it to itself
    (the steward, a STATE organisation, is covered by consent given to "government services")."""
    case_id, _ = new_case(api, recipientOrgIds=["iom"], recipientOrgTypes=["STATE"])
    handed(api, case_id, "dgme", "iom")
    saved = api.gql("iom", SAVE, {"case": case_id, "version": followup(api, "iom", case_id)["version"],
                                  "goals": GOALS, "key": f"review-{uuid.uuid4()}"})["data"]["savePlan"]
    action = saved["plan"]["goals"][0]["actions"][0]["id"]
    taken = api.gql("segin-steward", ASSIGN, {"case": case_id, "org": "segin-steward"})
    if not taken.get("errors"):
        version = followup(api, "dgme", case_id)["version"]
        seen = api.gql("segin-steward", UPDATE_FULL, {"case": case_id, "action": action, "version": version})
        assert not seen.get("errors"), seen
        plan_text = json.dumps(seen["data"]["updatePlanAction"]["plan"], ensure_ascii=False)
        pytest.fail(f"the steward took the case over and read its plan: {plan_text}")
    assert code(taken)[0] in ("FORBIDDEN", "NO_LEGAL_BASIS"), taken


def test_withdrawing_consent_takes_the_case_off_the_managers_plans_missing(api: Api) -> None:
    """Withdrawal ends the manager's access to the case: its work list must not keep showing the
    person's case id, arrival date and region (by id, and by type)."""
    for consent in ({"recipientOrgIds": ["iom"]}, {"recipientOrgTypes": ["INTERNATIONAL"]}):
        case_id, consent_id = new_case(api, **consent)
        handed(api, case_id, "dgme", "iom")
        listed = lambda: [n["caseId"] for n in api.gql("iom", MISSING)["data"]["plansMissing"]["nodes"]]  # noqa: E731
        assert case_id in listed()
        assert api.gql("dgme", WITHDRAW, {"case": case_id, "consent": consent_id})["data"]["withdrawConsent"]
        eventually(lambda: hidden_from(api, "iom", case_id))
        assert case_id not in listed(), consent
    # The owner managing its own case needs no basis: its case stays listed.
    own, own_consent = new_case(api, recipientOrgIds=["iom"])
    assert api.gql("dgme", WITHDRAW, {"case": own, "consent": own_consent})["data"]["withdrawConsent"]
    assert own in [n["caseId"] for n in api.gql("dgme", MISSING)["data"]["plansMissing"]["nodes"]]


# --- personal data in events -------------------------------------------------------------------------


def test_a_plan_actions_referral_id_cannot_carry_text_into_events(api: Api) -> None:
    """``referralId`` is announced in ``plan_saved.linked_referral_ids``: it must be an id, not free text."""
    case_id, _ = new_case(api, recipientOrgIds=["iom"])
    marker = f"Kadiatou Traore{uuid.uuid4().hex[:6]} VIH"
    goals = [{"dimension": "SOCIAL", "description": "Suivi", "actions": [
        {"description": "Orientation", "targetDate": "2027-01-15", "referralId": marker}]}]
    body = api.gql("dgme", SAVE, {"case": case_id, "version": followup(api, "dgme", case_id)["version"],
                                  "goals": goals, "key": f"review-{uuid.uuid4()}"})
    with psycopg.connect(api.platform.database_url) as conn:
        events = json.dumps([r[0] for r in conn.execute(
            "select envelope from followup.outbox where envelope->>'subject' = %s", (case_id,)).fetchall()],
            ensure_ascii=False)
    assert marker not in events
    assert body["data"] is None and code(body) == ("BAD_USER_INPUT", "goals.0.actions.0.referralId"), body
    assert marker not in json.dumps(body, ensure_ascii=False)


def test_one_request_of_aliased_plan_saves_costs_bounded_work(api: Api) -> None:
    """Mutations run in order, so aliases with versions v, v+1, … each save the whole plan, and the
    plan variable is sent once: one small request rewrites the largest plan many times."""
    case_id, _ = new_case(api, recipientOrgIds=["iom"])
    goals = [{"dimension": "ECONOMIC", "description": "g" * 500,
              "actions": [{"description": "a" * 400, "targetDate": "2027-01-15"} for _ in range(30)]}
             for _ in range(30)]
    version = followup(api, "dgme", case_id)["version"]
    n = 30
    aliases = " ".join(
        f'a{i}: savePlan(caseId: $case, version: {version + i}, goals: $goals, idempotencyKey: "review-{uuid.uuid4()}")'
        f" {{ version plan {{ goals {{ description actions {{ description }} }} }} }}" for i in range(n))
    query = f"mutation($case: ID!, $goals: [PlanGoalInput!]!) {{ {aliases} }}"
    started = time.monotonic()
    response = api.post(query, {"case": case_id, "goals": goals}, token=api.token("dgme"))
    took = time.monotonic() - started
    body = response.json()
    saved = sum(1 for v in (body.get("data") or {}).values() if v)
    print(f"aliased saves: {saved}/{n} in {took:.2f}s, request {len(json.dumps(goals))} B,"
          f" response {len(response.content)} B, errors: {[e['extensions'].get('code') for e in body.get('errors', [])][:3]}")
    assert saved <= 5 or took < 5


# --- the bus -------------------------------------------------------------------------------------------


def test_an_internal_token_for_another_service_is_refused_by_follow_up(api: Api) -> None:
    import asyncio

    from tests.e2e.helpers_tokens import ask_service, internal_token

    case_id, _ = new_case(api, recipientOrgIds=["iom"])
    for service in ("intake", "referral", "notifications"):
        token = internal_token(api.platform, api.token("dgme"), service)
        reply = asyncio.run(ask_service(api.platform, "svc.followup.get_case", {"case_id": case_id}, token))
        assert "data" not in reply and reply.get("error", {}).get("code") == "UNAUTHENTICATED", (service, reply)
    token = internal_token(api.platform, api.token("dgme"), "followup")
    reply = asyncio.run(ask_service(api.platform, "svc.followup.get_case", {"case_id": case_id}, token))
    assert reply.get("data", {}).get("case_id") == case_id, reply


def test_services_cannot_publish_follow_up_events_nor_call_follow_up() -> None:
    from kernel.natsauth import permissions

    for role in ("intake", "referral", "notifications", "gateway"):
        allowed = permissions(role)["publish"]["allow"]  # type: ignore[index]
        assert not [s for s in allowed if s.startswith("evt.") and s != f"evt.{role}.>"], role
        assert ("svc.>" in allowed) == (role == "gateway"), role
    followup_perms = permissions("followup")
    assert followup_perms is not None
    assert [s for s in followup_perms["publish"]["allow"] if s.startswith("evt.")] == ["evt.followup.>"]
    assert followup_perms["subscribe"]["allow"][0] == "svc.followup.>"


def test_a_final_action_state_cannot_be_undone_by_saving_the_plan_again(api: Api) -> None:
    """DONE and CANCELLED are final (updatePlanAction refuses DONE -> PLANNED), but savePlan keeps an
    action by id with whatever status it is sent: the rule is bypassed (and closure's cancellations too)."""
    case_id, _ = new_case(api, recipientOrgIds=["iom"])
    saved = api.gql("dgme", SAVE, {"case": case_id, "version": followup(api, "dgme", case_id)["version"],
                                   "goals": GOALS, "key": f"review-{uuid.uuid4()}"})["data"]["savePlan"]
    action = saved["plan"]["goals"][0]["actions"][0]["id"]
    done = api.gql("dgme", """mutation($case: ID!, $action: ID!, $version: Int!) { updatePlanAction(caseId: $case,
      actionId: $action, version: $version, status: DONE) { version } }""",
                   {"case": case_id, "action": action, "version": saved["version"]})["data"]["updatePlanAction"]
    goals = [{**GOALS[0], "actions": [{**GOALS[0]["actions"][0], "id": action, "status": "PLANNED"}]}]
    again = api.gql("dgme", SAVE, {"case": case_id, "version": done["version"], "goals": goals,
                                   "key": f"review-{uuid.uuid4()}"})
    states = [a["status"] for g in (again["data"] or {}).get("savePlan", {}).get("plan", {}).get("goals", [])
              for a in g["actions"]] if again.get("data") else []
    assert states != ["PLANNED"], again
    assert code(again) == ("INVALID_TRANSITION", "goals.0.actions.0.status"), again


def test_a_batch_of_operations_in_one_request_is_not_run(api: Api) -> None:
    """A JSON array of operations would get a call budget each: not accepted."""
    import httpx

    one = {"query": MISSING}
    response = httpx.post(api.platform.graphql_url, json=[one, one],
                          headers={"Authorization": f"Bearer {api.token('dgme')}"}, timeout=30)
    assert response.status_code >= 400 or "data" not in response.text, response.text
