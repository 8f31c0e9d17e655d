"""Organisations: the registry's records, and their registration by the steward (admin CLI)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from contracts.reference import OrganisationType


@dataclass(frozen=True)
class OrganisationRecord:
    id: str
    name: str
    type: OrganisationType


async def active_organisations(conn: Any) -> list[OrganisationRecord]:
    cur = await conn.execute("select id, name, type from gateway.organisations where status = 'ACTIVE'")
    return [OrganisationRecord(r["id"], r["name"], OrganisationType(r["type"])) for r in await cur.fetchall()]
