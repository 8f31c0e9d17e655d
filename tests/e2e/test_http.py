"""GraphQL over HTTP basics, and the health endpoints an operator or orchestrator relies on."""

from __future__ import annotations

import json
import uuid

import httpx
import psycopg
import pytest

from devstack.platform import Platform
from tests.e2e.conftest import ARRIVED_ON, Api

pytestmark = pytest.mark.e2e

ME = "{ me { subject clientId organisation { id name } } }"


def auth(api: Api, org: str = "dgme") -> dict[str, str]:
    return {"Authorization": f"Bearer {api.token(org)}"}


def test_post_json_query(api: Api, platform: Platform) -> None:
    response = httpx.post(platform.graphql_url, json={"query": ME}, headers=auth(api), timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert "errors" not in body
    assert body["data"]["me"]["organisation"]["id"] == "dgme"
    assert body["data"]["me"]["clientId"] == "dgme-demo"


def test_post_json_with_variables_and_operation_name(api: Api, platform: Platform) -> None:
    document = """
    query Regions { regions { code name } }
    query Page($first: Int!) { notifications(first: $first) { nodes { id } pageInfo { hasNextPage } } }
    """
    response = httpx.post(platform.graphql_url, json={"query": document, "operationName": "Regions"},
                          headers=auth(api), timeout=10)
    assert response.status_code == 200, response.text
    regions = {r["code"]: r["name"] for r in response.json()["data"]["regions"]}
    assert regions["07"] == "Gao"
    assert regions["00"] == "District de Bamako"

    response = httpx.post(platform.graphql_url, json={"query": document, "operationName": "Page",
                                                      "variables": {"first": 1}}, headers=auth(api), timeout=10)
    assert response.status_code == 200, response.text
    assert len(response.json()["data"]["notifications"]["nodes"]) <= 1


def test_get_with_query_parameter(api: Api, platform: Platform) -> None:
    response = httpx.get(platform.graphql_url, params={"query": ME}, headers=auth(api, "unicef"), timeout=10)
    assert response.status_code == 200, response.text
    assert response.json()["data"]["me"]["organisation"]["id"] == "unicef"


def test_get_with_variables_parameter(api: Api, platform: Platform) -> None:
    query = "query Page($first: Int!) { notifications(first: $first) { nodes { id } } }"
    response = httpx.get(platform.graphql_url, params={"query": query, "variables": json.dumps({"first": 1})},
                         headers=auth(api), timeout=10)
    assert response.status_code == 200, response.text
    assert "errors" not in response.json()
    assert len(response.json()["data"]["notifications"]["nodes"]) <= 1


def test_get_requires_a_token_too(platform: Platform) -> None:
    response = httpx.get(platform.graphql_url, params={"query": ME}, timeout=10)
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


def test_mutation_via_get_is_refused_and_writes_nothing(api: Api, platform: Platform) -> None:
    name = f"ParGet{uuid.uuid4().hex[:8]}"
    mutation = f"""mutation {{
      registerArrival(idempotencyKey: "{uuid.uuid4()}", input: {{
        givenName: "{name}", familyName: "Keita", sex: MALE, estimatedAge: 30, countryReturnedFrom: "DZ",
        arrivalPoint: GAO, arrivalDate: "{ARRIVED_ON}", destinationRegion: "07", vulnerabilities: [],
        consent: {{given: false}}
      }}) {{ id }}
    }}"""
    # Control: the very same document is a valid mutation over POST (then we use another name for GET).
    control = httpx.post(platform.graphql_url, json={"query": mutation}, headers=auth(api), timeout=10)
    assert control.status_code == 200 and control.json()["data"]["registerArrival"]["id"], control.text

    get_name = f"ParGet{uuid.uuid4().hex[:8]}"
    response = httpx.get(platform.graphql_url, params={"query": mutation.replace(name, get_name)},
                         headers=auth(api), timeout=10)
    assert response.status_code in (400, 405), response.text
    with psycopg.connect(platform.database_url) as conn:
        (count,) = conn.execute("select count(*) from intake.cases where given_name = %s", (get_name,)).fetchone()
    assert count == 0


@pytest.mark.parametrize("document", ["{ me { subject ", "query { me { subject } } }", "mutaton { x }"],
                         ids=["unclosed", "extra-brace", "misspelt-keyword"])
def test_syntax_error_gives_an_errors_array(api: Api, platform: Platform, document: str) -> None:
    response = httpx.post(platform.graphql_url, json={"query": document}, headers=auth(api), timeout=10)
    assert response.status_code in (200, 400), response.text
    body = response.json()
    assert isinstance(body.get("errors"), list) and body["errors"], body
    assert all(isinstance(e.get("message"), str) and e["message"] for e in body["errors"])
    assert not body.get("data")
    assert "Traceback" not in response.text


def test_empty_query_is_a_bad_request(api: Api, platform: Platform) -> None:
    response = httpx.post(platform.graphql_url, json={"query": ""}, headers=auth(api), timeout=10)
    assert response.status_code == 400, response.text
    assert "Traceback" not in response.text


def test_unknown_field_gives_an_errors_array(api: Api, platform: Platform) -> None:
    response = httpx.post(platform.graphql_url, json={"query": "{ me { password } }"}, headers=auth(api), timeout=10)
    assert response.status_code in (200, 400), response.text
    body = response.json()
    assert body["errors"] and "password" in body["errors"][0]["message"]
    assert not body.get("data")


def test_body_that_is_not_json_is_refused(api: Api, platform: Platform) -> None:
    response = httpx.post(platform.graphql_url, content=b"{not json", timeout=10,
                          headers={**auth(api), "Content-Type": "application/json"})
    assert 400 <= response.status_code < 500, response.text
    assert "Traceback" not in response.text


def test_healthz(platform: Platform) -> None:
    response = httpx.get(f"{platform.base_url}/healthz", timeout=10)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_reports_every_dependency_ok(platform: Platform) -> None:
    response = httpx.get(f"{platform.base_url}/readyz", timeout=10)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["ready"] is True
    assert {"database", "intake", "referral", "notifications", "followup"} <= set(body["checks"]), body
    assert all(status == "ok" for status in body["checks"].values()), body


def test_health_endpoints_need_no_token(platform: Platform) -> None:
    for path in ("/healthz", "/readyz", "/.well-known/jwks.json", "/.well-known/oauth-authorization-server"):
        assert httpx.get(f"{platform.base_url}{path}", timeout=10).status_code == 200, path


GRAPHQL_RESPONSE = "application/graphql-response+json"


def test_graphql_response_media_type_on_request(api: Api, platform: Platform) -> None:
    """GraphQL-over-HTTP: a client accepting application/graphql-response+json gets that type."""
    response = httpx.post(platform.graphql_url, json={"query": ME},
                          headers={**auth(api), "Accept": GRAPHQL_RESPONSE}, timeout=30)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(GRAPHQL_RESPONSE)
    assert response.json()["data"]["me"]["organisation"]["id"] == "dgme"


@pytest.mark.parametrize("document", ["{ me { subject ", "{ nope }"])
def test_request_errors_are_4xx_with_the_graphql_response_type_and_carry_no_data(
        api: Api, platform: Platform, document: str) -> None:
    strict = httpx.post(platform.graphql_url, json={"query": document},
                        headers={**auth(api), "Accept": GRAPHQL_RESPONSE}, timeout=30)
    assert strict.status_code == 400 and strict.headers["content-type"].startswith(GRAPHQL_RESPONSE)
    assert "data" not in strict.json() and strict.json()["errors"]
    legacy = httpx.post(platform.graphql_url, json={"query": document}, headers=auth(api), timeout=30)
    assert legacy.status_code == 200 and legacy.headers["content-type"].startswith("application/json")
    assert "data" not in legacy.json() and legacy.json()["errors"]


def test_field_errors_keep_200_with_the_graphql_response_type(api: Api, platform: Platform) -> None:
    """An operation that ran but failed on a field (here: a case not shared) is not a request error."""
    response = httpx.post(platform.graphql_url, json={"query": f'{{ case(id: "{uuid.uuid4()}") {{ id }} }}'},
                          headers={**auth(api), "Accept": GRAPHQL_RESPONSE}, timeout=30)
    assert response.status_code == 200
    assert response.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"
