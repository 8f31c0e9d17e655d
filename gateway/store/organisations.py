"""Organisations: the registry's records, and their registration by the steward (admin CLI)."""

from __future__ import annotations

from dataclasses import dataclass

from contracts.reference import OrganisationType
from gateway.store.connections import AsyncConnection, SyncConnection


@dataclass(frozen=True)
class OrganisationRecord:
    id: str
    name: str
    type: OrganisationType


async def active_organisations(conn: AsyncConnection) -> list[OrganisationRecord]:
    cur = await conn.execute("select id, name, type from gateway.organisations where status = 'ACTIVE'")
    return [OrganisationRecord(r["id"], r["name"], OrganisationType(r["type"])) for r in await cur.fetchall()]


def upsert_organisation(conn: SyncConnection, org_id: str, name: str, org_type: str, scopes: list[str]) -> None:
    conn.execute(
        "insert into gateway.organisations (id, name, type, scope_ceiling) values (%s, %s, %s, %s)"
        " on conflict (id) do update set name = excluded.name, type = excluded.type,"
        " scope_ceiling = excluded.scope_ceiling",
        (org_id, name, org_type, scopes),
    )
