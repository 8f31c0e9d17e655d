"""Invalid registrations: a precise, safe error naming the field, and nothing written anywhere."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from devstack.platform import Platform
from tests.e2e.conftest import Api, arrival

pytestmark = pytest.mark.e2e

REGISTER = """
mutation Register($input: ArrivalInput!, $key: String!) {
  registerArrival(input: $input, idempotencyKey: $key) { id }
}
"""
TABLES = ("intake.cases", "intake.idempotency_keys", "referral.referrals", "notifications.notifications")


def today() -> Any:
    return datetime.now(UTC).date()


def in_days(days: int) -> str:
    return (today() + timedelta(days=days)).isoformat()


def snapshot(platform: Platform) -> dict[str, Any]:
    """Row counts, plus what later events could only add for cases that already exist."""
    with psycopg.connect(platform.database_url) as conn:
        counts = {t: conn.execute(f"select count(*) from {t}").fetchone()[0] for t in TABLES}  # noqa: S608
        case_ids = {row[0] for row in conn.execute("select id from intake.cases")}
        keys = {tuple(row) for row in conn.execute("select org_id, operation, key from intake.idempotency_keys")}
    return {"counts": counts, "case_ids": case_ids, "keys": keys}


def rows_for_unknown_cases(platform: Platform, known: set[Any]) -> dict[str, int]:
    """Referrals and notifications about cases that did not exist before the request."""
    with psycopg.connect(platform.database_url) as conn:
        return {
            table: conn.execute(f"select count(*) from {table} where case_id <> all(%s)",  # noqa: S608
                                (list(known),)).fetchone()[0]
            for table in ("referral.referrals", "notifications.notifications")
        }


def assert_no_internals(body: dict[str, Any]) -> None:
    text = json.dumps(body)
    for marker in ("Traceback", 'File "', "pydantic", "psycopg", ".py\""):
        assert marker not in text, f"error leaks internals ({marker!r}): {text}"
    for error in body.get("errors", []):
        assert "stacktrace" not in error.get("extensions", {})
        assert "exception" not in error.get("extensions", {})


def submit(api: Api, platform: Platform, variables: dict[str, Any]) -> dict[str, Any]:
    """Send the mutation as dgme; check nothing at all was written; return the body."""
    before = snapshot(platform)
    response = api.post(REGISTER, variables, token=api.token("dgme"))
    assert response.status_code in (200, 400), response.text
    body = response.json()
    after = snapshot(platform)
    assert not (body.get("data") or {}).get("registerArrival"), body
    assert body.get("errors"), body
    assert after["case_ids"] == before["case_ids"], "a case was written"
    assert after["keys"] == before["keys"], "an idempotency key was claimed"
    assert after["counts"]["intake.cases"] == before["counts"]["intake.cases"]
    assert after["counts"]["intake.idempotency_keys"] == before["counts"]["intake.idempotency_keys"]
    assert rows_for_unknown_cases(platform, before["case_ids"]) == {
        "referral.referrals": 0, "notifications.notifications": 0}
    assert_no_internals(body)
    return body


BAD_FIELDS: dict[str, tuple[dict[str, Any], str | None, str]] = {
    # case id: (arrival overrides, idempotency key or None for a fresh one, expected extensions.field)
    "unknown-region": ({"destinationRegion": "99"}, None, "input.destinationRegion"),
    "empty-region": ({"destinationRegion": ""}, None, "input.destinationRegion"),
    "region-name-not-code": ({"destinationRegion": "Gao"}, None, "input.destinationRegion"),
    "date-of-birth-in-future": ({"dateOfBirth": in_days(2), "estimatedAge": None}, None, "input.dateOfBirth"),
    "date-of-birth-before-1900": ({"dateOfBirth": "1850-01-01", "estimatedAge": None}, None, "input.dateOfBirth"),
    "empty-given-name": ({"givenName": ""}, None, "input.givenName"),
    "whitespace-given-name": ({"givenName": "   \t "}, None, "input.givenName"),
    "whitespace-family-name": ({"familyName": "  "}, None, "input.familyName"),
    "unknown-recipient": ({"consent": {"given": True, "recipientOrgIds": ["unicef", "no-such-org"]}}, None,
                          "input.consent.recipientOrgIds"),
    "idempotency-key-too-short": ({}, "short", "idempotencyKey"),
    "idempotency-key-empty": ({}, "", "idempotencyKey"),
    "country-three-letters": ({"countryReturnedFrom": "LBY"}, None, "input.countryReturnedFrom"),
    "country-one-letter": ({"countryReturnedFrom": "L"}, None, "input.countryReturnedFrom"),
    "country-lower-case": ({"countryReturnedFrom": "ly"}, None, "input.countryReturnedFrom"),
    "country-digits": ({"countryReturnedFrom": "12"}, None, "input.countryReturnedFrom"),
    "arrival-date-in-future": ({"arrivalDate": in_days(2)}, None, "input.arrivalDate"),
    "negative-estimated-age": ({"estimatedAge": -1}, None, "input.estimatedAge"),
    "estimated-age-too-high": ({"estimatedAge": 150}, None, "input.estimatedAge"),
}


@pytest.mark.parametrize("overrides,key,field", list(BAD_FIELDS.values()), ids=list(BAD_FIELDS))
def test_invalid_input_names_the_field_and_writes_nothing(api: Api, platform: Platform, overrides: dict[str, Any],
                                                          key: str | None, field: str) -> None:
    body = submit(api, platform, {"input": arrival(**overrides), "key": str(uuid.uuid4()) if key is None else key})
    error = body["errors"][0]
    assert error["extensions"]["code"] == "BAD_USER_INPUT", error
    assert error["extensions"]["field"] == field, error
    assert error["message"]


def test_neither_date_of_birth_nor_estimated_age_is_refused(api: Api, platform: Platform) -> None:
    body = submit(api, platform, {"input": arrival(dateOfBirth=None, estimatedAge=None), "key": str(uuid.uuid4())})
    error = body["errors"][0]
    assert error["extensions"]["code"] == "BAD_USER_INPUT", error
    assert error["extensions"]["field"].startswith("input"), error


def test_missing_age_error_names_an_api_field(api: Api, platform: Platform) -> None:
    body = submit(api, platform, {"input": arrival(dateOfBirth=None, estimatedAge=None), "key": str(uuid.uuid4())})
    error = body["errors"][0]
    assert error["extensions"]["field"] == "input.estimatedAge", error
    assert "date of birth" in error["message"] and "estimated age" in error["message"], error
    assert "date_of_birth" not in error["message"], error


BAD_CONSENT: dict[str, tuple[dict[str, Any], str]] = {
    "recipients-without-consent": ({"given": False, "recipientOrgIds": ["unicef"]}, "input.consent"),
    "language-too-long": ({"given": True, "recipientOrgIds": ["unicef"], "language": "x" * 30},
                          "input.consent.language"),
    "too-many-recipients": ({"given": True, "recipientOrgIds": ["unicef"] * 51}, "input.consent.recipientOrgIds"),
}


@pytest.mark.parametrize("consent,field", list(BAD_CONSENT.values()), ids=list(BAD_CONSENT))
def test_invalid_consent_is_refused_and_writes_nothing(api: Api, platform: Platform, consent: dict[str, Any],
                                                       field: str) -> None:
    body = submit(api, platform, {"input": arrival(consent=consent), "key": str(uuid.uuid4())})
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", body


@pytest.mark.parametrize("consent,field", list(BAD_CONSENT.values()), ids=list(BAD_CONSENT))
def test_invalid_consent_names_the_consent_field(api: Api, platform: Platform, consent: dict[str, Any],
                                                 field: str) -> None:
    body = submit(api, platform, {"input": arrival(consent=consent), "key": str(uuid.uuid4())})
    assert body["errors"][0]["extensions"]["field"] == field, body


def test_every_problem_is_listed(api: Api, platform: Platform) -> None:
    body = submit(api, platform, {"input": arrival(destinationRegion="99", countryReturnedFrom="LBY", givenName=" "),
                                  "key": str(uuid.uuid4())})
    extensions = body["errors"][0]["extensions"]
    assert extensions["code"] == "BAD_USER_INPUT"
    listed = {p["field"] for p in extensions["problems"]}
    assert {"input.destinationRegion", "input.countryReturnedFrom", "input.givenName"} <= listed, extensions


def test_unknown_vulnerability_code_is_a_graphql_validation_error(api: Api, platform: Platform) -> None:
    body = submit(api, platform, {"input": arrival(vulnerabilities=["UNACCOMPANIED_CHILD", "NOT_A_VULNERABILITY"]),
                                  "key": str(uuid.uuid4())})
    message = body["errors"][0]["message"]
    assert "NOT_A_VULNERABILITY" in message and "Vulnerability" in message, message


def test_unknown_enum_in_other_fields_is_a_graphql_validation_error(api: Api, platform: Platform) -> None:
    body = submit(api, platform, {"input": arrival(arrivalPoint="TIMBUKTU_HARBOUR"), "key": str(uuid.uuid4())})
    assert "TIMBUKTU_HARBOUR" in body["errors"][0]["message"]


def test_missing_required_field_is_a_graphql_validation_error(api: Api, platform: Platform) -> None:
    incomplete = arrival()
    del incomplete["familyName"]
    body = submit(api, platform, {"input": incomplete, "key": str(uuid.uuid4())})
    assert "familyName" in body["errors"][0]["message"]


def test_a_valid_registration_after_errors_still_works(api: Api, platform: Platform) -> None:
    """Control: the same helper sees a write when there is one (so 'nothing written' means something)."""
    before = snapshot(platform)
    body = api.register("dgme", arrival(givenName=f"Controle{uuid.uuid4().hex[:6]}"))
    assert body.get("data") and body["data"]["registerArrival"]["id"], body
    after = snapshot(platform)
    assert after["counts"]["intake.cases"] == before["counts"]["intake.cases"] + 1
    assert after["counts"]["intake.idempotency_keys"] == before["counts"]["intake.idempotency_keys"] + 1
