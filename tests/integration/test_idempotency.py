"""kernel.db.idempotent against the suite's real PostgreSQL, under concurrency."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from kernel.db import idempotent, migrate, open_pool
from kernel.errors import Conflict
from devstack.localstack import PostgresServer

CONCURRENCY = 10


@dataclass
class Db:
    schema: str
    pool: AsyncConnectionPool

    async def things(self) -> list[dict[str, Any]]:
        async with self.pool.connection() as conn:
            cur = await conn.execute(sql.SQL("select org_id, label from {} order by org_id").format(
                sql.Identifier(self.schema, "things")))
            return await cur.fetchall()


@pytest.fixture
async def db(postgres: PostgresServer, tmp_path: Path) -> AsyncIterator[Db]:
    schema = f"t_{uuid.uuid4().hex[:8]}"
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "0001_things.sql").write_text(
        "create table {schema}.things (id uuid primary key, org_id text not null, label text not null);"
    )
    await migrate(postgres.url, schema, migrations)
    pool = await open_pool(postgres.url, min_size=1, max_size=CONCURRENCY + 2)
    try:
        yield Db(schema, pool)
    finally:
        await pool.close()
        async with await psycopg.AsyncConnection.connect(postgres.url, autocommit=True) as conn:
            await conn.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(schema)))


@dataclass
class Operation:
    """A command that creates a row and answers with its id; counts how often it really ran."""

    db: Db
    delay: float = 0.0
    runs: int = 0
    started: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self, org_id: str, key: str, request: dict[str, Any]) -> dict[str, Any]:
        async with self.db.pool.connection() as conn, conn.transaction():

            async def produce() -> dict[str, Any]:
                self.runs += 1
                self.started.set()
                await asyncio.sleep(self.delay)  # hold the key row while the duplicates arrive
                thing_id = uuid.uuid4()
                await conn.execute(
                    sql.SQL("insert into {} (id, org_id, label) values (%s, %s, %s)").format(
                        sql.Identifier(self.db.schema, "things")),
                    (thing_id, org_id, request["label"]),
                )
                return {"thing_id": str(thing_id), "label": request["label"]}

            return await idempotent(
                conn, self.db.schema, org_id=org_id, operation="create_thing", key=key, request=request,
                produce=produce,
            )


async def test_concurrent_duplicates_produce_once_and_share_the_response(db: Db) -> None:
    operation = Operation(db, delay=0.3)
    request = {"label": "tent", "count": 2}
    results = await asyncio.gather(
        *(operation("org-a", "key-0001", dict(request)) for _ in range(CONCURRENCY))
    )
    assert operation.runs == 1
    assert len({r["thing_id"] for r in results}) == 1
    assert all(r == results[0] for r in results)
    assert await db.things() == [{"org_id": "org-a", "label": "tent"}]


async def test_retry_after_commit_returns_the_first_response(db: Db) -> None:
    operation = Operation(db)
    first = await operation("org-a", "key-0002", {"label": "tent"})
    again = await operation("org-a", "key-0002", {"label": "tent"})
    assert again == first
    assert operation.runs == 1


async def test_request_key_order_does_not_matter(db: Db) -> None:
    operation = Operation(db)
    first = await operation("org-a", "key-0003", {"label": "tent", "count": 1})
    again = await operation("org-a", "key-0003", {"count": 1, "label": "tent"})
    assert again == first
    assert operation.runs == 1


async def test_same_key_different_request_is_a_conflict(db: Db) -> None:
    operation = Operation(db)
    await operation("org-a", "key-0004", {"label": "tent"})
    with pytest.raises(Conflict) as caught:
        await operation("org-a", "key-0004", {"label": "blanket"})
    assert caught.value.code == "IDEMPOTENCY_KEY_REUSED"
    assert caught.value.field == "idempotencyKey"
    assert "blanket" not in caught.value.message
    assert operation.runs == 1
    assert await db.things() == [{"org_id": "org-a", "label": "tent"}]


async def test_concurrent_same_key_different_request_one_wins_the_other_conflicts(db: Db) -> None:
    operation = Operation(db, delay=0.3)
    first = asyncio.create_task(operation("org-a", "key-0005", {"label": "tent"}))
    await asyncio.wait_for(operation.started.wait(), 10)
    second = asyncio.create_task(operation("org-a", "key-0005", {"label": "blanket"}))
    assert (await first)["label"] == "tent"
    with pytest.raises(Conflict) as caught:
        await second
    assert caught.value.code == "IDEMPOTENCY_KEY_REUSED"
    assert operation.runs == 1


async def test_different_organisations_with_the_same_key_are_independent(db: Db) -> None:
    operation = Operation(db, delay=0.1)
    results = await asyncio.gather(
        operation("org-a", "key-0006", {"label": "tent"}),
        operation("org-b", "key-0006", {"label": "tent"}),
        operation("org-c", "key-0006", {"label": "blanket"}),  # different request: no conflict across orgs
    )
    assert operation.runs == 3
    assert len({r["thing_id"] for r in results}) == 3
    assert await db.things() == [
        {"org_id": "org-a", "label": "tent"},
        {"org_id": "org-b", "label": "tent"},
        {"org_id": "org-c", "label": "blanket"},
    ]


async def test_different_operations_with_the_same_key_are_independent(db: Db) -> None:
    async with db.pool.connection() as conn, conn.transaction():
        async def produce_a() -> dict[str, Any]:
            return {"op": "a"}

        async def produce_b() -> dict[str, Any]:
            return {"op": "b"}

        a = await idempotent(conn, db.schema, org_id="org-a", operation="a", key="k-0007", request={},
                             produce=produce_a)
        b = await idempotent(conn, db.schema, org_id="org-a", operation="b", key="k-0007", request={},
                             produce=produce_b)
    assert (a, b) == ({"op": "a"}, {"op": "b"})


async def test_rolled_back_attempt_releases_the_key(db: Db) -> None:
    """A failed first attempt must not leave the key claimed with no response."""
    operation = Operation(db)

    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with db.pool.connection() as conn, conn.transaction():

            async def failing() -> dict[str, Any]:
                raise Boom

            await idempotent(conn, db.schema, org_id="org-a", operation="create_thing", key="key-0008",
                             request={"label": "tent"}, produce=failing)

    result = await operation("org-a", "key-0008", {"label": "tent"})
    assert result["label"] == "tent"
    assert operation.runs == 1


async def blocked_on_a_lock(db: Db, timeout: float = 30) -> None:
    """Return once another session of this database waits for a lock (its own connection: the
    pool's are the code under test's)."""
    deadline = asyncio.get_running_loop().time() + timeout
    async with await psycopg.AsyncConnection.connect(db.pool.conninfo, autocommit=True) as conn:
        while True:
            cur = await conn.execute("select count(*) from pg_stat_activity"
                                     " where wait_event_type = 'Lock' and datname = current_database()")
            row = await cur.fetchone()
            if row and row[0]:
                return
            assert asyncio.get_running_loop().time() < deadline, "no session ever waited for the key row"
            await asyncio.sleep(0.02)


async def test_duplicate_waiting_on_a_rolled_back_first_attempt_produces_itself(db: Db) -> None:
    """The first claimant fails after the duplicate queued behind its key row: the duplicate runs."""
    claimed = asyncio.Event()
    release = asyncio.Event()

    class Boom(Exception):
        pass

    async def first_attempt() -> None:
        async with db.pool.connection() as conn, conn.transaction():

            async def failing() -> dict[str, Any]:
                claimed.set()
                await asyncio.wait_for(release.wait(), 10)
                raise Boom

            await idempotent(conn, db.schema, org_id="org-a", operation="create_thing", key="key-0009",
                             request={"label": "tent"}, produce=failing)

    operation = Operation(db)
    failing_task = asyncio.create_task(first_attempt())
    await asyncio.wait_for(claimed.wait(), 10)
    duplicate = asyncio.create_task(operation("org-a", "key-0009", {"label": "tent"}))
    await blocked_on_a_lock(db)  # the duplicate queued behind the key row, however slow the machine
    assert not duplicate.done()
    release.set()
    with pytest.raises(Boom):
        await failing_task
    result = await asyncio.wait_for(duplicate, 10)
    assert result["label"] == "tent"
    assert operation.runs == 1
    assert len(await db.things()) == 1
