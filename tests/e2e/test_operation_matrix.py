"""Every GraphQL operation × every kind of organisation: allowed, or refused with which code.

Kinds of organisation (demo registry): the registering state body (dgme), an international
recipient (unicef), a service provider recipient (csref-gao), an uninvolved NGO (ame), a
statistics-only observatory (cnrm) and the platform steward (segin-steward). The subject of each
operation is a case DGME registered (a child with medical needs, consent to the Gao health centre).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from tests.e2e.conftest import ARRIVED_ON, Api, arrival, eventually

pytestmark = pytest.mark.e2e

ORGS = ["dgme", "unicef", "csref-gao", "ame", "cnrm", "segin-steward"]
A, NF, SC, FB = "allowed", "NOT_FOUND", "INSUFFICIENT_SCOPE", "FORBIDDEN"
CF = "CONFLICT"
AME_SHELTER = "14773317-12fd-571f-923a-9ae5d6454bbb"  # the demo file's id of AME's shelter in Bamako

CONSENT = '{given: true, recipientOrgIds: ["unhcr"], purposes: [FOLLOW_UP]}'
BASIS = '{legalBasis: LEGAL_OBLIGATION, purposes: [FOLLOW_UP], justification: "ordonnance du juge", recipientOrgIds: ["unhcr"]}'

# Every indicator of the survey's latest version answered "declined": valid, whatever the scores.
SURVEY_ANSWERS = "[" + ", ".join(f'{{indicator: "{code}", option: "DECLINED"}}' for code in (
    "ECO_INCOME_SOURCE", "ECO_WORK_ACCESS", "ECO_DEBT", "ECO_FOOD_SECURITY", "ECO_SATISFACTION", "SOC_HOUSING",
    "SOC_EDUCATION", "SOC_JUSTICE_DOCUMENTS", "SOC_HEALTH_CARE", "SOC_DRINKING_WATER", "PSY_BELONGING", "PSY_SAFETY",
    "PSY_DISCRIMINATION", "PSY_DISTRESS", "PSY_REMIGRATION")) + "]"

# operation → (GraphQL document using $case / $referral / $consent / $note, expected per organisation)
OPERATIONS: dict[str, tuple[str, dict[str, str]]] = {
    "me": ("{ me { organisation { id } } }", dict.fromkeys(ORGS, A)),
    "organisations": ("{ organisations { id } }", dict.fromkeys(ORGS, A)),
    "regions": ("{ regions { code } }", dict.fromkeys(ORGS, A)),
    "case": ("query($case: ID!) { case(id: $case) { id } }",
             {"dgme": A, "unicef": A, "csref-gao": A, "ame": NF, "cnrm": SC, "segin-steward": SC}),
    "incomingReferrals": ("{ incomingReferrals { nodes { id } } }",
                          {"dgme": A, "unicef": A, "csref-gao": A, "ame": A, "cnrm": SC, "segin-steward": SC}),
    "notifications": ("{ notifications { nodes { id } } }",
                      {"dgme": A, "unicef": A, "csref-gao": A, "ame": A, "cnrm": SC, "segin-steward": SC}),
    "statistics": ("{ statistics(groupBy: [SEX]) { minimumCell } }",
                   {"dgme": A, "unicef": A, "csref-gao": SC, "ame": SC, "cnrm": A, "segin-steward": A}),
    "auditTrail": ("query($case: ID!) { auditTrail(service: REFERRAL, caseId: $case) { nodes { seq } } }",
                   {"dgme": SC, "unicef": SC, "csref-gao": SC, "ame": SC, "cnrm": SC, "segin-steward": A}),
    "subjectAccessRequest": ("query($case: ID!) { subjectAccessRequest(caseId: $case) { accessLogComplete } }",
                             {"dgme": SC, "unicef": SC, "csref-gao": SC, "ame": SC, "cnrm": SC, "segin-steward": A}),
    "registerArrival": ("mutation { registerArrival(idempotencyKey: \"%KEY%\", input: {givenName: \"Test\", "
                        "familyName: \"Matrice\", sex: MALE, estimatedAge: 40, countryReturnedFrom: \"DZ\", "
                        "arrivalPoint: GAO, arrivalDate: \"" + ARRIVED_ON + "\", destinationRegion: \"07\", "
                        "consent: {given: false}}) { id } }",
                        {"dgme": A, "unicef": SC, "csref-gao": SC, "ame": A, "cnrm": SC, "segin-steward": SC}),
    "recordConsent": (f"mutation($case: ID!) {{ recordConsent(caseId: $case, consent: {CONSENT}) {{ caseId }} }}",
                      {"dgme": A, "unicef": SC, "csref-gao": SC, "ame": NF, "cnrm": SC, "segin-steward": SC}),
    "recordLegalBasis": (f"mutation($case: ID!) {{ recordLegalBasis(caseId: $case, input: {BASIS}) {{ caseId }} }}",
                         {"dgme": A, "unicef": SC, "csref-gao": SC, "ame": NF, "cnrm": SC, "segin-steward": SC}),
    "withdrawConsent": ("mutation($case: ID!, $consent: ID!) { withdrawConsent(caseId: $case, consentId: $consent) "
                        "{ caseId } }",
                        {"dgme": A, "unicef": SC, "csref-gao": SC, "ame": NF, "cnrm": SC, "segin-steward": SC}),
    "acceptReferral": ("mutation($referral: ID!) { acceptReferral(id: $referral) { status } }",
                       {"dgme": FB, "unicef": NF, "csref-gao": A, "ame": NF, "cnrm": SC, "segin-steward": SC}),
    "revokeReferral": ("mutation($referral: ID!) { revokeReferral(id: $referral) { status } }",
                       {"dgme": A, "unicef": NF, "csref-gao": FB, "ame": NF, "cnrm": SC, "segin-steward": SC}),
    "markNotificationRead": ("mutation($note: ID!) { markNotificationRead(id: $note) { id } }",
                             {"dgme": NF, "unicef": NF, "csref-gao": A, "ame": NF, "cnrm": SC, "segin-steward": SC}),
    # The service directory: everyone reads it; an organisation maintains its own services, the steward any.
    "directoryServices": ("{ directoryServices(filter: {region: \"07\"}) { nodes { id } } }", dict.fromkeys(ORGS, A)),
    "directoryService": (f"{{ directoryService(id: \"{AME_SHELTER}\") {{ id capacity {{ available }} }} }}",
                         dict.fromkeys(ORGS, A)),
    "saveDirectoryService": ("mutation { saveDirectoryService(input: {nameFr: \"Matrice\", category: "
                             "COMMUNITY_ACTIVITIES, status: INACTIVE}) { id version } }",
                             {"dgme": A, "unicef": A, "csref-gao": A, "ame": A, "cnrm": SC, "segin-steward": A}),
    # A stale version: the owner and the steward get as far as the version check; nothing is written.
    "updateServiceCapacity": (f"mutation {{ updateServiceCapacity(serviceId: \"{AME_SHELTER}\", version: 999, "
                              "available: 1) { id } }",
                              {"dgme": FB, "unicef": FB, "csref-gao": FB, "ame": CF, "cnrm": SC, "segin-steward": CF}),
    # Approving a sensitive service is the steward's alone (a stale version: nothing is written).
    "approveDirectoryService": (f"mutation {{ approveDirectoryService(id: \"{AME_SHELTER}\", version: 999) {{ id }} }}",
                                {"dgme": SC, "unicef": SC, "csref-gao": SC, "ame": SC, "cnrm": SC,
                                 "segin-steward": CF}),
    # Referrals people make (issue 8): the owner and organisations holding an open referral for the case
    # (UNICEF on the child's vital interest, the health centre on consent) may refer it on.
    "referCase": ("mutation($case: ID!, $service: ID!) { referCase(input: {caseId: $case, serviceId: $service, "
                  "reasonCode: \"FAMILY_CONTACT\", priority: HIGH, note: \"Matrice\", idempotencyKey: \"%KEY%\"}) "
                  "{ status } }",
                  {"dgme": A, "unicef": A, "csref-gao": A, "ame": NF, "cnrm": SC, "segin-steward": SC}),
    "completeReferral": ("mutation($referral: ID!) { completeReferral(id: $referral, outcome: {serviceDelivered: "
                         "false, outcomeCode: \"PERSON_NOT_REACHED\"}) { status } }",
                         {"dgme": FB, "unicef": NF, "csref-gao": "INVALID_TRANSITION", "ame": NF, "cnrm": SC,
                          "segin-steward": SC}),
    "outgoingReferrals": ("{ outgoingReferrals(overdueOnly: true) { nodes { id } } }",
                          {"dgme": A, "unicef": A, "csref-gao": A, "ame": A, "cnrm": SC, "segin-steward": SC}),
    "overdueCounts": ("{ overdueCounts { outgoingOverdue } }",
                      {"dgme": A, "unicef": A, "csref-gao": A, "ame": A, "cnrm": SC, "segin-steward": SC}),
    # Unmet needs: the case's registering organisation and the coordinating body (dgme is both here).
    "unassignedNeeds": ("{ unassignedNeeds { nodes { id } } }",
                        {"dgme": A, "unicef": A, "csref-gao": A, "ame": A, "cnrm": SC, "segin-steward": SC}),
    "assignNeed": ("mutation($need: ID!, $spare: ID!) { assignNeed(id: $need, serviceId: $spare) { status } }",
                   {"dgme": A, "unicef": NF, "csref-gao": NF, "ame": NF, "cnrm": SC, "segin-steward": SC}),
    "rerouteReferral": ("mutation($referral: ID!) { rerouteReferral(id: $referral, reason: \"NO_ANSWER\") { status } }",
                        {"dgme": A, "unicef": NF, "csref-gao": NF, "ame": NF, "cnrm": SC, "segin-steward": SC}),
    # Follow-up (issue 9): the owner manages the case until it hands it over; the health centre is covered for
    # FOLLOW_UP by the subject's consent. UNICEF reads the case on its referral, but its follow-up is not UNICEF's.
    "followupCase": ("query($case: ID!) { followupCase(caseId: $case) { managerOrgId planOverdue } }",
                     {"dgme": A, "unicef": NF, "csref-gao": SC, "ame": NF, "cnrm": SC, "segin-steward": SC}),
    "plansMissing": ("{ plansMissing { nodes { caseId } } }",
                     {"dgme": A, "unicef": A, "csref-gao": SC, "ame": A, "cnrm": SC, "segin-steward": SC}),
    # The steward (followup:manage) may hand any case over, without reading it.
    "assignCaseManagement": ("mutation($case: ID!) { assignCaseManagement(caseId: $case, organizationId: "
                             "\"csref-gao\", reason: CLOSER_TO_HOME) { managerOrgId } }",
                             {"dgme": A, "unicef": NF, "csref-gao": SC, "ame": NF, "cnrm": SC, "segin-steward": A}),
    "savePlan": ("mutation($case: ID!) { savePlan(caseId: $case, version: 0, idempotencyKey: \"%KEY%\", goals: "
                 "[{dimension: SOCIAL, description: \"Matrice\", actions: [{description: \"Matrice\", "
                 "targetDate: \"2027-01-01\"}]}]) { version } }",
                 {"dgme": A, "unicef": NF, "csref-gao": SC, "ame": NF, "cnrm": SC, "segin-steward": NF}),
    # No such action: the manager gets as far as looking for it; nothing is written.
    "updatePlanAction": (f"mutation($case: ID!) {{ updatePlanAction(caseId: $case, actionId: \"{AME_SHELTER}\", "
                         "version: 0, status: DONE) { version } }",
                         {"dgme": NF, "unicef": NF, "csref-gao": SC, "ame": NF, "cnrm": SC, "segin-steward": NF}),
    "closeCase": ("mutation($case: ID!) { closeCase(caseId: $case, reason: UNREACHABLE, version: 0) { status } }",
                  {"dgme": A, "unicef": NF, "csref-gao": SC, "ame": NF, "cnrm": SC, "segin-steward": NF}),
    # An open follow-up cannot be re-opened: the manager gets as far as the state check.
    # Contacts (issue 9, item 3): written by the manager only, like the plan (the subject arrived twelve days ago).
    "logContact": ("mutation($case: ID!) { logContact(caseId: $case, idempotencyKey: \"%KEY%\", input: {date: "
                   "\"" + ARRIVED_ON + "\", mode: OFFICE, reached: true, note: \"Matrice\"}) { contacts { reached } } }",
                   {"dgme": A, "unicef": NF, "csref-gao": SC, "ame": NF, "cnrm": SC, "segin-steward": NF}),
    # Work lists (item 6): each organisation's own managed cases, no totals.
    "followupsDue": ("{ followupsDue(withinDays: 30) { nodes { caseId } } }",
                     {"dgme": A, "unicef": A, "csref-gao": SC, "ame": A, "cnrm": SC, "segin-steward": SC}),
    "followupsOverdue": ("{ followupsOverdue { nodes { caseId } } }",
                         {"dgme": A, "unicef": A, "csref-gao": SC, "ame": A, "cnrm": SC, "segin-steward": SC}),
    "unreachableCases": ("{ unreachableCases { nodes { caseId } } }",
                         {"dgme": A, "unicef": A, "csref-gao": SC, "ame": A, "cnrm": SC, "segin-steward": SC}),
    "reopenCase": ("mutation($case: ID!) { reopenCase(caseId: $case, reason: CONTACT_RESUMED, version: 0) "
                   "{ status } }",
                   {"dgme": "INVALID_TRANSITION", "unicef": NF, "csref-gao": SC, "ame": NF, "cnrm": SC,
                    "segin-steward": NF}),
    # Surveys (issue 9, item 4): the manager records (the rule for plan writes); any follow-up scope reads the form.
    "recordSurvey": ("mutation($case: ID!) { recordSurvey(caseId: $case, idempotencyKey: \"%KEY%\", input: "
                     f"{{takenOn: \"{ARRIVED_ON}\", answers: {SURVEY_ANSWERS}}}) {{ id }} }}",
                     {"dgme": A, "unicef": NF, "csref-gao": SC, "ame": NF, "cnrm": SC, "segin-steward": NF}),
    "surveyInstrument": ("{ surveyInstrument(version: 1) { version indicators { code } } }",
                         {"dgme": A, "unicef": A, "csref-gao": SC, "ame": A, "cnrm": SC, "segin-steward": A}),
    # Follow-up statistics: the statistics scope, as for statistics.
    "followupStatistics": ("{ followupStatistics { minimumCell plansByRegion { count } } }",
                           {"dgme": A, "unicef": A, "csref-gao": SC, "ame": SC, "cnrm": A, "segin-steward": A}),
}
# Offline capture (issue 10, item 5): corrections and batches need cases:write; only the owner corrects.
OPERATIONS.update({
    "updateCase": ("mutation($case: ID!) { updateCase(caseId: $case, version: 1, input: {placeOfOrigin: \"Kati\"}) "
                   "{ version } }",
                   {"dgme": A, "unicef": SC, "csref-gao": SC, "ame": NF, "cnrm": SC, "segin-steward": SC}),
    "syncOffline": ("mutation { syncOffline(items: [{clientId: \"%KEY%\", command: REGISTER_ARRIVAL, arrival: "
                    "{givenName: \"Test\", familyName: \"Matrice\", sex: MALE, estimatedAge: 40, countryReturnedFrom: "
                    "\"DZ\", arrivalPoint: GAO, arrivalDate: \"" + ARRIVED_ON + "\", destinationRegion: \"07\", "
                    "consent: {given: false}}}]) { results { status } } }",
                    {"dgme": A, "unicef": SC, "csref-gao": SC, "ame": A, "cnrm": SC, "segin-steward": SC}),
    "offlineSubmissions": ("{ offlineSubmissions { nodes { id status } } }",
                           {"dgme": A, "unicef": SC, "csref-gao": SC, "ame": A, "cnrm": SC, "segin-steward": SC}),
})

# Families (issue 10, item 3): a case's family follows the access rule of the case itself.
OPERATIONS.update({
    "family": ("query($case: ID!) { family(caseId: $case) { caseId truncated members { caseId } } }",
               {"dgme": A, "unicef": A, "csref-gao": A, "ame": NF, "cnrm": SC, "segin-steward": SC}),
})

# People already known (issue 10, item 4): candidates among readable cases only (cases:read); merges by the
# merged case's owner (cases:write) or the steward (identity:reconcile) — on no such case or merge here, so
# nothing is written; the steward's possible duplicates (identity:reconcile alone).
NO_SUCH = "00000000-0000-4000-8000-000000000000"
OPERATIONS.update({
    "matchCandidates": ("{ matchCandidates(input: {givenName: \"Matrice\", familyName: \"Essai\", estimatedAge: 30}) "
                        "{ score case { id } } }",
                        {"dgme": A, "unicef": A, "csref-gao": A, "ame": A, "cnrm": SC, "segin-steward": SC}),
    "caseMatchCandidates": ("query($case: ID!) { case(id: $case) { matchCandidates { score reasons { code } } "
                            "mergedFrom redirectedFrom } }",
                            {"dgme": A, "unicef": A, "csref-gao": A, "ame": NF, "cnrm": SC, "segin-steward": SC}),
    "mergeCases": ("mutation($case: ID!) { mergeCases(survivorId: $case, mergedId: \"" + NO_SUCH + "\", "
                   "reason: \"Matrice\") { id } }",
                   {"dgme": NF, "unicef": SC, "csref-gao": SC, "ame": NF, "cnrm": SC, "segin-steward": NF}),
    "undoMerge": ("mutation { undoMerge(mergeId: \"" + NO_SUCH + "\") { id } }",
                  {"dgme": NF, "unicef": SC, "csref-gao": SC, "ame": NF, "cnrm": SC, "segin-steward": NF}),
    "possibleDuplicates": ("{ possibleDuplicates(status: OPEN) { nodes { id score reasons } } }",
                           {"dgme": SC, "unicef": SC, "csref-gao": SC, "ame": SC, "cnrm": SC, "segin-steward": A}),
    "decidePossibleDuplicate": ("mutation { decidePossibleDuplicate(id: \"" + NO_SUCH + "\", status: DISMISSED) "
                                "{ id } }",
                                {"dgme": SC, "unicef": SC, "csref-gao": SC, "ame": SC, "cnrm": SC,
                                 "segin-steward": NF}),
})

NOTES = ("query($case: ID!) { case(id: $case) { referrals { id status serviceCategory reasonCode"
         " toOrganisation { id } } } }")
TEST_PROVIDER = "e2e-matrix-provider"  # a test-only directory entry, in a region no test arrival is served in


def unassigned_need(api: Api, referrals: list[dict[str, Any]]) -> tuple[str, str]:
    """An unmet need of the case (arriving at a border post, its package is served by national services
    only) and a directory service of its category to assign it to: a test-only one in Taoudénit (09),
    which routing never picks for these tests' arrivals."""
    needs = [r for r in referrals if r["status"] == "UNASSIGNED"]
    assert needs, "every need of the subject case found a provider: the matrix needs an unmet one"
    with psycopg.connect(api.platform.database_url, autocommit=True) as conn:
        conn.execute("insert into referral.organizations (id, name, org_type) values (%s, 'E2E', 'NGO')"
                     " on conflict (id) do nothing", (TEST_PROVIDER,))
        row = conn.execute("select id from referral.services where organization_id = %s and category = %s",
                           (TEST_PROVIDER, needs[0]["serviceCategory"])).fetchone()
        service = row[0] if row else uuid.uuid4()
        if row is None:
            conn.execute("insert into referral.services (id, organization_id, name_fr, category, regions)"
                         " values (%s, %s, 'E2E', %s, '{09}')", (service, TEST_PROVIDER, needs[0]["serviceCategory"]))
    return needs[0]["id"], str(service)


def subject(api: Api) -> dict[str, str]:
    """A fresh case per (operation, organisation): state-changing operations never see each other's effects."""
    case = api.register("dgme", arrival(givenName=f"Matrice{uuid.uuid4().hex[:6]}", arrivalPoint="BORDER_POST",
                                        vulnerabilities=["UNACCOMPANIED_CHILD", "MEDICAL_NEEDS"],
                                        consent={"given": True, "recipientOrgIds": ["csref-gao"],
                                                 "purposes": ["REFERRAL", "FOLLOW_UP"]}))
    case_id = case["data"]["registerArrival"]["id"]
    eventually(lambda: api.gql("dgme", "query($c: ID!) { followupCase(caseId: $c) { version } }",
                               {"c": case_id}).get("data"))
    everything = eventually(lambda: [r for r in api.gql("dgme", NOTES, {"case": case_id})["data"]["case"]["referrals"]
                                     if r["toOrganisation"] and r["toOrganisation"]["id"] == "csref-gao"]
                            and api.gql("dgme", NOTES, {"case": case_id})["data"]["case"]["referrals"])
    referrals = [r for r in everything if r["toOrganisation"] and r["toOrganisation"]["id"] == "csref-gao"]
    need, spare = unassigned_need(api, everything)
    eventually(lambda: api.gql("csref-gao", "query($c: ID!) { case(id: $c) { id } }", {"c": case_id})["data"])
    note = eventually(lambda: [n["id"] for n in api.gql("csref-gao", "{ notifications(first: 100) { nodes { id caseId } } }")
                               ["data"]["notifications"]["nodes"] if n["caseId"] == case_id])[0]
    consent = api.gql("dgme", "query($c: ID!) { case(id: $c) { sharing { id } } }", {"c": case_id}
                      )["data"]["case"]["sharing"][0]["id"]
    return {"case": case_id, "referral": referrals[0]["id"], "note": note, "consent": consent, "need": need,
            "spare": spare, "service": family_tracing(api)}


def family_tracing(api: Api) -> str:
    """The Red Cross's family-tracing service (not a sensitive category), from the directory's table."""
    with psycopg.connect(api.platform.database_url) as conn:
        row = conn.execute("select id::text from referral.services where organization_id = 'croix-rouge'"
                           " and category = 'FAMILY_TRACING'").fetchone()
    assert row
    return row[0]


@pytest.fixture(scope="module")
def subjects(api: Api) -> Callable[[], dict[str, str]]:
    return lambda: subject(api)


CELLS = [(op, org) for op in OPERATIONS for org in ORGS]


@pytest.mark.parametrize("operation,org", CELLS, ids=[f"{op}-{org}" for op, org in CELLS])
def test_operation_matrix(api: Api, subjects: Callable[[], dict[str, str]], operation: str, org: str) -> None:
    document, expected_by_org = OPERATIONS[operation]
    expected = expected_by_org[org]
    needs = [v for v in ("case", "referral", "consent", "note", "need", "spare", "service") if f"${v}" in document]
    variables: dict[str, Any] = {}
    if needs:
        s = subjects()
        variables = {v: s[v] for v in needs}
    document = document.replace("%KEY%", str(uuid.uuid4()))
    body = api.gql(org, document, variables)
    if expected == A:
        assert not body.get("errors"), body
        assert body["data"] and all(v is not None for v in body["data"].values()), body
    else:
        assert body.get("data") is None, body
        assert [e["extensions"]["code"] for e in body["errors"]] == [expected], body
        assert "Matrice" not in str(body)


# Linking two cases (issue 10, item 3): the organisation must read both and own one (cases:write). Each
# cell gets its own mother and child, registered by DGME (the mother consented to nothing).
FAMILY_OPERATIONS: dict[str, tuple[str, dict[str, str]]] = {
    "linkCases": ("mutation($child: ID!, $mother: ID!) { linkCases(caseId: $child, linkedCaseId: $mother, relation: "
                  "CHILD_OF, travellingTogether: true) { id links { relation } } }",
                  {"dgme": A, "unicef": SC, "csref-gao": SC, "ame": NF, "cnrm": SC, "segin-steward": SC}),
    "unlinkCases": ("mutation($child: ID!, $mother: ID!) { unlinkCases(caseId: $child, linkedCaseId: $mother) "
                    "{ id links { relation } } }",
                    {"dgme": A, "unicef": SC, "csref-gao": SC, "ame": NF, "cnrm": SC, "segin-steward": SC}),
}
FAMILY_CELLS = [(op, org) for op in FAMILY_OPERATIONS for org in ORGS]


@pytest.mark.parametrize("operation,org", FAMILY_CELLS, ids=[f"{op}-{org}" for op, org in FAMILY_CELLS])
def test_family_operation_matrix(api: Api, operation: str, org: str) -> None:
    document, expected_by_org = FAMILY_OPERATIONS[operation]
    mother = api.register("dgme", arrival(givenName="Matrice", estimatedAge=35, vulnerabilities=[],
                                          consent={"given": False}))["data"]["registerArrival"]["id"]
    child = api.register("dgme", arrival(givenName="Matrice", estimatedAge=6, vulnerabilities=[],
                                         links=[{"caseId": mother, "relation": "CHILD_OF", "travellingTogether": True}]
                                         if operation == "unlinkCases" else []))["data"]["registerArrival"]["id"]
    body = api.gql(org, document, {"child": child, "mother": mother})
    if expected_by_org[org] == A:
        assert not body.get("errors"), body
        assert body["data"] and all(v is not None for v in body["data"].values()), body
    else:
        assert body.get("data") is None, body
        assert [e["extensions"]["code"] for e in body["errors"]] == [expected_by_org[org]], body
        assert "Matrice" not in str(body)


# --- reception of groups (issue 10) -------------------------------------------------------------------
# The subject is an arrival group DGME created, with a two-person manifest: only DGME reads or changes
# it; any other organisation with the scope gets NOT_FOUND, the same as for a group that does not exist.
RECEPTION_GROUP = ("mutation($key: String!) { createArrivalGroup(idempotencyKey: $key, input: {kind: FLIGHT, "
                   f"reference: \"UJ3214\", arrivalDate: \"{ARRIVED_ON}\", arrivalPoint: BAMAKO_AIRPORT, "
                   "countryReturnedFrom: \"LY\"}) { id } }")
RECEPTION_UPLOAD = ("mutation($group: ID!, $file: Upload!) { uploadManifest(groupId: $group, sender: \"OIM Libye\", "
                    "file: $file) { added } }")
RECEPTION_MANIFEST = "Nom;Prénom;Sexe;Âge\nMatrice;Awa;F;30\nMatrice;Issa;M;12\n".encode()
RECEPTION_OPERATIONS: dict[str, tuple[str, dict[str, str]]] = {
    "createArrivalGroup": (RECEPTION_GROUP,
                           {"dgme": A, "unicef": SC, "csref-gao": SC, "ame": A, "cnrm": SC, "segin-steward": SC}),
    "uploadManifest": (RECEPTION_UPLOAD,
                       {"dgme": A, "unicef": SC, "csref-gao": SC, "ame": NF, "cnrm": SC, "segin-steward": SC}),
    "checkIn": ("mutation($group: ID!, $person: ID!, $key: String!) { checkIn(groupId: $group, expectedPersonId: "
                "$person, idempotencyKey: $key, input: {consent: {given: false}, destinationRegion: \"07\"}) "
                "{ case { id } } }",
                {"dgme": A, "unicef": SC, "csref-gao": SC, "ame": NF, "cnrm": SC, "segin-steward": SC}),
    "closeArrivalGroup": ("mutation($group: ID!) { closeArrivalGroup(id: $group) { status } }",
                          {"dgme": A, "unicef": SC, "csref-gao": SC, "ame": NF, "cnrm": SC, "segin-steward": SC}),
    "arrivalGroup": ("query($group: ID!) { arrivalGroup(id: $group) { totals { expected } people { nodes { id } } } }",
                     {"dgme": A, "unicef": NF, "csref-gao": NF, "ame": NF, "cnrm": SC, "segin-steward": SC}),
    "arrivalGroups": ("{ arrivalGroups { nodes { id totals { expected } } } }",
                      {"dgme": A, "unicef": A, "csref-gao": A, "ame": A, "cnrm": SC, "segin-steward": SC}),
}
RECEPTION_CELLS = [(op, org) for op in RECEPTION_OPERATIONS for org in ORGS]


def reception_upload(api: Api, org: str, group: str) -> dict[str, Any]:
    """uploadManifest as a GraphQL multipart request (the file is variable ``file``)."""
    import json

    import httpx

    response = httpx.post(api.platform.graphql_url, headers={"Authorization": f"Bearer {api.token(org)}"},
                          data={"operations": json.dumps({"query": RECEPTION_UPLOAD,
                                                          "variables": {"group": group, "file": None}}),
                                "map": json.dumps({"0": ["variables.file"]})},
                          files={"0": ("manifeste.csv", RECEPTION_MANIFEST, "text/csv")}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def reception_subject(api: Api) -> dict[str, str]:
    group = api.gql("dgme", RECEPTION_GROUP, {"key": str(uuid.uuid4())})["data"]["createArrivalGroup"]["id"]
    assert reception_upload(api, "dgme", group)["data"]["uploadManifest"]["added"] == 2
    people = api.gql("dgme", "query($g: ID!) { arrivalGroup(id: $g) { people { nodes { id } } } }", {"g": group})
    return {"group": group, "person": people["data"]["arrivalGroup"]["people"]["nodes"][0]["id"]}


@pytest.mark.parametrize("operation,org", RECEPTION_CELLS, ids=[f"{op}-{org}" for op, org in RECEPTION_CELLS])
def test_reception_operation_matrix(api: Api, operation: str, org: str) -> None:
    document, expected_by_org = RECEPTION_OPERATIONS[operation]
    expected = expected_by_org[org]
    variables: dict[str, Any] = {"key": str(uuid.uuid4())} if "$key" in document else {}
    if "$group" in document:
        s = reception_subject(api)
        variables |= {v: s[v] for v in ("group", "person") if f"${v}" in document}
    body = reception_upload(api, org, variables["group"]) if operation == "uploadManifest" else \
        api.gql(org, document, variables)
    if expected == A:
        assert not body.get("errors"), body
        assert body["data"] and all(v is not None for v in body["data"].values()), body
    else:
        assert body.get("data") is None, body
        assert [e["extensions"]["code"] for e in body["errors"]] == [expected], body
        assert "Matrice" not in str(body)
