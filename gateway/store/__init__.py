"""The gateway's SQL, and nowhere else: one module per kind of record.

Modules above this package call these functions with a connection (``connections``) and get
records or plain rows back; they hold policy (how many failures lock a source, which scopes a
client may hold), never SQL.
"""

from __future__ import annotations

from gateway.store.connections import AsyncConnection, AsyncPool, Row, SyncConnection, SyncPool, open_sync_pool
from gateway.store.organisations import OrganisationRecord, active_organisations

__all__ = ["AsyncConnection", "AsyncPool", "OrganisationRecord", "Row", "SyncConnection", "SyncPool",
           "active_organisations", "open_sync_pool"]
