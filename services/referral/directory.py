"""The service directory: organisations keep their own services up to date; everyone with
``directory:read`` finds them. Rules (pure) first, then the handlers.

Who may change what: ``directory:write`` maintains the caller's own organisation's services only;
``directory:manage`` (the platform steward) extends it to every organisation. Who sees what: a
service in a sensitive category (GBV response, counter-trafficking, child protection, health)
exists only for tokens holding that category's ``sensitive:*`` scope, for its own organisation and
for the steward: where a GBV shelter is, is what an abuser looks for. Updates carry the ``version``
they read (optimistic concurrency). Every change is an event (written in the same transaction)
and an audit entry; directory data is no one's personal data, but changes to it are accountable.
"""

from __future__ import annotations

import uuid
from typing import Any

from psycopg_pool import AsyncConnectionPool

from contracts.channels import DIRECTORY_SERVICE_CHANGED
from contracts.commands import DirectoryQuery, DirectoryServiceRef, SaveDirectoryService, SetServiceCapacity
from contracts.events import DirectoryServiceChangedV1
from contracts.reference import DirectoryStatus, ServiceCategory, hidden_services
from contracts.replies import (
    CapacityView,
    DirectoryLocationView,
    DirectoryServiceView,
    OpeningHoursView,
    Page,
)
from kernel.audit import AuditPurpose
from kernel.db import Connection
from kernel.errors import BadInput, Conflict, Forbidden, NotFound, SeginError, parse_id
from kernel.outbox import add_event
from kernel.pagination import page
from kernel.tokens import Principal
from services.referral import directory_store as ds
from services.referral.store import SCHEMA, TRAIL

WRITE, MANAGE = "directory:write", "directory:manage"
NO_SUCH_SERVICE = "No such directory service."
CATEGORIES = ["directory"]  # what an audit entry says was touched: directory data, never contact details


# --- rules (no I/O) -------------------------------------------------------------------------------


def is_steward(principal: Principal) -> bool:
    return MANAGE in principal.scopes


def hidden_for(principal: Principal) -> list[ServiceCategory]:
    """Sensitive categories this caller may not see (the steward sees the whole directory)."""
    return [] if is_steward(principal) else hidden_services(principal.scopes)


def visible(row: dict[str, Any], principal: Principal) -> bool:
    """The same rule as the SQL of ``directory_store``, for one service already loaded."""
    return (row["organization_id"] == principal.org_id
            or ServiceCategory(row["category"]) not in hidden_for(principal))


def may_maintain(principal: Principal, org_id: str) -> bool:
    return org_id == principal.org_id or is_steward(principal)


def refusal_to_maintain(org_id: str) -> Forbidden:
    return Forbidden(f"directory:write lets an organisation maintain its own services only; this one belongs to "
                     f"'{org_id}' (the platform steward, with directory:manage, may change any).",
                     field="organization_id")


def values_of(command: SaveDirectoryService) -> dict[str, Any]:
    """The column values a save writes, from its (already validated) command."""
    capacity = command.capacity
    return {
        "name_fr": command.name_fr, "name_en": command.name_en, "description_fr": command.description_fr,
        "description_en": command.description_en, "category": command.category.value,
        "regions": list(command.regions), "status": command.status.value, "minimum_age": command.minimum_age,
        "maximum_age": command.maximum_age, "sexes": [s.value for s in command.sexes],
        "vulnerabilities": [v.value for v in command.vulnerabilities],
        "hours": [h.model_dump(mode="json") for h in command.hours],
        "email": command.email, "phone": command.phone, "url": command.url,
        "expected_duration": command.expected_duration_days,
        "capacity_available": capacity.available if capacity else None,
        "capacity_maximum": capacity.maximum if capacity else None,
    }


def location_values(command: SaveDirectoryService) -> list[dict[str, Any]]:
    return [{"name": p.name, "address_1": p.address, "city": p.city, "region": p.region,
             "latitude": p.latitude, "longitude": p.longitude} for p in command.locations]


def stored_values(row: dict[str, Any]) -> dict[str, Any]:
    """A stored service in the shape ``values_of`` gives, to tell whether a save changes anything."""
    duration = row["expected_duration"]
    return {c: row[c] for c in ds.SERVICE_COLUMNS} | {
        "regions": sorted(row["regions"]), "sexes": sorted(row["sexes"]),
        "vulnerabilities": sorted(row["vulnerabilities"]), "expected_duration": duration.days if duration else None}


def stored_locations(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{c: (float(r[c]) if c in ("latitude", "longitude") and r[c] is not None else r[c])
             for c in ds.LOCATION_COLUMNS} for r in rows]


def capacity_changed(old: dict[str, Any] | None, new: dict[str, Any]) -> bool:
    keys = ("capacity_available", "capacity_maximum")
    return old is None or any(old[k] != new[k] for k in keys)


def service_view(row: dict[str, Any], places: list[dict[str, Any]], principal: Principal) -> DirectoryServiceView:
    """A service as a reader sees it: who last reported capacity only for its organisation and the steward."""
    duration = row["expected_duration"]
    known = row["capacity_available"] is not None or row["capacity_maximum"] is not None
    insider = may_maintain(principal, row["organization_id"])
    return DirectoryServiceView(
        id=str(row["id"]), organization_id=row["organization_id"], organization_name=row["organization_name"],
        name_fr=row["name_fr"], name_en=row["name_en"], description_fr=row["description_fr"],
        description_en=row["description_en"], category=row["category"], regions=sorted(row["regions"]),
        locations=[DirectoryLocationView(
            id=str(p["id"]), name=p["name"], address=p["address_1"], city=p["city"], region=p["region"],
            latitude=float(p["latitude"]) if p["latitude"] is not None else None,
            longitude=float(p["longitude"]) if p["longitude"] is not None else None) for p in places],
        minimum_age=row["minimum_age"], maximum_age=row["maximum_age"], sexes=sorted(row["sexes"]),
        vulnerabilities=sorted(row["vulnerabilities"]),
        hours=[OpeningHoursView.model_validate(h) for h in row["hours"]],
        email=row["email"], phone=row["phone"], url=row["url"], status=row["status"],
        expected_duration_days=duration.days if duration else None,
        capacity=CapacityView(available=row["capacity_available"], maximum=row["capacity_maximum"],
                              updated_at=row["capacity_updated_at"],
                              updated_by=row["capacity_updated_by"] if insider else None) if known else None,
        version=row["version"], created_at=row["created_at"], updated_at=row["updated_at"],
    )


def changed_event(row: dict[str, Any], change: str) -> DirectoryServiceChangedV1:
    return DirectoryServiceChangedV1(
        service_id=str(row["id"]), organization_id=row["organization_id"], change=change,
        category=ServiceCategory(row["category"]), regions=sorted(row["regions"]),
        status=DirectoryStatus(row["status"]), capacity_available=row["capacity_available"],
        capacity_maximum=row["capacity_maximum"], version=row["version"])


def stale(read: int, current: int) -> Conflict:
    return Conflict(f"This service changed since you read it (you sent version {read}; it is now at version "
                    f"{current}). Read it again and reapply your change.", field="version")


# --- handlers -------------------------------------------------------------------------------------


async def _load(conn: Connection, service_id: uuid.UUID) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    row = await ds.get_service(conn, service_id)
    assert row is not None
    return row, (await ds.locations_of(conn, [service_id]))[service_id]


async def _announce(conn: Connection, principal: Principal, row: dict[str, Any], change: str, operation: str) -> None:
    await add_event(conn, SCHEMA, DIRECTORY_SERVICE_CHANGED, changed_event(row, change), subject=str(row["id"]))
    await TRAIL.allowed(conn, principal, operation, [], CATEGORIES, AuditPurpose.DIRECTORY)


async def save(pool: AsyncConnectionPool, principal: Principal, command: SaveDirectoryService) -> DirectoryServiceView:
    """Create or update one service. A save that changes nothing writes nothing (seeding twice is harmless)."""
    service_id = parse_id(command.id, "id") if command.id else uuid.uuid4()
    values, places = values_of(command), location_values(command)
    refusal: SeginError | None = None
    async with pool.connection() as conn, conn.transaction():
        current = await ds.get_service(conn, service_id, lock=True) if command.id else None
        if current is not None and not visible(current, principal):
            raise NotFound(NO_SUCH_SERVICE, field="id")  # a service the caller may not see does not exist for it
        owner = current["organization_id"] if current else (command.organization_id or principal.org_id)
        if refusal is None and not may_maintain(principal, owner):
            refusal = refusal_to_maintain(owner)
        if refusal is not None:
            await TRAIL.denied(conn, principal, "directory.save", [], CATEGORIES)
        else:
            if current is None and command.version is not None:
                raise NotFound(NO_SUCH_SERVICE, field="id")
            if current is not None and command.version is None:
                raise Conflict("A service with this id exists: send the version you read to update it.",
                               field="version")
            if current is not None and command.organization_id not in (None, owner):
                raise BadInput("A service cannot move to another organisation.", field="organization_id")
            if current is not None and command.version != current["version"]:
                raise stale(command.version or 0, current["version"])
            org_type = command.organization_type.value if command.organization_type else (
                principal.org_type if owner == principal.org_id else None)
            await ds.ensure_organization(conn, owner, command.organization_name, org_type)
            if current is None:
                await ds.insert_service(conn, service_id, owner, values, principal.subject)
                await ds.replace_locations(conn, service_id, places)
                row, stored = await _load(conn, service_id)
                await _announce(conn, principal, row, "CREATED", "directory.create")
            else:
                stored = (await ds.locations_of(conn, [service_id]))[service_id]
                if stored_values(current) != values or stored_locations(stored) != places:
                    await ds.update_service(conn, service_id, current["version"], values, principal.subject,
                                            capacity_changed(current, values))
                    await ds.replace_locations(conn, service_id, places)
                    row, stored = await _load(conn, service_id)
                    await _announce(conn, principal, row, "UPDATED", "directory.update")
                else:
                    row, stored = await _load(conn, service_id)  # the organisation's name may have changed
    if refusal is not None:
        raise refusal
    return service_view(row, stored, principal)


async def set_capacity(pool: AsyncConnectionPool, principal: Principal,
                       command: SetServiceCapacity) -> DirectoryServiceView:
    """A fresh capacity count (a report, even of the same numbers: it says when it was last known)."""
    service_id = parse_id(command.service_id, "service_id", not_found=NO_SUCH_SERVICE)
    refusal: SeginError | None = None
    async with pool.connection() as conn, conn.transaction():
        current = await ds.get_service(conn, service_id, lock=True)
        if current is None or not visible(current, principal):
            raise NotFound(NO_SUCH_SERVICE, field="service_id")
        if not may_maintain(principal, current["organization_id"]):
            refusal = refusal_to_maintain(current["organization_id"])
            await TRAIL.denied(conn, principal, "directory.set_capacity", [], CATEGORIES)
        else:
            if command.version != current["version"]:
                raise stale(command.version, current["version"])
            await ds.set_capacity(conn, service_id, command.version, command.available, command.maximum,
                                  principal.subject)
            row, stored = await _load(conn, service_id)
            await _announce(conn, principal, row, "CAPACITY", "directory.set_capacity")
    if refusal is not None:
        raise refusal
    return service_view(row, stored, principal)


async def services(pool: AsyncConnectionPool, principal: Principal, query: DirectoryQuery) -> Page[DirectoryServiceView]:
    async with pool.connection() as conn:
        rows = await ds.list_services(
            conn, hidden_for(principal), principal.org_id, query.first, query.after,
            category=query.category.value if query.category else None, region=query.region,
            vulnerability=query.vulnerability.value if query.vulnerability else None,
            open_capacity_only=query.open_capacity_only, organization_id=query.organization_id,
            include_inactive=query.include_inactive)
        found = page(rows, query.first)
        places = await ds.locations_of(conn, [r["id"] for r in found["nodes"]])
    return Page[DirectoryServiceView](nodes=[service_view(r, places[r["id"]], principal) for r in found["nodes"]],
                                      page_info=found["page_info"])


async def service(pool: AsyncConnectionPool, principal: Principal, ref: DirectoryServiceRef) -> DirectoryServiceView:
    service_id = parse_id(ref.id, "id", not_found=NO_SUCH_SERVICE)
    async with pool.connection() as conn:
        row = await ds.get_service(conn, service_id)
        if row is None or not visible(row, principal):
            raise NotFound(NO_SUCH_SERVICE, field="id")
        places = (await ds.locations_of(conn, [service_id]))[service_id]
    return service_view(row, places, principal)
