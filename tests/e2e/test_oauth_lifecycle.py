"""Tokens after issue: introspection, revocation everywhere, revoked clients, key rotation, throttling.

Revocation must reach the gateway *and* every service (which verify tokens themselves), so each
check asks both: GraphQL over HTTP, and a service directly over NATS.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import nats
import psycopg
import pytest
from authlib.integrations.httpx_client import OAuth2Client

from devstack.platform import Platform
from tests.e2e.conftest import eventually, start_platform, stop_platform
from tests.e2e.helpers_tokens import claims_for, internal_token, sign, signing_key, token_parts
from tests.e2e.test_oauth_login import admin, person, public_client, refresh, tokens_for

pytestmark = pytest.mark.e2e

ME = "{ me { subject organisation { id } scopes } }"


def gateway_status(platform: Platform, token: str) -> int:
    return httpx.post(platform.graphql_url, json={"query": ME}, headers={"Authorization": f"Bearer {token}"},
                      timeout=30).status_code


def service_code(platform: Platform, token: str) -> str:
    """The intake service's own verdict on an API token: NOT_FOUND (it got past authentication) or
    UNAUTHENTICATED. Services accept only the gateway's internal tokens, so it asks with the one the
    gateway would send intake for ``token`` (same jti, client and iat: revocation must reach it)."""
    token = internal_token(platform, token, "intake")

    async def ask() -> dict[str, Any]:
        nc = await nats.connect(**platform.nats_options(), name="segin-e2e-oauth")
        try:
            msg = await nc.request("svc.intake.get_case", json.dumps({"case_id": str(uuid.uuid4())}).encode(),
                                   timeout=10, headers={"Authorization": f"Bearer {token}"})
        finally:
            await nc.close()
        return json.loads(msg.data)

    return asyncio.run(ask()).get("error", {}).get("code", "OK")


def introspect(platform: Platform, token: str, auth: tuple[str, str] | None, **extra: str) -> httpx.Response:
    return httpx.post(f"{platform.base_url}/oauth/introspect", data={"token": token, **extra}, auth=auth, timeout=30)


def revoke(platform: Platform, token: str, auth: tuple[str, str] | None = None, **extra: str) -> httpx.Response:
    return httpx.post(f"{platform.base_url}/oauth/revoke", data={"token": token, **extra}, auth=auth, timeout=30)


def logged_pseudonym(platform: Platform, value: str) -> str:
    """How the gateway logs an id that names no client (``gateway.auth.throttle.pseudonym``, key from the database)."""
    with psycopg.connect(platform.database_url) as conn:
        row = conn.execute("select value from gateway.secrets where name = 'login-state'").fetchone()
    assert row is not None
    return hmac.new(str(row[0]).encode(), value.strip().lower().encode(), hashlib.sha256).hexdigest()[:16]


def confidential_client(platform: Platform, org: str = "dgme", scopes: str = "cases:read") -> tuple[str, str]:
    client_id = f"sys-{uuid.uuid4().hex[:8]}"
    created = json.loads(admin(platform, "create-client", client_id, "--org", org, "--scopes", scopes))
    return client_id, created["client_secret"]


def client_token(platform: Platform, auth: tuple[str, str]) -> str:
    response = httpx.post(f"{platform.base_url}/oauth/token", data={"grant_type": "client_credentials"}, auth=auth,
                          timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


# --- introspection (RFC 7662) --------------------------------------------------------------------


def test_introspection_of_a_live_token_gives_its_claims(platform: Platform) -> None:
    auth = platform.client_credentials("dgme")
    token = platform.token("dgme", scope="cases:read referrals:read")
    response = introspect(platform, token, auth)
    assert response.status_code == 200, response.text
    body = response.json()
    claims = token_parts(token)[1]
    assert body["active"] is True
    for claim in ("client_id", "sub", "org", "scope", "exp", "iat", "jti", "iss"):
        assert body[claim] == claims[claim], claim
    assert body["scope"] == "cases:read referrals:read" and body["org"] == "dgme"


@pytest.mark.parametrize("kind", ["expired", "garbage", "forged-signature", "unknown-refresh-token"])
def test_introspection_says_inactive_and_nothing_more(platform: Platform, kind: str) -> None:
    now = int(time.time())
    token = {
        "expired": lambda: sign(signing_key(platform), claims_for(platform, iat=now - 3600, nbf=now - 3600,
                                                                  exp=now - 1800)),
        "garbage": lambda: "not-a-token",
        "forged-signature": lambda: platform.token("dgme")[:-6] + "AAAAAA",
        "unknown-refresh-token": lambda: "x" * 64,
    }[kind]()
    response = introspect(platform, token, platform.client_credentials("dgme"))
    assert response.status_code == 200, response.text
    assert response.json() == {"active": False}


def test_introspection_never_reveals_another_organisations_token(platform: Platform) -> None:
    unicef_token = platform.token("unicef")
    response = introspect(platform, unicef_token, platform.client_credentials("dgme"))
    assert response.status_code == 200 and response.json() == {"active": False}
    assert introspect(platform, unicef_token, platform.client_credentials("unicef")).json()["active"] is True


def test_introspection_needs_an_authenticated_confidential_client(platform: Platform) -> None:
    token = platform.token("dgme")
    assert introspect(platform, token, None).status_code == 401
    client_id, _ = platform.client_credentials("dgme")
    assert introspect(platform, token, (client_id, "wrong-secret")).status_code == 401
    app = public_client(platform)
    assert introspect(platform, token, None, client_id=app.client_id).status_code in (400, 401)


def test_introspection_of_refresh_tokens(platform: Platform) -> None:
    app, who = public_client(platform, "dgme"), person(platform, "dgme")
    body = tokens_for(platform, app, who)
    auth = platform.client_credentials("dgme")
    live = introspect(platform, body["refresh_token"], auth, token_type_hint="refresh_token").json()
    assert live["active"] is True and live["token_type"] == "refresh_token"
    assert live["sub"] == who.person_id and live["client_id"] == app.client_id and live["org"] == "dgme"
    assert refresh(platform, app, body["refresh_token"]).status_code == 200
    assert introspect(platform, body["refresh_token"], auth).json() == {"active": False}  # rotated
    assert introspect(platform, body["refresh_token"], platform.client_credentials("ame")).json() == {"active": False}


# --- revocation (RFC 7009) ----------------------------------------------------------------------


def test_a_revoked_access_token_stops_working_at_the_gateway_and_in_services(platform: Platform) -> None:
    auth = platform.client_credentials("dgme")
    token = platform.token("dgme")
    assert gateway_status(platform, token) == 200
    assert service_code(platform, token) == "NOT_FOUND"

    response = revoke(platform, token, auth, token_type_hint="access_token")
    assert response.status_code == 200, response.text

    eventually(lambda: gateway_status(platform, token) == 401, timeout=10)
    eventually(lambda: service_code(platform, token) == "UNAUTHENTICATED", timeout=10)
    refused = httpx.post(platform.graphql_url, json={"query": ME}, headers={"Authorization": f"Bearer {token}"})
    assert "revoked" in refused.json()["errors"][0]["message"]
    assert introspect(platform, token, auth).json() == {"active": False}
    other = platform.token("dgme")  # only that token: the client's other tokens still work
    assert gateway_status(platform, other) == 200 and service_code(platform, other) == "NOT_FOUND"


def test_revoking_is_idempotent_and_silent_about_unknown_tokens(platform: Platform) -> None:
    auth = platform.client_credentials("dgme")
    token = platform.token("dgme")
    assert revoke(platform, token, auth).status_code == 200
    assert revoke(platform, token, auth).status_code == 200
    assert revoke(platform, "not-a-token", auth).status_code == 200


def test_a_client_cannot_revoke_another_clients_token(platform: Platform) -> None:
    unicef_token = platform.token("unicef")
    response = revoke(platform, unicef_token, platform.client_credentials("dgme"))
    assert response.status_code != 500
    assert gateway_status(platform, unicef_token) == 200
    assert service_code(platform, unicef_token) == "NOT_FOUND"


def test_revocation_needs_client_authentication(platform: Platform) -> None:
    token = platform.token("dgme")
    assert revoke(platform, token, None).status_code in (400, 401)
    assert gateway_status(platform, token) == 200


def test_a_public_client_revokes_its_refresh_token_and_with_it_the_grant(platform: Platform) -> None:
    app, who = public_client(platform), person(platform)
    body = tokens_for(platform, app, who)
    response = revoke(platform, body["refresh_token"], None, client_id=app.client_id,
                      token_type_hint="refresh_token")
    assert response.status_code == 200, response.text
    assert refresh(platform, app, body["refresh_token"]).json()["error"] == "invalid_grant"
    eventually(lambda: gateway_status(platform, body["access_token"]) == 401, timeout=10)
    eventually(lambda: service_code(platform, body["access_token"]) == "UNAUTHENTICATED", timeout=10)


def test_revoking_a_client_stops_its_live_tokens(platform: Platform) -> None:
    auth = confidential_client(platform)
    token = client_token(platform, auth)
    assert gateway_status(platform, token) == 200 and service_code(platform, token) == "NOT_FOUND"

    output = admin(platform, "revoke-client", auth[0])
    assert "revoked" in output

    eventually(lambda: gateway_status(platform, token) == 401, timeout=10)
    eventually(lambda: service_code(platform, token) == "UNAUTHENTICATED", timeout=10)
    again = httpx.post(f"{platform.base_url}/oauth/token", data={"grant_type": "client_credentials"}, auth=auth)
    assert again.status_code == 401 and again.json()["error"] == "invalid_client"
    # Other clients are untouched.
    assert gateway_status(platform, platform.token("dgme")) == 200


def test_revoking_a_public_client_ends_its_peoples_sessions(platform: Platform) -> None:
    app, who = public_client(platform), person(platform)
    body = tokens_for(platform, app, who)
    admin(platform, "revoke-client", app.client_id)
    eventually(lambda: gateway_status(platform, body["access_token"]) == 401, timeout=10)
    eventually(lambda: service_code(platform, body["access_token"]) == "UNAUTHENTICATED", timeout=10)
    assert refresh(platform, app, body["refresh_token"]).status_code in (400, 401)


# --- a standards-based client (authlib's own, not ours) -----------------------------------------


def test_an_independent_oauth_client_discovers_the_server_and_uses_it(platform: Platform) -> None:
    meta = httpx.get(f"{platform.base_url}/.well-known/oauth-authorization-server", timeout=10).json()
    client_id, secret = platform.client_credentials("iom")
    with OAuth2Client(client_id, secret, token_endpoint_auth_method="client_secret_basic",
                      scope="cases:read referrals:read") as client:
        token = client.fetch_token(meta["token_endpoint"], grant_type="client_credentials")
        assert token["token_type"].lower() == "bearer" and token["expires_in"] <= 900
        assert set(token["scope"].split()) == {"cases:read", "referrals:read"}
        info = client.introspect_token(meta["introspection_endpoint"], token=token["access_token"]).json()
        assert info["active"] is True and info["client_id"] == client_id and info["org"] == "iom"
        me = client.post(platform.graphql_url, json={"query": ME})  # the client sends the bearer token itself
        assert me.status_code == 200 and me.json()["data"]["me"]["organisation"]["id"] == "iom"
        assert client.revoke_token(meta["revocation_endpoint"], token=token["access_token"]).status_code == 200
        after = client.introspect_token(meta["introspection_endpoint"], token=token["access_token"]).json()
        assert after == {"active": False}


# --- throttling and logs -------------------------------------------------------------------------


def test_repeated_token_failures_are_slowed_down_and_logged_without_the_secret(platform: Platform) -> None:
    client_id = f"guess-{uuid.uuid4().hex[:8]}"
    secret = f"Not-The-Secret-{uuid.uuid4().hex}"
    statuses = []
    for _ in range(7):
        response = httpx.post(f"{platform.base_url}/oauth/token", data={"grant_type": "client_credentials"},
                              auth=(client_id, secret), timeout=30)
        statuses.append(response.status_code)
    assert statuses[:5] == [401] * 5, statuses
    assert statuses[5:] == [429, 429], statuses
    assert int(response.headers["retry-after"]) > 0
    assert response.json()["error"] == "temporarily_unavailable"

    log_file = platform.log_dir / "gateway.log"

    def failure_lines() -> list[dict[str, Any]]:
        hashed = logged_pseudonym(platform, client_id)  # an id that names no client is logged as a pseudonym
        lines = [json.loads(line) for line in log_file.read_text().splitlines() if hashed in line]
        return [line for line in lines if line.get("event") in ("auth.failure", "auth.throttled")]

    lines = eventually(failure_lines, timeout=10)
    assert {line["event"] for line in lines} == {"auth.failure", "auth.throttled"}
    assert all(line["ip"] and line["endpoint"] == "token" for line in lines)
    assert secret not in log_file.read_text()
    # A well-behaved client is unaffected.
    assert gateway_status(platform, platform.token("dgme")) == 200


def test_unknown_and_known_clients_fail_alike(platform: Platform) -> None:
    client_id, _ = platform.client_credentials("croix-rouge")
    known = httpx.post(f"{platform.base_url}/oauth/token", data={"grant_type": "client_credentials"},
                       auth=(client_id, "wrong"), timeout=30)
    unknown = httpx.post(f"{platform.base_url}/oauth/token", data={"grant_type": "client_credentials"},
                         auth=(f"nobody-{uuid.uuid4().hex[:6]}", "wrong"), timeout=30)
    assert known.status_code == unknown.status_code == 401
    assert known.json() == unknown.json()


# --- key rotation (a private platform: rotating keys must not disturb other tests) --------------


@pytest.fixture(scope="module")
def rotating_platform() -> Iterator[Platform]:
    p = start_platform("segin-e2e-keys-")
    yield p
    stop_platform(p)


def jwks_kids(platform: Platform) -> set[str]:
    return {k["kid"] for k in httpx.get(f"{platform.base_url}/.well-known/jwks.json", timeout=10).json()["keys"]}


def test_key_rotation_keeps_old_tokens_valid_and_signs_new_ones_with_the_new_key(
        rotating_platform: Platform) -> None:
    p = rotating_platform
    old_token = p.token("dgme")
    old_kid = token_parts(old_token)[0]["kid"]
    assert service_code(p, old_token) == "NOT_FOUND"

    new_kid = json.loads(admin(p, "rotate-keys"))["kid"]
    assert new_kid != old_kid

    new_token = eventually(lambda: (t := p.token("dgme")) and token_parts(t)[0]["kid"] == new_kid and t, timeout=20)
    assert {old_kid, new_kid} <= jwks_kids(p)
    assert gateway_status(p, old_token) == 200 and service_code(p, old_token) == "NOT_FOUND"
    assert gateway_status(p, new_token) == 200
    eventually(lambda: service_code(p, new_token) == "NOT_FOUND", timeout=20)
    for org in ("unicef", "iom"):  # other services' verifiers too (intake answers for all of them here)
        assert service_code(p, p.token(org)) == "NOT_FOUND"

    # Once every token the old key signed has expired, it is retired and leaves the JWKS.
    with psycopg.connect(p.database_url, autocommit=True) as conn:
        conn.execute("update gateway.signing_keys set created_at = created_at - interval '2 hours'")
    eventually(lambda: old_kid not in jwks_kids(p), timeout=20)
    assert new_kid in jwks_kids(p)
    assert token_parts(p.token("dgme"))[0]["kid"] == new_kid
