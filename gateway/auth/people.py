"""People who sign in: accounts, password checks, and what their tokens may hold.

Failed sign-ins are counted per (username, source) by ``gateway.auth.lockout``, not here: a lock on the
account itself could be triggered by anyone who knows the username.

A person's token holds at most: what they asked for ∩ what their role allows (``ROLE_SCOPES``)
∩ their organisation's scope ceiling ∩ what the client may hold. ``openid`` only names the person
to the client (an id_token) and gives no access to data, so the organisation ceiling, which governs
data access, does not apply to it.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from contracts.scopes import ROLE_SCOPES
from gateway.auth import passwords
from gateway.store import people as store
from gateway.store.connections import Row, SyncConnection

IDENTITY_SCOPES = frozenset({"openid"})


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
    UNKNOWN_USER = "unknown_user"  # shown exactly as BAD_CREDENTIALS (and counted alike, see gateway/auth/lockout.py)
    LOCKED = "locked"  # too many failures from this source (gateway/auth/lockout.py)


def _person(row: Row) -> Person:
    return Person(id=row["id"], org_id=row["org_id"], username=row["username"], display_name=row["display_name"],
                  role=row["role"], scope_ceiling=frozenset(row["scope_ceiling"]), org_type=row["org_type"])


def find(conn: SyncConnection, person_id: str) -> Person | None:
    """An active person of an active organisation, by id (tokens are refreshed only for those)."""
    row = store.active_person(conn, person_id)
    return _person(row) if row else None


def authenticate(conn: SyncConnection, username: str, password: str,
                 now: dt.datetime | None = None) -> tuple[LoginOutcome, Person | None]:
    """Check a username and password (the same argon2 work for an unknown username)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    row = store.by_username(conn, username.strip().lower())
    if row is None:
        passwords.verify_nothing(password)
        return LoginOutcome.UNKNOWN_USER, None
    if not passwords.verify(row["password_hash"], password):
        return LoginOutcome.BAD_CREDENTIALS, None
    if row["status"] != "ACTIVE" or row["org_status"] != "ACTIVE":
        return LoginOutcome.BAD_CREDENTIALS, None
    person = _person(row)
    person.auth_time = int(now.timestamp())
    if passwords.needs_rehash(row["password_hash"]):
        store.set_password_hash(conn, row["id"], passwords.hash_secret(password))
    return LoginOutcome.OK, person


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
    person_id = store.upsert_person(conn, username.strip().lower(), org_id, role, display_name,
                                    passwords.hash_secret(password))
    if person_id is None:
        raise ValueError(f"username '{username}' already belongs to another organisation")
    return person_id


def exists(conn: SyncConnection, username: str) -> bool:
    return store.username_exists(conn, username.strip().lower())


def generate_password() -> str:
    return secrets.token_urlsafe(18)
