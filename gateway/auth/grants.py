"""authlib's grants and endpoints as Segin narrows them.

- client credentials: no scope beyond what the organisation and client may hold (``invalid_scope``);
- authorization code: PKCE required, S256 only; OpenID Connect id_tokens signed with the current key;
- refresh tokens: rotated at each use, and a request refused for its scope does not spend the token;
- introspection answers only clients of the token's organisation; revocation of another client's
  token is answered as for an unknown one.
"""

from __future__ import annotations

import time
from typing import Any

from authlib.oauth2.rfc6749 import OAuth2Request
from authlib.oauth2.rfc6749.errors import InvalidRequestError, InvalidScopeError
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant as _AuthorizationCodeGrant
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant as _ClientCredentialsGrant
from authlib.oauth2.rfc6749.grants import RefreshTokenGrant as _RefreshTokenGrant
from authlib.oauth2.rfc6749.util import scope_to_list
from authlib.oauth2.rfc7009 import RevocationEndpoint as _RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7636.challenge import compare_s256_code_challenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint as _IntrospectionEndpoint
from authlib.oidc.core import OpenIDCode as _OpenIDCode

from gateway.auth.models import AccessToken, AuthorizationCode, Client, RefreshToken
from gateway.auth.people import Person
from kernel.denylist import ACCESS_TOKEN_LIFETIME

ID_TOKEN_LIFETIME = ACCESS_TOKEN_LIFETIME


class ClientCredentialsGrant(_ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

    def validate_requested_scope(self) -> None:
        """Refuse (``invalid_scope``) any scope beyond what the organisation and client may hold."""
        super().validate_requested_scope()
        requested = set((self.request.payload.scope or "").split())
        if requested - self.request.client.allowed_scopes:
            raise InvalidScopeError(description="The requested scope exceeds what this client may be granted.")


class S256CodeChallenge(CodeChallenge):
    """PKCE required for every authorization request, with S256 only: ``plain`` is refused."""

    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]
    CODE_CHALLENGE_METHODS = {"S256": compare_s256_code_challenge}

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("PKCE is required: send 'code_challenge' with code_challenge_method=S256.")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("Only code_challenge_method=S256 is accepted ('plain' is refused).")
        super().validate_code_challenge(grant, redirect_uri)

    def validate_code_verifier(self, grant: Any, result: Any) -> None:
        if not grant.request.form.get("code_verifier"):
            raise InvalidRequestError("Missing 'code_verifier'.")
        super().validate_code_verifier(grant, result)


class OpenIDCode(_OpenIDCode):
    """id_tokens (RS256, signed with the current key) naming the person and their organisation."""

    def __init__(self, server: Any) -> None:
        super().__init__(require_nonce=False)
        self.server = server

    def resolve_client_private_key(self, client: Client) -> Any:
        return self.server.keys.current

    def get_client_algorithm(self, client: Client) -> str:
        return "RS256"

    def get_encode_header(self, client: Client) -> dict[str, str]:
        return {"alg": "RS256", "typ": "JWT", "kid": str(self.server.keys.current.kid)}

    def get_client_claims(self, client: Client) -> dict[str, Any]:
        return {"iss": self.server.issuer, "aud": client.client_id, "exp": int(time.time()) + ID_TOKEN_LIFETIME}

    def exists_nonce(self, nonce: str, request: OAuth2Request) -> bool:
        return self.server.credentials.nonce_used(request.payload.client_id, nonce)

    def generate_user_info(self, user: Person, scope: str) -> dict[str, Any]:
        return {"sub": user.id, "name": user.display_name, "org": user.org_id}


class AuthorizationCodeGrant(_AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        self.server.credentials.store_code(code, request)

    def query_authorization_code(self, code: str, client: Client) -> AuthorizationCode | None:
        return self.server.credentials.consume_code(code, client)

    def delete_authorization_code(self, authorization_code: AuthorizationCode) -> None:
        """Nothing to do: the code was marked used when it was presented (kept to detect replays)."""

    def authenticate_user(self, authorization_code: AuthorizationCode) -> Person | None:
        person = self.server.credentials.person(authorization_code.person_id)
        if person is not None:
            person.auth_time = authorization_code.auth_time
        return person


class RefreshTokenGrant(_RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]
    INCLUDE_NEW_REFRESH_TOKEN = True  # rotation: every use returns a new refresh token

    def authenticate_refresh_token(self, refresh_token: str) -> RefreshToken | None:
        """The token, rotated only once the request is known to be acceptable (a refused one stays usable)."""
        return self.server.credentials.use_refresh_token(refresh_token, self.request.client, self._validate_token_scope)

    def _validate_token_scope(self, token: RefreshToken) -> None:
        """A scope beyond the grant is ``invalid_scope``; checked before rotating (authlib checks after)."""
        requested = scope_to_list(self.request.payload.scope)
        if requested and not set(requested) <= set(scope_to_list(token.get_scope()) or ()):
            raise InvalidScopeError(description="The requested scope exceeds the scope originally granted.")

    def authenticate_user(self, refresh_token: RefreshToken) -> Person | None:
        return self.server.credentials.person(refresh_token.person_id)

    def revoke_old_credential(self, refresh_token: RefreshToken) -> None:
        """Nothing to do: the token was marked used when it was presented."""


class IntrospectionEndpoint(_IntrospectionEndpoint):
    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

    def query_token(self, token_string: str, token_type_hint: str | None) -> AccessToken | RefreshToken | None:
        return self.server.find_token(token_string, token_type_hint)

    def check_permission(self, token: AccessToken | RefreshToken, client: Client, request: OAuth2Request) -> bool:
        """Only clients of the token's own organisation learn anything beyond ``active: false``."""
        return token.org_id == client.org_id

    def introspect_token(self, token: AccessToken | RefreshToken) -> dict[str, Any]:
        if isinstance(token, RefreshToken):
            return token.introspection(self.server.issuer)
        return token.introspection()


class RevocationEndpoint(_RevocationEndpoint):
    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]

    def query_token(self, token_string: str, token_type_hint: str | None) -> AccessToken | RefreshToken | None:
        return self.server.find_token(token_string, token_type_hint, any_state=True)

    def authenticate_token(self, request: OAuth2Request, client: Client) -> AccessToken | RefreshToken | None:
        """Another client's token is answered as an invalid one: 200, nothing revoked (RFC 7009 §2.2).

        RFC 7009 §2.1 allows refusing it, and authlib answers ``invalid_grant``; but then the answer
        differs from a garbage token's and tells anyone holding a client id whether a token is live.
        Introspection already answers both ``{"active": false}``.
        """
        self.check_params(request, client)
        found = self.query_token(request.form["token"], request.form.get("token_type_hint"))
        return found if found is not None and found.check_client(client) else None

    def revoke_token(self, token: AccessToken | RefreshToken, request: OAuth2Request) -> None:
        self.server.credentials.revoke(token)

