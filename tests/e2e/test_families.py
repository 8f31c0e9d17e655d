"""A mother and her child registered together, end to end (issue 10, item 3; decision record 0023).

DGME registers a mother who gave no consent to share. Her seven-year-old daughter is registered with a
link CHILD_OF her mother's case, travelling together: flagged UNACCOMPANIED_CHILD she is refused, with
an error naming the field and the link, and nothing is registered; without the flag she is registered,
and the link shows on both cases. The Red Cross, to which DGME refers the child for family tracing
(she consented), reads the child's case: it sees that her mother is linked, travelling with her, and
which organisation holds the mother's case, and nothing more of the mother. AME, uninvolved, sees
nothing at all.
"""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest

from devstack.platform import Platform
from tests.e2e.conftest import ARRIVED_ON, Api, arrival, eventually

pytestmark = pytest.mark.e2e

REGISTER = """mutation($input: ArrivalInput!, $key: String!) { registerArrival(input: $input, idempotencyKey: $key) {
  id links { id linkedCaseId relation travellingTogether ownerOrganisation { id } person { givenName } } } }"""
LINKS = """query($id: ID!) { case(id: $id) { id links { id linkedCaseId relation travellingTogether
  ownerOrganisation { id } person { givenName familyName estimatedAge } } } }"""
FAMILY = """query($id: ID!) { family(caseId: $id) { caseId truncated members { caseId ownerOrganisation { id }
  person { givenName } } links { caseId relation linkedCaseId travellingTogether } } }"""
ROUTED = "query($id: ID!) { case(id: $id) { referrals { origin status providerReason } } }"
REFER = """mutation($input: ReferCaseInput!) { referCase(input: $input) { id status } }"""


def register(api: Api, org: str, person: dict[str, Any]) -> dict[str, Any]:
    return api.gql(org, REGISTER, {"input": person, "key": str(uuid.uuid4())})


def cases_named(platform: Platform, given_name: str) -> int:
    with psycopg.connect(platform.database_url) as conn:
        row = conn.execute("select count(*) from intake.cases where given_name = %s", (given_name,)).fetchone()
    assert row is not None
    return int(row[0])


def family_tracing(platform: Platform) -> str:
    with psycopg.connect(platform.database_url) as conn:
        row = conn.execute("select id::text from referral.services where organization_id = 'croix-rouge'"
                           " and category = 'FAMILY_TRACING'").fetchone()
    assert row
    return row[0]


def test_a_child_travelling_with_her_mother_is_linked_never_unaccompanied_and_others_see_only_what_they_may(
        api: Api, platform: Platform) -> None:
    mother_name, child_name = f"Kadiatou{uuid.uuid4().hex[:6]}", f"Fanta{uuid.uuid4().hex[:6]}"
    mother = register(api, "dgme", arrival(givenName=mother_name, familyName="Traoré", estimatedAge=34,
                                           vulnerabilities=[], consent={"given": False}))
    assert not mother.get("errors"), mother
    mother_id = mother["data"]["registerArrival"]["id"]
    child = arrival(givenName=child_name, familyName="Traoré", estimatedAge=7, arrivalDate=ARRIVED_ON,
                    consent={"given": True, "recipientOrgIds": ["croix-rouge"], "purposes": ["REFERRAL"],
                             "givenBy": "GUARDIAN", "guardianName": "Kadiatou Traoré"},
                    links=[{"caseId": mother_id, "relation": "CHILD_OF", "travellingTogether": True}])

    # Flagged unaccompanied: refused, naming the field and the link; nothing registered.
    refused = register(api, "dgme", {**child, "vulnerabilities": ["UNACCOMPANIED_CHILD"]})
    assert refused["data"] is None
    [error] = refused["errors"]
    assert (error["extensions"]["code"], error["extensions"]["field"]) == ("BAD_USER_INPUT", "input.vulnerabilities")
    assert "UNACCOMPANIED_CHILD" in error["message"] and "link 0" in error["message"] and "CHILD_OF" in error["message"]
    assert {p["field"] for p in error["extensions"]["problems"]} == {"input.vulnerabilities", "input.links.0"}
    assert cases_named(platform, child_name) == 0

    # Without the flag: registered, linked, and the link shows on both cases.
    made = register(api, "dgme", {**child, "vulnerabilities": []})
    assert not made.get("errors"), made
    child_id = made["data"]["registerArrival"]["id"]
    [link] = made["data"]["registerArrival"]["links"]
    assert link == {"id": link["id"], "linkedCaseId": mother_id, "relation": "CHILD_OF", "travellingTogether": True,
                    "ownerOrganisation": {"id": "dgme"}, "person": {"givenName": mother_name}}
    seen = api.gql("dgme", LINKS, {"id": mother_id})
    assert not seen.get("errors"), seen
    [back] = seen["data"]["case"]["links"]
    assert (back["id"], back["linkedCaseId"], back["relation"], back["person"]["givenName"]) == (
        link["id"], child_id, "PARENT_OF", child_name)

    # The Red Cross, once the child is referred to it for family tracing (her consent covers it).
    eventually(lambda: _known_to_referral(platform, child_id))
    referred = api.gql("dgme", REFER, {"input": {"caseId": child_id, "serviceId": family_tracing(platform),
                                                 "reasonCode": "FAMILY_CONTACT", "priority": "HIGH",
                                                 "idempotencyKey": str(uuid.uuid4())}})
    assert referred["data"]["referCase"]["status"] == "PENDING", referred
    body = eventually(lambda: (b := api.gql("croix-rouge", LINKS, {"id": child_id}))["data"] and b)
    [restricted] = body["data"]["case"]["links"]
    assert restricted == {"id": link["id"], "linkedCaseId": mother_id, "relation": "CHILD_OF",
                          "travellingTogether": True, "ownerOrganisation": {"id": "dgme"}, "person": None}
    assert [e["extensions"]["code"] for e in body["errors"]] == ["RESTRICTED"]
    assert mother_name not in str(body)
    family = api.gql("croix-rouge", FAMILY, {"id": child_id})
    members = {m["caseId"]: m for m in family["data"]["family"]["members"]}
    assert members[mother_id] == {"caseId": mother_id, "ownerOrganisation": {"id": "dgme"}, "person": None}
    assert members[child_id]["person"] == {"givenName": child_name}
    assert family["data"]["family"]["links"] == [{"caseId": child_id, "relation": "CHILD_OF", "linkedCaseId": mother_id,
                                                  "travellingTogether": True}]
    assert mother_name not in str(family)
    mothers_case = api.gql("croix-rouge", LINKS, {"id": mother_id})
    assert [e["extensions"]["code"] for e in mothers_case["errors"]] == ["NOT_FOUND"]

    # Routing says why it chose each provider (the child's needs routed by rule).
    routed = eventually(lambda: [r for r in api.gql("dgme", ROUTED, {"id": child_id})["data"]["case"]["referrals"]
                                 if r["origin"] == "RULE"])
    assert all(r["providerReason"] in ("TIE_ORDER", "FAMILY") for r in routed if r["status"] != "UNASSIGNED"), routed
    assert all(r["providerReason"] is None for r in routed if r["status"] == "UNASSIGNED"), routed

    # AME, uninvolved: neither case, nor the family, nor a link to the mother's case at registration.
    linking = register(api, "ame", arrival(givenName="Matrice", vulnerabilities=[], links=[
        {"caseId": mother_id, "relation": "SIBLING_OF", "travellingTogether": False}]))
    assert [(e["extensions"]["code"], e["extensions"]["field"]) for e in linking["errors"]] == [
        ("NOT_FOUND", "input.links.0.caseId")]
    for query in (LINKS, FAMILY):
        for case_id in (child_id, mother_id):
            answer = api.gql("ame", query, {"id": case_id})
            assert [e["extensions"]["code"] for e in answer["errors"]] == ["NOT_FOUND"], answer
            assert mother_name not in str(answer) and child_name not in str(answer)


def _known_to_referral(platform: Platform, case_id: str) -> bool:
    with psycopg.connect(platform.database_url) as conn:
        return conn.execute("select 1 from referral.cases where case_id = %s", (case_id,)).fetchone() is not None


LINK = """mutation($case: ID!, $other: ID!, $together: Boolean!) { linkCases(caseId: $case, linkedCaseId: $other,
  relation: CHILD_OF, travellingTogether: $together) { id links { linkedCaseId relation } } }"""
UNLINK = """mutation($case: ID!, $other: ID!) { unlinkCases(caseId: $case, linkedCaseId: $other) {
  id links { linkedCaseId } } }"""


def test_existing_cases_are_linked_once_refused_when_a_flag_contradicts_and_unlinked(api: Api) -> None:
    mother = register(api, "dgme", arrival(givenName="Oumou", estimatedAge=30, vulnerabilities=[]))
    flagged = register(api, "dgme", arrival(givenName="Awa", estimatedAge=9, vulnerabilities=["SEPARATED_CHILD"]))
    mother_id, child_id = mother["data"]["registerArrival"]["id"], flagged["data"]["registerArrival"]["id"]
    refused = api.gql("dgme", LINK, {"case": child_id, "other": mother_id, "together": True})
    assert refused["data"] is None
    assert (refused["errors"][0]["extensions"]["code"], refused["errors"][0]["extensions"]["field"]) == (
        "BAD_USER_INPUT", "relation")
    for _ in range(2):  # not travelling together: linked, once
        linked = api.gql("dgme", LINK, {"case": child_id, "other": mother_id, "together": False})
        assert linked["data"]["linkCases"]["links"] == [{"linkedCaseId": mother_id, "relation": "CHILD_OF"}], linked
    for _ in range(2):
        unlinked = api.gql("dgme", UNLINK, {"case": mother_id, "other": child_id})
        assert unlinked["data"]["unlinkCases"]["links"] == [], unlinked


SERVICES = "query($id: ID!) { case(id: $id) { referrals { origin status serviceCategory serviceId providerReason } } }"
EVERYONE = {"given": True, "recipientOrgTypes": ["STATE", "NGO", "INTERNATIONAL", "DIASPORA", "SERVICE_PROVIDER"],
            "purposes": ["REFERRAL"]}


def test_a_child_registered_with_her_mother_is_referred_to_the_providers_already_serving_her(api: Api) -> None:
    """Both consented to sharing with every organisation for referral: the child's needs go to her mother's
    providers where they take her (providerReason FAMILY)."""
    mother = register(api, "dgme", arrival(givenName="Bintou", estimatedAge=31, vulnerabilities=[], consent=EVERYONE))
    mother_id = mother["data"]["registerArrival"]["id"]
    serving = eventually(lambda: {r["serviceCategory"]: r["serviceId"] for r in api.gql(
        "dgme", SERVICES, {"id": mother_id})["data"]["case"]["referrals"] if r["status"] == "PENDING"})
    child = register(api, "dgme", arrival(givenName="Mariam", estimatedAge=8, vulnerabilities=[], consent=EVERYONE,
                                          links=[{"caseId": mother_id, "relation": "CHILD_OF",
                                                  "travellingTogether": True}]))
    child_id = child["data"]["registerArrival"]["id"]
    routed = eventually(lambda: [r for r in api.gql("dgme", SERVICES, {"id": child_id})["data"]["case"]["referrals"]
                                 if r["serviceCategory"] in serving and r["origin"] == "RULE"])
    family = [r for r in routed if r["providerReason"] == "FAMILY"]
    assert family, routed
    assert all(r["serviceId"] == serving[r["serviceCategory"]] for r in family), routed
    # Where the mother's provider does not take a child (a shelter for adults), the normal rule decides.
    assert all(r["providerReason"] in ("TIE_ORDER", None) for r in routed if r not in family), routed
