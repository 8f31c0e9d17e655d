"""What a refusal must not reveal, checked on intake's handlers called directly against the
suite's real PostgreSQL: a hidden case and an absent one are refused with the same statements
(so not told apart by timing), and a statistics answer does not change when its caller puts a
decoy into an empty cell."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from kernel.db import migrate, open_pool
from kernel.errors import Conflict, NotFound
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


def arrival(**overrides: Any) -> dict[str, Any]:
    return {"given_name": "Mariam", "family_name": "Diarra", "sex": "FEMALE", "estimated_age": 22,
               "country_returned_from": "DZ", "arrival_point": "GAO", "arrival_date": "2026-10-02",
               "destination_region": "07", "vulnerabilities": ["TRAFFICKING_VICTIM"],
               "consent": {"given": True, "recipient_org_ids": ["unicef"]}, **overrides}


async def register(pool: AsyncConnectionPool, org: str, **overrides: Any) -> dict[str, Any]:
    return await handlers.register_arrival(pool, principal(org, "cases:write"),
                                           {"idempotency_key": str(uuid.uuid4()), "arrival": arrival(**overrides)})


async def test_a_hidden_case_is_refused_with_the_same_statements_as_an_absent_one(pool: AsyncConnectionPool) -> None:
    case = await register(pool, "dgme")
    outsider = principal("ame", "cases:read")

    async def refused(case_id: str) -> list[str]:
        counting = CountingPool(pool)
        with pytest.raises(NotFound) as refusal:
            await handlers.get_case(counting, outsider, {"case_id": case_id})  # type: ignore[arg-type]
        assert refusal.value.message == "No such case, or it is not shared with your organisation."
        return counting.statements

    hidden, absent = await refused(case["id"]), await refused(str(uuid.uuid4()))
    assert hidden == absent and len(hidden) >= 3


async def test_a_decoy_in_an_empty_cell_changes_nothing_its_owner_is_told(pool: AsyncConnectionPool) -> None:
    """Whether a suppressed cell already held someone must not show (no count of suppressed cells)."""
    iom = principal("iom", "statistics:read cases:write")
    request = {"group_by": ["MONTH", "REGION", "VULNERABILITY"]}
    await register(pool, "dgme", arrival_date="2024-07-09", destination_region="17")  # a real person
    before = await handlers.statistics(pool, iom, request)
    await register(pool, "iom", arrival_date="2024-07-09", destination_region="16")   # a decoy, empty cell
    assert await handlers.statistics(pool, iom, request) == before
    await register(pool, "iom", arrival_date="2024-07-09", destination_region="17")   # a decoy beside her
    assert await handlers.statistics(pool, iom, request) == before


async def test_another_persons_idempotency_key_tells_nothing_about_the_case_it_made(
        pool: AsyncConnectionPool) -> None:
    """A case worker of the same organisation, without the health scope, replays the key a colleague
    used, guessing the hidden flags: every guess answers alike, none with the colleague's case."""
    key = f"ly-charter-2026-11-20-{uuid.uuid4().hex[:4]}"
    registered = await handlers.register_arrival(pool, principal("dgme", "cases:write"), {
        "idempotency_key": key, "arrival": arrival(vulnerabilities=["PREGNANT"])})
    colleague = Principal(subject="person:narrow", org_id="dgme", client_id="segin-web", token="", jti="x",
                          scopes=frozenset({"cases:write", "cases:read"}), org_type="STATE")
    answers = []
    for guess in (["MEDICAL_NEEDS"], ["PREGNANT"], ["DISABILITY"]):  # the right one in the middle
        try:
            case = await handlers.register_arrival(pool, colleague, {"idempotency_key": key,
                                                                    "arrival": arrival(vulnerabilities=guess)})
            answers.append("registered anew" if case["id"] != registered["id"] else "the colleague's case")
        except Conflict as exc:
            answers.append(exc.code)
    # The key is the colleague's own from the first use on: the right guess answers like a wrong one.
    assert answers == ["registered anew", "IDEMPOTENCY_KEY_REUSED", "IDEMPOTENCY_KEY_REUSED"]
