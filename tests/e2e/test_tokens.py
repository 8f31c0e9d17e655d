"""Access tokens: what the gateway refuses, what the token endpoint issues, and that services check too."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import nats
import psycopg
import pytest
from joserfc.jwk import RSAKey

from devstack.platform import DEMO_DATA, Platform
from tests.e2e.conftest import Api, arrival
from tests.e2e.helpers_tokens import (
    INTERNAL,
    b64url_json,
    claims_for,
    hs256_token,
    internal_claims_for,
    internal_token,
    sign,
    signing_key,
    token_parts,
    unsigned_token,
    with_claims_replaced,
)

pytestmark = pytest.mark.e2e

ME = "{ me { subject clientId scopes organisation { id } } }"
REGISTER = """
mutation Register($input: ArrivalInput!, $key: String!) {
  registerArrival(input: $input, idempotencyKey: $key) { id }
}
"""
DEMO = json.loads(DEMO_DATA.read_text())
DEMO_SCOPES = {org["id"]: set(org["scopes"]) for org in DEMO["organisations"]}


def token_request(platform: Platform, form: dict[str, str], auth: tuple[str, str] | None) -> httpx.Response:
    return httpx.post(f"{platform.base_url}/oauth/token", data=form, auth=auth, timeout=10)


def assert_refused(response: httpx.Response) -> None:
    """401, a GraphQL-shaped UNAUTHENTICATED error, a Bearer challenge, and no data."""
    assert response.status_code == 401, response.text
    assert response.headers.get("www-authenticate", "").startswith("Bearer"), response.headers
    body = response.json()
    assert not body.get("data")
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert "Traceback" not in response.text


# --- tokens the gateway must refuse -------------------------------------------------------------


def _expired(p: Platform) -> str:
    now = int(time.time())
    return sign(signing_key(p), claims_for(p, iat=now - 7200, nbf=now - 7200, exp=now - 3600))


def _not_yet_valid(p: Platform) -> str:
    now = int(time.time())
    return sign(signing_key(p), claims_for(p, iat=now, nbf=now + 3600, exp=now + 4000))


def _wrong_audience(p: Platform) -> str:
    return sign(signing_key(p), claims_for(p, aud="some-other-api"))


def _wrong_issuer(p: Platform) -> str:
    return sign(signing_key(p), claims_for(p, iss="https://auth.example.org"))


def _alg_none(p: Platform) -> str:
    return unsigned_token(claims_for(p), kid=signing_key(p).kid)


def _hs256_with_public_key(p: Platform) -> str:
    key = signing_key(p)
    return hs256_token(key.as_pem(private=False), claims_for(p), kid=key.kid)


def _unknown_kid(p: Platform) -> str:
    stranger = RSAKey.generate_key(2048, private=True)
    return sign(stranger, claims_for(p), kid="not-a-segin-key")


def _known_kid_foreign_key(p: Platform) -> str:
    stranger = RSAKey.generate_key(2048, private=True)
    return sign(stranger, claims_for(p), kid=signing_key(p).kid)


def _embedded_jwk(p: Platform) -> str:
    """The attacker's own public key carried in the header, hoping the verifier trusts it."""
    stranger = RSAKey.generate_key(2048, private=True)
    return sign(stranger, claims_for(p), kid=None, jwk=stranger.as_dict(private=False))


def _tampered_org(p: Platform) -> str:
    return with_claims_replaced(p.token("dgme"), org="ame")


def _tampered_scope(p: Platform) -> str:
    return with_claims_replaced(p.token("unicef"), scope="cases:read cases:write referrals:read")


def _typ_jwt(p: Platform) -> str:
    return sign(signing_key(p), claims_for(p), typ="JWT")


def _typ_missing(p: Platform) -> str:
    return sign(signing_key(p), claims_for(p), typ=None)


def _missing_org(p: Platform) -> str:
    return sign(signing_key(p), claims_for(p, org=None))


def _missing_exp(p: Platform) -> str:
    return sign(signing_key(p), claims_for(p, exp=None))


def _malformed_three_parts(p: Platform) -> str:
    return "abc.def.ghi"


def _malformed_garbage(p: Platform) -> str:
    return "not-a-token"


def _malformed_header_only(p: Platform) -> str:
    return b64url_json({"alg": "RS256", "typ": "at+jwt"})


FORGERIES: dict[str, Callable[[Platform], str]] = {
    "expired": _expired,
    "not-yet-valid": _not_yet_valid,
    "wrong-audience": _wrong_audience,
    "wrong-issuer": _wrong_issuer,
    "alg-none": _alg_none,
    "hs256-signed-with-rsa-public-key": _hs256_with_public_key,
    "unknown-kid": _unknown_kid,
    "known-kid-foreign-key": _known_kid_foreign_key,
    "embedded-jwk": _embedded_jwk,
    "tampered-org": _tampered_org,
    "tampered-scope": _tampered_scope,
    "typ-jwt": _typ_jwt,
    "typ-missing": _typ_missing,
    "missing-org": _missing_org,
    "missing-exp": _missing_exp,
    "malformed-three-parts": _malformed_three_parts,
    "malformed-garbage": _malformed_garbage,
    "malformed-header-only": _malformed_header_only,
}


def test_no_token_is_refused(api: Api) -> None:
    assert_refused(api.post(ME))


@pytest.mark.parametrize("authorization",
                         ["Basic ZGdtZTpzZWNyZXQ=", "Bearer", "Token abc.def.ghi", "token-without-scheme"])
def test_authorization_header_without_a_bearer_token_is_refused(api: Api, authorization: str) -> None:
    assert_refused(api.post(ME, headers={"Authorization": authorization}))


@pytest.mark.parametrize("forge", list(FORGERIES.values()), ids=list(FORGERIES))
def test_forged_or_invalid_token_is_refused(api: Api, platform: Platform, forge: Callable[[Platform], str]) -> None:
    assert_refused(api.post(ME, token=forge(platform)))


def test_a_correctly_built_token_is_accepted(api: Api, platform: Platform) -> None:
    """Control for the forgeries above: the same construction with nothing wrong passes."""
    response = api.post(ME, token=sign(signing_key(platform), claims_for(platform, org="iom")))
    assert response.status_code == 200, response.text
    assert response.json()["data"]["me"]["organisation"]["id"] == "iom"


def test_a_refused_token_grants_no_access_even_to_mutations(api: Api, platform: Platform) -> None:
    key = f"forged-{uuid.uuid4()}"
    response = api.post(REGISTER, {"input": arrival(), "key": key}, token=_alg_none(platform))
    assert_refused(response)
    with psycopg.connect(platform.database_url) as conn:
        (count,) = conn.execute("select count(*) from intake.idempotency_keys where key = %s", (key,)).fetchone()
    assert count == 0


# --- the token endpoint -------------------------------------------------------------------------


def test_wrong_client_secret_is_invalid_client(platform: Platform) -> None:
    client_id, _ = platform.client_credentials("dgme")
    response = token_request(platform, {"grant_type": "client_credentials"}, (client_id, "not-the-secret"))
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_client"
    assert "access_token" not in response.json()


def test_unknown_client_is_invalid_client(platform: Platform) -> None:
    response = token_request(platform, {"grant_type": "client_credentials"}, ("nobody-demo", "whatever"))
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_client"


def test_secret_of_another_client_is_invalid_client(platform: Platform) -> None:
    client_id, _ = platform.client_credentials("dgme")
    _, other_secret = platform.client_credentials("unicef")
    response = token_request(platform, {"grant_type": "client_credentials"}, (client_id, other_secret))
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_client"


def test_scope_beyond_the_organisation_ceiling_is_invalid_scope(platform: Platform) -> None:
    response = token_request(platform, {"grant_type": "client_credentials", "scope": "cases:read cases:write"},
                             platform.client_credentials("unicef"))
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_scope"
    assert "access_token" not in response.json()


def test_unknown_scope_is_invalid_scope(platform: Platform) -> None:
    response = token_request(platform, {"grant_type": "client_credentials", "scope": "admin:everything"},
                             platform.client_credentials("dgme"))
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_scope"


@pytest.mark.parametrize("grant_type", ["password", "urn:example:nope"])
def test_unsupported_grant_type(platform: Platform, grant_type: str) -> None:
    response = token_request(platform, {"grant_type": grant_type}, platform.client_credentials("dgme"))
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "unsupported_grant_type"


@pytest.mark.parametrize("grant_type", ["authorization_code", "refresh_token"])
def test_grants_for_people_are_refused_to_a_system_client(platform: Platform, grant_type: str) -> None:
    """These grants exist (for people's applications) but not for a client_credentials client."""
    response = token_request(platform, {"grant_type": grant_type, "code": "x", "refresh_token": "x",
                                        "redirect_uri": "https://example.org/cb", "code_verifier": "x" * 43},
                             platform.client_credentials("dgme"))
    assert response.status_code in (400, 401), response.text
    assert response.json()["error"] in ("unauthorized_client", "invalid_grant", "invalid_request")
    assert "access_token" not in response.json()


@pytest.mark.parametrize("org", ["dgme", "unicef"])
def test_no_scope_asked_gives_the_client_its_full_allowed_scope(platform: Platform, org: str) -> None:
    response = token_request(platform, {"grant_type": "client_credentials"}, platform.client_credentials(org))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"].lower() == "bearer"
    assert set(body["scope"].split()) == DEMO_SCOPES[org]
    _, claims, _ = token_parts(body["access_token"])
    assert set(claims["scope"].split()) == DEMO_SCOPES[org]


def test_narrower_scope_is_granted_as_asked(platform: Platform) -> None:
    response = token_request(platform, {"grant_type": "client_credentials", "scope": "cases:read referrals:read"},
                             platform.client_credentials("dgme"))
    assert response.status_code == 200, response.text
    _, claims, _ = token_parts(response.json()["access_token"])
    assert set(claims["scope"].split()) == {"cases:read", "referrals:read"}


def test_client_secret_post_is_accepted(platform: Platform) -> None:
    client_id, secret = platform.client_credentials("iom")
    response = token_request(platform, {"grant_type": "client_credentials", "client_id": client_id,
                                        "client_secret": secret}, None)
    assert response.status_code == 200, response.text
    assert token_parts(response.json()["access_token"])[1]["org"] == "iom"


def test_issued_token_claims_and_header(platform: Platform) -> None:
    client_id, secret = platform.client_credentials("csref-gao")
    response = token_request(platform, {"grant_type": "client_credentials"}, (client_id, secret))
    assert response.status_code == 200, response.text
    assert response.headers.get("cache-control") == "no-store"
    body = response.json()
    header, claims, _ = token_parts(body["access_token"])

    assert header["typ"] == "at+jwt"
    assert header["alg"] == "RS256"
    jwks = httpx.get(f"{platform.base_url}/.well-known/jwks.json", timeout=10).json()
    assert header["kid"] in {k["kid"] for k in jwks["keys"]}
    assert all("d" not in k and "p" not in k for k in jwks["keys"]), "the JWKS must not publish private parts"

    for claim in ("iss", "sub", "aud", "exp", "iat", "jti", "client_id", "org", "scope"):
        assert claim in claims, claim
    assert claims["iss"] == platform.base_url
    assert claims["aud"] in ("segin-api", ["segin-api"])
    assert claims["client_id"] == client_id
    assert claims["sub"] == client_id
    assert claims["org"] == "csref-gao"
    assert claims["org_type"] == "SERVICE_PROVIDER"
    assert 0 < claims["exp"] - claims["iat"] <= 15 * 60
    assert body["expires_in"] <= 15 * 60

    second = token_parts(platform.token("csref-gao"))[1]
    assert second["jti"] != claims["jti"], "every token has its own jti"


def test_authorization_server_metadata(platform: Platform) -> None:
    response = httpx.get(f"{platform.base_url}/.well-known/oauth-authorization-server", timeout=10)
    assert response.status_code == 200
    meta = response.json()
    assert meta["issuer"] == platform.base_url
    assert meta["token_endpoint"] == f"{platform.base_url}/oauth/token"
    assert meta["jwks_uri"] == f"{platform.base_url}/.well-known/jwks.json"
    assert "client_credentials" in meta["grant_types_supported"]
    # The advertised endpoints are the real ones.
    assert httpx.get(meta["jwks_uri"], timeout=10).json()["keys"]
    client_id, secret = platform.client_credentials("dgme")
    issued = httpx.post(meta["token_endpoint"], data={"grant_type": "client_credentials"}, auth=(client_id, secret),
                        timeout=10)
    assert issued.status_code == 200
    assert token_parts(issued.json()["access_token"])[1]["iss"] == meta["issuer"]


# --- scopes at the API --------------------------------------------------------------------------


def _cases_named(platform: Platform, given_name: str) -> int:
    with psycopg.connect(platform.database_url) as conn:
        (count,) = conn.execute("select count(*) from intake.cases where given_name = %s", (given_name,)).fetchone()
    return count


def test_organisation_without_the_scope_cannot_register(api: Api, platform: Platform) -> None:
    name = f"Scope{uuid.uuid4().hex[:8]}"
    body = api.gql("unicef", REGISTER, {"input": arrival(givenName=name), "key": str(uuid.uuid4())})
    assert not body.get("data")
    assert body["errors"][0]["extensions"]["code"] == "INSUFFICIENT_SCOPE"
    assert _cases_named(platform, name) == 0


def test_token_narrowed_below_the_client_scope_cannot_register(api: Api, platform: Platform) -> None:
    name = f"Narrow{uuid.uuid4().hex[:8]}"
    token = platform.token("dgme", scope="cases:read")
    response = api.post(REGISTER, {"input": arrival(givenName=name), "key": str(uuid.uuid4())}, token=token)
    assert response.status_code == 200, response.text
    body = response.json()
    assert not body.get("data")
    assert body["errors"][0]["extensions"]["code"] == "INSUFFICIENT_SCOPE"
    assert _cases_named(platform, name) == 0


# --- services verify tokens themselves ----------------------------------------------------------


async def _ask(platform: Platform, subject: str, payload: dict[str, Any],
               headers: dict[str, str] | None) -> dict[str, Any]:
    nc = await nats.connect(**platform.nats_options(), name="segin-e2e-tokens")
    try:
        msg = await nc.request(subject, json.dumps(payload).encode(), timeout=10, headers=headers)
    finally:
        await nc.close()
    return json.loads(msg.data)


async def test_service_refuses_a_request_without_a_token(platform: Platform) -> None:
    reply = await _ask(platform, "svc.intake.get_case", {"case_id": str(uuid.uuid4())}, None)
    assert reply.get("error", {}).get("code") == "UNAUTHENTICATED", reply
    assert "data" not in reply


# Services accept only the gateway's internal tokens (gateway/service_tokens.py), so these forgeries
# are shaped as internal tokens for intake: each is refused for its own flaw, not for being an API
# token (tests/e2e/test_internal_tokens.py checks that API tokens are refused too).


def _svc_alg_none(p: Platform) -> str:
    return unsigned_token(internal_claims_for(p), kid=signing_key(p).kid, **INTERNAL)


def _svc_hs256_with_public_key(p: Platform) -> str:
    key = signing_key(p)
    return hs256_token(key.as_pem(private=False), internal_claims_for(p), kid=key.kid, **INTERNAL)


def _svc_tampered_org(p: Platform) -> str:
    return with_claims_replaced(internal_token(p, p.token("dgme")), org="ame")


def _svc_expired(p: Platform) -> str:
    now = int(time.time())
    return sign(signing_key(p), internal_claims_for(p, iat=now - 7200, nbf=now - 7200, exp=now - 3600), **INTERNAL)


def _svc_unknown_kid(p: Platform) -> str:
    stranger = RSAKey.generate_key(2048, private=True)
    return sign(stranger, internal_claims_for(p), kid="not-a-segin-key", **INTERNAL)


@pytest.mark.parametrize("forge", [_svc_alg_none, _svc_hs256_with_public_key, _svc_tampered_org, _svc_expired,
                                   _svc_unknown_kid],
                         ids=["alg-none", "hs256-public-key", "tampered-org", "expired", "unknown-kid"])
async def test_service_refuses_a_forged_token(platform: Platform, forge: Callable[[Platform], str]) -> None:
    reply = await _ask(platform, "svc.intake.get_case", {"case_id": str(uuid.uuid4())},
                       {"Authorization": f"Bearer {forge(platform)}"})
    assert reply.get("error", {}).get("code") == "UNAUTHENTICATED", reply
    assert "data" not in reply


async def test_service_answers_a_valid_token(platform: Platform) -> None:
    """Control: the same request with a real (internal) token gets past authentication (to NOT_FOUND)."""
    reply = await _ask(platform, "svc.intake.get_case", {"case_id": str(uuid.uuid4())},
                       {"Authorization": f"Bearer {internal_token(platform, platform.token('dgme'))}"})
    assert reply.get("error", {}).get("code") == "NOT_FOUND", reply
