"""OAuth 2.0 / OpenID Connect authorization server (authlib) issuing RFC 9068 JWT access tokens.

- client credentials for organisations' systems;
- authorization code with PKCE (S256 only) for people, through public or confidential clients
  registered with exact redirect URIs; OpenID Connect id_tokens for the ``openid`` scope;
- refresh tokens, rotated at each use; presenting a used one again revokes its whole grant (a
  request refused for its scope does not use the token up);
- RFC 7662 introspection and RFC 7009 revocation;
- one answer for every failed client authentication, whether the client id exists or not.

authlib's server core is framework-neutral and synchronous: the HTTP layer (``gateway/app.py``,
``gateway/login.py``) runs it in worker threads with a small synchronous connection pool.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import secrets
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from authlib.oauth2 import AuthorizationServer as _AuthorizationServer
from authlib.oauth2.rfc6749 import ClientMixin, OAuth2Request, TokenMixin
from authlib.oauth2.rfc6749.errors import InvalidClientError, InvalidRequestError, InvalidScopeError
from authlib.oauth2.rfc6749.util import extract_basic_authorization, scope_to_list
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant as _AuthorizationCodeGrant
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant as _ClientCredentialsGrant
from authlib.oauth2.rfc6749.grants import RefreshTokenGrant as _RefreshTokenGrant
from authlib.oauth2.rfc6749.requests import OAuth2Payload
from authlib.oauth2.rfc7009 import RevocationEndpoint as _RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7636.challenge import compare_s256_code_challenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint as _IntrospectionEndpoint
from authlib.oidc.core import OpenIDCode as _OpenIDCode
from authlib.oidc.core.models import AuthorizationCodeMixin
from joserfc import jwt
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from contracts.scopes import ALL_SCOPES
from gateway import people, revocation
from gateway.keys import KeyRing
from gateway.people import Person
from kernel.denylist import ACCESS_TOKEN_LIFETIME
from kernel.errors import Unauthenticated
from kernel.tokens import TokenVerifier

log = logging.getLogger("gateway.auth")

CODE_LIFETIME = 120  # seconds: a code is exchanged at once by the client that asked for it
ID_TOKEN_LIFETIME = ACCESS_TOKEN_LIFETIME
GRANT_LIFETIME = 12 * 3600  # a sign-in lasts a working day, however often its tokens are refreshed
hasher = PasswordHasher()
_DUMMY_HASH = hasher.hash(secrets.token_urlsafe(16))  # checked for unknown clients: the same work as a real one
OnRevoked = Callable[[list[revocation.Revocation]], None]


def _digest(secret: str) -> str:
    """Codes and refresh tokens are long random strings: a plain SHA-256 is enough to store them."""
    return hashlib.sha256(secret.encode()).hexdigest()


# --- models --------------------------------------------------------------------------------------


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
        try:
            return hasher.verify(self.secret_hash, client_secret)
        except (VerificationError, InvalidHashError):
            return False

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


# --- requests ------------------------------------------------------------------------------------


class Payload(OAuth2Payload):
    """Request parameters with their repeats kept, so repeated parameters can be refused."""

    def __init__(self, items: Iterable[tuple[str, str]]) -> None:
        self._datalist: defaultdict[str, list[str]] = defaultdict(list)
        for key, value in items:
            self._datalist[key].append(value)
        self._data = {k: v[0] for k, v in self._datalist.items()}

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return self._datalist


class HttpRequest(OAuth2Request):
    """An already-parsed HTTP request, as authlib's framework-neutral core expects it."""

    def __init__(self, method: str, url: str, headers: Mapping[str, str], *,
                 args: Iterable[tuple[str, str]] = (), form: Iterable[tuple[str, str]] = ()) -> None:
        super().__init__(method, url, headers=headers)
        self._args, self._form = Payload(args), Payload(form)
        self.payload = self._args if method == "GET" else self._form

    @property
    def args(self) -> dict[str, str]:
        return self._args.data

    @property
    def form(self) -> dict[str, str]:
        return self._form.data


# --- grants and extensions -----------------------------------------------------------------------


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

    def __init__(self, server: "AuthorizationServer") -> None:
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
        with self.server.pool.connection() as conn:
            row = conn.execute("select 1 from gateway.authorization_codes where client_id = %s and nonce = %s",
                               (request.payload.client_id, nonce)).fetchone()
        return row is not None

    def generate_user_info(self, user: Person, scope: str) -> dict[str, Any]:
        return {"sub": user.id, "name": user.display_name, "org": user.org_id}


class AuthorizationCodeGrant(_AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        self.server.store_code(code, request)

    def query_authorization_code(self, code: str, client: Client) -> AuthorizationCode | None:
        return self.server.consume_code(code, client)

    def delete_authorization_code(self, authorization_code: AuthorizationCode) -> None:
        """Nothing to do: the code was marked used when it was presented (kept to detect replays)."""

    def authenticate_user(self, authorization_code: AuthorizationCode) -> Person | None:
        person = self.server.find_person(authorization_code.person_id)
        if person is not None:
            person.auth_time = authorization_code.auth_time
        return person


class RefreshTokenGrant(_RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]
    INCLUDE_NEW_REFRESH_TOKEN = True  # rotation: every use returns a new refresh token

    def authenticate_refresh_token(self, refresh_token: str) -> RefreshToken | None:
        """The token, rotated only once the request is known to be acceptable (a refused one stays usable)."""
        return self.server.use_refresh_token(refresh_token, self.request.client, self._validate_token_scope)

    def _validate_token_scope(self, token: RefreshToken) -> None:
        """A scope beyond the grant is ``invalid_scope``; checked before rotating (authlib checks after)."""
        requested = scope_to_list(self.request.payload.scope)
        if requested and not set(requested) <= set(scope_to_list(token.get_scope()) or ()):
            raise InvalidScopeError(description="The requested scope exceeds the scope originally granted.")

    def authenticate_user(self, refresh_token: RefreshToken) -> Person | None:
        return self.server.find_person(refresh_token.person_id)

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
        self.server.revoke(token)


# --- the server ----------------------------------------------------------------------------------


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


def _verify_dummy(secret: str) -> None:
    try:
        hasher.verify(_DUMMY_HASH, secret)
    except (VerificationError, InvalidHashError):
        pass


class AuthorizationServer(_AuthorizationServer):
    def __init__(self, pool: ConnectionPool, keys: KeyRing, issuer: str, audience: str, verifier: TokenVerifier,
                 on_revoked: OnRevoked) -> None:
        super().__init__(scopes_supported=sorted(ALL_SCOPES))
        self.pool, self.keys, self.issuer, self.audience = pool, keys, issuer, audience
        self.verifier, self.on_revoked = verifier, on_revoked
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
                _verify_dummy(secret)
            raise ClientAuthenticationFailed() from None

    def is_registered(self, client_id: str) -> bool:
        """Whether this id names a client, revoked or not (such an id may be written to logs)."""
        with self.pool.connection() as conn:
            row = conn.execute("select 1 from gateway.oauth_clients where client_id = %s", (client_id,)).fetchone()
        return row is not None

    def query_client(self, client_id: str) -> Client | None:
        with self.pool.connection() as conn:
            row = conn.execute(
                "select c.client_id, c.org_id, c.secret_hash, c.scopes, c.redirect_uris, c.grant_types,"
                " c.token_endpoint_auth_method, c.shared, o.scope_ceiling, o.type as org_type"
                " from gateway.oauth_clients c join gateway.organisations o on o.id = c.org_id"
                " where c.client_id = %s and c.revoked_at is null and o.status = 'ACTIVE'",
                (client_id,),
            ).fetchone()
        if row is None:
            return None
        scopes = frozenset(row["scopes"])
        allowed = scopes if row["shared"] else (scopes & frozenset(row["scope_ceiling"])) | (
            scopes & people.IDENTITY_SCOPES)
        return Client(row["client_id"], row["org_id"], row["secret_hash"], allowed, tuple(row["redirect_uris"]),
                      frozenset(row["grant_types"]), row["token_endpoint_auth_method"], row["shared"],
                      row["org_type"])

    def find_person(self, person_id: str) -> Person | None:
        with self.pool.connection() as conn:
            return people.find(conn, person_id)

    # authorization codes

    def store_code(self, code: str, request: OAuth2Request) -> None:
        person: Person = request.user
        data = request.payload.data
        scope = _narrow(request.scope or "", person, request.client)
        with self.pool.connection() as conn:
            conn.execute(
                "insert into gateway.authorization_codes (code_hash, client_id, person_id, redirect_uri, scope,"
                " code_challenge, code_challenge_method, nonce, auth_time, expires_at)"
                " values (%s, %s, %s, %s, %s, %s, %s, %s, to_timestamp(%s), now() + make_interval(secs => %s))",
                (_digest(code), request.client.client_id, person.id, request.payload.redirect_uri, scope,
                 data["code_challenge"], data["code_challenge_method"], data.get("nonce"),
                 person.auth_time or time.time(), CODE_LIFETIME),
            )

    def consume_code(self, code: str, client: Client) -> AuthorizationCode | None:
        """The code, marked used at once; a code presented again revokes what it produced."""
        with self.pool.connection() as conn:
            row = conn.execute(
                "select *, person_id::text as person, grant_id::text as grant, extract(epoch from auth_time)::bigint"
                " as auth_epoch, expires_at > now() as live from gateway.authorization_codes where code_hash = %s"
                " for update", (_digest(code),),
            ).fetchone()
            if row is None or row["client_id"] != client.client_id:
                return None
            if row["used_at"] is not None:
                self._replayed(conn, row["grant"], "authorization code reused", client.client_id)
                return None
            conn.execute("update gateway.authorization_codes set used_at = now() where code_hash = %s",
                         (row["code_hash"],))
        if not row["live"]:
            return None
        return AuthorizationCode(row["code_hash"], row["client_id"], row["person"], row["redirect_uri"], row["scope"],
                                 row["code_challenge"], row["code_challenge_method"], row["nonce"], row["auth_epoch"])

    # refresh tokens

    def use_refresh_token(self, token: str, client: Client,
                          acceptable: Callable[[RefreshToken], None]) -> RefreshToken | None:
        """The refresh token, marked used at once; a used one presented again revokes its whole grant.

        ``acceptable`` raises for a request refused for what it asks (a wider scope): the token was
        not misused, so it is not spent, and the client's corrected retry is not taken for a replay.
        """
        with self.pool.connection() as conn:
            found = self._refresh_token(conn, _digest(token), lock=True)
            if found is None:
                return None
            if found.client_id != client.client_id:
                self._replayed(conn, found.grant_id, "refresh token presented by another client", client.client_id)
                return None
            if found.rotated:
                self._replayed(conn, found.grant_id, "refresh token reused", client.client_id)
                return None
            if found.revoked or found.is_expired():
                return None
            acceptable(found)
            conn.execute("update gateway.refresh_tokens set rotated_at = now() where token_hash = %s",
                         (found.token_hash,))
        return found

    def _refresh_token(self, conn: Any, token_hash: str, *, lock: bool = False) -> RefreshToken | None:
        row = conn.execute(
            "select r.token_hash, g.id::text as grant_id, g.client_id, g.person_id::text as person_id, p.org_id,"
            " g.scope, extract(epoch from r.issued_at)::float8 as issued_at,"
            " extract(epoch from least(r.expires_at, g.expires_at))::float8 as expires_at,"
            " r.rotated_at is not null as rotated, g.revoked_at is not null as revoked"
            " from gateway.refresh_tokens r join gateway.person_grants g on g.id = r.grant_id"
            " join gateway.people p on p.id = g.person_id where r.token_hash = %s"
            + (" for update of r" if lock else ""), (token_hash,),
        ).fetchone()
        return RefreshToken(**row) if row else None

    def _replayed(self, conn: Any, grant_id: str | None, reason: str, client_id: str) -> None:
        """A code or refresh token used twice: someone else may hold it, so the whole grant goes."""
        log.warning("credential replayed; grant revoked", extra={"event": "auth.replay", "reason": reason,
                                                                 "client_id": client_id, "grant_id": grant_id})
        if grant_id:
            self.on_revoked(revocation.revoke_grant(conn, grant_id, reason))

    # tokens

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        """Record a person's access token (so its grant can revoke it) and their new refresh token."""
        if not isinstance(request.user, Person):
            return  # client credentials: self-contained JWTs, nothing to keep
        claims = _unverified_claims(token["access_token"])
        with self.pool.connection() as conn:
            if request.refresh_token is not None:
                grant_id = request.refresh_token.grant_id
            else:
                grant_id = self._new_grant(conn, request, token.get("scope", ""))
            conn.execute("insert into gateway.grant_access_tokens (jti, grant_id, expires_at)"
                         " values (%s, %s, to_timestamp(%s))", (claims["jti"], grant_id, claims["exp"]))
            if token.get("refresh_token"):
                conn.execute(
                    "insert into gateway.refresh_tokens (token_hash, grant_id, expires_at)"
                    " select %s, id, expires_at from gateway.person_grants where id = %s",
                    (_digest(token["refresh_token"]), grant_id))

    def _new_grant(self, conn: Any, request: OAuth2Request, scope: str) -> str:
        grant_id = str(uuid.uuid4())
        code: AuthorizationCode = request.authorization_code
        conn.execute(
            "insert into gateway.person_grants (id, client_id, person_id, scope, auth_time, expires_at)"
            " values (%s, %s, %s, %s, to_timestamp(%s), now() + make_interval(secs => %s))",
            (grant_id, request.client.client_id, request.user.id, scope, code.auth_time, GRANT_LIFETIME))
        conn.execute("update gateway.authorization_codes set grant_id = %s where code_hash = %s",
                     (grant_id, code.code_hash))
        return grant_id

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
        lookups = [self._access_token, self._stored_refresh_token]
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

    def _stored_refresh_token(self, token: str) -> RefreshToken | None:
        with self.pool.connection() as conn:
            return self._refresh_token(conn, _digest(token))

    def revoke(self, token: AccessToken | RefreshToken) -> None:
        """Revoke an access token (that token only) or a refresh token (its whole grant)."""
        with self.pool.connection() as conn:
            if isinstance(token, RefreshToken):
                entries = revocation.revoke_grant(conn, token.grant_id, "refresh token revoked")
            else:
                entries = revocation.record(conn, [revocation.access_token(token.claims["jti"], token.claims["exp"])])
        self.on_revoked(entries)

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


def _narrow(scope: str, person: Person, client: Client) -> str:
    """Requested ∩ the person's role within their organisation's ceiling ∩ the client's scopes."""
    allowed = person.allowed_scopes() & client.allowed_scopes
    return " ".join(s for s in dict.fromkeys(scope.split()) if s in allowed)


def _unverified_claims(token: str) -> dict[str, Any]:
    """Claims of a token this server has just signed (no need to verify our own signature)."""
    body = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


def open_sync_pool(url: str) -> ConnectionPool:
    pool = ConnectionPool(url, min_size=1, max_size=8, open=False, kwargs={"row_factory": dict_row})
    pool.open(wait=True, timeout=30)
    return pool


def metadata(issuer: str) -> dict[str, Any]:
    """RFC 8414 authorization server metadata."""
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/oauth/authorize",
        "token_endpoint": f"{issuer}/oauth/token",
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "introspection_endpoint": f"{issuer}/oauth/introspect",
        "revocation_endpoint": f"{issuer}/oauth/revoke",
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": True,
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "scopes_supported": sorted(ALL_SCOPES),
        "ui_locales_supported": ["fr", "en"],
    }


def openid_configuration(issuer: str) -> dict[str, Any]:
    """OpenID Connect Discovery 1.0 provider metadata."""
    return {
        **metadata(issuer),
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "name", "org", "at_hash"],
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
    }
