"""The gateway's two kinds of database connection, named once.

authlib's server core is synchronous and runs in worker threads, so the authorization server and
the admin CLI use a small synchronous pool; the GraphQL layer and the revocation publisher live on
the event loop and use the async pool (``kernel.db.open_pool``). Both return rows as dicts.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, ConnectionPool

SyncConnection = psycopg.Connection[Any]
AsyncConnection = psycopg.AsyncConnection[Any]
SyncPool = ConnectionPool
AsyncPool = AsyncConnectionPool
Row = dict[str, Any]


def open_sync_pool(url: str) -> SyncPool:
    pool = ConnectionPool(url, min_size=1, max_size=8, open=False, kwargs={"row_factory": dict_row})
    pool.open(wait=True, timeout=30)
    return pool


async def ping(pool: AsyncPool) -> None:
    """Raises unless the database answers (readiness)."""
    async with pool.connection() as conn:
        await conn.execute("select 1")
