"""Internal tokens: what the gateway sends a service instead of the caller's API token.

Whoever can read a service's requests on NATS (its replicas, anyone holding its NATS credentials)
must not learn a token that works at the public API or at another service. So the gateway never
forwards the caller's access token: for each (caller's token, service) it signs a short-lived
token that only that service accepts (``aud = segin-svc:<service>``, ``typ: segin-internal+jwt``,
which the gateway and the other services refuse). It names the same caller (``sub``, ``org``,
``org_type``, ``client_id``, ``scope``) and keeps the API token's ``jti`` and ``iat``, so revoking
the API token or its client (``kernel/denylist.py``) stops its internal tokens at once.

Signing costs ~0.3 ms of CPU; a token is reused for the same caller's token and service until
shortly before it expires, so a busy client costs one signature per service per ~40 s.
"""

from __future__ import annotations

import time
from typing import Any

from joserfc import jwt
from joserfc.jwk import RSAKey

from contracts.scopes import ALL_SCOPES
from gateway.keys import KeyRing
from kernel.tokens import INTERNAL_TOKEN_TYPE, Principal, service_audience

LIFETIME = 60  # seconds an internal token lives at most (the caller's own token may end sooner)
REUSE_MARGIN = 20  # a cached token is not handed out in its last seconds (request timeouts, clocks)
MAX_CACHED = 10_000


def service_of(subject: str) -> str:
    """``svc.<service>.<endpoint>`` → ``<service>``; anything else is a programming error."""
    parts = subject.split(".")
    if len(parts) != 3 or parts[0] != "svc" or not parts[1]:
        raise ValueError(f"not a service request subject: {subject!r}")
    return parts[1]


def internal_claims(principal: Principal, service: str, issuer: str, now: int,
                    lifetime: int = LIFETIME) -> dict[str, Any]:
    """The caller as ``service`` (and only it) sees them; never longer-lived than the API token."""
    expires = now + lifetime if principal.expires_at is None else min(principal.expires_at, now + lifetime)
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": service_audience(service),
        "sub": principal.subject,
        "org": principal.org_id,
        "client_id": principal.client_id,
        "scope": " ".join(sorted(principal.scopes & ALL_SCOPES)),  # only scopes the services know
        "jti": principal.jti,  # the API token's: revoking it (jti) reaches this token too
        "exp": expires,
        "nbf": now,
    }
    if principal.issued_at is not None:
        claims["iat"] = principal.issued_at  # the API token's: revoking its client reaches this token
    if principal.org_type:
        claims["org_type"] = principal.org_type
    return claims


def sign(key: RSAKey, claims: dict[str, Any]) -> str:
    return jwt.encode({"alg": "RS256", "typ": INTERNAL_TOKEN_TYPE, "kid": key.kid}, claims, key)


class ServiceTokens:
    """Mints and caches internal tokens with the gateway's current signing key.

    Used from the event loop only (no lock); the cache is bounded and forgets expired entries.
    """

    def __init__(self, keys: KeyRing, issuer: str, *, lifetime: int = LIFETIME) -> None:
        self.keys, self.issuer, self.lifetime = keys, issuer, lifetime
        self._cache: dict[tuple[str, str, str], tuple[str, int]] = {}  # (jti, service, kid) -> (token, exp)

    def for_subject(self, principal: Principal, subject: str) -> str:
        """The token to send with a request on ``subject``."""
        return self.for_service(principal, service_of(subject))

    def for_service(self, principal: Principal, service: str, now: float | None = None) -> str:
        now = time.time() if now is None else now
        key = self.keys.current
        cache_key = (principal.jti, service, str(key.kid))
        cached = self._cache.get(cache_key)
        if cached is not None and cached[1] - REUSE_MARGIN > now:
            return cached[0]
        claims = internal_claims(principal, service, self.issuer, int(now), self.lifetime)
        token = sign(key, claims)
        if len(self._cache) >= MAX_CACHED:
            self._forget(now)
        self._cache[cache_key] = (token, int(claims["exp"]))
        return token

    def _forget(self, now: float) -> None:
        """Drop entries too old to hand out; if still full, the oldest half."""
        self._cache = {k: v for k, v in self._cache.items() if v[1] - REUSE_MARGIN > now}
        if len(self._cache) >= MAX_CACHED:
            self._cache = dict(list(self._cache.items())[len(self._cache) // 2:])
