"""OAuth clients: the row authlib's server authenticates against, and their registration (admin CLI)."""

from __future__ import annotations

from gateway.store.connections import Row, SyncConnection


def is_registered(conn: SyncConnection, client_id: str) -> bool:
    """Whether this id names a client, revoked or not."""
    return conn.execute("select 1 from gateway.oauth_clients where client_id = %s", (client_id,)).fetchone() is not None


def active_client(conn: SyncConnection, client_id: str) -> Row | None:
    """A client that is not revoked, of an active organisation, with that organisation's ceiling and type."""
    return conn.execute(
        "select c.client_id, c.org_id, c.secret_hash, c.scopes, c.redirect_uris, c.grant_types,"
        " c.token_endpoint_auth_method, c.shared, o.scope_ceiling, o.type as org_type"
        " from gateway.oauth_clients c join gateway.organisations o on o.id = c.org_id"
        " where c.client_id = %s and c.revoked_at is null and o.status = 'ACTIVE'",
        (client_id,),
    ).fetchone()


def upsert_client(conn: SyncConnection, client_id: str, org_id: str, secret_hash: str | None, scopes: list[str],
                  redirect_uris: list[str], grant_types: list[str], auth_method: str, shared: bool) -> None:
    """Create a client or replace its settings and secret (a revoked one is reinstated)."""
    conn.execute(
        "insert into gateway.oauth_clients (client_id, org_id, name, secret_hash, scopes, redirect_uris,"
        " grant_types, token_endpoint_auth_method, shared) values (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " on conflict (client_id) do update set secret_hash = excluded.secret_hash, scopes = excluded.scopes,"
        " redirect_uris = excluded.redirect_uris, grant_types = excluded.grant_types,"
        " token_endpoint_auth_method = excluded.token_endpoint_auth_method, shared = excluded.shared,"
        " revoked_at = null",
        (client_id, org_id, client_id, secret_hash, scopes, redirect_uris, grant_types, auth_method, shared),
    )


def mark_revoked(conn: SyncConnection, client_id: str) -> bool:
    """Stamp the client revoked (kept if already); False when no such client exists."""
    cur = conn.execute("update gateway.oauth_clients set revoked_at = coalesce(revoked_at, now())"
                       " where client_id = %s", (client_id,))
    return cur.rowcount > 0
