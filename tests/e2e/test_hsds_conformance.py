"""The gateway's HSDS 3 API against the real stack, validated against the official compiled schemas
(tests/fixtures/hsds3): every page of services and organizations, every service fully nested, one
organization. And who may read it: a bearer token with directory:read, no less; sensitive services
only for tokens with their category's scope."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Api
from tests.hsds_schemas import page_problems, problems

pytestmark = pytest.mark.e2e


def get(api: Api, path: str, token: str | None, **params: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(f"{api.platform.base_url}/hsds{path}", params=params, headers=headers, timeout=30)


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    return response.json()


def test_every_hsds_answer_validates_against_the_official_hsds_3_schemas(api: Api) -> None:
    token = api.token("dgme")  # every sensitive scope: the whole directory
    services, page = [], 1
    while True:
        body = ok(get(api, "/services", token, page=page, per_page=5))
        assert page_problems(body, "service") == [], body
        assert (body["page_number"], body["first_page"]) == (page, page == 1)
        services += body["contents"]
        if body["last_page"]:
            break
        page += 1
    assert len(services) == body["total_items"] >= 15
    for entry in services:
        full = ok(get(api, f"/services/{entry['id']}", token))
        assert problems("service", full) == [], full["name"]
    organizations = ok(get(api, "/organizations", token, per_page=50))
    assert page_problems(organizations, "organization") == []
    assert {o["alternate_name"] for o in organizations["contents"]} >= {"dgme", "ame", "iom", "croix-rouge"}
    iom = next(o for o in organizations["contents"] if o["alternate_name"] == "iom")
    one = ok(get(api, f"/organizations/{iom['id']}", token))
    assert problems("organization", one) == [] and {s["organization_id"] for s in one["services"]} == {iom["id"]}
    narrowed = ok(get(api, "/services", token, organization_id=iom["id"], per_page=50))
    assert {s["id"] for s in narrowed["contents"]} == {s["id"] for s in one["services"]}
    assert ok(get(api, "/", None))["version"].startswith("3.")


def test_the_hsds_api_needs_a_token_with_directory_read(api: Api) -> None:
    anonymous = get(api, "/services", None)
    assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"] == "Bearer"
    forged = get(api, "/services", "not-a-token")
    assert forged.status_code == 401 and "invalid_token" in forged.headers["www-authenticate"]
    narrow = get(api, "/services", api.platform.token("dgme", "cases:read"))
    assert narrow.status_code == 403 and narrow.json()["error"]["code"] == "INSUFFICIENT_SCOPE"
    bad = get(api, "/services", api.token("dgme"), per_page="lots")
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "per_page"
    missing = get(api, "/services/7e5bd5a4-0000-4000-8000-000000000000", api.token("dgme"))
    assert missing.status_code == 404


def test_sensitive_services_are_absent_for_tokens_without_their_scope(api: Api) -> None:
    everything = ok(get(api, "/services", api.token("dgme"), per_page=100))
    unhcr = ok(get(api, "/services", api.token("unhcr"), per_page=100))  # no sensitive:* scope
    hidden = {s["id"] for s in everything["contents"]} - {s["id"] for s in unhcr["contents"]}
    assert hidden and unhcr["total_items"] == everything["total_items"] - len(hidden)
    for service_id in hidden:
        assert get(api, f"/services/{service_id}", api.token("unhcr")).status_code == 404
