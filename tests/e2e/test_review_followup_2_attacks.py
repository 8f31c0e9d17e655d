"""Security review of follow-up, second round (review3): the contact log, the work lists, surveys and
their replies, attacked as each kind of organisation. Each test names the attack; the assertions are
what must hold."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.e2e.conftest import Api, arrival, eventually
from tests.e2e.test_followup import ASSIGN, FOLLOWUP, code, reads
from tests.e2e.test_followup_surveys import VISIT, survey

pytestmark = pytest.mark.e2e

TODAY = datetime.now(UTC).date().isoformat()
NOTE = "Mariam dit avoir été battue par son oncle ; suivi psychologique au CSRef"
NEXT_STEP = "Appeler la psychologue du CSRef de Gao"
WITHDRAW = """mutation($case: ID!, $consent: ID!) { withdrawConsent(caseId: $case, consentId: $consent) {
  sharing { id withdrawnAt } } }"""
LOG = """mutation($case: ID!, $key: String!, $input: ContactInput!) { logContact(caseId: $case, input: $input,
  idempotencyKey: $key) { caseId managerOrgId status assignments { toOrgId } schedule { code state }
  contacts { note nextStep } } }"""
RECORD = """mutation($case: ID!, $key: String!, $input: SurveyInput!) { recordSurvey(caseId: $case, input: $input,
  idempotencyKey: $key) { id psychosocialAnswers { indicator option } } }"""
LISTS = """{ followupsDue(first: 100, withinDays: 30) { nodes { caseId } }
  followupsOverdue(first: 100) { nodes { caseId } } unreachableCases(first: 100) { nodes { caseId } } }"""


def contact(reached: bool = False, note: str | None = NOTE) -> dict[str, Any]:
    return {"date": TODAY, "mode": "PHONE", "reached": reached, "nextStep": NEXT_STEP, "note": note}


def new_case(api: Api, org: str = "dgme", vulnerabilities: list[str] | None = None, **consent: Any
             ) -> tuple[str, str]:
    """A case of ``org``, consent for follow-up as given; its id and consent id, once follow-up knows it."""
    body = api.register(org, arrival(
        givenName=f"Revue{uuid.uuid4().hex[:6]}", sex="FEMALE", estimatedAge=30,
        vulnerabilities=vulnerabilities or [], consent={"given": True, "purposes": ["FOLLOW_UP"], **consent}))
    assert not body.get("errors"), body
    case = body["data"]["registerArrival"]
    eventually(lambda: not api.gql(org, FOLLOWUP, {"case": case["id"]}).get("errors"))
    return case["id"], case["sharing"][0]["id"]


def handed(api: Api, case_id: str, frm: str, to: str) -> None:
    body = api.gql(frm, ASSIGN, {"case": case_id, "org": to})
    assert not body.get("errors"), body
    eventually(lambda: reads(api, to, case_id))


def follows(api: Api, org: str, case_id: str) -> bool:
    """Whether ``org`` sees the case's follow-up (the follow-up service's own copy of the coverage)."""
    return not api.gql(org, FOLLOWUP, {"case": case_id}).get("errors")


def listed(api: Api, org: str) -> dict[str, set[str]]:
    data = api.gql(org, LISTS)["data"]
    return {name: {n["caseId"] for n in data[name]["nodes"]} for name in data}


def log(api: Api, org: str, case_id: str, key: str | None = None, **kwargs: Any) -> dict[str, Any]:
    return api.gql(org, LOG, {"case": case_id, "key": key or f"review3-{uuid.uuid4()}", "input": contact(**kwargs)})


# --- work lists: only cases the caller may follow up ---------------------------------------------------


def test_a_manager_whose_consent_was_withdrawn_no_longer_lists_the_case(api: Api) -> None:
    """Withdrawing consent ends the manager's view of the follow-up (decision record 0017): its work
    lists must stop naming the case (id, arrival date, region, failures) as plansMissing already does."""
    case_id, consent_id = new_case(api, recipientOrgIds=["iom"])
    handed(api, case_id, "dgme", "iom")
    for _ in range(3):
        assert not log(api, "iom", case_id, note=None).get("errors")
    before = listed(api, "iom")
    assert case_id in before["followupsDue"] and case_id in before["unreachableCases"], before

    assert not api.gql("dgme", WITHDRAW, {"case": case_id, "consent": consent_id}).get("errors")
    eventually(lambda: not follows(api, "iom", case_id))
    after = listed(api, "iom")
    assert all(case_id not in ids for ids in after.values()), after
    # The owner takes the case back and finds it in its own lists.
    handed(api, case_id, "dgme", "dgme")
    assert case_id in listed(api, "dgme")["unreachableCases"]


# --- idempotency keys: a replay must not skip the access check ---------------------------------------


def test_a_previous_manager_replaying_its_contact_key_learns_nothing(api: Api) -> None:
    case_id, _ = new_case(api, recipientOrgIds=["iom", "croix-rouge"])
    handed(api, case_id, "dgme", "iom")
    key = f"review3-{uuid.uuid4()}"
    first = log(api, "iom", case_id, key)
    assert not first.get("errors"), first
    handed(api, case_id, "iom", "croix-rouge")
    eventually(lambda: not follows(api, "iom", case_id))
    # The same request again: refused as for a stranger, not answered with who manages the case now,
    # its hand-overs and its schedule.
    replay = log(api, "iom", case_id, key)
    assert replay["data"] is None and code(replay) == ("NOT_FOUND", "caseId"), replay


def test_a_reused_contact_key_on_someone_elses_case_does_not_tell_it_exists(api: Api) -> None:
    own, _ = new_case(api, "ame", recipientOrgIds=["iom"])
    key = f"review3-{uuid.uuid4()}"
    assert not log(api, "ame", own, key).get("errors")
    theirs, _ = new_case(api, "dgme", recipientOrgIds=["iom"])
    answers = {name: code(log(api, "ame", case, key)) for name, case in (("theirs", theirs),
                                                                         ("absent", str(uuid.uuid4())))}
    assert answers["theirs"] == answers["absent"] == ("NOT_FOUND", "caseId"), answers


def test_one_key_on_two_endpoints_and_two_organisations_are_separate_requests(api: Api) -> None:
    """A key belongs to (organisation, client, operation): logContact's key on recordSurvey records a
    survey, and another organisation's use of the same key is its own."""
    case_id, _ = new_case(api, recipientOrgIds=["iom"])
    handed(api, case_id, "dgme", "iom")
    key = f"review3-{uuid.uuid4()}"
    assert not log(api, "iom", case_id, key).get("errors")
    recorded = api.gql("iom", RECORD, {"case": case_id, "key": key, "input": survey(None, TODAY)})
    assert not recorded.get("errors"), recorded
    other, _ = new_case(api, "ame")
    assert not log(api, "ame", other, key).get("errors")


# --- free text and health answers behind the scopes, whatever the query's shape ---------------------


def test_notes_and_psychosocial_answers_stay_hidden_through_aliases_fragments_and_replies(api: Api) -> None:
    """UNICEF holds neither sensitive:gbv nor sensitive:health: on a GBV survivor's case it reads no
    note, no next step, no psychosocial answer, whichever way it asks (mutation replies included)."""
    case_id, _ = new_case(api, vulnerabilities=["GBV_SURVIVOR"], recipientOrgIds=["unicef"])
    handed(api, case_id, "dgme", "unicef")
    reply = log(api, "unicef", case_id)
    assert {e["extensions"]["code"] for e in reply["errors"]} == {"RESTRICTED"}, reply
    assert reply["data"]["logContact"]["contacts"] == [{"note": None, "nextStep": None}]
    recorded = api.gql("unicef", RECORD, {"case": case_id, "key": f"review3-{uuid.uuid4()}",
                                          "input": survey(None, TODAY)})
    assert recorded["data"]["recordSurvey"]["psychosocialAnswers"] is None, recorded
    assert {e["extensions"]["code"] for e in recorded["errors"]} == {"RESTRICTED"}, recorded
    sneaky = """query($case: ID!) { a: followupCase(caseId: $case) { ...F } b: followupCase(caseId: $case) {
      contacts { n: note s: nextStep } surveys { p: psychosocialAnswers { option } } } }
      fragment F on FollowupCase { contacts { note nextStep } surveys { psychosocialAnswers { indicator } } }"""
    body = api.gql("unicef", sneaky, {"case": case_id})
    text = str(body)
    assert NOTE not in text and NEXT_STEP not in text and VISIT["PSY_DISTRESS"] not in text, body
    # DGME, the owner, holds every scope: it reads them.
    seen = str(api.gql("dgme", sneaky, {"case": case_id}))
    assert NOTE in seen and VISIT["PSY_DISTRESS"] in seen


def test_strangers_referral_recipients_statistics_clients_and_the_steward_cannot_log_or_record(api: Api) -> None:
    case_id, _ = new_case(api, recipientOrgIds=["iom"])
    handed(api, case_id, "dgme", "iom")
    absent = str(uuid.uuid4())
    for org in ("ame", "unicef", "croix-rouge"):
        for case in (case_id, absent):
            assert code(log(api, org, case)) == ("NOT_FOUND", "caseId"), (org, case)
            body = api.gql(org, RECORD, {"case": case, "key": f"review3-{uuid.uuid4()}",
                                         "input": survey(None, TODAY)})
            assert code(body) == ("NOT_FOUND", "caseId"), (org, case, body)
        assert all(case_id not in ids for ids in listed(api, org).values())
    # The owner that handed the case over is told why; the steward cannot act as manager.
    assert code(log(api, "dgme", case_id)) == ("FORBIDDEN", "caseId")
    assert code(log(api, "segin-steward", case_id)) == ("NOT_FOUND", "caseId")
    assert code(api.gql("cnrm", LOG, {"case": case_id, "key": f"review3-{uuid.uuid4()}",
                                      "input": contact()}))[0] == "INSUFFICIENT_SCOPE"
    for org in ("cnrm", "segin-steward"):
        body = api.gql(org, LISTS)
        assert body["errors"] and {e["extensions"]["code"] for e in body["errors"]} == {"INSUFFICIENT_SCOPE"}, body
