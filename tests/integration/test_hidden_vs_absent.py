"""A case hidden from the caller and a case that does not exist are refused with the same work:
the same statements in the same order, so neither the answer nor its timing tells them apart.
Intake's handlers are called directly against the suite's real PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from kernel.db import migrate, open_pool
from kernel.errors import NotFound
from kernel.localstack import PostgresServer
from kernel.tokens import Principal
from services.intake import handlers
from services.intake.app import APP


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
    return Principal(subject=f"client:{org}", org_id=org, client_id=f"{org}-test", scopes=frozenset(scopes.split()),
                     jti=str(uuid.uuid4()), token="", org_type="NGO")


@pytest.fixture
async def pool(postgres: PostgresServer) -> AsyncIterator[AsyncConnectionPool]:
    await migrate(postgres.url, APP.schema, APP.migrations)
    pool = await open_pool(postgres.url, min_size=1, max_size=2)
    yield pool
    await pool.close()


async def test_a_hidden_case_is_refused_with_the_same_statements_as_an_absent_one(pool: AsyncConnectionPool) -> None:
    arrival = {"given_name": "Mariam", "family_name": "Diarra", "sex": "FEMALE", "estimated_age": 22,
               "country_returned_from": "DZ", "arrival_point": "GAO", "arrival_date": "2026-10-02",
               "destination_region": "07", "vulnerabilities": ["TRAFFICKING_VICTIM"],
               "consent": {"given": True, "recipient_org_ids": ["unicef"]}}
    case = await handlers.register_arrival(pool, principal("dgme", "cases:write"),
                                           {"idempotency_key": str(uuid.uuid4()), "arrival": arrival})
    outsider = principal("ame", "cases:read")

    async def refused(case_id: str) -> list[str]:
        counting = CountingPool(pool)
        with pytest.raises(NotFound) as refusal:
            await handlers.get_case(counting, outsider, {"case_id": case_id})  # type: ignore[arg-type]
        assert refusal.value.message == "No such case, or it is not shared with your organisation."
        return counting.statements

    hidden, absent = await refused(case["id"]), await refused(str(uuid.uuid4()))
    assert hidden == absent and len(hidden) >= 3
