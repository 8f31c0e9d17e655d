"""OAuth 2.0 authorization server (authlib) issuing RFC 9068 JWT access tokens.

authlib's server core is framework-neutral and synchronous: the token endpoint runs it in a
worker thread with a small synchronous connection pool, while the rest of the gateway is async.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
import uuid
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from authlib.oauth2 import AuthorizationServer as _AuthorizationServer
from authlib.oauth2.rfc6749 import ClientMixin, OAuth2Request
from authlib.oauth2.rfc6749.errors import InvalidScopeError
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant as _ClientCredentialsGrant
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from joserfc import jwt
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from contracts.scopes import ALL_SCOPES
from gateway.keys import SigningKeys

ACCESS_TOKEN_LIFETIME = 900  # RFC 9068 tokens live at most 15 minutes
hasher = PasswordHasher()


@dataclass
class Client(ClientMixin):
    client_id: str
    org_id: str
    secret_hash: str
    allowed_scopes: frozenset[str]  # the client's scopes within its organisation's ceiling

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> None:
        return None

    def get_allowed_scope(self, scope: str | None) -> str:
        if not scope:
            return " ".join(sorted(self.allowed_scopes))
        return " ".join(s for s in scope.split() if s in self.allowed_scopes)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return False

    def check_client_secret(self, client_secret: str) -> bool:
        try:
            return hasher.verify(self.secret_hash, client_secret)
        except (VerificationError, InvalidHashError):
            return False

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return False

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "client_credentials"


class FormRequest(OAuth2Request):
    """An already-parsed form POST, as authlib's framework-neutral core expects it."""

    def __init__(self, url: str, headers: Mapping[str, str], form: dict[str, str]) -> None:
        super().__init__("POST", url, headers=headers)
        self._form = form
        self.payload = BasicOAuth2Payload(form)

    @property
    def form(self) -> dict[str, str]:
        return self._form

    @property
    def args(self) -> dict[str, str]:
        return {}


class ClientCredentialsGrant(_ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

    def validate_requested_scope(self) -> None:
        """Refuse (``invalid_scope``) any scope beyond what the organisation and client may hold."""
        super().validate_requested_scope()
        requested = set((self.request.payload.scope or "").split())
        if requested - self.request.client.allowed_scopes:
            raise InvalidScopeError(description="The requested scope exceeds what this client may be granted.")


class AuthorizationServer(_AuthorizationServer):
    def __init__(self, pool: ConnectionPool, keys: SigningKeys, issuer: str, audience: str) -> None:
        super().__init__(scopes_supported=sorted(ALL_SCOPES))
        self.pool, self.keys, self.issuer, self.audience = pool, keys, issuer, audience
        self.register_grant(ClientCredentialsGrant)
        self.register_token_generator("default", self._generate_token)

    def query_client(self, client_id: str) -> Client | None:
        with self.pool.connection() as conn:
            row = conn.execute(
                "select c.client_id, c.org_id, c.secret_hash, c.scopes, o.scope_ceiling"
                " from gateway.oauth_clients c join gateway.organisations o on o.id = c.org_id"
                " where c.client_id = %s and c.revoked_at is null and o.status = 'ACTIVE'",
                (client_id,),
            ).fetchone()
        if row is None:
            return None
        allowed = frozenset(row["scopes"]) & frozenset(row["scope_ceiling"])
        return Client(row["client_id"], row["org_id"], row["secret_hash"], allowed)

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        """JWT access tokens are self-contained; nothing to store for client_credentials."""

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        pass

    def create_oauth2_request(self, request: dict[str, Any]) -> OAuth2Request:
        return FormRequest(request["url"], request["headers"], request["form"])

    def handle_response(self, status: int, body: Any, headers: list[tuple[str, str]]) -> tuple[int, Any, dict[str, str]]:
        return status, body, dict(headers)

    def _generate_token(self, grant_type: str, client: Client, user: Any = None, scope: str | None = None,
                        expires_in: int | None = None, include_refresh_token: bool = True) -> dict[str, Any]:
        granted = client.get_allowed_scope(scope)
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": client.client_id,
            "aud": self.audience,
            "exp": now + ACCESS_TOKEN_LIFETIME,
            "iat": now,
            "nbf": now,
            "jti": str(uuid.uuid4()),
            "client_id": client.client_id,
            "org": client.org_id,
            "scope": granted,
        }
        header = {"alg": "RS256", "typ": "at+jwt", "kid": self.keys.current.kid}
        access_token = jwt.encode(header, claims, self.keys.current)
        return {"access_token": access_token, "token_type": "Bearer", "expires_in": ACCESS_TOKEN_LIFETIME,
                "scope": granted}


def open_sync_pool(url: str) -> ConnectionPool:
    pool = ConnectionPool(url, min_size=1, max_size=4, open=False, kwargs={"row_factory": dict_row})
    pool.open(wait=True, timeout=30)
    return pool


def metadata(issuer: str) -> dict[str, Any]:
    """RFC 8414 authorization server metadata."""
    return {
        "issuer": issuer,
        "token_endpoint": f"{issuer}/oauth/token",
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "scopes_supported": sorted(ALL_SCOPES),
        "response_types_supported": [],
        "service_documentation": f"{issuer}/docs",
    }
