"""Helpers for the end-to-end token tests: real signing key, forged tokens, raw JOSE pieces.

Tokens that must fail for one reason only (expired, wrong audience, ...) are signed with the
platform's real current key, read from the gateway's table, so the signature is never the
reason they are refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import nats
import psycopg
from joserfc import jwt
from joserfc.jwk import RSAKey

from devstack.platform import Platform
from gateway import service_tokens
from kernel.tokens import INTERNAL_TOKEN_TYPE, Principal, service_audience


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def b64url_json(value: dict[str, Any]) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def token_parts(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    """(header, claims, signature) of a compact JWS, without verifying anything."""
    head, body, signature = token.split(".")
    return json.loads(unb64url(head)), json.loads(unb64url(body)), signature


def signing_key(platform: Platform) -> RSAKey:
    """The gateway's current (private) signing key, as the gateway itself loads it."""
    with psycopg.connect(platform.database_url) as conn:
        row = conn.execute(
            "select private_jwk from gateway.signing_keys where retired_at is null order by created_at desc limit 1"
        ).fetchone()
    assert row is not None, "the gateway has no signing key"
    return RSAKey.import_key(row[0])


def claims_for(platform: Platform, org: str = "dgme", **overrides: Any) -> dict[str, Any]:
    """Claims of a token the gateway would issue to ``org``'s demo client; ``None`` drops a claim."""
    now = int(time.time())
    client_id = f"{org}-demo"
    claims: dict[str, Any] = {
        "iss": platform.base_url,
        "sub": client_id,
        "aud": "segin-api",
        "exp": now + 600,
        "iat": now,
        "nbf": now,
        "jti": str(uuid.uuid4()),
        "client_id": client_id,
        "org": org,
        "scope": "cases:read cases:write referrals:read referrals:write notifications:read directory:read",
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def sign(key: RSAKey, claims: dict[str, Any], **header: Any) -> str:
    """An RS256 token over ``claims``; header defaults to typ at+jwt and the key's kid."""
    full_header = {"alg": "RS256", "typ": "at+jwt", "kid": key.kid, **header}
    full_header = {k: v for k, v in full_header.items() if v is not None}
    return jwt.encode(full_header, claims, key)


def unsigned_token(claims: dict[str, Any], **header: Any) -> str:
    """``alg: none`` by hand (libraries rightly refuse to produce it)."""
    return f"{b64url_json({'alg': 'none', 'typ': 'at+jwt', **header})}.{b64url_json(claims)}."


def hs256_token(secret: bytes, claims: dict[str, Any], **header: Any) -> str:
    """HMAC-SHA256 over header.payload with ``secret``: the classic RS256/HS256 key-confusion forgery."""
    signing_input = f"{b64url_json({'alg': 'HS256', 'typ': 'at+jwt', **header})}.{b64url_json(claims)}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(mac)}"


def with_claims_replaced(token: str, **changes: Any) -> str:
    """The same header and signature over a modified payload (a tampered token)."""
    head, body, signature = token.split(".")
    claims = json.loads(unb64url(body))
    claims.update(changes)
    return f"{head}.{b64url_json(claims)}.{signature}"


def key_with_kid(platform: Platform, kid: str) -> RSAKey:
    """The gateway's private key ``kid`` (retired or not)."""
    with psycopg.connect(platform.database_url) as conn:
        row = conn.execute("select private_jwk from gateway.signing_keys where kid = %s", (kid,)).fetchone()
    assert row is not None, f"the gateway has no key {kid}"
    return RSAKey.import_key(row[0])


def internal_token(platform: Platform, api_token: str, service: str = "intake") -> str:
    """What the gateway sends ``service`` when ``api_token``'s holder calls it, made with the
    gateway's own code and the key that signed ``api_token`` (as a gateway that has not reloaded
    its keys yet would). Tests that talk to a service directly over NATS need it: services refuse
    API tokens."""
    header, claims, _ = token_parts(api_token)
    principal = Principal.from_claims(claims, api_token)
    minted = service_tokens.internal_claims(principal, service, str(claims["iss"]), int(time.time()))
    return service_tokens.sign(key_with_kid(platform, header["kid"]), minted)


def internal_claims_for(platform: Platform, service: str = "intake", **overrides: Any) -> dict[str, Any]:
    """``claims_for`` shaped as an internal token for ``service``."""
    return claims_for(platform, **{"aud": service_audience(service), **overrides})


INTERNAL = {"typ": INTERNAL_TOKEN_TYPE}  # header override for ``sign``, ``unsigned_token``, ``hs256_token``


async def ask_service(platform: Platform, subject: str, payload: dict[str, Any], token: str) -> dict[str, Any]:
    """One request straight to a service over NATS (operator credentials), carrying ``token``; the reply body."""
    nc = await nats.connect(**platform.nats_options(), name="segin-e2e-ask-service")
    try:
        msg = await nc.request(subject, json.dumps(payload).encode(), timeout=10,
                               headers={"Authorization": f"Bearer {token}"})
    finally:
        await nc.close()
    reply: dict[str, Any] = json.loads(msg.data)
    return reply
