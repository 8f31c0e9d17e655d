"""People who sign in: their rows, with their organisation's status, ceiling and type."""

from __future__ import annotations

import uuid

from gateway.store.connections import Row, SyncConnection

_COLUMNS = ("p.id::text as id, p.org_id, p.username, p.display_name, p.role, p.password_hash, p.status,"
            " o.scope_ceiling, o.status as org_status, o.type as org_type")
_FROM = "from gateway.people p join gateway.organisations o on o.id = p.org_id"


def active_person(conn: SyncConnection, person_id: str) -> Row | None:
    """An active person of an active organisation, by id."""
    return conn.execute(f"select {_COLUMNS} {_FROM} where p.id = %s and p.status = 'ACTIVE' and o.status = 'ACTIVE'",
                        (person_id,)).fetchone()


def by_username(conn: SyncConnection, username: str) -> Row | None:
    """Any person with this (normalised) username, whatever their status."""
    return conn.execute(f"select {_COLUMNS} {_FROM} where p.username = %s", (username,)).fetchone()


def set_password_hash(conn: SyncConnection, person_id: str, password_hash: str) -> None:
    conn.execute("update gateway.people set password_hash = %s where id = %s", (password_hash, person_id))


def upsert_person(conn: SyncConnection, username: str, org_id: str, role: str, display_name: str,
                  password_hash: str) -> str | None:
    """Create a person or reset an existing username's name, role and password, within its own
    organisation only; returns the id, or None when the username belongs to another organisation."""
    row = conn.execute(
        "insert into gateway.people (id, org_id, username, display_name, role, password_hash)"
        " values (%s, %s, %s, %s, %s, %s)"
        " on conflict (username) do update set display_name = excluded.display_name, role = excluded.role,"
        " password_hash = excluded.password_hash"
        " where gateway.people.org_id = excluded.org_id returning id::text",
        (uuid.uuid4(), org_id, username, display_name, role, password_hash),
    ).fetchone()
    if row is None:
        return None
    return row["id"] if isinstance(row, dict) else row[0]


def username_exists(conn: SyncConnection, username: str) -> bool:
    return conn.execute("select 1 from gateway.people where username = %s", (username,)).fetchone() is not None
