"""The authorization server's records: clients and people as it reads them, and the credentials a
sign-in leaves (codes, grants, refresh tokens), written in one transaction per step.

Codes and refresh tokens are marked used the moment they are presented: one presented again is a
replay, and revokes its whole grant (``_replayed``). The SQL is in ``gateway/store/``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from authlib.oauth2.rfc6749 import OAuth2Request

from gateway.auth import people, revocation
from gateway.auth.models import AccessToken, AuthorizationCode, Client, RefreshToken, _narrow
from gateway.auth.people import Person
from gateway.store import clients, grants
from gateway.store.connections import SyncConnection, SyncPool

log = logging.getLogger("gateway.auth")

CODE_LIFETIME = 120  # seconds: a code is exchanged at once by the client that asked for it
GRANT_LIFETIME = 12 * 3600  # a sign-in lasts a working day, however often its tokens are refreshed
OnRevoked = Callable[[list[revocation.Revocation]], None]


def _digest(secret: str) -> str:
    """Codes and refresh tokens are long random strings: a plain SHA-256 is enough to store them."""
    return hashlib.sha256(secret.encode()).hexdigest()


def _unverified_claims(token: str) -> dict[str, Any]:
    """Claims of a token this server has just signed (no need to verify our own signature)."""
    body = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


class Credentials:
    """Reads and writes for the authorization server (called in worker threads, on the sync pool)."""

    def __init__(self, pool: SyncPool, on_revoked: OnRevoked) -> None:
        self.pool, self.on_revoked = pool, on_revoked

    # clients and people

    def is_registered(self, client_id: str) -> bool:
        with self.pool.connection() as conn:
            return clients.is_registered(conn, client_id)

    def client(self, client_id: str) -> Client | None:
        """An active client, holding at most its organisation's ceiling (the platform's shared app: its own)."""
        with self.pool.connection() as conn:
            row = clients.active_client(conn, client_id)
        if row is None:
            return None
        scopes = frozenset(row["scopes"])
        allowed = scopes if row["shared"] else (scopes & frozenset(row["scope_ceiling"])) | (
            scopes & people.IDENTITY_SCOPES)
        return Client(row["client_id"], row["org_id"], row["secret_hash"], allowed, tuple(row["redirect_uris"]),
                      frozenset(row["grant_types"]), row["token_endpoint_auth_method"], row["shared"],
                      row["org_type"])

    def person(self, person_id: str) -> Person | None:
        with self.pool.connection() as conn:
            return people.find(conn, person_id)

    def nonce_used(self, client_id: str, nonce: str) -> bool:
        with self.pool.connection() as conn:
            return grants.nonce_used(conn, client_id, nonce)

    # authorization codes

    def store_code(self, code: str, request: OAuth2Request) -> None:
        person: Person = request.user
        data = request.payload.data
        scope = _narrow(request.scope or "", person, request.client)
        with self.pool.connection() as conn:
            grants.insert_code(conn, _digest(code), request.client.client_id, person.id,
                               request.payload.redirect_uri, scope, data["code_challenge"],
                               data["code_challenge_method"], data.get("nonce"), person.auth_time or time.time(),
                               CODE_LIFETIME)

    def consume_code(self, code: str, client: Client) -> AuthorizationCode | None:
        """The code, marked used at once; a code presented again revokes what it produced."""
        with self.pool.connection() as conn:
            row = grants.lock_code(conn, _digest(code))
            if row is None or row["client_id"] != client.client_id:
                return None
            if row["used_at"] is not None:
                self._replayed(conn, row["grant"], "authorization code reused", client.client_id)
                return None
            grants.mark_code_used(conn, row["code_hash"])
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
            grants.mark_rotated(conn, found.token_hash)
        return found

    def refresh_token(self, token: str) -> RefreshToken | None:
        """A stored refresh token in any state (introspection and revocation decide what to make of it)."""
        with self.pool.connection() as conn:
            return self._refresh_token(conn, _digest(token))

    @staticmethod
    def _refresh_token(conn: SyncConnection, token_hash: str, *, lock: bool = False) -> RefreshToken | None:
        row = grants.refresh_token(conn, token_hash, lock=lock)
        return RefreshToken(**row) if row else None

    def _replayed(self, conn: SyncConnection, grant_id: str | None, reason: str, client_id: str) -> None:
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
                code: AuthorizationCode = request.authorization_code
                grant_id = str(uuid.uuid4())
                grants.insert_grant(conn, grant_id, request.client.client_id, request.user.id,
                                    token.get("scope", ""), code.auth_time, GRANT_LIFETIME, code.code_hash)
            grants.record_access_token(conn, claims["jti"], grant_id, claims["exp"])
            if token.get("refresh_token"):
                grants.insert_refresh_token(conn, _digest(token["refresh_token"]), grant_id)

    def revoke(self, token: AccessToken | RefreshToken) -> None:
        """Revoke an access token (that token only) or a refresh token (its whole grant)."""
        with self.pool.connection() as conn:
            if isinstance(token, RefreshToken):
                entries = revocation.revoke_grant(conn, token.grant_id, "refresh token revoked")
            else:
                entries = revocation.record(conn, [revocation.access_token(token.claims["jti"], token.claims["exp"])])
        self.on_revoked(entries)
