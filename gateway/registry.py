"""The organisation registry, as the GraphQL layer reads it (cached briefly: it changes rarely)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from psycopg_pool import AsyncConnectionPool

from contracts.reference import OrganisationType

if TYPE_CHECKING:
    from gateway.schema import Organisation


class Registry:
    def __init__(self, pool: AsyncConnectionPool, ttl: float = 30.0) -> None:
        self.pool, self.ttl = pool, ttl
        self._cache: dict[str, "Organisation"] = {}
        self._loaded_at = 0.0

    async def _refresh(self) -> None:
        from gateway.schema import Organisation

        async with self.pool.connection() as conn:
            cur = await conn.execute("select id, name, type from gateway.organisations where status = 'ACTIVE'")
            rows = await cur.fetchall()
        self._cache = {r["id"]: Organisation(id=r["id"], name=r["name"], type=OrganisationType(r["type"])) for r in rows}
        self._loaded_at = time.monotonic()

    async def organisation(self, org_id: str) -> "Organisation | None":
        if org_id not in self._cache or time.monotonic() - self._loaded_at > self.ttl:
            if time.monotonic() - self._loaded_at > 1.0:
                await self._refresh()
        return self._cache.get(org_id)

    async def all(self) -> list["Organisation"]:
        if time.monotonic() - self._loaded_at > self.ttl:
            await self._refresh()
        return sorted(self._cache.values(), key=lambda o: o.name)
