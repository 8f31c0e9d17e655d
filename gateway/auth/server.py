"""The OAuth 2.0 / OpenID Connect authorization server (authlib), issuing RFC 9068 JWT access tokens.

- client credentials for organisations' systems;
- authorization code with PKCE (S256 only) for people, through public or confidential clients
  registered with exact redirect URIs; OpenID Connect id_tokens for the ``openid`` scope;
- refresh tokens, rotated at each use; presenting a used one again revokes its whole grant (a
  request refused for its scope does not use the token up);
- RFC 7662 introspection and RFC 7009 revocation;
- one answer for every failed client authentication, whether the client id exists or not.

authlib's server core is framework-neutral and synchronous: the HTTP layer (``gateway/app.py``,
``gateway/auth/login.py``) runs it in worker threads with a small synchronous connection pool.
Grants are in ``grants.py``, records in ``credentials.py``, models in ``models.py``.
"""

from __future__ import annotations

import secrets
import time
import uuid
from typing import Any

from authlib.oauth2 import AuthorizationServer as _AuthorizationServer
from authlib.oauth2.rfc6749 import OAuth2Request
from authlib.oauth2.rfc6749.errors import InvalidClientError
from authlib.oauth2.rfc6749.util import extract_basic_authorization
from joserfc import jwt

from contracts.scopes import ALL_SCOPES
from gateway.auth import passwords
from gateway.auth.credentials import Credentials, OnRevoked
from gateway.auth.grants import (
    AuthorizationCodeGrant,
    ClientCredentialsGrant,
    IntrospectionEndpoint,
    OpenIDCode,
    RefreshTokenGrant,
    RevocationEndpoint,
    S256CodeChallenge,
)
from gateway.auth.models import AccessToken, Client, RefreshToken, _narrow
from gateway.auth.people import Person
from gateway.auth.requests import HttpRequest
from gateway.keys import KeyRing
from gateway.store.connections import SyncPool
from kernel.denylist import ACCESS_TOKEN_LIFETIME
from kernel.errors import Unauthenticated
from kernel.tokens import TokenVerifier


class ClientAuthenticationFailed(InvalidClientError):
    """The one answer to every failed client authentication: 401, one description, one header."""

    status_code = 401
    description = "Client authentication failed."

    def __init__(self) -> None:
        super().__init__(description=self.description, status_code=self.status_code)

    def get_headers(self) -> list[tuple[str, str]]:
        headers = [h for h in super().get_headers() if h[0].lower() != "www-authenticate"]
        challenge = f'Basic realm="segin", error="invalid_client", error_description="{self.description}"'
        return [*headers, ("WWW-Authenticate", challenge)]


def _presented_credentials(request: OAuth2Request) -> tuple[str | None, str | None]:
    basic_id, basic_secret = extract_basic_authorization(request.headers)
    if basic_id:
        return basic_id, basic_secret
    return request.form.get("client_id"), request.form.get("client_secret")



class AuthorizationServer(_AuthorizationServer):
    def __init__(self, pool: SyncPool, keys: KeyRing, issuer: str, audience: str, verifier: TokenVerifier,
                 on_revoked: OnRevoked) -> None:
        super().__init__(scopes_supported=sorted(ALL_SCOPES))
        self.keys, self.issuer, self.audience, self.verifier = keys, issuer, audience, verifier
        self.credentials = Credentials(pool, on_revoked)
        self.register_grant(ClientCredentialsGrant)
        self.register_grant(AuthorizationCodeGrant, [S256CodeChallenge(required=True), OpenIDCode(self)])
        self.register_grant(RefreshTokenGrant)
        self.register_endpoint(IntrospectionEndpoint)
        self.register_endpoint(RevocationEndpoint)
        self.register_token_generator("default", self._generate_token)

    # clients and people

    def authenticate_client(self, request: OAuth2Request, methods: list[str], endpoint: str = "token") -> Client:
        """authlib's client authentication, failing alike for unknown and known clients.

        authlib answers an unknown client with another description (in ``WWW-Authenticate`` too) and,
        for ``client_secret_post``/``none``, another status than a known client with a wrong secret,
        and skips the secret check (a timing difference): all three would tell which ids exist.
        """
        try:
            return super().authenticate_client(request, methods, endpoint)
        except InvalidClientError:
            client_id, secret = _presented_credentials(request)
            if secret and (not client_id or self.query_client(client_id) is None):
                passwords.verify_nothing(secret)
            raise ClientAuthenticationFailed() from None

    def is_registered(self, client_id: str) -> bool:
        """Whether this id names a client, revoked or not (such an id may be written to logs)."""
        return self.credentials.is_registered(client_id)

    def query_client(self, client_id: str) -> Client | None:
        return self.credentials.client(client_id)

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        self.credentials.save_token(token, request)

    # tokens

    def _generate_token(self, grant_type: str, client: Client, user: Person | None = None, scope: str | None = None,
                        expires_in: int | None = None, include_refresh_token: bool = True) -> dict[str, Any]:
        """An RFC 9068 access token: for a client (sub = client id) or a person (sub = person id)."""
        granted = client.get_allowed_scope(scope) if user is None else _narrow(scope or "", user, client)
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": client.client_id if user is None else user.id,
            "aud": self.audience,
            "exp": now + ACCESS_TOKEN_LIFETIME,
            "iat": now,
            "nbf": now,
            "jti": str(uuid.uuid4()),
            "client_id": client.client_id,
            "org": client.org_id if user is None else user.org_id,
            # The organisation's type travels in the token: consent may name a type of recipient.
            "org_type": client.org_type if user is None else user.org_type,
            "scope": granted,
        }
        key = self.keys.current
        access_token = jwt.encode({"alg": "RS256", "typ": "at+jwt", "kid": key.kid}, claims, key)
        token = {"access_token": access_token, "token_type": "Bearer", "expires_in": ACCESS_TOKEN_LIFETIME,
                 "scope": granted}
        if user is not None and include_refresh_token:
            token["refresh_token"] = secrets.token_urlsafe(48)
        return token

    # introspection and revocation

    def find_token(self, token: str, hint: str | None, *, any_state: bool = False) -> AccessToken | RefreshToken | None:
        """A live access token, or a refresh token (live only, unless ``any_state``), or None."""
        lookups = [self._access_token, self.credentials.refresh_token]
        if hint == "refresh_token":
            lookups.reverse()
        for lookup in lookups:
            found = lookup(token)
            if found is not None and (any_state or not (found.is_expired() or found.is_revoked())):
                return found
        return None

    def _access_token(self, token: str) -> AccessToken | None:
        if token.count(".") != 2:
            return None
        try:
            return AccessToken(self.verifier.check(token, self.keys.public))
        except Unauthenticated:
            return None

    # framework glue

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        pass

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        if isinstance(request, OAuth2Request):
            return request
        return HttpRequest(request["method"], request["url"], request["headers"], args=request.get("args", ()),
                           form=request.get("form", ()))

    def handle_response(self, status: int, body: Any, headers: list[tuple[str, str]]) -> tuple[int, Any, dict[str, str]]:
        return status, body, dict(headers)

