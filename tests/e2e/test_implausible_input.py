"""Text and dates a person could not have: refused naming the field, and nothing written (findings 10, 12)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from devstack.platform import Platform
from tests.e2e.conftest import Api, arrival
from tests.e2e.test_bad_input import submit

pytestmark = pytest.mark.e2e

IMPLAUSIBLE: dict[str, tuple[dict[str, Any], str]] = {
    "nul-in-given-name": ({"givenName": "Ami\u0000nata"}, "input.givenName"),
    "control-in-family-name": ({"familyName": "Coul\u0007ibaly"}, "input.familyName"),
    "zero-width-given-name": ({"givenName": "\u200b\u200c\u200d\ufeff"}, "input.givenName"),
    "blank-unicode-family-name": ({"familyName": "\u3000\u00a0\u2003"}, "input.familyName"),
    "punctuation-only-name": ({"givenName": "-- ..."}, "input.givenName"),
    "nul-in-guardian-name": ({"consent": {"given": True, "recipientOrgIds": ["unicef"], "givenBy": "GUARDIAN",
                                          "guardianName": "Moussa\u0000"}}, "input.consent.guardianName"),
    "zero-width-guardian-name": ({"consent": {"given": True, "recipientOrgIds": ["unicef"], "givenBy": "GUARDIAN",
                                              "guardianName": "\u200b"}}, "input.consent.guardianName"),
    "nul-in-language": ({"consent": {"given": True, "recipientOrgIds": ["unicef"], "language": "f\u0000r"}},
                        "input.consent.language"),
    "nul-in-recipient": ({"consent": {"given": True, "recipientOrgIds": ["uni\u0000cef"]}},
                         "input.consent.recipientOrgIds.0"),
    "arrival-before-birth": ({"dateOfBirth": "2010-05-01", "estimatedAge": None, "arrivalDate": "2009-01-01"},
                             "input.arrivalDate"),
    "arrival-in-year-1": ({"arrivalDate": "0001-01-01"}, "input.arrivalDate"),
    "arrival-before-floor": ({"arrivalDate": "1999-12-31"}, "input.arrivalDate"),
    "birth-in-year-1": ({"dateOfBirth": "0001-01-01", "estimatedAge": None}, "input.dateOfBirth"),
}


@pytest.mark.parametrize("overrides,field", list(IMPLAUSIBLE.values()), ids=list(IMPLAUSIBLE))
def test_implausible_input_names_the_field_and_writes_nothing(api: Api, platform: Platform,
                                                              overrides: dict[str, Any], field: str) -> None:
    body = submit(api, platform, {"input": arrival(**overrides), "key": str(uuid.uuid4())})
    error = body["errors"][0]
    assert error["extensions"]["code"] == "BAD_USER_INPUT", error
    assert field in {p["field"] for p in error["extensions"].get("problems", [error["extensions"]])}, error


def test_nul_in_a_justification_or_reason_is_bad_input(api: Api) -> None:
    case_id = api.register("dgme", arrival(givenName=f"Justif{uuid.uuid4().hex[:6]}"))["data"]["registerArrival"]["id"]
    response = api.post(
        "mutation($c: ID!, $j: String!) { recordLegalBasis(caseId: $c, input: {legalBasis: LEGAL_OBLIGATION, "
        "purposes: [FOLLOW_UP], justification: $j, recipientOrgIds: [\"unhcr\"]}) { caseId } }",
        {"c": case_id, "j": "ordonnance\u0000 du juge"}, token=api.token("dgme"))
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "BAD_USER_INPUT", error
    assert error["extensions"]["field"] == "input.justification", error


def test_names_with_accents_apostrophes_and_non_latin_letters_are_kept(api: Api) -> None:
    body = api.register("dgme", arrival(givenName="N'Golo Aïssata", familyName="ߞߏߟߌߓߊߟߌ"))
    assert body["data"]["registerArrival"]["givenName"] == "N'Golo Aïssata", body
