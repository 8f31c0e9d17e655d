"""What authlib's server core works with: clients, authorization codes, access and refresh tokens.

Plain dataclasses with authlib's mixins; they are built from rows by ``gateway/auth/credentials.py``
and never touch the database themselves.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from authlib.oauth2.rfc6749 import ClientMixin, TokenMixin
from authlib.oidc.core.models import AuthorizationCodeMixin

from gateway.auth import passwords
from gateway.auth.people import Person


@dataclass
class Client(ClientMixin):
    client_id: str
    org_id: str
    secret_hash: str | None
    allowed_scopes: frozenset[str]  # the client's scopes within its organisation's ceiling
    redirect_uris: tuple[str, ...] = ()
    grant_types: frozenset[str] = frozenset({"client_credentials"})
    auth_method: str = "client_secret_basic"
    shared: bool = False  # the platform's own app: serves people of every organisation
    org_type: str | None = None

    @property
    def public(self) -> bool:
        return self.auth_method == "none"

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> None:
        return None  # the redirect_uri is always required, and must match a registered one exactly

    def get_allowed_scope(self, scope: str | None) -> str:
        if not scope:
            return " ".join(sorted(self.allowed_scopes))
        return " ".join(s for s in scope.split() if s in self.allowed_scopes)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        if self.public or not self.secret_hash:
            return False
        return passwords.verify(self.secret_hash, client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if self.public:
            return method == "none"
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and "authorization_code" in self.grant_types

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.grant_types

    def serves(self, person: Person) -> bool:
        """An organisation's client signs in only that organisation's people."""
        return self.shared or person.org_id == self.org_id


@dataclass
class AuthorizationCode(AuthorizationCodeMixin):
    code_hash: str
    client_id: str
    person_id: str
    redirect_uri: str
    scope: str
    code_challenge: str
    code_challenge_method: str
    nonce: str | None
    auth_time: int

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time


@dataclass
class AccessToken(TokenMixin):
    """A verified JWT access token, as introspection and revocation see it."""

    claims: dict[str, Any]

    @property
    def org_id(self) -> str:
        return str(self.claims.get("org", ""))

    def check_client(self, client: Client) -> bool:
        return self.claims.get("client_id") == client.client_id

    def get_scope(self) -> str:
        return str(self.claims.get("scope", ""))

    def get_expires_in(self) -> int:
        return max(int(self.claims["exp"] - time.time()), 0)

    def is_expired(self) -> bool:
        return self.claims["exp"] <= time.time()

    def is_revoked(self) -> bool:
        return False  # a revoked token does not verify, so it never becomes an AccessToken

    def introspection(self) -> dict[str, Any]:
        keep = ("scope", "client_id", "sub", "org", "org_type", "aud", "iss", "exp", "iat", "nbf", "jti")
        return {"active": True, "token_type": "Bearer", **{k: self.claims[k] for k in keep if k in self.claims}}


@dataclass
class RefreshToken(TokenMixin):
    token_hash: str
    grant_id: str
    client_id: str
    person_id: str
    org_id: str
    scope: str
    issued_at: float
    expires_at: float
    rotated: bool
    revoked: bool

    def check_client(self, client: Client) -> bool:
        return self.client_id == client.client_id

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return max(int(self.expires_at - time.time()), 0)

    def is_expired(self) -> bool:
        return self.expires_at <= time.time()

    def is_revoked(self) -> bool:
        return self.revoked or self.rotated

    def introspection(self, issuer: str) -> dict[str, Any]:
        return {"active": True, "token_type": "refresh_token", "scope": self.scope, "client_id": self.client_id,
                "sub": self.person_id, "org": self.org_id, "iss": issuer, "iat": int(self.issued_at),
                "exp": int(self.expires_at)}



def _narrow(scope: str, person: Person, client: Client) -> str:
    """Requested ∩ the person's role within their organisation's ceiling ∩ the client's scopes."""
    allowed = person.allowed_scopes() & client.allowed_scopes
    return " ".join(s for s in dict.fromkeys(scope.split()) if s in allowed)
