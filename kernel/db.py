"""PostgreSQL access: one async pool per process, per-service migrations, idempotency keys."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from importlib import resources
from pathlib import Path
from typing import Any

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from kernel.errors import Conflict

log = logging.getLogger(__name__)

Connection = AsyncConnection[dict[str, Any]]


async def open_pool(url: str, *, min_size: int = 2, max_size: int = 10) -> AsyncConnectionPool:
    pool = AsyncConnectionPool(
        url, min_size=min_size, max_size=max_size, open=False, kwargs={"row_factory": dict_row}
    )
    await pool.open(wait=True, timeout=30)
    return pool


def _kernel_steps() -> list[tuple[str, str]]:
    """Every ``kernel/sql/*.sql`` in name order, recorded as ``0000_<file name>``.

    The prefix keeps the existing record of ``kernel.sql`` ("0000_kernel.sql") so databases
    migrated before there were several kernel files are not migrated again, and sorts every
    kernel step before the services' own ``0001_…`` migrations.
    """
    folder = resources.files("kernel").joinpath("sql")
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)
    return [(f"0000_{f.name}", f.read_text()) for f in files]


async def migrate(url: str, schema: str, migrations: Path) -> list[str]:
    """Apply the kernel's ``sql/*.sql`` and then ``migrations/*.sql``, each in name order, each once.

    An advisory lock serialises concurrent starters (several replicas starting together).
    Returns the names applied by this call.
    """
    applied: list[str] = []
    async with await AsyncConnection.connect(url, autocommit=True) as conn:
        lock_id = int.from_bytes(hashlib.sha256(schema.encode()).digest()[:8], "big", signed=True)
        await conn.execute("select pg_advisory_lock(%s)", (lock_id,))
        try:
            ident = sql.Identifier(schema)
            await conn.execute(sql.SQL("create schema if not exists {}").format(ident))
            await conn.execute(
                sql.SQL(
                    "create table if not exists {}.schema_migrations"
                    " (name text primary key, applied_at timestamptz not null default now())"
                ).format(ident)
            )
            cur = await conn.execute(sql.SQL("select name from {}.schema_migrations").format(ident))
            done = {row[0] for row in await cur.fetchall()}
            steps = _kernel_steps()
            steps += [(p.name, p.read_text()) for p in sorted(migrations.glob("*.sql"))]
            for name, text in steps:
                if name in done:
                    continue
                async with conn.transaction():
                    await conn.execute(text.replace("{schema}", schema))  # type: ignore[arg-type]
                    await conn.execute(
                        sql.SQL("insert into {}.schema_migrations (name) values (%s)").format(ident), (name,)
                    )
                applied.append(name)
                log.info("migration applied", extra={"schema": schema, "migration": name})
        finally:
            await conn.execute("select pg_advisory_unlock(%s)", (lock_id,))
    return applied


def request_hash(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


async def idempotent(
    conn: Connection,
    schema: str,
    *,
    org_id: str,
    operation: str,
    key: str,
    request: Any,
    produce: Callable[[], Awaitable[dict[str, Any]]],
    subject: str = "",
) -> dict[str, Any]:
    """Run ``produce`` once per (organisation, subject, operation, key), inside the caller's transaction.

    A retry with the same key and the same request returns the first response; the same key
    with a different request is refused, so a client bug cannot silently drop data. Keys belong
    to the ``subject`` (client or person) that sent them: another person of the organisation
    replaying a key with guessed contents learns nothing from the answer.
    The key row is claimed first: a concurrent duplicate blocks on it until the first commits.
    """
    digest = request_hash(request)
    table = sql.Identifier(schema, "idempotency_keys")
    where = sql.SQL("org_id=%s and subject=%s and operation=%s and key=%s")
    ident = (org_id, subject, operation, key)
    cur = await conn.execute(
        sql.SQL(
            "insert into {} (org_id, subject, operation, key, request_hash) values (%s, %s, %s, %s, %s)"
            " on conflict do nothing"
        ).format(table),
        (*ident, digest),
    )
    if cur.rowcount == 0:
        cur = await conn.execute(sql.SQL("select request_hash, response from {} where {}").format(table, where), ident)
        row = await cur.fetchone()
        assert row is not None
        if row["request_hash"] != digest:
            raise Conflict(
                "This idempotency key was already used for a different request.",
                field="idempotencyKey",
                code="IDEMPOTENCY_KEY_REUSED",
            )
        return dict(row["response"])
    response = await produce()
    await conn.execute(
        sql.SQL("update {} set response=%s where {}").format(table, where),
        (Jsonb(response), *ident),
    )
    return response


async def update_if_newer(conn: Connection, table: str, key: tuple[str, Any], values: dict[str, Any], version: int,
                          *, version_column: str = "sharing_version", stamp: str | None = None) -> bool | None:
    """Set ``values`` (and ``version``) on the row of ``table`` whose ``key`` column has that value, if
    ``version`` is newer than the one it holds; 0, an unversioned event, applies only while the row
    holds none. True: applied; False: older (a late or repeated event, ignored); None: no such row.

    Events about one thing can arrive out of order (a failed first delivery is retried after later
    ones), so a consumer that keeps the latest state must compare versions, not arrival times.
    ``stamp`` names a column set to ``now()`` when applied.
    """
    target = sql.Identifier(*table.split("."))
    column, value = key
    sets = [sql.SQL("{} = {}").format(sql.Identifier(c), sql.Placeholder(f"v_{c}")) for c in values]
    sets.append(sql.SQL("{} = %(version)s").format(sql.Identifier(version_column)))
    if stamp:
        sets.append(sql.SQL("{} = now()").format(sql.Identifier(stamp)))
    held = sql.Identifier(version_column)
    params = {f"v_{c}": v for c, v in values.items()} | {"key": value, "version": version}
    cur = await conn.execute(sql.SQL(
        "update {} set {} where {} = %(key)s and ({} < %(version)s or (%(version)s = 0 and {} = 0))").format(
        target, sql.SQL(", ").join(sets), sql.Identifier(column), held, held), params)
    if cur.rowcount == 1:
        return True
    cur = await conn.execute(sql.SQL("select from {} where {} = %s").format(target, sql.Identifier(column)), (value,))
    return False if await cur.fetchone() is not None else None
