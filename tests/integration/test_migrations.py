"""kernel.db.migrate against the suite's real PostgreSQL: once per name, safe when concurrent."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from kernel.db import migrate
from devstack.localstack import PostgresServer


@pytest.fixture
async def schema(postgres: PostgresServer) -> AsyncIterator[str]:
    name = f"t_{uuid.uuid4().hex[:8]}"
    try:
        yield name
    finally:
        async with await psycopg.AsyncConnection.connect(postgres.url, autocommit=True) as conn:
            await conn.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(name)))


@pytest.fixture
def migrations(tmp_path: Path) -> Path:
    """Deliberately not re-runnable: applying any of them twice would fail."""
    path = tmp_path / "migrations"
    path.mkdir()
    (path / "0001_things.sql").write_text("create table {schema}.things (id int primary key);\n")
    (path / "0002_more.sql").write_text(
        "alter table {schema}.things add column label text not null default '';\n"
        "insert into {schema}.things (id) values (1);\n"
    )
    return path


async def _applied(url: str, schema: str) -> list[str]:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cur = await conn.execute(
            sql.SQL("select name from {} order by name").format(sql.Identifier(schema, "schema_migrations"))
        )
        return [row[0] for row in await cur.fetchall()]


async def _tables(url: str, schema: str) -> set[str]:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cur = await conn.execute("select table_name from information_schema.tables where table_schema = %s",
                                 (schema,))
        return {row[0] for row in await cur.fetchall()}


KERNEL = ["0000_audit.sql", "0000_kernel.sql", "0000_kernel_2_idempotency_subject.sql"]  # every kernel/sql/*.sql, recorded as 0000_<name>
KERNEL_TABLES = {"schema_migrations", "outbox", "inbox", "idempotency_keys", "audit_log"}
ALL = [*KERNEL, "0001_things.sql", "0002_more.sql"]


async def test_migrate_applies_in_order_then_nothing(postgres: PostgresServer, schema: str, migrations: Path) -> None:
    assert await migrate(postgres.url, schema, migrations) == ALL
    assert await migrate(postgres.url, schema, migrations) == []
    assert await migrate(postgres.url, schema, migrations) == []
    assert await _applied(postgres.url, schema) == ALL
    assert await _tables(postgres.url, schema) == KERNEL_TABLES | {"things"}
    async with await psycopg.AsyncConnection.connect(postgres.url) as conn:
        cur = await conn.execute(sql.SQL("select id, label from {}").format(sql.Identifier(schema, "things")))
        assert await cur.fetchall() == [(1, "")]


async def test_new_migration_is_applied_on_its_own(postgres: PostgresServer, schema: str, migrations: Path) -> None:
    await migrate(postgres.url, schema, migrations)
    (migrations / "0003_index.sql").write_text("create index things_label on {schema}.things (label);\n")
    assert await migrate(postgres.url, schema, migrations) == ["0003_index.sql"]
    assert await migrate(postgres.url, schema, migrations) == []


async def test_failed_migration_is_rolled_back_and_retried(
    postgres: PostgresServer, schema: str, migrations: Path
) -> None:
    (migrations / "0003_broken.sql").write_text(
        "create table {schema}.half (id int);\nselect * from {schema}.no_such_table;\n"
    )
    with pytest.raises(psycopg.errors.UndefinedTable):
        await migrate(postgres.url, schema, migrations)
    assert await _applied(postgres.url, schema) == ALL
    assert "half" not in await _tables(postgres.url, schema)
    (migrations / "0003_broken.sql").write_text("create table {schema}.half (id int);\n")
    assert await migrate(postgres.url, schema, migrations) == ["0003_broken.sql"]


async def test_concurrent_migrations_on_the_same_schema_do_not_fail(
    postgres: PostgresServer, schema: str, migrations: Path
) -> None:
    results = await asyncio.wait_for(
        asyncio.gather(*(migrate(postgres.url, schema, migrations) for _ in range(5))), 60
    )
    applied = [name for result in results for name in result]
    assert sorted(applied) == ALL  # each step applied exactly once, by whichever got the lock first
    assert sum(1 for result in results if result) == 1
    assert await _applied(postgres.url, schema) == ALL


async def test_empty_migrations_dir_creates_the_kernel_tables(
    postgres: PostgresServer, schema: str, tmp_path: Path
) -> None:
    empty = tmp_path / "none"
    empty.mkdir()
    assert await migrate(postgres.url, schema, empty) == KERNEL
    assert await _tables(postgres.url, schema) == KERNEL_TABLES


async def test_two_schemas_are_independent(postgres: PostgresServer, schema: str, migrations: Path) -> None:
    other = f"{schema}_b"
    try:
        first, second = await asyncio.gather(
            migrate(postgres.url, schema, migrations), migrate(postgres.url, other, migrations)
        )
        assert first == second == ALL
    finally:
        async with await psycopg.AsyncConnection.connect(postgres.url, autocommit=True) as conn:
            await conn.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(other)))
