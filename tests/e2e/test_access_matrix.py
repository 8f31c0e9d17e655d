"""Who may see what, against the real stack: organisations × operations × sensitivity.

A scenario as on a real night at Bamako airport. DGME registers:
- a 15-year-old unaccompanied girl with medical needs, going to Gao, who consented to share with
  the Gao health centre only: the health centre gets her case on consent, UNICEF on her vital
  interest (child protection), nobody else;
- an adult woman, survivor of GBV and presumed trafficking victim, who consented to the Red
  Cross only: the Red Cross gets her GBV referral; IOM's counter-trafficking referral waits
  for consent.
Every expectation below is what a data-protection officer can check against the README.
Both also get the immediate reception package every returnee gets (food, shelter…, see
test_unmet_needs.py); where a test counts or compares referrals, it looks at the protection and
care referrals their screening called for (``protection``).
"""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest

from tests.e2e.conftest import ARRIVED_ON, Api, arrival, eventually

pytestmark = pytest.mark.e2e

CASE = """query($id: ID!) { case(id: $id) { id givenName vulnerabilities childProtection healthNeeds gbv trafficking
  access { purpose legalBasis } sharing { id legalBasis } referrals { id serviceCategory reasonCode legalBasis status
  toOrganisation { id } } } }"""
INCOMING = "query($after: String) { incomingReferrals(first: 50, after: $after) { nodes { id caseId serviceCategory status } pageInfo { endCursor } } }"
NOTIFICATIONS = "query($after: String) { notifications(first: 100, after: $after) { nodes { id caseId kind referralId } pageInfo { endCursor } } }"
STATISTICS = "{ statistics(groupBy: [REGION]) { cells { keys count } minimumCell } }"


def protection(referrals: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The referrals the screening called for, without the immediate package every arrival gets."""
    return [r for r in referrals if not r["reasonCode"].startswith("IMMEDIATE_")]


def recipient(referral: dict[str, Any]) -> str | None:
    return referral["toOrganisation"]["id"] if referral["toOrganisation"] else None  # None: an unmet need


class Tokens:
    """Tokens per (organisation, scope set); None means everything the organisation may hold."""

    def __init__(self, api: Api) -> None:
        self.api, self.cache = api, {}

    def __call__(self, org: str, scope: str | None = None) -> str:
        if (org, scope) not in self.cache:
            self.cache[(org, scope)] = self.api.platform.token(org, scope)
        return self.cache[(org, scope)]


def ask(api: Api, token: str, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    response = api.post(query, variables, token=token)
    assert response.status_code == 200, response.text
    return response.json()


def codes(body: dict[str, Any]) -> dict[str, str]:
    """Error code per field path, e.g. {"case.healthNeeds": "RESTRICTED"}."""
    return {".".join(str(p) for p in e.get("path", [])): e.get("extensions", {}).get("code")
            for e in body.get("errors", [])}


@pytest.fixture(scope="module")
def tokens(api: Api) -> Tokens:
    return Tokens(api)


@pytest.fixture(scope="module")
def scenario(api: Api, tokens: Tokens) -> dict[str, str]:
    girl = api.register("dgme", arrival(
        givenName=f"Fanta{uuid.uuid4().hex[:6]}", estimatedAge=15, destinationRegion="07",
        vulnerabilities=["UNACCOMPANIED_CHILD", "MEDICAL_NEEDS"],
        consent={"given": True, "recipientOrgIds": ["csref-gao"]}))["data"]["registerArrival"]["id"]
    woman = api.register("dgme", arrival(
        givenName=f"Bintou{uuid.uuid4().hex[:6]}", estimatedAge=27, destinationRegion="04",
        vulnerabilities=["GBV_SURVIVOR", "TRAFFICKING_VICTIM"],
        consent={"given": True, "recipientOrgIds": ["croix-rouge"]}))["data"]["registerArrival"]["id"]

    def routed() -> bool:
        seen = protection(ask(api, tokens("dgme"), CASE, {"id": girl})["data"]["case"]["referrals"])
        seen2 = protection(ask(api, tokens("dgme"), CASE, {"id": woman})["data"]["case"]["referrals"])
        # …and the recipients' access projections have caught up
        return len(seen) == 2 and len(seen2) == 2 and all(
            ask(api, tokens(org), CASE, {"id": case})["data"] is not None
            for org, case in (("unicef", girl), ("csref-gao", girl), ("croix-rouge", woman)))

    eventually(routed)
    return {"girl": girl, "woman": woman}


# --- reading a case ---------------------------------------------------------------------------

CASE_MATRIX = [
    # (org, scope or None for all it may hold, which case, expected: "allowed" | error code)
    ("dgme", None, "girl", "allowed"),
    ("dgme", "cases:read referrals:read", "girl", "allowed"),
    ("unicef", None, "girl", "allowed"),          # vital interest of a child, open referral
    ("csref-gao", None, "girl", "allowed"),       # consent, open referral
    ("croix-rouge", None, "girl", "NOT_FOUND"),   # no referral for her
    ("ame", None, "girl", "NOT_FOUND"),
    ("iom", None, "girl", "NOT_FOUND"),
    ("unhcr", None, "girl", "NOT_FOUND"),
    ("cnrm", None, "girl", "INSUFFICIENT_SCOPE"),  # statistics only: never a record
    ("segin-steward", None, "girl", "INSUFFICIENT_SCOPE"),
    ("croix-rouge", None, "woman", "allowed"),     # consent, open GBV referral
    ("iom", None, "woman", "NOT_FOUND"),           # referral waits for consent: no access yet
    ("unicef", None, "woman", "NOT_FOUND"),
    ("csref-gao", None, "woman", "NOT_FOUND"),
]


@pytest.mark.parametrize("org,scope,which,expected", CASE_MATRIX)
def test_case_visibility(api: Api, tokens: Tokens, scenario: dict[str, str], org: str, scope: str | None,
                         which: str, expected: str) -> None:
    body = ask(api, tokens(org, scope), CASE, {"id": scenario[which]})
    if expected == "allowed":
        assert body["data"]["case"]["id"] == scenario[which]
    else:
        assert body["data"] is None
        assert codes(body) == {"case": expected}
        assert "Traoré" not in str(body) and "Fanta" not in str(body) and "Bintou" not in str(body)


# (org, scope, case, field → visible codes, or "RESTRICTED")
SENSITIVITY_MATRIX = [
    ("dgme", None, "girl", {"childProtection": ["UNACCOMPANIED_CHILD"], "healthNeeds": ["MEDICAL_NEEDS"],
                            "gbv": [], "trafficking": []}),
    ("dgme", "cases:read referrals:read", "girl", {"childProtection": "RESTRICTED", "healthNeeds": "RESTRICTED"}),
    ("unicef", None, "girl", {"childProtection": ["UNACCOMPANIED_CHILD"], "healthNeeds": "RESTRICTED"}),
    ("csref-gao", None, "girl", {"childProtection": "RESTRICTED", "healthNeeds": ["MEDICAL_NEEDS"]}),
    ("croix-rouge", None, "woman", {"gbv": ["GBV_SURVIVOR"], "trafficking": "RESTRICTED"}),
    ("dgme", None, "woman", {"gbv": ["GBV_SURVIVOR"], "trafficking": ["TRAFFICKING_VICTIM"]}),
    ("dgme", "cases:read sensitive:gbv", "woman", {"gbv": ["GBV_SURVIVOR"], "trafficking": "RESTRICTED"}),
]


@pytest.mark.parametrize("org,scope,which,fields", SENSITIVITY_MATRIX)
def test_sensitive_categories_need_their_scope(api: Api, tokens: Tokens, scenario: dict[str, str], org: str,
                                               scope: str | None, which: str, fields: dict[str, Any]) -> None:
    body = ask(api, tokens(org, scope), CASE, {"id": scenario[which]})
    case, errors = body["data"]["case"], codes(body)
    shown = set(case["vulnerabilities"])
    for field, expected in fields.items():
        if expected == "RESTRICTED":
            assert case[field] is None and errors[f"case.{field}"] == "RESTRICTED"
        else:
            assert case[field] == expected and set(expected) <= shown
    hidden = {"childProtection": {"UNACCOMPANIED_CHILD", "SEPARATED_CHILD"}, "healthNeeds": {"MEDICAL_NEEDS"},
              "gbv": {"GBV_SURVIVOR"}, "trafficking": {"TRAFFICKING_VICTIM"}}
    for field, expected in fields.items():
        if expected == "RESTRICTED":  # a restricted flag is not in the list either
            assert not hidden[field] & shown


def test_only_the_owner_sees_the_consent_record(api: Api, tokens: Tokens, scenario: dict[str, str]) -> None:
    owner = ask(api, tokens("dgme"), CASE, {"id": scenario["girl"]})
    assert owner["data"]["case"]["sharing"][0]["legalBasis"] == "CONSENT"
    for org in ("unicef", "csref-gao"):
        body = ask(api, tokens(org), CASE, {"id": scenario["girl"]})
        assert body["data"]["case"]["sharing"] is None and codes(body)["case.sharing"] == "RESTRICTED"


def test_recipients_learn_why_they_may_see_the_case(api: Api, tokens: Tokens, scenario: dict[str, str]) -> None:
    unicef = ask(api, tokens("unicef"), CASE, {"id": scenario["girl"]})["data"]["case"]["access"]
    health = ask(api, tokens("csref-gao"), CASE, {"id": scenario["girl"]})["data"]["case"]["access"]
    assert unicef == {"purpose": "REFERRAL", "legalBasis": "VITAL_INTEREST"}
    assert health == {"purpose": "REFERRAL", "legalBasis": "CONSENT"}


# --- nested referrals, lists, cursors, errors ----------------------------------------------------

def test_nested_referrals_show_each_recipient_only_its_own(api: Api, tokens: Tokens,
                                                          scenario: dict[str, str]) -> None:
    for org in ("unicef", "csref-gao"):
        referrals = ask(api, tokens(org), CASE, {"id": scenario["girl"]})["data"]["case"]["referrals"]
        assert [r["toOrganisation"]["id"] for r in referrals] == [org]


def test_owner_without_sensitive_scope_sees_no_sensitive_service_in_referrals(
        api: Api, tokens: Tokens, scenario: dict[str, str]) -> None:
    """Not masked but absent: a masked referral would still tell the category by its recipient
    (UNICEF, the counter-trafficking provider), its urgency, its place in the list and the count."""
    plain = tokens("dgme", "cases:read referrals:read")
    unflagged = api.register("dgme", arrival(givenName=f"Oumou{uuid.uuid4().hex[:6]}", estimatedAge=30,
                                             vulnerabilities=[], consent={"given": True, "recipientOrgIds": []}))
    answers = []
    for case_id in (scenario["woman"], scenario["girl"], unflagged["data"]["registerArrival"]["id"]):
        body = ask(api, plain, CASE, {"id": case_id})
        case = body["data"]["case"]
        # The sensitive categories answer RESTRICTED whether or not the case has flags in them.
        answers.append((protection(case["referrals"]), case["vulnerabilities"], sorted(codes(body).items())))
    # Both flagged cases answer exactly what a case with no flag at all answers.
    assert answers[0] == answers[1] == answers[2] == ([], [], [
        ("case.childProtection", "RESTRICTED"), ("case.gbv", "RESTRICTED"), ("case.healthNeeds", "RESTRICTED"),
        ("case.trafficking", "RESTRICTED")])
    # Each scope shows its own category's referrals, whole.
    gbv_only = ask(api, tokens("dgme", "cases:read referrals:read sensitive:gbv"), CASE, {"id": scenario["woman"]})
    assert [(r["serviceCategory"], recipient(r)) for r in protection(gbv_only["data"]["case"]["referrals"])] == [
        ("GBV_RESPONSE", "croix-rouge")]


def test_a_referral_hidden_from_a_token_cannot_be_acted_on_by_it(api: Api, tokens: Tokens,
                                                                 scenario: dict[str, str]) -> None:
    rid = _referral_of(api, tokens, scenario["woman"], "iom")  # waiting for consent, counter-trafficking
    revoke = ACT.format(op="revokeReferral")
    absent = ask(api, tokens("dgme", "referrals:write"), revoke, {"id": str(uuid.uuid4())})
    hidden = ask(api, tokens("dgme", "referrals:write"), revoke, {"id": rid})
    assert codes(hidden) == codes(absent) == {"revokeReferral": "NOT_FOUND"}
    assert hidden["errors"][0]["message"] == absent["errors"][0]["message"]


def test_owner_notices_about_sensitive_services_exist_only_for_scoped_tokens(
        api: Api, tokens: Tokens, scenario: dict[str, str]) -> None:
    """DGME is told the woman's counter-trafficking referral awaits consent: only its tokens that
    may see trafficking data are; the others' lists look as if no such notice existed."""
    def notices(token: str) -> list[dict[str, Any]]:
        nodes: list[dict[str, Any]] = []
        after = None
        while True:
            data = ask(api, token, NOTIFICATIONS, {"after": after})["data"]["notifications"]
            nodes += data["nodes"]
            after = data["pageInfo"]["endCursor"]
            if not data["nodes"] or len(data["nodes"]) < 100:
                return nodes

    plain = tokens("dgme", "notifications:read")
    sensitive = {r["id"] for case in (scenario["woman"], scenario["girl"])
                 for r in ask(api, tokens("dgme"), CASE, {"id": case})["data"]["case"]["referrals"]
                 if r["serviceCategory"] in ("COUNTER_TRAFFICKING", "GBV_RESPONSE", "CHILD_PROTECTION", "HEALTH_CARE")}
    waiting = eventually(lambda: [n for n in notices(tokens("dgme")) if n["caseId"] == scenario["woman"]
                                  and n["kind"] == "referral.awaiting_consent" and n["referralId"] in sensitive])
    assert not [n for n in notices(plain) if n["referralId"] in sensitive]
    mark = "mutation($id: ID!) { markNotificationRead(id: $id) { id } }"
    assert codes(ask(api, plain, mark, {"id": waiting[0]["id"]})) == {"markNotificationRead": "NOT_FOUND"}
    scoped = tokens("dgme", "notifications:read sensitive:trafficking")
    assert waiting[0]["id"] in {n["id"] for n in notices(scoped)}


def test_incoming_referrals_and_notifications_never_show_other_organisations_work(
        api: Api, tokens: Tokens, scenario: dict[str, str]) -> None:
    for org in ("unicef", "csref-gao", "croix-rouge", "ame", "iom"):
        incoming = ask(api, tokens(org), INCOMING)["data"]["incomingReferrals"]["nodes"]
        case_ids = {r["caseId"] for r in incoming}
        expected = {"unicef": {scenario["girl"]}, "csref-gao": {scenario["girl"]},
                    "croix-rouge": {scenario["woman"]}}.get(org, set())
        assert expected <= case_ids
        assert not ({scenario["girl"], scenario["woman"]} - expected) & case_ids, org
        notified = {n["caseId"] for n in ask(api, tokens(org), NOTIFICATIONS)["data"]["notifications"]["nodes"]}
        assert not ({scenario["girl"], scenario["woman"]} - expected) & notified, org


def test_a_cursor_from_another_organisation_reveals_nothing(api: Api, tokens: Tokens,
                                                             scenario: dict[str, str]) -> None:
    cursor = ask(api, tokens("unicef"), INCOMING)["data"]["incomingReferrals"]["pageInfo"]["endCursor"]
    assert cursor
    body = ask(api, tokens("ame"), INCOMING, {"after": cursor})
    assert {r["caseId"] for r in body["data"]["incomingReferrals"]["nodes"]}.isdisjoint(
        {scenario["girl"], scenario["woman"]})


def test_refusal_is_the_same_for_a_case_that_does_not_exist(api: Api, tokens: Tokens,
                                                              scenario: dict[str, str]) -> None:
    hidden = ask(api, tokens("ame"), CASE, {"id": scenario["girl"]})
    absent = ask(api, tokens("ame"), CASE, {"id": str(uuid.uuid4())})
    assert hidden["errors"][0]["message"] == absent["errors"][0]["message"]
    assert codes(hidden) == codes(absent) == {"case": "NOT_FOUND"}


# --- statistics: aggregates only, small cells suppressed ------------------------------------------

@pytest.mark.parametrize("org,expected", [("cnrm", "allowed"), ("unicef", "allowed"), ("ame", "INSUFFICIENT_SCOPE"),
                                          ("csref-gao", "INSUFFICIENT_SCOPE")])
def test_statistics_scope(api: Api, tokens: Tokens, scenario: dict[str, str], org: str, expected: str) -> None:
    body = ask(api, tokens(org), STATISTICS)
    if expected == "allowed":
        stats = body["data"]["statistics"]
        assert all(c["count"] >= stats["minimumCell"] == 5 and c["count"] % 5 == 0 for c in stats["cells"])
        assert "givenName" not in str(stats)
    else:
        assert codes(body) == {"statistics": expected}


# --- consent: recorded, then withdrawn while the referral is open --------------------------------

SHARING = """mutation($case: ID!, $consent: ConsentInput!) { recordConsent(caseId: $case, consent: $consent) {
  sharing { id legalBasis given recipientOrgIds withdrawnAt } } }"""
WITHDRAW = """mutation($case: ID!, $consent: ID!) { withdrawConsent(caseId: $case, consentId: $consent) {
  sharing { id withdrawnAt } } }"""


def test_consent_opens_access_and_withdrawing_it_closes_access_at_once(
        api: Api, tokens: Tokens, scenario: dict[str, str]) -> None:
    woman = scenario["woman"]
    assert codes(ask(api, tokens("iom"), CASE, {"id": woman})) == {"case": "NOT_FOUND"}

    recorded = ask(api, tokens("dgme"), SHARING, {"case": woman, "consent": {
        "given": True, "recipientOrgIds": ["iom"], "purposes": ["REFERRAL"], "language": "bm"}})
    consent_id = next(s["id"] for s in recorded["data"]["recordConsent"]["sharing"] if s["recipientOrgIds"] == ["iom"])

    # The waiting counter-trafficking referral goes live: IOM is told, and may read the case.
    eventually(lambda: any(n["caseId"] == woman and n["kind"] == "referral.received" for n in
                           ask(api, tokens("iom"), NOTIFICATIONS)["data"]["notifications"]["nodes"]))
    readable = eventually(lambda: ask(api, tokens("iom"), CASE, {"id": woman})["data"])
    assert readable["case"]["trafficking"] == ["TRAFFICKING_VICTIM"]

    # Other organisations cannot withdraw the owner's consent.
    refused = ask(api, tokens("croix-rouge"), WITHDRAW, {"case": woman, "consent": consent_id})
    assert codes(refused) == {"withdrawConsent": "INSUFFICIENT_SCOPE"} or \
        codes(refused) == {"withdrawConsent": "NOT_FOUND"}

    withdrawn = ask(api, tokens("dgme"), WITHDRAW, {"case": woman, "consent": consent_id})
    assert withdrawn["data"]["withdrawConsent"]["sharing"]
    # Immediately: no waiting for events.
    assert codes(ask(api, tokens("iom"), CASE, {"id": woman})) == {"case": "NOT_FOUND"}
    # Then the referral is revoked and IOM is told.
    eventually(lambda: any(n["caseId"] == woman and n["kind"] == "referral.revoked" for n in
                           ask(api, tokens("iom"), NOTIFICATIONS)["data"]["notifications"]["nodes"]))
    statuses = {recipient(r): r["status"] for r in
                protection(ask(api, tokens("dgme"), CASE, {"id": woman})["data"]["case"]["referrals"])}
    assert statuses["iom"] == "REVOKED" and statuses["croix-rouge"] == "PENDING"


FOLLOWUP = "query($case: ID!) { followupCase(caseId: $case) { managerOrgId } }"
ASSIGN = ("mutation($case: ID!, $org: ID!) { assignCaseManagement(caseId: $case, organizationId: $org, "
          "reason: SPECIALISED_SUPPORT) { managerOrgId } }")


def test_follow_up_management_opens_the_case_to_the_manager_only_while_consent_covers_it(
        api: Api, tokens: Tokens) -> None:
    """Rule 11: the manager reads the case on FOLLOW_UP consent; withdrawing it closes the case at once."""
    man = api.register("dgme", arrival(givenName=f"Suivi{uuid.uuid4().hex[:6]}", sex="MALE", estimatedAge=35,
                                       vulnerabilities=[], consent={"given": True, "recipientOrgIds": ["ame"],
                                                                    "purposes": ["FOLLOW_UP"]}))
    case_id = man["data"]["registerArrival"]["id"]
    consent_id = man["data"]["registerArrival"]["sharing"][0]["id"]
    eventually(lambda: ask(api, tokens("dgme"), FOLLOWUP, {"case": case_id})["data"])
    # Consent to AME for follow-up, not to IOM: IOM cannot take it over; nobody but DGME reads it yet.
    assert codes(ask(api, tokens("dgme"), ASSIGN, {"case": case_id, "org": "iom"})) == {
        "assignCaseManagement": "NO_LEGAL_BASIS"}
    for org in ("ame", "iom", "unicef"):
        assert codes(ask(api, tokens(org), CASE, {"id": case_id})) == {"case": "NOT_FOUND"}, org
    assert ask(api, tokens("dgme"), ASSIGN, {"case": case_id, "org": "ame"})["data"]["assignCaseManagement"] == {
        "managerOrgId": "ame"}
    seen = eventually(lambda: ask(api, tokens("ame"), CASE, {"id": case_id})["data"])
    assert seen["case"]["access"] == {"purpose": "FOLLOW_UP", "legalBasis": "CONSENT"}
    assert seen["case"]["sharing"] is None  # only the owner sees the consent record
    for org in ("iom", "unicef"):
        assert codes(ask(api, tokens(org), CASE, {"id": case_id})) == {"case": "NOT_FOUND"}, org
        assert codes(ask(api, tokens(org), FOLLOWUP, {"case": case_id})) == {"followupCase": "NOT_FOUND"}, org

    assert ask(api, tokens("dgme"), WITHDRAW, {"case": case_id, "consent": consent_id})["data"]["withdrawConsent"]
    # Immediately: no waiting for events. The follow-up record follows once the change reaches it.
    assert codes(ask(api, tokens("ame"), CASE, {"id": case_id})) == {"case": "NOT_FOUND"}
    eventually(lambda: codes(ask(api, tokens("ame"), FOLLOWUP, {"case": case_id})) == {"followupCase": "NOT_FOUND"})
    assert ask(api, tokens("dgme"), FOLLOWUP, {"case": case_id})["data"]["followupCase"]["managerOrgId"] == "ame"


CONTACT = ("mutation($case: ID!) { logContact(caseId: $case, idempotencyKey: \"matrix-contact-0001\", input: {date: "
           "\"" + ARRIVED_ON + "\", mode: VISIT, reached: false, note: \"Note de matrice\"}) { failedInARow } }")
CONTACTS = "query($case: ID!) { followupCase(caseId: $case) { contacts { reached note } } }"
WORK_LISTS = "{ followupsDue(first: 100, withinDays: 90) { nodes { caseId } } }"


def test_follow_up_contacts_are_written_by_the_manager_and_read_by_it_and_the_owner_only(
        api: Api, tokens: Tokens) -> None:
    """Rule 11, contacts: the managing organisation logs them; the owner and the manager read them (the
    note too, here no sensitive category); an uninvolved organisation cannot tell the case exists, the
    statistics-only observatory and the steward cannot act; work lists are the manager's own."""
    man = api.register("dgme", arrival(givenName=f"Contact{uuid.uuid4().hex[:6]}", sex="MALE", estimatedAge=30,
                                       vulnerabilities=[], consent={"given": True, "recipientOrgIds": ["ame"],
                                                                    "purposes": ["FOLLOW_UP"]}))
    case_id = man["data"]["registerArrival"]["id"]
    eventually(lambda: ask(api, tokens("dgme"), FOLLOWUP, {"case": case_id})["data"])
    assert ask(api, tokens("dgme"), ASSIGN, {"case": case_id, "org": "ame"})["data"]["assignCaseManagement"]
    assert ask(api, tokens("ame"), CONTACT, {"case": case_id})["data"]["logContact"] == {"failedInARow": 1}
    for org in ("ame", "dgme"):
        assert ask(api, tokens(org), CONTACTS, {"case": case_id})["data"]["followupCase"]["contacts"] == [
            {"reached": False, "note": "Note de matrice"}], org
    refusals = {"dgme": "FORBIDDEN", "iom": "NOT_FOUND", "unicef": "NOT_FOUND", "cnrm": "INSUFFICIENT_SCOPE",
                "segin-steward": "NOT_FOUND"}
    for org, code in refusals.items():
        assert codes(ask(api, tokens(org), CONTACT, {"case": case_id})) == {"logContact": code}, org
    for org in ("iom", "unicef"):
        assert codes(ask(api, tokens(org), CONTACTS, {"case": case_id})) == {"followupCase": "NOT_FOUND"}, org
    assert case_id in [n["caseId"] for n in ask(api, tokens("ame"), WORK_LISTS)["data"]["followupsDue"]["nodes"]]
    for org in ("dgme", "iom", "unicef"):
        assert case_id not in [n["caseId"] for n in ask(api, tokens(org), WORK_LISTS)["data"]["followupsDue"]["nodes"]]
    assert codes(ask(api, tokens("cnrm"), WORK_LISTS)) == {"followupsDue": "INSUFFICIENT_SCOPE"}


def test_vital_interest_access_survives_the_absence_of_consent(api: Api, tokens: Tokens,
                                                              scenario: dict[str, str]) -> None:
    assert ask(api, tokens("unicef"), CASE, {"id": scenario["girl"]})["data"]["case"]["access"]["legalBasis"] == \
        "VITAL_INTEREST"


# --- referral transitions: who may do what --------------------------------------------------------

ACT = "mutation($id: ID!) {{ {op}(id: $id) {{ id status }} }}"


def _referral_of(api: Api, tokens: Tokens, case: str, org: str) -> str:
    referrals = ask(api, tokens("dgme"), CASE, {"id": case})["data"]["case"]["referrals"]
    return next(r["id"] for r in protection(referrals) if recipient(r) == org)


def test_referral_transitions_respect_roles(api: Api, tokens: Tokens, scenario: dict[str, str]) -> None:
    rid = _referral_of(api, tokens, scenario["girl"], "csref-gao")
    assert codes(ask(api, tokens("dgme"), ACT.format(op="acceptReferral"), {"id": rid})) == {
        "acceptReferral": "FORBIDDEN"}
    assert codes(ask(api, tokens("ame"), ACT.format(op="acceptReferral"), {"id": rid})) == {
        "acceptReferral": "INSUFFICIENT_SCOPE"} or codes(ask(api, tokens("ame"), ACT.format(op="acceptReferral"),
                                                             {"id": rid})) == {"acceptReferral": "NOT_FOUND"}
    accepted = ask(api, tokens("csref-gao"), ACT.format(op="acceptReferral"), {"id": rid})
    assert accepted["data"]["acceptReferral"]["status"] == "ACCEPTED"
    again = ask(api, tokens("csref-gao"), ACT.format(op="acceptReferral"), {"id": rid})
    assert codes(again) == {"acceptReferral": "INVALID_TRANSITION"}
    eventually(lambda: any(n["kind"] == "referral.accepted" and n["caseId"] == scenario["girl"] for n in
                           ask(api, tokens("dgme"), NOTIFICATIONS)["data"]["notifications"]["nodes"]))
    done = ask(api, tokens("csref-gao"), ACT.format(op="completeReferral"), {"id": rid})
    assert done["data"]["completeReferral"]["status"] == "DONE"
    # A completed referral no longer opens the case to the health centre.
    eventually(lambda: codes(ask(api, tokens("csref-gao"), CASE, {"id": scenario["girl"]})) == {"case": "NOT_FOUND"})


def test_consent_to_a_type_of_organisation_covers_its_members(api: Api, tokens: Tokens) -> None:
    """Consent given to "international organisations": IOM (INTERNATIONAL) gets a live referral and
    may read the case; an NGO does not."""
    case = api.register("dgme", arrival(
        givenName=f"Seydou{uuid.uuid4().hex[:6]}", sex="MALE", estimatedAge=31, destinationRegion="05",
        vulnerabilities=["MENTAL_HEALTH_NEEDS"],
        consent={"given": True, "recipientOrgTypes": ["INTERNATIONAL"]}))["data"]["registerArrival"]["id"]
    eventually(lambda: ask(api, tokens("iom"), CASE, {"id": case})["data"])
    body = ask(api, tokens("iom"), CASE, {"id": case})
    assert body["data"]["case"]["access"] == {"purpose": "REFERRAL", "legalBasis": "CONSENT"}
    assert body["data"]["case"]["healthNeeds"] == ["MENTAL_HEALTH_NEEDS"]
    assert codes(ask(api, tokens("croix-rouge"), CASE, {"id": case})) == {"case": "NOT_FOUND"}


BASIS = """mutation($case: ID!, $input: LegalBasisInput!) { recordLegalBasis(caseId: $case, input: $input) {
  sharing { legalBasis recipientOrgIds } } }"""


def test_a_recorded_legal_obligation_makes_a_waiting_referral_live(api: Api, tokens: Tokens) -> None:
    """No consent, but a court order: the counter-trafficking referral goes live on that basis."""
    case = api.register("dgme", arrival(
        givenName=f"Assitan{uuid.uuid4().hex[:6]}", estimatedAge=24, destinationRegion="03",
        vulnerabilities=["TRAFFICKING_VICTIM"], consent={"given": False}))["data"]["registerArrival"]["id"]
    eventually(lambda: ask(api, tokens("dgme"), CASE, {"id": case})["data"]["case"]["referrals"])
    assert codes(ask(api, tokens("iom"), CASE, {"id": case})) == {"case": "NOT_FOUND"}

    recorded = ask(api, tokens("dgme"), BASIS, {"case": case, "input": {
        "legalBasis": "LEGAL_OBLIGATION", "purposes": ["REFERRAL"], "justification": "ordonnance du tribunal",
        "recipientOrgIds": ["iom"]}})
    assert {"legalBasis": "LEGAL_OBLIGATION", "recipientOrgIds": ["iom"]} in \
        recorded["data"]["recordLegalBasis"]["sharing"]
    readable = eventually(lambda: ask(api, tokens("iom"), CASE, {"id": case})["data"])
    assert readable["case"]["access"] == {"purpose": "REFERRAL", "legalBasis": "LEGAL_OBLIGATION"}
    [referral] = [r for r in protection(ask(api, tokens("dgme"), CASE, {"id": case})["data"]["case"]["referrals"])
                  if recipient(r) == "iom"]
    assert (referral["status"], referral["legalBasis"]) == ("PENDING", "LEGAL_OBLIGATION")


# --- the service directory --------------------------------------------------------------------

DIRECTORY_SERVICE = "query($id: ID!) { directoryService(id: $id) { id category locations { city } } }"
GBV_SERVICE = "9d3c049b-f129-5e6b-bc7a-5bca6f33efbe"  # the demo file's id of the Red Cross's GBV service
DIRECTORY_MATRIX = [
    # (org, scope or None for all it may hold, expected): a GBV service, and where it is, exists only for
    # tokens with sensitive:gbv, for its own organisation and for the platform steward.
    ("dgme", None, "allowed"),
    ("dgme", "directory:read", "NOT_FOUND"),
    ("croix-rouge", "directory:read", "allowed"),  # its own
    ("segin-steward", None, "allowed"),  # directory:manage
    ("ame", None, "NOT_FOUND"),
    ("unhcr", None, "NOT_FOUND"),
    ("cnrm", None, "NOT_FOUND"),
    ("unicef", "cases:read", "INSUFFICIENT_SCOPE"),
]


@pytest.mark.parametrize("org,scope,expected", DIRECTORY_MATRIX)
def test_directory_service_visibility(api: Api, tokens: Tokens, org: str, scope: str | None, expected: str) -> None:
    body = ask(api, tokens(org, scope), DIRECTORY_SERVICE, {"id": GBV_SERVICE})
    if expected == "allowed":
        assert body["data"]["directoryService"]["category"] == "GBV_RESPONSE"
    else:
        assert body["data"] is None and codes(body) == {"directoryService": expected}
# --- referrals people make: who sees the note, who may refer, what counts reveal --------------------

REFER = """mutation($input: ReferCaseInput!) { referCase(input: $input) { id status note madeBy } }"""
OUTGOING = "{ outgoingReferrals(first: 100) { nodes { id serviceCategory note madeBy } } }"
INCOMING_NOTES = "{ incomingReferrals(first: 100) { nodes { id note madeBy } } }"
CASE_NOTES = "query($id: ID!) { case(id: $id) { referrals { id note madeBy origin } } }"


def _service(api: Api, org: str, category: str) -> str:
    with psycopg.connect(api.platform.database_url) as conn:
        row = conn.execute("select id::text from referral.services where organization_id = %s and category = %s",
                           (org, category)).fetchone()
    assert row
    return row[0]


def _refer(api: Api, token: str, case: str, service: str, note: str) -> dict[str, Any]:
    return ask(api, token, REFER, {"input": {"caseId": case, "serviceId": service, "reasonCode": "LIVELIHOOD_SUPPORT",
                                             "priority": "NORMAL", "note": note, "idempotencyKey": str(uuid.uuid4())}})


def test_a_note_is_seen_by_the_referring_and_receiving_organisations_only(api: Api, tokens: Tokens) -> None:
    """DGME refers a man to IOM; IOM refers him on to the Red Cross. Each note is seen by the two
    organisations of its referral: not by the case owner (for IOM's), never by anyone else."""
    case = api.register("dgme", arrival(givenName=f"Adama{uuid.uuid4().hex[:6]}", sex="MALE", estimatedAge=33,
                                        vulnerabilities=[], consent={"given": True,
                                                                     "recipientOrgIds": ["iom", "croix-rouge"]}))
    case_id = case["data"]["registerArrival"]["id"]
    first = _refer(api, tokens("dgme"), case_id, _service(api, "iom", "BUSINESS_START_UP"), "note de la DGME")
    assert first["data"]["referCase"]["status"] == "PENDING"
    eventually(lambda: ask(api, tokens("iom"), CASE, {"id": case_id})["data"])  # IOM may read it now
    onward = _refer(api, tokens("iom"), case_id, _service(api, "croix-rouge", "FAMILY_TRACING"), "note de l'OIM")
    onward_id = onward["data"]["referCase"]["id"]
    assert onward["data"]["referCase"]["note"] == "note de l'OIM" and onward["data"]["referCase"]["madeBy"]

    def note_seen_by(org: str) -> str | None:
        referrals = ask(api, tokens(org), CASE_NOTES, {"id": case_id})["data"]["case"]["referrals"]
        return next(r["note"] for r in referrals if r["id"] == onward_id)

    assert note_seen_by("iom") == "note de l'OIM"
    assert note_seen_by("dgme") is None  # the case owner, not a party to IOM's referral
    incoming = eventually(lambda: [r for r in ask(api, tokens("croix-rouge"), INCOMING_NOTES)["data"]
                                   ["incomingReferrals"]["nodes"] if r["id"] == onward_id])
    assert (incoming[0]["note"], incoming[0]["madeBy"]) == ("note de l'OIM", None)  # a person's id stays home
    assert codes(_refer(api, tokens("ame"), case_id, _service(api, "iom", "MHPSS_COUNSELLING"), "x")) == {
        "referCase": "NOT_FOUND"}
    assert codes(_refer(api, tokens("cnrm"), case_id, _service(api, "iom", "BUSINESS_START_UP"), "x")) == {
        "referCase": "INSUFFICIENT_SCOPE"}


def test_a_token_without_a_sensitive_scope_neither_refers_to_nor_lists_nor_counts_that_category(
        api: Api, tokens: Tokens, scenario: dict[str, str]) -> None:
    plain = tokens("dgme", "cases:read referrals:read referrals:write")
    refused = _refer(api, plain, scenario["woman"], _service(api, "croix-rouge", "HEALTH_CARE"), "x")
    assert refused["errors"][0]["extensions"] == {"code": "INSUFFICIENT_SCOPE", "field": "input.serviceId"}
    # The same answer for a case the token could not know anything about.
    assert _refer(api, plain, str(uuid.uuid4()), _service(api, "croix-rouge", "HEALTH_CARE"), "x")["errors"][0][
        "extensions"] == refused["errors"][0]["extensions"]
    listed = ask(api, plain, OUTGOING)["data"]["outgoingReferrals"]["nodes"]
    assert not {"CHILD_PROTECTION", "GBV_RESPONSE", "COUNTER_TRAFFICKING", "HEALTH_CARE"} & {
        r["serviceCategory"] for r in listed}
