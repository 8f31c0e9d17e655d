"""People who sign in: accounts, password checks, and what their tokens may hold.

Failed sign-ins are counted per (username, source) by ``gateway.lockout``, not here: a lock on the
account itself could be triggered by anyone who knows the username.

A person's token holds at most: what they asked for ∩ what their role allows (``ROLE_SCOPES``)
∩ their organisation's scope ceiling ∩ what the client may hold. ``openid`` only names the person
to the client (an id_token) and gives no access to data, so the organisation ceiling, which governs
data access, does not apply to it.
"""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import psycopg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from contracts.scopes import ROLE_SCOPES

IDENTITY_SCOPES = frozenset({"openid"})

hasher = PasswordHasher()
_DUMMY_HASH = hasher.hash(secrets.token_urlsafe(16))  # verified for unknown usernames: same cost, same timing

SyncConnection = psycopg.Connection[Any]


@dataclass
class Person:
    id: str
    org_id: str
    username: str
    display_name: str
    role: str
    scope_ceiling: frozenset[str]
    org_type: str | None = None
    auth_time: int = 0  # when they proved their password (seconds since the epoch)
    extra: dict[str, Any] = field(default_factory=dict)

    def get_user_id(self) -> str:
        return self.id

    def allowed_scopes(self) -> frozenset[str]:
        """What this person may hold: their role's scopes within their organisation's ceiling."""
        role = ROLE_SCOPES.get(self.role, frozenset())
        return (role & self.scope_ceiling) | (role & IDENTITY_SCOPES)


class LoginOutcome(Enum):
    OK = "ok"
    BAD_CREDENTIALS = "bad_credentials"  # wrong password or disabled account
    UNKNOWN_USER = "unknown_user"  # shown exactly as BAD_CREDENTIALS (and counted alike, see gateway/lockout.py)
    LOCKED = "locked"  # too many failures from this source (gateway/lockout.py)


_PERSON_COLUMNS = ("p.id::text as id, p.org_id, p.username, p.display_name, p.role, p.password_hash, p.status,"
                   " o.scope_ceiling, o.status as org_status, o.type as org_type")


def _person(row: dict[str, Any]) -> Person:
    return Person(id=row["id"], org_id=row["org_id"], username=row["username"], display_name=row["display_name"],
                  role=row["role"], scope_ceiling=frozenset(row["scope_ceiling"]), org_type=row["org_type"])


def find(conn: SyncConnection, person_id: str) -> Person | None:
    """An active person of an active organisation, by id (tokens are refreshed only for those)."""
    row = conn.execute(
        f"select {_PERSON_COLUMNS} from gateway.people p join gateway.organisations o on o.id = p.org_id"
        " where p.id = %s and p.status = 'ACTIVE' and o.status = 'ACTIVE'", (person_id,),
    ).fetchone()
    return _person(row) if row else None


def authenticate(conn: SyncConnection, username: str, password: str,
                 now: dt.datetime | None = None) -> tuple[LoginOutcome, Person | None]:
    """Check a username and password (the same argon2 work for an unknown username)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    row = conn.execute(
        f"select {_PERSON_COLUMNS} from gateway.people p join gateway.organisations o on o.id = p.org_id"
        " where p.username = %s", (username.strip().lower(),),
    ).fetchone()
    if row is None:
        _verify(_DUMMY_HASH, password)
        return LoginOutcome.UNKNOWN_USER, None
    if not _verify(row["password_hash"], password):
        return LoginOutcome.BAD_CREDENTIALS, None
    if row["status"] != "ACTIVE" or row["org_status"] != "ACTIVE":
        return LoginOutcome.BAD_CREDENTIALS, None
    person = _person(row)
    person.auth_time = int(now.timestamp())
    if hasher.check_needs_rehash(row["password_hash"]):
        conn.execute("update gateway.people set password_hash = %s where id = %s", (hasher.hash(password), row["id"]))
    return LoginOutcome.OK, person


def _verify(password_hash: str, password: str) -> bool:
    try:
        return hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def create(conn: SyncConnection, username: str, org_id: str, role: str, display_name: str,
           password: str) -> str:
    """Create a person, or reset the name, role and password of an existing username; returns the id.

    A username never moves to another organisation: that would hand one organisation's sign-in
    to another.
    """
    if role not in ROLE_SCOPES:
        raise ValueError(f"unknown role '{role}'; roles: {', '.join(sorted(ROLE_SCOPES))}")
    if len(password) < 12:
        raise ValueError("a password needs at least 12 characters")
    row = conn.execute(
        "insert into gateway.people (id, org_id, username, display_name, role, password_hash)"
        " values (%s, %s, %s, %s, %s, %s)"
        " on conflict (username) do update set display_name = excluded.display_name, role = excluded.role,"
        " password_hash = excluded.password_hash"
        " where gateway.people.org_id = excluded.org_id returning id::text",
        (uuid.uuid4(), org_id, username.strip().lower(), display_name, role, hasher.hash(password)),
    ).fetchone()
    if row is None:
        raise ValueError(f"username '{username}' already belongs to another organisation")
    return row["id"] if isinstance(row, dict) else row[0]


def exists(conn: SyncConnection, username: str) -> bool:
    row = conn.execute("select 1 from gateway.people where username = %s", (username.strip().lower(),)).fetchone()
    return row is not None


def generate_password() -> str:
    return secrets.token_urlsafe(18)
