"""The organisation registry, as the GraphQL layer reads it (cached briefly: it changes rarely).

It hands out plain records: the GraphQL ``Organisation`` type builds itself from one
(``Organisation.from_record``), so the registry knows nothing of the schema above it.
"""

from __future__ import annotations

import time

from gateway.store import AsyncPool, OrganisationRecord, active_organisations


class Registry:
    def __init__(self, pool: AsyncPool, ttl: float = 30.0) -> None:
        self.pool, self.ttl = pool, ttl
        self._cache: dict[str, OrganisationRecord] = {}
        self._loaded_at = 0.0

    async def _refresh(self) -> None:
        async with self.pool.connection() as conn:
            records = await active_organisations(conn)
        self._cache = {r.id: r for r in records}
        self._loaded_at = time.monotonic()

    async def organisation(self, org_id: str) -> OrganisationRecord | None:
        if org_id not in self._cache or time.monotonic() - self._loaded_at > self.ttl:
            if time.monotonic() - self._loaded_at > 1.0:
                await self._refresh()
        return self._cache.get(org_id)

    async def all(self) -> list[OrganisationRecord]:
        if time.monotonic() - self._loaded_at > self.ttl:
            await self._refresh()
        return sorted(self._cache.values(), key=lambda o: o.name)
