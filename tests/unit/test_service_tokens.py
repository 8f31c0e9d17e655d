"""gateway/service_tokens.py and the verifiers: an internal token works at its one service only."""

from __future__ import annotations

import time
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from gateway.keys import KeyRing, SigningKeys
from gateway.service_tokens import LIFETIME, MAX_CACHED, REUSE_MARGIN, ServiceTokens, service_of
from kernel.denylist import DenyList
from kernel.errors import Unauthenticated
from kernel.tokens import INTERNAL_TOKEN_TYPE, Principal, TokenVerifier, service_audience
from tests.e2e.helpers_tokens import token_parts

ISSUER = "https://gateway.segin.test"
KEY = RSAKey.generate_key(2048, parameters={"kid": "key-1", "alg": "RS256"}, private=True)
NEW_KEY = RSAKey.generate_key(2048, parameters={"kid": "key-2", "alg": "RS256"}, private=True)


def public(*keys: RSAKey) -> KeySet:
    return KeySet([RSAKey.import_key(k.as_dict(private=False)) for k in keys])


async def keys() -> KeySet:
    return public(KEY, NEW_KEY)


def api_verifier(denylist: DenyList | None = None) -> TokenVerifier:
    return TokenVerifier(keys, ISSUER, "segin-api", denylist=denylist)


def service_verifier(service: str, denylist: DenyList | None = None) -> TokenVerifier:
    """As ``kernel/runtime.py`` builds it for ``service``."""
    return TokenVerifier(keys, ISSUER, service_audience(service), denylist=denylist,
                         token_types=(INTERNAL_TOKEN_TYPE,))


def api_token(**changes: Any) -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": "segin-api", "sub": "person-7", "org": "dgme", "org_type": "STATE",
              "client_id": "dgme-web", "scope": "cases:read sensitive:trafficking not-a-segin-scope",
              "jti": "jti-api-1", "iat": now - 100, "nbf": now - 100, "exp": now + 800, **changes}
    return jwt.encode({"alg": "RS256", "typ": "at+jwt", "kid": KEY.kid}, claims, KEY)


async def caller(**changes: Any) -> Principal:
    return await api_verifier().verify(api_token(**changes))


def minter(lifetime: int = LIFETIME) -> ServiceTokens:
    return ServiceTokens(KeyRing(SigningKeys(KEY, public(KEY))), ISSUER, lifetime=lifetime)


async def test_an_internal_token_names_the_same_caller_for_one_service_for_a_minute() -> None:
    principal = await caller()
    token = minter().for_subject(principal, "svc.notifications.list")
    header, claims, _ = token_parts(token)
    assert header == {"alg": "RS256", "typ": INTERNAL_TOKEN_TYPE, "kid": KEY.kid}
    assert claims["aud"] == "segin-svc:notifications" and claims["iss"] == ISSUER
    assert (claims["sub"], claims["org"], claims["org_type"], claims["client_id"]) == (
        "person-7", "dgme", "STATE", "dgme-web")
    # The API token's jti and iat: revoking it, or its client, reaches this token too.
    assert claims["jti"] == "jti-api-1" and claims["iat"] == principal.issued_at
    assert claims["exp"] <= time.time() + LIFETIME + 1
    assert claims["scope"] == "cases:read sensitive:trafficking"  # only scopes the services know

    seen = await service_verifier("notifications").verify(token)
    assert seen == Principal(subject="person-7", org_id="dgme", client_id="dgme-web",
                             scopes=frozenset({"cases:read", "sensitive:trafficking"}), jti="jti-api-1",
                             token=token, org_type="STATE")


async def test_an_internal_token_never_outlives_the_api_token() -> None:
    soon = int(time.time()) + 10
    token = minter().for_service(await caller(exp=soon), "intake")
    assert token_parts(token)[1]["exp"] == soon


async def test_an_internal_token_is_refused_at_the_public_api_and_at_other_services() -> None:
    token = minter().for_service(await caller(), "notifications")
    with pytest.raises(Unauthenticated):
        await api_verifier().verify(token)
    for other in ("intake", "referral"):
        with pytest.raises(Unauthenticated):
            await service_verifier(other).verify(token)


async def test_an_api_token_is_refused_by_every_service() -> None:
    token = api_token()
    for service in ("intake", "referral", "notifications", "followup"):
        with pytest.raises(Unauthenticated):
            await service_verifier(service).verify(token)


async def test_type_and_audience_each_keep_the_two_kinds_apart() -> None:
    """Either check alone refuses the other kind: a mix-up in one is not enough."""
    now = int(time.time())
    base = {"iss": ISSUER, "sub": "s", "org": "dgme", "jti": "j", "iat": now, "exp": now + 60}
    internal_typ_api_aud = jwt.encode({"alg": "RS256", "typ": INTERNAL_TOKEN_TYPE, "kid": KEY.kid},
                                      {**base, "aud": "segin-api"}, KEY)
    with pytest.raises(Unauthenticated):
        await api_verifier().verify(internal_typ_api_aud)
    access_typ_service_aud = jwt.encode({"alg": "RS256", "typ": "at+jwt", "kid": KEY.kid},
                                        {**base, "aud": service_audience("intake")}, KEY)
    with pytest.raises(Unauthenticated):
        await service_verifier("intake").verify(access_typ_service_aud)


async def test_revoking_the_api_token_or_its_client_refuses_its_internal_tokens() -> None:
    principal = await caller()
    token = minter().for_service(principal, "intake")
    by_jti, by_client = DenyList(), DenyList()
    by_jti.deny_jti("jti-api-1", time.time() + 900)
    by_client.deny_client("dgme-web", time.time())  # every token issued until now
    for denylist in (by_jti, by_client):
        with pytest.raises(Unauthenticated, match="revoked"):
            await service_verifier("intake", denylist).verify(token)
    later = DenyList()
    later.deny_client("dgme-web", float(principal.issued_at or 0) - 1)  # revoked before it was issued
    assert (await service_verifier("intake", later).verify(token)).jti == "jti-api-1"


async def test_a_minted_token_is_reused_until_shortly_before_it_expires() -> None:
    principal, tokens = await caller(), minter()
    now = time.time()
    first = tokens.for_service(principal, "intake", now)
    assert tokens.for_service(principal, "intake", now + LIFETIME - REUSE_MARGIN - 2) == first
    assert tokens.for_service(principal, "referral", now) != first
    assert tokens.for_service(await caller(jti="jti-api-2"), "intake", now) != first
    renewed = tokens.for_service(principal, "intake", now + LIFETIME - REUSE_MARGIN + 1)
    assert renewed != first and token_parts(renewed)[1]["exp"] > token_parts(first)[1]["exp"]


async def test_a_rotated_key_signs_the_next_internal_token() -> None:
    principal, ring = await caller(), KeyRing(SigningKeys(KEY, public(KEY)))
    tokens = ServiceTokens(ring, ISSUER)
    assert token_parts(tokens.for_service(principal, "intake"))[0]["kid"] == KEY.kid
    ring._keys = SigningKeys(NEW_KEY, public(KEY, NEW_KEY))  # what KeyRing.reload does
    assert token_parts(tokens.for_service(principal, "intake"))[0]["kid"] == NEW_KEY.kid


async def test_the_cache_stays_bounded() -> None:
    principal, tokens = await caller(), minter()
    for n in range(MAX_CACHED + 10):
        tokens._cache[(f"jti-{n}", "intake", str(KEY.kid))] = ("t", int(time.time()) + 60)
    tokens.for_service(principal, "intake")
    assert len(tokens._cache) <= MAX_CACHED


@pytest.mark.parametrize("subject", ["svc.intake", "evt.intake.x", "svc..get_case", "svc.intake.a.b", ""])
def test_only_service_request_subjects_name_a_service(subject: str) -> None:
    with pytest.raises(ValueError):
        service_of(subject)
    assert service_of("svc.referral.accept") == "referral"
