"""Signing keys (private JWKs) and the server secrets kept in the gateway's schema, never in the repository."""

from __future__ import annotations

import secrets
from typing import Any

from psycopg.types.json import Jsonb

from gateway.store.connections import SyncConnection

KEYS_LOCK = "gateway.signing_keys"


def serialise_keys(conn: SyncConnection) -> None:
    """One writer of the key set at a time (replicas starting together, a rotation), until commit."""
    conn.execute("select pg_advisory_xact_lock(hashtext(%s))", (KEYS_LOCK,))


def insert_key(conn: SyncConnection, kid: str, private_jwk: dict[str, Any]) -> None:
    conn.execute("insert into gateway.signing_keys (kid, private_jwk) values (%s, %s)", (kid, Jsonb(private_jwk)))


def published_keys(conn: SyncConnection) -> list[dict[str, Any]]:
    """Private JWKs of every key not retired, oldest first."""
    rows = conn.execute("select private_jwk from gateway.signing_keys where retired_at is null"
                        " order by created_at, kid").fetchall()
    return [row["private_jwk"] if isinstance(row, dict) else row[0] for row in rows]


def retire_replaced(conn: SyncConnection, after_seconds: int) -> list[str]:
    """Retire every key replaced by a newer one more than ``after_seconds`` ago; returns their kids."""
    rows = conn.execute(
        "update gateway.signing_keys k set retired_at = now() where k.retired_at is null and exists"
        " (select 1 from gateway.signing_keys n where n.created_at > k.created_at"
        "  and n.created_at < now() - make_interval(secs => %s)) returning kid",
        (after_seconds,),
    ).fetchall()
    return [r["kid"] if isinstance(r, dict) else r[0] for r in rows]


def secret(conn: SyncConnection, name: str) -> bytes:
    """A named server secret, generated at first use and shared by every replica."""
    conn.execute("insert into gateway.secrets (name, value) values (%s, %s) on conflict (name) do nothing",
                 (name, secrets.token_urlsafe(48)))
    row = conn.execute("select value from gateway.secrets where name = %s", (name,)).fetchone()
    return str(row["value"] if isinstance(row, dict) else row[0]).encode()
