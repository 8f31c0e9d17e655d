"""Pruning the plumbing tables, so they do not grow with the caseload.

Published outbox rows are only needed until JetStream has the event (its duplicate window is
two minutes); inbox rows only while a redelivery is possible; idempotency keys only while a
field device may still retry. Business data and the audit log are never touched here.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from kernel.periodic import every

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Retention:
    outbox_days: int = 7
    inbox_days: int = 30
    idempotency_days: int = 30


async def prune(pool: AsyncConnectionPool, schema: str, retention: Retention) -> dict[str, int]:
    """Delete what has outlived its use; returns how many rows went from each table."""
    statements = {
        "outbox": ("delete from {} where published_at is not null and published_at < now() - make_interval(days => %s)",
                   retention.outbox_days),
        "inbox": ("delete from {} where processed_at < now() - make_interval(days => %s)", retention.inbox_days),
        "idempotency_keys": ("delete from {} where created_at < now() - make_interval(days => %s)",
                             retention.idempotency_days),
    }
    removed = {}
    async with pool.connection() as conn:
        for table, (statement, days) in statements.items():
            cur = await conn.execute(sql.SQL(statement).format(sql.Identifier(schema, table)), (days,))
            removed[table] = cur.rowcount
    return removed


async def run_pruning(pool: AsyncConnectionPool, schema: str, retention: Retention, stop: asyncio.Event,
                      every_seconds: float = 3600.0) -> None:
    """Prune at start and then every hour until ``stop``."""

    async def prune_and_report() -> None:
        removed = await prune(pool, schema, retention)
        if any(removed.values()):
            log.info("plumbing tables pruned", extra={"schema": schema, **removed})

    await every(every_seconds, stop, prune_and_report, name=f"pruning-{schema}", immediately=True)
