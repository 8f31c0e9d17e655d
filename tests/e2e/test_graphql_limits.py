"""The public GraphQL edge under hostile input: cost limits, malformed requests, logs and caching.

Each limit is refused with a code naming it, before any service is called (counted through the
services' audit trails, which every read of a case writes to).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from devstack.platform import Platform
from tests.e2e.conftest import Api, arrival

pytestmark = pytest.mark.e2e

AUDITED = ("intake.audit_log", "referral.audit_log", "notifications.audit_log")


def audit_rows(platform: Platform) -> int:
    with psycopg.connect(platform.database_url) as conn:
        return sum(conn.execute(f"select count(*) from {t}").fetchone()[0] for t in AUDITED)  # noqa: S608


@pytest.fixture(scope="module")
def case_id(api: Api) -> str:
    body = api.register("dgme", arrival(givenName=f"Limite{uuid.uuid4().hex[:6]}"))
    return body["data"]["registerArrival"]["id"]


def refused(response: httpx.Response, code: str) -> dict[str, Any]:
    assert 200 <= response.status_code < 500, response.text
    body = response.json()
    assert not body.get("data"), body
    error = body["errors"][0]
    assert error["extensions"]["code"] == code, body
    return error


def cases(case_id: str, count: int, selection: str = "id") -> str:
    return "{ " + " ".join(f'c{i}: case(id: "{case_id}") {{ {selection} }}' for i in range(count)) + " }"


# --- finding 4: cost limits --------------------------------------------------------------------------

def test_a_reasonable_number_of_aliases_still_works(api: Api, platform: Platform, case_id: str) -> None:
    """Control: the audit count moves when the services are called, so 'unchanged' below means something."""
    before = audit_rows(platform)
    body = api.gql("dgme", cases(case_id, 3))
    assert "errors" not in body and len(body["data"]) == 3, body
    assert audit_rows(platform) > before


def test_too_many_aliases_are_refused_before_any_service_call(api: Api, platform: Platform, case_id: str) -> None:
    before = audit_rows(platform)
    error = refused(api.post(cases(case_id, 200), token=api.token("dgme")), "QUERY_TOO_COMPLEX")
    assert "alias" in error["message"].lower(), error
    assert audit_rows(platform) == before


def test_too_many_service_calls_are_refused_before_any_is_made(api: Api, platform: Platform, case_id: str) -> None:
    """26 cases, each with its referrals: 52 service calls, within the alias limit but over the call budget."""
    before = audit_rows(platform)
    error = refused(api.post(cases(case_id, 26, "id referrals { id }"), token=api.token("dgme")),
                    "QUERY_TOO_COMPLEX")
    assert "service calls" in error["message"], error
    assert audit_rows(platform) == before


def test_fragments_cannot_hide_service_calls(api: Api, platform: Platform, case_id: str) -> None:
    before = audit_rows(platform)
    document = ("fragment R on Case { referrals { id } more: referrals { id } } "
                + cases(case_id, 20, "...R"))
    refused(api.post(document, token=api.token("dgme")), "QUERY_TOO_COMPLEX")
    assert audit_rows(platform) == before


def test_aliased_overdue_counts_are_weighed_as_the_scans_they_are(api: Api, platform: Platform) -> None:
    """overdueCounts counts over every referral of an organisation (the coordinator's, of all of them):
    30 aliases are within the alias limit but weigh more than a request's call budget."""
    def overdue(count: int) -> str:
        return "{ " + " ".join(f"o{i}: overdueCounts {{ incomingNotAccepted }}" for i in range(count)) + " }"

    before = audit_rows(platform)
    error = refused(api.post(overdue(30), token=api.token("dgme")), "QUERY_TOO_COMPLEX")
    assert error["extensions"]["limit"] == "max_service_calls", error
    assert "SEGIN_GRAPHQL_MAX_SERVICE_CALLS" in error["message"], error
    assert audit_rows(platform) == before
    body = api.gql("dgme", overdue(2))  # a screen showing the counts twice still works
    assert "errors" not in body and len(body["data"]) == 2, body


def test_too_deep_a_document_is_refused(api: Api) -> None:
    deep = "{ __schema { types { fields { type { ofType { ofType { ofType { ofType { ofType { ofType { ofType " \
           "{ name } } } } } } } } } } } }"
    error = refused(api.post(deep, token=api.token("dgme")), "QUERY_TOO_COMPLEX")
    assert "depth" in error["message"].lower(), error


def test_too_many_tokens_are_refused(api: Api) -> None:
    error = refused(api.post("{ me { " + "subject " * 6000 + "} }", token=api.token("dgme")), "QUERY_TOO_COMPLEX")
    assert "tokens" in error["message"].lower(), error


def test_a_large_body_is_refused_before_it_is_parsed(api: Api, platform: Platform) -> None:
    document = "{ me { subject } }" + " " * (2 * 1024 * 1024)
    response = api.post(document, token=api.token("dgme"))
    assert response.status_code == 413, response.text
    assert response.json()["errors"][0]["extensions"]["code"] == "REQUEST_TOO_LARGE"


def test_a_large_chunked_body_without_length_is_refused(api: Api, platform: Platform) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"query": "{ me { subject } }", "padding": "'
        for _ in range(40):
            yield b"x" * 65536
        yield b'"}'

    response = httpx.post(platform.graphql_url, content=chunks(), timeout=30, headers={
        "Authorization": f"Bearer {api.token('dgme')}", "Content-Type": "application/json"})
    assert response.status_code == 413, response.text
    assert response.json()["errors"][0]["extensions"]["code"] == "REQUEST_TOO_LARGE"


# --- finding 10: malformed input -------------------------------------------------------------------

def test_json_nested_a_thousand_deep_is_a_400_with_a_code(api: Api, platform: Platform) -> None:
    body = '{"query": "{ me { subject } }", "variables": {"a": ' + "[" * 1000 + "]" * 1000 + "}}"
    response = httpx.post(platform.graphql_url, content=body, timeout=30, headers={
        "Authorization": f"Bearer {api.token('dgme')}", "Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


def test_a_body_that_is_not_json_gets_a_json_error_with_a_code(api: Api, platform: Platform) -> None:
    response = httpx.post(platform.graphql_url, content=b"{not json", timeout=30, headers={
        "Authorization": f"Bearer {api.token('dgme')}", "Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


REGISTER = "mutation($input: ArrivalInput!, $key: String!) { registerArrival(input: $input, idempotencyKey: $key) { id } }"


@pytest.mark.parametrize("overrides,field", [
    ({"sex": "X"}, "input.sex"),
    ({"estimatedAge": "old"}, "input.estimatedAge"),
    ({"consent": {"given": "yes"}}, "input.consent.given"),
], ids=["unknown-enum", "wrong-type", "nested-wrong-type"])
def test_variable_coercion_errors_carry_a_code_and_the_field(api: Api, overrides: dict[str, Any], field: str) -> None:
    response = api.post(REGISTER, {"input": arrival(**overrides), "key": str(uuid.uuid4())}, token=api.token("dgme"))
    error = refused(response, "BAD_USER_INPUT")
    assert error["extensions"]["field"] == field, error


def test_a_missing_variable_names_it(api: Api) -> None:
    error = refused(api.post(REGISTER, {"input": arrival()}, token=api.token("dgme")), "BAD_USER_INPUT")
    assert error["extensions"]["field"] == "key", error


@pytest.mark.parametrize("query,variables,field", [
    ("query($id: ID!) { case(id: $id) { id } }", {"id": "a" * 100_000}, "id"),
    ("query($id: ID!) { case(id: $id) { id } }", {"id": "abc\u0000def"}, "id"),
    ("query($a: String) { incomingReferrals(after: $a) { nodes { id } } }", {"a": "c" * 100_000}, "after"),
    ("query($a: String) { notifications(after: $a) { nodes { id } } }", {"a": "x\u0000"}, "after"),
    ("mutation($id: ID!) { acceptReferral(id: $id) { id } }", {"id": "r" * 100_000}, "id"),
], ids=["long-id", "nul-id", "long-cursor", "nul-cursor", "long-referral-id"])
def test_oversized_or_control_character_ids_and_cursors_are_bad_input(
        api: Api, query: str, variables: dict[str, Any], field: str) -> None:
    error = refused(api.post(query, variables, token=api.token("dgme")), "BAD_USER_INPUT")
    assert error["extensions"]["field"] == field, error


# --- finding 3: personal data never reaches the logs ----------------------------------------------

def test_inline_names_and_flags_never_reach_the_gateway_log(api: Api, platform: Platform) -> None:
    marker = f"Zzmarker{uuid.uuid4().hex}"
    inline = f"""mutation {{ registerArrival(idempotencyKey: "{uuid.uuid4()}", input: {{
        givenName: "{marker}", familyName: "{marker}", sex: {marker}, estimatedAge: 30, countryReturnedFrom: "DZ",
        arrivalPoint: GAO, arrivalDate: "2026-11-01", destinationRegion: "07", vulnerabilities: [{marker}_FLAG],
        consent: {{given: false}} }}) {{ id }} }}"""
    api.post(inline, token=api.token("dgme"))
    api.post(f'{{ case(id: "{marker}") {{ id }} }}', token=api.token("dgme"))
    api.post(f'{{ case(id: "{marker}") {{ {marker} }} }}', token=api.token("dgme"))
    api.post(f'{{ me {{ subject }} {marker}', token=api.token("dgme"))  # a syntax error quoting the rest
    httpx.get(platform.graphql_url, params={"query": f'{{ case(id: "{marker}") {{ id }} }}'},
              headers={"Authorization": f"Bearer {api.token('dgme')}"}, timeout=10)
    api.post(REGISTER, {"input": arrival(givenName=marker, sex=marker), "key": str(uuid.uuid4())},
             token=api.token("dgme"))
    log = (platform.log_dir / "gateway.log").read_text(errors="replace")
    assert marker not in log


# --- finding 11: the directory needs its scope ----------------------------------------------------

def test_organisations_need_directory_read(api: Api, platform: Platform) -> None:
    token = platform.token("dgme", scope="cases:read")
    error = refused(api.post("{ organisations { id name } }", token=token), "INSUFFICIENT_SCOPE")
    assert "directory:read" in error["message"], error
    body = api.gql("dgme", "{ organisations { id } }")
    assert {"dgme", "unicef"} <= {o["id"] for o in body["data"]["organisations"]}


def test_organisations_named_in_your_own_data_resolve_without_directory_read(api: Api, platform: Platform) -> None:
    token = platform.token("dgme", scope="cases:read")
    response = api.post("{ me { organisation { id name } } }", token=token)
    assert response.json()["data"]["me"]["organisation"]["id"] == "dgme", response.text


# --- findings 13 and 14: caching and the API explorer ---------------------------------------------

def test_every_graphql_answer_says_no_store(api: Api, platform: Platform) -> None:
    answers = [
        api.post("{ me { subject } }", token=api.token("dgme")),
        api.post("{ nope }", token=api.token("dgme")),
        api.post("{ me { subject } }"),
        httpx.get(platform.graphql_url, params={"query": "{ me { subject } }"},
                  headers={"Authorization": f"Bearer {api.token('dgme')}"}, timeout=10),
        api.post("{ me { subject } }" + " " * (2 * 1024 * 1024), token=api.token("dgme")),
    ]
    for response in answers:
        assert "no-store" in response.headers.get("cache-control", ""), (response.status_code, response.headers)


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"])
def test_api_explorer_and_openapi_are_not_served(platform: Platform, path: str) -> None:
    assert httpx.get(f"{platform.base_url}{path}", timeout=10).status_code == 404


def test_the_json_answer_shape_is_kept(api: Api) -> None:
    body = json.loads(api.post("{ regions { code } }", token=api.token("dgme")).text)
    assert body["data"]["regions"]
