"""A family on a charter flight's manifest, checked in at arrival: a child checked in with her mother
cannot be flagged unaccompanied (the error names the link, nothing is written), and once checked in
the family's links show on each case."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.e2e.conftest import Api
from tests.e2e.test_manifest_checkin_e2e import GROUP, UPLOAD, multipart

pytestmark = pytest.mark.e2e

PEOPLE = """query($group: ID!) { arrivalGroup(id: $group) { totals { expected checkedIn children }
  people { nodes { id givenName householdRef relationship status } } } }"""
CHECK_IN = """mutation($group: ID!, $person: ID!, $key: String!, $input: CheckInInput!) {
  checkIn(groupId: $group, expectedPersonId: $person, idempotencyKey: $key, input: $input) {
    expectedPerson { status } case { id givenName links { linkedCaseId relation travellingTogether
    person { givenName } } } } }"""
LINKS = """query($id: ID!) { case(id: $id) { links { linkedCaseId relation travellingTogether } } }"""
CONSENT = {"given": True, "recipientOrgIds": ["unicef"]}


def family_manifest() -> bytes:
    return ("Nom;Prénom;Sexe;Âge;Ménage;Lien de parenté\n"
            "Coulibaly;Mariam;F;31;H7;Mère\n"
            "Coulibaly;Fanta;F;9;H7;Fille\n").encode()


def check_in(api: Api, group: str, person: str, data: dict[str, Any]) -> dict[str, Any]:
    return api.gql("dgme", CHECK_IN, {"group": group, "person": person, "key": str(uuid.uuid4()),
                                      "input": {"consent": CONSENT, "destinationRegion": "01", **data}})


def test_a_child_checked_in_with_her_mother_cannot_be_flagged_unaccompanied_and_the_links_show(api: Api) -> None:
    group = api.gql("dgme", GROUP, {"key": str(uuid.uuid4())})["data"]["createArrivalGroup"]["id"]
    uploaded = multipart(api, "dgme", UPLOAD, {"group": group}, family_manifest(), "famille.csv", "text/csv")
    assert uploaded["data"]["uploadManifest"]["added"] == 2, uploaded
    people = {p["givenName"]: p for p in
              api.gql("dgme", PEOPLE, {"group": group})["data"]["arrivalGroup"]["people"]["nodes"]}
    assert people["Fanta"]["householdRef"] == people["Mariam"]["householdRef"] == "H7", "the household shows"

    mother = check_in(api, group, people["Mariam"]["id"], {})["data"]["checkIn"]["case"]
    link = {"caseId": mother["id"], "relation": "CHILD_OF", "travellingTogether": True}

    refused = check_in(api, group, people["Fanta"]["id"], {"vulnerabilities": ["UNACCOMPANIED_CHILD"],
                                                            "links": [link]})
    [error] = refused["errors"]
    extensions = error["extensions"]
    assert (extensions["code"], extensions["field"]) == ("BAD_USER_INPUT", "input.vulnerabilities"), error
    assert "link 0" in error["message"] and "CHILD_OF" in error["message"], error["message"]
    totals = api.gql("dgme", PEOPLE, {"group": group})["data"]["arrivalGroup"]["totals"]
    assert totals["checkedIn"] == 1, "the refused check-in wrote nothing"

    child = check_in(api, group, people["Fanta"]["id"], {"links": [link]})["data"]["checkIn"]
    assert child["expectedPerson"]["status"] == "CHECKED_IN"
    assert child["case"]["links"] == [{"linkedCaseId": mother["id"], "relation": "CHILD_OF",
                                       "travellingTogether": True, "person": {"givenName": "Mariam"}}]
    seen_from_mother = api.gql("dgme", LINKS, {"id": mother["id"]})["data"]["case"]["links"]
    assert seen_from_mother == [{"linkedCaseId": child["case"]["id"], "relation": "PARENT_OF",
                                 "travellingTogether": True}]
    totals = api.gql("dgme", PEOPLE, {"group": group})["data"]["arrivalGroup"]["totals"]
    assert (totals["expected"], totals["checkedIn"], totals["children"]) == (2, 2, 1)
