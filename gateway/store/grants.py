"""What a person's sign-in leaves behind: authorization codes, grants, refresh tokens, access-token records.

Codes and refresh tokens are stored as digests only (``code_hash``, ``token_hash``).
"""

from __future__ import annotations

from typing import Any

from gateway.store.connections import Row, SyncConnection


def insert_code(conn: SyncConnection, code_hash: str, client_id: str, person_id: str, redirect_uri: str,
                scope: str, code_challenge: str, code_challenge_method: str, nonce: str | None,
                auth_time: float, lifetime: int) -> None:
    conn.execute(
        "insert into gateway.authorization_codes (code_hash, client_id, person_id, redirect_uri, scope,"
        " code_challenge, code_challenge_method, nonce, auth_time, expires_at)"
        " values (%s, %s, %s, %s, %s, %s, %s, %s, to_timestamp(%s), now() + make_interval(secs => %s))",
        (code_hash, client_id, person_id, redirect_uri, scope, code_challenge, code_challenge_method, nonce,
         auth_time, lifetime),
    )


def lock_code(conn: SyncConnection, code_hash: str) -> Row | None:
    """The code's row, locked until commit, with ``person``, ``grant``, ``auth_epoch`` and ``live``."""
    return conn.execute(
        "select *, person_id::text as person, grant_id::text as grant, extract(epoch from auth_time)::bigint"
        " as auth_epoch, expires_at > now() as live from gateway.authorization_codes where code_hash = %s"
        " for update", (code_hash,),
    ).fetchone()


def mark_code_used(conn: SyncConnection, code_hash: str) -> None:
    conn.execute("update gateway.authorization_codes set used_at = now() where code_hash = %s", (code_hash,))


def nonce_used(conn: SyncConnection, client_id: str, nonce: str) -> bool:
    row = conn.execute("select 1 from gateway.authorization_codes where client_id = %s and nonce = %s",
                       (client_id, nonce)).fetchone()
    return row is not None


def refresh_token(conn: SyncConnection, token_hash: str, *, lock: bool = False) -> Row | None:
    """A refresh token with its grant's client, person, organisation, scope and state (epoch seconds)."""
    return conn.execute(
        "select r.token_hash, g.id::text as grant_id, g.client_id, g.person_id::text as person_id, p.org_id,"
        " g.scope, extract(epoch from r.issued_at)::float8 as issued_at,"
        " extract(epoch from least(r.expires_at, g.expires_at))::float8 as expires_at,"
        " r.rotated_at is not null as rotated, g.revoked_at is not null as revoked"
        " from gateway.refresh_tokens r join gateway.person_grants g on g.id = r.grant_id"
        " join gateway.people p on p.id = g.person_id where r.token_hash = %s"
        + (" for update of r" if lock else ""), (token_hash,),
    ).fetchone()


def mark_rotated(conn: SyncConnection, token_hash: str) -> None:
    conn.execute("update gateway.refresh_tokens set rotated_at = now() where token_hash = %s", (token_hash,))


def insert_grant(conn: SyncConnection, grant_id: str, client_id: str, person_id: str, scope: str,
                 auth_time: Any, lifetime: int, code_hash: str) -> None:
    """A new grant, from the code that started it (which then names the grant, to revoke it on replay)."""
    conn.execute(
        "insert into gateway.person_grants (id, client_id, person_id, scope, auth_time, expires_at)"
        " values (%s, %s, %s, %s, to_timestamp(%s), now() + make_interval(secs => %s))",
        (grant_id, client_id, person_id, scope, auth_time, lifetime))
    conn.execute("update gateway.authorization_codes set grant_id = %s where code_hash = %s", (grant_id, code_hash))


def record_access_token(conn: SyncConnection, jti: str, grant_id: str, exp: float) -> None:
    conn.execute("insert into gateway.grant_access_tokens (jti, grant_id, expires_at) values (%s, %s, to_timestamp(%s))",
                 (jti, grant_id, exp))


def insert_refresh_token(conn: SyncConnection, token_hash: str, grant_id: str) -> None:
    """A refresh token living as long as its grant."""
    conn.execute("insert into gateway.refresh_tokens (token_hash, grant_id, expires_at)"
                 " select %s, id, expires_at from gateway.person_grants where id = %s", (token_hash, grant_id))


def revoke_grant(conn: SyncConnection, grant_id: str, reason: str) -> list[Row]:
    """Mark the grant revoked; returns its access tokens that may still be live (``jti``, ``exp``)."""
    conn.execute("update gateway.person_grants set revoked_at = now(), revoked_reason = %s"
                 " where id = %s and revoked_at is null", (reason, grant_id))
    return conn.execute("select jti, extract(epoch from expires_at)::float8 as exp from gateway.grant_access_tokens"
                        " where grant_id = %s and expires_at > now() - interval '1 minute'", (grant_id,)).fetchall()


def live_grants_of_client(conn: SyncConnection, client_id: str) -> list[str]:
    rows = conn.execute("select id::text from gateway.person_grants where client_id = %s and revoked_at is null",
                        (client_id,)).fetchall()
    return [r["id"] for r in rows]
