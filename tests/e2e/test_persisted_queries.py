"""Persisted queries (Apollo APQ) against the real gateway: field clients send a hash, not the document."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

import httpx
import pytest

from devstack.platform import Platform
from tests.e2e.conftest import Api, arrival

pytestmark = pytest.mark.e2e

CASE = "query($id: ID!) { case(id: $id) { id givenName ownerOrganisation { id } } }"


def digest(document: str) -> str:
    return hashlib.sha256(document.encode()).hexdigest()


def persisted(document: str | None, hash_: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"variables": variables or {},
                            "extensions": {"persistedQuery": {"version": 1, "sha256Hash": hash_}}}
    return {**body, "query": document} if document is not None else body


def post(api: Api, org: str, body: dict[str, Any], **headers: str) -> httpx.Response:
    return httpx.post(api.platform.graphql_url, json=body, timeout=30,
                      headers={"Authorization": f"Bearer {api.token(org)}", **headers})


def codes(body: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in body.get("errors", [])]


def unique(document: str) -> str:
    """The same operation under a name no other test (or earlier run) has sent: an unknown hash."""
    return f"# {uuid.uuid4()}\n{document}"


def test_an_unknown_hash_alone_asks_the_client_for_the_document(api: Api) -> None:
    response = post(api, "dgme", persisted(None, digest(unique("{ regions { code } }"))))
    assert response.status_code == 200, response.text
    body = response.json()
    assert "data" not in body and codes(body) == ["PERSISTED_QUERY_NOT_FOUND"]
    assert body["errors"][0]["message"] == "PersistedQueryNotFound"

    strict = post(api, "dgme", persisted(None, digest(unique("{ regions { code } }"))),
                  Accept="application/graphql-response+json")
    assert strict.status_code == 400 and codes(strict.json()) == ["PERSISTED_QUERY_NOT_FOUND"]


def test_a_document_sent_with_its_hash_is_then_served_by_hash_over_post_and_get(api: Api, platform: Platform) -> None:
    document = unique("{ regions { code name } }")
    registered = post(api, "dgme", persisted(document, digest(document)))
    assert registered.status_code == 200 and "errors" not in registered.json(), registered.text

    by_post = post(api, "dgme", persisted(None, digest(document)))
    assert by_post.json() == registered.json()
    by_get = httpx.get(platform.graphql_url, timeout=30, headers={"Authorization": f"Bearer {api.token('dgme')}"},
                       params={"extensions": json.dumps(persisted(None, digest(document))["extensions"])})
    assert by_get.status_code == 200 and by_get.json() == registered.json(), by_get.text


def test_a_document_with_the_wrong_hash_is_refused_and_not_kept(api: Api) -> None:
    document, wrong = unique("{ regions { code } }"), digest(unique("{ regions { code } }"))
    refused = post(api, "dgme", persisted(document, wrong)).json()
    assert "data" not in refused and codes(refused) == ["PERSISTED_QUERY_HASH_MISMATCH"]
    assert refused["errors"][0]["extensions"]["field"] == "extensions.persistedQuery.sha256Hash"
    assert codes(post(api, "dgme", persisted(None, wrong)).json()) == ["PERSISTED_QUERY_NOT_FOUND"]


def test_a_persisted_document_over_a_limit_is_still_refused(api: Api) -> None:
    document = unique("{ " + " ".join(f"a{i}: regions {{ code }}" for i in range(31)) + " }")  # 30 aliases at most
    for body in (persisted(document, digest(document)), persisted(None, digest(document))):
        answer = post(api, "dgme", body).json()
        assert "data" not in answer and codes(answer) == ["QUERY_TOO_COMPLEX"], answer


def test_a_cached_document_is_checked_again_for_every_caller(api: Api) -> None:
    """Only the parsed and validated document is shared: each caller's token decides what it sees."""
    case_id = api.register("dgme", arrival(givenName="Fatoumata"))["data"]["registerArrival"]["id"]
    document = unique(CASE)
    owner = post(api, "dgme", persisted(document, digest(document), {"id": case_id})).json()
    assert owner["data"]["case"]["givenName"] == "Fatoumata"

    stranger = post(api, "unhcr", persisted(None, digest(document), {"id": case_id})).json()
    assert stranger.get("data") is None and codes(stranger) == ["NOT_FOUND"]
    assert "Fatoumata" not in json.dumps(stranger)
    assert post(api, "dgme", persisted(None, digest(document), {"id": case_id})).json() == owner
