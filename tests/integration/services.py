"""Service-level testing: a service's handlers called directly against the suite's real PostgreSQL,
with a principal as the runtime would pass it (no gateway, no NATS): access rules in milliseconds."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from psycopg_pool import AsyncConnectionPool

from kernel.tokens import Principal
from services.intake import handlers


class _CountingConnection:
    def __init__(self, conn: Any, statements: list[str]) -> None:
        self._conn, self._statements = conn, statements

    async def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
        self._statements.append(query if isinstance(query, str) else query.as_string(self._conn))
        return await self._conn.execute(query, params, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


class CountingPool:
    """The real pool, recording the text of every statement a handler runs."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool, self.statements = pool, []

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[_CountingConnection]:
        async with self.pool.connection() as conn:
            yield _CountingConnection(conn, self.statements)


def principal(org: str, scopes: str) -> Principal:
    """A verified caller, as the runtime hands it to a handler."""
    return Principal(subject=f"client:{org}", org_id=org, client_id=f"{org}-test", scopes=frozenset(scopes.split()),
                     jti=str(uuid.uuid4()), token="", org_type="NGO")


def arrival(**overrides: Any) -> dict[str, Any]:
    """A valid arrival for intake's register_arrival; tests override what they exercise."""
    return {"given_name": "Mariam", "family_name": "Diarra", "sex": "FEMALE", "estimated_age": 22,
            "country_returned_from": "DZ", "arrival_point": "GAO", "arrival_date": "2026-10-02",
            "destination_region": "07", "vulnerabilities": ["TRAFFICKING_VICTIM"],
            "consent": {"given": True, "recipient_org_ids": ["unicef"]}, **overrides}


async def register(pool: AsyncConnectionPool, org: str, **overrides: Any) -> dict[str, Any]:
    return await handlers.register_arrival(pool, principal(org, "cases:write"),
                                           {"idempotency_key": str(uuid.uuid4()), "arrival": arrival(**overrides)})
