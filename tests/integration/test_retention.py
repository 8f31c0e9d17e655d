"""Pruning removes only plumbing rows that have outlived their use."""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg
from psycopg import sql

from kernel.db import migrate, open_pool
from devstack.localstack import PostgresServer
from kernel.retention import Retention, prune


async def test_prune_keeps_what_may_still_be_needed(postgres: PostgresServer, tmp_path: Path) -> None:
    schema = f"t_{uuid.uuid4().hex[:8]}"
    await migrate(postgres.url, schema, tmp_path)
    t = lambda name: sql.Identifier(schema, name)  # noqa: E731
    async with await psycopg.AsyncConnection.connect(postgres.url, autocommit=True) as conn:
        for age_days, published in ((10, True), (1, True), (10, False)):
            await conn.execute(
                sql.SQL("insert into {} (id, subject, envelope, created_at, published_at) values"
                        " (%s, 's', '{{}}', now() - make_interval(days => %s),"
                        " case when %s then now() - make_interval(days => %s) end)").format(t("outbox")),
                (uuid.uuid4(), age_days, published, age_days))
        for age_days in (40, 5):
            await conn.execute(sql.SQL("insert into {} (consumer, event_id, processed_at) values"
                                       " ('c', %s, now() - make_interval(days => %s))").format(t("inbox")),
                               (str(uuid.uuid4()), age_days))
            await conn.execute(sql.SQL("insert into {} (org_id, operation, key, request_hash, created_at) values"
                                       " ('o', 'op', %s, 'h', now() - make_interval(days => %s))").format(
                                           t("idempotency_keys")), (str(uuid.uuid4()), age_days))
    pool = await open_pool(postgres.url, min_size=1, max_size=1)
    try:
        removed = await prune(pool, schema, Retention(outbox_days=7, inbox_days=30, idempotency_days=30))
        assert removed == {"outbox": 1, "inbox": 1, "idempotency_keys": 1}
        # An unpublished event is never pruned, however old: it has not reached NATS yet.
        async with pool.connection() as conn:
            cur = await conn.execute(sql.SQL("select count(*) as n from {} where published_at is null").format(
                t("outbox")))
            assert (await cur.fetchone())["n"] == 1
        assert await prune(pool, schema, Retention()) == {"outbox": 0, "inbox": 0, "idempotency_keys": 0}
    finally:
        await pool.close()
        async with await psycopg.AsyncConnection.connect(postgres.url, autocommit=True) as conn:
            await conn.execute(sql.SQL("drop schema {} cascade").format(sql.Identifier(schema)))
