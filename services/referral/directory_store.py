"""The service directory's tables (``referral.organizations``, ``services``, ``service_locations``).

Reads take a ``Viewer``: the categories the caller may not see, the caller's organisation (which
always sees its own services) and whether it sees services awaiting approval (the steward). The
visibility rule is applied in SQL, so a hidden service never leaves the database, nor counts in a
page's total.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any, NamedTuple

from psycopg import sql
from psycopg.types.json import Jsonb

from contracts.reference import ServiceCategory
from kernel.db import Connection
from kernel.pagination import keyset_query

# The columns a save writes (capacity bookkeeping and versioning are set here, not by callers).
SERVICE_COLUMNS = ("name_fr", "name_en", "description_fr", "description_en", "category", "regions", "status",
                   "minimum_age", "maximum_age", "sexes", "vulnerabilities", "hours", "email", "phone", "url",
                   "expected_duration", "capacity_available", "capacity_maximum")
LOCATION_COLUMNS = ("name", "address_1", "city", "region", "latitude", "longitude")
_SELECT = ("select s.*, o.name as organization_name, o.org_type as organization_type"
           " from referral.services s join referral.organizations o on o.id = s.organization_id")
_VISIBLE = " (s.organization_id = %s or (s.category <> all(%s) and (s.approved or %s)))"


class Viewer(NamedTuple):
    """Who reads the directory, as its visibility rule needs it."""

    org_id: str
    hidden: list[ServiceCategory]  # sensitive categories the caller may not see
    sees_unapproved: bool  # the steward sees services awaiting its approval


def _column_values(values: dict[str, Any]) -> list[Any]:
    out = []
    for column in SERVICE_COLUMNS:
        value = values[column]
        if column == "hours":
            value = Jsonb(value)
        elif column == "expected_duration" and value is not None:
            value = timedelta(days=value)
        out.append(value)
    return out


async def ensure_organization(conn: Connection, org_id: str, name: str | None, org_type: str | None) -> None:
    """The organisation as the directory shows it: created on its first service, renamed when told."""
    await conn.execute(
        "insert into referral.organizations (id, name, org_type) values (%s, coalesce(%s, %s), coalesce(%s, 'NGO'))"
        " on conflict (id) do update set name = coalesce(%s, organizations.name),"
        " org_type = coalesce(%s, organizations.org_type), updated_at = now()"
        " where %s::text <> organizations.name or %s::text <> organizations.org_type",
        (org_id, name, org_id, org_type, name, org_type, name, org_type),
    )


async def organization(conn: Connection, org_id: str) -> dict[str, Any] | None:
    cur = await conn.execute("select * from referral.organizations where id = %s", (org_id,))
    return await cur.fetchone()


async def get_service(conn: Connection, service_id: uuid.UUID, *, lock: bool = False) -> dict[str, Any] | None:
    cur = await conn.execute(_SELECT + " where s.id = %s" + (" for update of s" if lock else ""), (service_id,))
    return await cur.fetchone()


async def insert_service(conn: Connection, service_id: uuid.UUID, org_id: str, values: dict[str, Any],
                         actor: str, approved: bool) -> None:
    columns = ["id", "organization_id", *SERVICE_COLUMNS, "updated_by", "approved", "capacity_updated_at",
               "capacity_updated_by"]
    known = values["capacity_available"] is not None
    await conn.execute(
        sql.SQL("insert into referral.services ({}) values ({}, case when %s then now() end, %s)").format(
            sql.SQL(", ").join(map(sql.Identifier, columns)),
            sql.SQL(", ").join(sql.Placeholder() * (len(columns) - 2))),
        (service_id, org_id, *_column_values(values), actor, approved, known, actor if known else None),
    )


async def update_service(conn: Connection, service_id: uuid.UUID, version: int, values: dict[str, Any],
                         actor: str, capacity_changed: bool, approved: bool) -> bool:
    """Apply a save read at ``version``; False when the row has moved on (nothing written)."""
    assignments = sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(c)) for c in SERVICE_COLUMNS)
    cur = await conn.execute(
        sql.SQL("update referral.services set {}, version = version + 1, updated_at = now(), updated_by = %s,"
                " capacity_updated_at = case when %s then now() else capacity_updated_at end,"
                " capacity_updated_by = case when %s then %s else capacity_updated_by end,"
                " approved = %s, approved_at = case when %s then approved_at end,"
                " approved_by = case when %s then approved_by end"
                " where id = %s and version = %s").format(assignments),
        (*_column_values(values), actor, capacity_changed, capacity_changed, actor, approved, approved, approved,
         service_id, version),
    )
    return cur.rowcount == 1


async def approve(conn: Connection, service_id: uuid.UUID, version: int, actor: str) -> bool:
    """The steward's approval of the service as read at ``version``; False when it has moved on."""
    cur = await conn.execute(
        "update referral.services set approved = true, approved_at = now(), approved_by = %s,"
        " version = version + 1, updated_at = now(), updated_by = %s where id = %s and version = %s",
        (actor, actor, service_id, version))
    return cur.rowcount == 1


async def set_capacity(conn: Connection, service_id: uuid.UUID, version: int, available: int,
                       maximum: int | None, actor: str) -> bool:
    cur = await conn.execute(
        "update referral.services set capacity_available = %s, capacity_maximum = %s, capacity_updated_at = now(),"
        " capacity_updated_by = %s, version = version + 1, updated_at = now(), updated_by = %s"
        " where id = %s and version = %s",
        (available, maximum, actor, actor, service_id, version),
    )
    return cur.rowcount == 1


async def replace_locations(conn: Connection, service_id: uuid.UUID, locations: list[dict[str, Any]]) -> None:
    """A save describes the service whole: its places are replaced, in the order given."""
    await conn.execute("delete from referral.service_locations where service_id = %s", (service_id,))
    for position, place in enumerate(locations):
        await conn.execute(
            "insert into referral.service_locations (id, service_id, position, name, address_1, city, region,"
            " latitude, longitude) values (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (uuid.uuid4(), service_id, position, *(place[c] for c in LOCATION_COLUMNS)),
        )


async def locations_of(conn: Connection, service_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[dict[str, Any]]]:
    """Each service's places, in order, in one query."""
    found: dict[uuid.UUID, list[dict[str, Any]]] = {s: [] for s in service_ids}
    cur = await conn.execute("select * from referral.service_locations where service_id = any(%s)"
                             " order by service_id, position", (service_ids,))
    for row in await cur.fetchall():
        found[row["service_id"]].append(row)
    return found


def _filters(viewer: Viewer, *, category: str | None = None, region: str | None = None,
             vulnerability: str | None = None, open_capacity_only: bool = False, organization_id: str | None = None,
             include_inactive: bool = True, awaiting_approval: bool | None = None) -> tuple[str, list[Any]]:
    where, params = [_VISIBLE], [viewer.org_id, [c.value for c in viewer.hidden], viewer.sees_unapproved]
    if awaiting_approval is not None:
        where.append(" s.approved <> %s")
        params.append(awaiting_approval)
    if not include_inactive:
        where.append(" s.status = 'active'")
    if category:
        where.append(" s.category = %s")
        params.append(category)
    if region:
        where.append(" (cardinality(s.regions) = 0 or %s = any(s.regions))")
        params.append(region)
    if vulnerability:
        where.append(" (cardinality(s.vulnerabilities) = 0 or %s = any(s.vulnerabilities))")
        params.append(vulnerability)
    if open_capacity_only:
        where.append(" (s.capacity_available is null or s.capacity_available > 0)")
    if organization_id:
        where.append(" s.organization_id = %s")
        params.append(organization_id)
    return " where" + " and".join(where), params


async def list_services(conn: Connection, viewer: Viewer, first: int, after: str | None,
                        **filters: Any) -> list[dict[str, Any]]:
    """A keyset page (newest first) of the services the caller may see, filtered."""
    where, params = _filters(viewer, **filters)
    # keyset_query names created_at and id unqualified: select from the joined rows as a subquery.
    query, params = keyset_query(f"select * from ({_SELECT}{where}) s where true", params, first, after)
    cur = await conn.execute(query, params)
    return list(await cur.fetchall())


async def page_services(conn: Connection, viewer: Viewer, offset: int, limit: int,
                        organization_id: str | None = None) -> tuple[int, list[dict[str, Any]]]:
    """An offset page (HSDS paging: page numbers and totals), oldest first, and how many there are in all."""
    where, params = _filters(viewer, organization_id=organization_id)
    cur = await conn.execute(f"select count(*) as n from referral.services s{where}", params)
    total = (await cur.fetchone() or {"n": 0})["n"]
    cur = await conn.execute(f"{_SELECT}{where} order by s.created_at, s.id offset %s limit %s",
                             [*params, offset, limit])
    return total, list(await cur.fetchall())


# An organisation is listed when the caller sees one of its services, or is that organisation: one
# known only by a hidden or waiting service would otherwise show that such a service exists.
_LISTED = (" from referral.organizations o where o.id = %s or exists (select 1 from referral.services s"
           " where s.organization_id = o.id and" + _VISIBLE + ")")


async def page_organizations(conn: Connection, viewer: Viewer, offset: int,
                             limit: int) -> tuple[int, list[dict[str, Any]]]:
    """An offset page of the organisations the caller may know of, and how many there are in all."""
    params = [viewer.org_id, viewer.org_id, [c.value for c in viewer.hidden], viewer.sees_unapproved]
    cur = await conn.execute("select count(*) as n" + _LISTED, params)
    total = (await cur.fetchone() or {"n": 0})["n"]
    cur = await conn.execute("select o.*" + _LISTED + " order by o.id offset %s limit %s", [*params, offset, limit])
    return total, list(await cur.fetchall())


async def listed_organization(conn: Connection, viewer: Viewer, org_id: str) -> bool:
    params = [viewer.org_id, viewer.org_id, [c.value for c in viewer.hidden], viewer.sees_unapproved, org_id]
    cur = await conn.execute("select 1" + _LISTED + " and o.id = %s", params)
    return await cur.fetchone() is not None


async def all_organizations(conn: Connection) -> list[dict[str, Any]]:
    cur = await conn.execute("select * from referral.organizations order by id")
    return list(await cur.fetchall())
