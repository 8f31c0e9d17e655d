"""Verification of the gateway's tokens, done by every process itself.

Two kinds, never interchangeable: RFC 9068 access tokens (``typ: at+jwt``, ``aud`` the public API)
are what clients present to the gateway; internal tokens (``typ: segin-internal+jwt``, ``aud``
``segin-svc:<service>``) are what the gateway sends one service for one caller
(``gateway/service_tokens.py``). A service accepts only internal tokens addressed to itself, so
a token seen on the bus is worth nothing at the public API or at another service.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from kernel.denylist import DenyList
from kernel.errors import Forbidden, Unauthenticated

ALGORITHMS = ["RS256"]
ACCESS_TOKEN_TYPES = ("at+jwt", "application/at+jwt")  # RFC 9068 §2.1
INTERNAL_TOKEN_TYPE = "segin-internal+jwt"
KeyLoader = Callable[[], Awaitable[KeySet]]


@dataclass(frozen=True)
class Principal:
    """Who is calling: the organisation, the client or person, and what the token allows."""

    subject: str
    org_id: str
    client_id: str
    scopes: frozenset[str]
    jti: str
    token: str = field(repr=False)
    org_type: str | None = None  # STATE, NGO, INTERNATIONAL…: consent may name a type of organisation
    # When the token was issued and expires: an internal token derived from it keeps the one
    # (so revoking the client stops it) and never outlives the other. Not part of who calls.
    issued_at: int | None = field(default=None, compare=False)
    expires_at: int | None = field(default=None, compare=False)

    @classmethod
    def from_claims(cls, claims: dict[str, Any], token: str) -> "Principal":
        """The caller named by already verified claims."""
        return cls(
            subject=str(claims["sub"]),
            org_id=str(claims["org"]),
            client_id=str(claims.get("client_id", "")),
            scopes=frozenset(str(claims.get("scope", "")).split()),
            jti=str(claims["jti"]),
            token=token,
            org_type=str(claims["org_type"]) if claims.get("org_type") else None,
            issued_at=int(claims["iat"]) if isinstance(claims.get("iat"), (int, float)) else None,
            expires_at=int(claims["exp"]),
        )

    def require(self, scope: str) -> None:
        if scope not in self.scopes:
            raise Forbidden(f"This operation needs the '{scope}' scope.", code="INSUFFICIENT_SCOPE")


def service_audience(service: str) -> str:
    """The ``aud`` of internal tokens for ``service``: only that service accepts them."""
    return f"segin-svc:{service}"


def http_key_loader(jwks_url: str) -> KeyLoader:
    async def load() -> KeySet:
        async with httpx.AsyncClient(timeout=5) as client:
            response = await client.get(jwks_url)
            response.raise_for_status()
            return KeySet.import_key_set(response.json())

    return load


class TokenVerifier:
    """Checks signature (RS256 only), ``typ``, issuer, audience, expiry, not-before and revocation.

    Keys are cached; an unknown ``kid`` triggers at most one refresh every ``refresh_after`` s,
    so a forged ``kid`` cannot make us hammer the key endpoint, while a key rotated in by the
    gateway is picked up within seconds. ``denylist`` (``kernel.denylist``) names revoked tokens
    and clients. ``token_types``: the ``typ`` values accepted (access tokens at the gateway,
    ``INTERNAL_TOKEN_TYPE`` in services), so one kind is never taken for the other.
    """

    def __init__(self, load_keys: KeyLoader, issuer: str, audience: str, *, refresh_after: float = 5.0,
                 leeway: int = 30, denylist: DenyList | None = None,
                 token_types: tuple[str, ...] = ACCESS_TOKEN_TYPES) -> None:
        self._load_keys, self.issuer, self.audience = load_keys, issuer, audience
        self._token_types = tuple(t.lower() for t in token_types)
        self._keys: KeySet | None = None
        self._loaded_at = 0.0
        self._refresh_after, self._leeway = refresh_after, leeway
        self._denylist = denylist
        self._lock = asyncio.Lock()
        self._claims = jwt.JWTClaimsRegistry(
            leeway=leeway,
            iss={"essential": True, "value": issuer},
            aud={"essential": True, "value": audience},
            exp={"essential": True},
            sub={"essential": True},
            jti={"essential": True},
            org={"essential": True},
        )

    async def _keyset(self, kid: str | None) -> KeySet:
        async with self._lock:
            stale = time.monotonic() - self._loaded_at > self._refresh_after
            known = self._keys is not None and any(k.kid == kid for k in self._keys.keys)
            if self._keys is None or (not known and stale):
                try:
                    self._keys = await self._load_keys()
                    self._loaded_at = time.monotonic()
                except Exception as exc:
                    if self._keys is None:
                        raise Unauthenticated("Token keys are not available yet; retry shortly.") from exc
            return self._keys

    async def verify(self, token: str | None) -> Principal:
        if not token:
            raise Unauthenticated("A bearer access token is required.")
        try:
            kid = _header(token).get("kid")
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            raise Unauthenticated("The access token is invalid or expired.") from exc
        claims = self.check(token, await self._keyset(kid))
        return Principal.from_claims(claims, token)

    def check(self, token: str, keys: KeySet) -> dict[str, Any]:
        """Verify ``token`` against ``keys`` and return its claims, or raise ``Unauthenticated``.

        Synchronous and key-agnostic so the gateway's introspection endpoint (run in a worker
        thread with the gateway's own keys) applies exactly the rules every service applies.
        """
        try:
            header = _header(token)
            if header.get("alg") not in ALGORITHMS:
                raise Unauthenticated("The access token is invalid.")
            if str(header.get("typ", "")).lower() not in self._token_types:
                raise Unauthenticated("The access token is invalid.")
            decoded = jwt.decode(token, keys, algorithms=ALGORITHMS)
            self._claims.validate(decoded.claims)
        except Unauthenticated:
            raise
        except (JoseError, ValueError, KeyError, TypeError, IndexError) as exc:
            raise Unauthenticated("The access token is invalid or expired.") from exc
        claims = decoded.claims
        if claims.get("nbf") and claims["nbf"] > time.time() + self._leeway:
            raise Unauthenticated("The access token is not yet valid.")
        if self._denylist is not None and self._denylist.refusal(claims):
            raise Unauthenticated("The access token has been revoked.")
        return claims


def _header(token: str) -> dict[str, Any]:
    """The JOSE header, read before verification only to pick the key and refuse bad algorithms."""
    head = token.split(".")[0]
    header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    if not isinstance(header, dict):
        raise ValueError("the JOSE header is not a JSON object")
    return header


def bearer(authorization: str | None) -> str | None:
    if authorization and authorization[:7].lower() == "bearer ":
        return authorization[7:].strip() or None
    return None
