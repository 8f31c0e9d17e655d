"""The gateway's SQL, and nowhere else: one module per kind of record, over two kinds of connection.

authlib's server core is synchronous and runs in worker threads, so the authorization server and
the admin CLI use a small synchronous pool (``SyncPool``/``SyncConnection``); the GraphQL layer and
the revocation publisher live on the event loop and use the async pool (``AsyncPool``/
``AsyncConnection``). Both return rows as dicts. Modules above this package receive records, never
rows or SQL.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from gateway.store.organisations import OrganisationRecord, active_organisations

SyncConnection = psycopg.Connection[Any]
AsyncConnection = psycopg.AsyncConnection[Any]
SyncPool = ConnectionPool
AsyncPool = AsyncConnectionPool

__all__ = ["AsyncConnection", "AsyncPool", "OrganisationRecord", "SyncConnection", "SyncPool",
           "active_organisations", "open_sync_pool"]


def open_sync_pool(url: str) -> SyncPool:
    pool = ConnectionPool(url, min_size=1, max_size=8, open=False, kwargs={"row_factory": dict_row})
    pool.open(wait=True, timeout=30)
    return pool
