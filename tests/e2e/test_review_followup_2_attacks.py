"""Security review of follow-up, second round (review3): the contact log, the work lists, surveys and
their replies, attacked as each kind of organisation. Each test names the attack; the assertions are
what must hold."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import partial
from typing import Any

import psycopg
import pytest

from devstack.platform import Platform
from tests.e2e.conftest import Api, arrival, eventually, start_platform, stop_platform
from tests.e2e.test_followup import FOLLOWUP, code
from tests.e2e.test_followup_contacts import looked_at, notices, time_passes
from tests.e2e.test_followup_surveys import arrival_month_cell, survey
from tests.e2e.test_review_followup_attacks import handed
from tests.survey_answers import RSS_VISIT as VISIT

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
MONTH = "2023-05"  # an arrival month no other test uses
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
    surveyed = {"case": case_id, "key": key, "input": survey(None, TODAY)}
    assert not api.gql("iom", RECORD, surveyed).get("errors")
    handed(api, case_id, "iom", "croix-rouge")
    eventually(lambda: not follows(api, "iom", case_id))
    # The same request again: refused as for a stranger, not answered with who manages the case now,
    # its hand-overs and its schedule.
    replay = log(api, "iom", case_id, key)
    assert replay["data"] is None and code(replay) == ("NOT_FOUND", "caseId"), replay
    assert code(api.gql("iom", RECORD, surveyed)) == ("NOT_FOUND", "caseId")
    assert all(case_id not in ids for ids in listed(api, "iom").values())
    assert case_id in listed(api, "croix-rouge")["followupsDue"]


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


# --- statistics: the caller's own decoys move the rounding, so one real person shows ----------------


def test_decoys_cannot_shift_the_rounding_to_reveal_one_more_person(api: Api) -> None:
    """A cell holds five people AME registered: shown as 5 to everyone. IOM (cases:write and
    statistics:read) adds two decoys of its own: seven, shown as 5. When one more real person landed
    in the cell (eight), the shown count jumped to 10: IOM learnt that exactly one person came (by
    region × band, months since return × band alike). Without decoys five and six both read 5."""
    def person(**overrides: Any) -> dict[str, Any]:
        return arrival(givenName=f"Awa{uuid.uuid4().hex[:6]}", estimatedAge=33, arrivalDate=f"{MONTH}-03",
                       vulnerabilities=[], consent={"given": False}, **overrides)

    month_cell = partial(arrival_month_cell, api, month=MONTH)

    def known(ids: list[str]) -> None:
        with psycopg.connect(api.platform.database_url) as conn:
            eventually(lambda: conn.execute("select count(*) from followup.cases where case_id = any(%s::uuid[])",
                                            (ids,)).fetchone() == (len(ids),))

    ids = [api.register("ame", person())["data"]["registerArrival"]["id"] for _ in range(5)]
    ids += [api.register("iom", person())["data"]["registerArrival"]["id"] for _ in range(2)]  # decoys
    known(ids)
    before = month_cell("iom")
    ids.append(api.register("ame", person())["data"]["registerArrival"]["id"])  # one more real person
    known(ids)
    assert before == 5
    assert month_cell("iom") == before, "IOM's two decoys reveal the sixth person"


# --- timers and their notices (a platform of its own, scanning every second) -----------------------

CLOSE = """mutation($case: ID!, $version: Int!) { closeCase(caseId: $case, reason: REINTEGRATED, version: $version) {
  version } }"""
REOPEN = """mutation($case: ID!, $version: Int!) { reopenCase(caseId: $case, reason: CONTACT_RESUMED,
  version: $version) { version } }"""
TITLES = '{ notifications(first: 100) { nodes { kind caseId title en: title(lang: "en") } } }'


@pytest.fixture(scope="module")
def scanning() -> Iterator[tuple[Platform, Api]]:
    p = start_platform("segin-review3-", extra_env={"SEGIN_FOLLOWUP_SCAN_SECONDS": "1"})
    yield p, Api(p, {})
    stop_platform(p)


def marked(platform: Platform, case_id: str) -> bool:
    with psycopg.connect(platform.database_url) as conn:
        return conn.execute("select count(*) from followup.contact_marks where case_id = %s",
                            (case_id,)).fetchone() != (0,)


def version(api: Api, org: str, case_id: str) -> int:
    body = api.gql(org, "query($case: ID!) { followupCase(caseId: $case) { version } }", {"case": case_id})
    return int(body["data"]["followupCase"]["version"])


def test_a_manager_whose_consent_was_withdrawn_is_not_told_of_contacts_or_plans_due(
        scanning: tuple[Platform, Api]) -> None:
    """Consent to IOM is withdrawn after the hand-over: IOM may no longer read the case, and the scan
    must not keep telling it (notices naming the case, its contact codes and due dates) that a
    contact and the plan are due, every month of the schedule, for a person who said no."""
    platform, api = scanning
    case_id, consent_id = new_case(api, recipientOrgIds=["iom"])
    handed(api, case_id, "dgme", "iom")
    assert not api.gql("dgme", WITHDRAW, {"case": case_id, "consent": consent_id}).get("errors")
    eventually(lambda: not follows(api, "iom", case_id), timeout=60)
    eventually(lambda: looked_at(platform, [case_id]), timeout=60)

    time_passes(platform, [case_id], 31)  # the one-month contact is due, and the plan is late
    eventually(lambda: marked(platform, case_id), timeout=60)
    time.sleep(5)  # what the scan fired would reach the notifications service
    told = notices(platform, [case_id])
    assert told == {("iom", "followup.case_assigned"): 1}, told
    # The owner takes the case back and finds the late contact in its work list.
    handed(api, case_id, "dgme", "dgme")
    assert case_id in {n["caseId"] for n in api.gql("dgme", "{ followupsDue(first: 100) { nodes { caseId } } }")[
        "data"]["followupsDue"]["nodes"]}


def test_closed_cases_fire_no_timer_and_a_reopened_one_fires_each_once(scanning: tuple[Platform, Api]) -> None:
    platform, api = scanning
    case_id, _ = new_case(api, recipientOrgIds=["iom"])
    handed(api, case_id, "dgme", "iom")
    eventually(lambda: looked_at(platform, [case_id]), timeout=60)
    assert not api.gql("iom", CLOSE, {"case": case_id, "version": version(api, "iom", case_id)}).get("errors")
    time_passes(platform, [case_id], 31)
    time.sleep(5)
    assert not marked(platform, case_id)
    assert notices(platform, [case_id]) == {("iom", "followup.case_assigned"): 1}
    assert case_id not in listed(api, "iom")["followupsDue"]

    assert not api.gql("iom", REOPEN, {"case": case_id, "version": version(api, "iom", case_id)}).get("errors")
    expected = {("iom", "followup.case_assigned"): 1, ("iom", "followup.contact_due"): 1,
                ("iom", "followup.plan_overdue"): 1}
    eventually(lambda: notices(platform, [case_id]) == expected, timeout=60)
    # Looked at again: the marks stay, nothing is told twice.
    time_passes(platform, [case_id], 0)
    eventually(lambda: looked_at(platform, [case_id]), timeout=60)
    time.sleep(3)
    assert notices(platform, [case_id]) == expected
    # Titles carry codes and dates only: no name, no category, no region.
    mine = [n for n in api.gql("iom", TITLES)["data"]["notifications"]["nodes"] if n["caseId"] == case_id]
    assert mine and all("Revue" not in n["title"] + n["en"] and "07" not in n["en"].split("(")[0] for n in mine), mine


# --- cost ----------------------------------------------------------------------------------------------


def test_one_request_cannot_alias_the_follow_up_statistics_many_times(api: Api) -> None:
    """Each followupStatistics reads every case and contact of the platform (seconds at 100,000
    cases, in the follow-up service's event loop); 30 aliases in one request held the service for
    minutes. Two are the most one request may ask."""
    def aliased(n: int) -> dict[str, Any]:
        fields = " ".join(f"s{i}: followupStatistics {{ minimumCell }}" for i in range(n))
        return api.gql("cnrm", f"{{ {fields} }}")

    assert not aliased(2).get("errors")
    body = aliased(30)
    assert body.get("data") is None and body["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX", body
