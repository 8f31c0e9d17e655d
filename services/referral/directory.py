"""The service directory: organisations keep their own services up to date; everyone with
``directory:read`` finds them. Rules (pure) first, then the handlers.

Who may change what: ``directory:write`` maintains the caller's own organisation's services only;
``directory:manage`` (the platform steward) extends it to every organisation. Who sees what: a
service in a sensitive category (GBV response, counter-trafficking, child protection, health)
exists only for tokens holding that category's ``sensitive:*`` scope, for its own organisation and
for the steward: where a GBV shelter is, is what an abuser looks for. Such a service is also a door
to the people routed there: creating or changing one needs that category's scope, and a change by
anyone but the steward to who it serves (category, area, eligibility) waits for the
steward's approval (``approve``) before routing, assigning, re-routing or referring may use it and
before other organisations see it (decision record 0016). Updates carry the ``version``
they read (optimistic concurrency). Every change is an event (written in the same transaction)
and an audit entry; directory data is no one's personal data, but changes to it are accountable.
"""

from __future__ import annotations

import unicodedata
import uuid
from typing import Any

from psycopg_pool import AsyncConnectionPool

from contracts.channels import DIRECTORY_SERVICE_CHANGED
from contracts.commands import (
    ApproveDirectoryService,
    DirectoryQuery,
    DirectoryServiceRef,
    SaveDirectoryService,
    SetServiceCapacity,
)
from contracts.events import DirectoryServiceChangedV1
from contracts.reference import SENSITIVE_SERVICES, DirectoryStatus, ServiceCategory, hidden_services
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


def viewer(principal: Principal) -> ds.Viewer:
    return ds.Viewer(principal.org_id, hidden_for(principal), is_steward(principal))


def visible(row: dict[str, Any], principal: Principal) -> bool:
    """The same rule as the SQL of ``directory_store``, for one service already loaded."""
    return row["organization_id"] == principal.org_id or (
        ServiceCategory(row["category"]) not in hidden_for(principal) and (row["approved"] or is_steward(principal)))


# Who is sent to a service: a change to any of these re-opens a sensitive service's approval (closing and
# re-opening it does not: it serves the same people as approved).
WHO_IT_SERVES = ("category", "regions", "minimum_age", "maximum_age", "sexes", "vulnerabilities")


def scope_refusal(principal: Principal, category: ServiceCategory) -> Forbidden | None:
    """Describing a sensitive service needs that category's scope (the steward's needs none)."""
    if is_steward(principal) or category not in hidden_services(principal.scopes):
        return None
    return Forbidden(f"A {category.value} service is created or changed with the "
                     f"'{SENSITIVE_SERVICES[category].scope}' scope only.", field="category", code="INSUFFICIENT_SCOPE")


def approved_after_save(principal: Principal, category: ServiceCategory, old: dict[str, Any] | None,
                        new: dict[str, Any], approved_before: bool) -> bool:
    """Whether the service is in use after this save: always outside sensitive categories and for the
    steward's saves; otherwise a new service waits for approval, and so does one whose
    ``WHO_IT_SERVES`` changed (a description, hours or contact change keeps the approval). Only
    ``approve`` ends a wait, even when the steward edits the waiting service."""
    if category not in SENSITIVE_SERVICES:
        return True
    if is_steward(principal):  # the steward's own description is approved; its edit of a waiting one is not
        return old is None or approved_before
    if old is None or ServiceCategory(old["category"]) not in SENSITIVE_SERVICES:
        return False
    return approved_before and all(old[k] == new[k] for k in WHO_IT_SERVES)


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
        awaiting_approval=not row["approved"],
        version=row["version"], created_at=row["created_at"], updated_at=row["updated_at"],
    )


def changed_event(row: dict[str, Any], change: str) -> DirectoryServiceChangedV1:
    return DirectoryServiceChangedV1(
        service_id=str(row["id"]), organization_id=row["organization_id"], change=change,
        category=ServiceCategory(row["category"]), regions=sorted(row["regions"]),
        status=DirectoryStatus(row["status"]), capacity_available=row["capacity_available"],
        capacity_maximum=row["capacity_maximum"], version=row["version"])


def save_refusal(principal: Principal, command: SaveDirectoryService, current: dict[str, Any] | None,
                 owner: str) -> SeginError | None:
    """Why this save may not be applied to ``current`` (the service stored under its id, if any), or None."""
    if current is not None and not visible(current, principal):
        return NotFound(NO_SUCH_SERVICE, field="id")  # a service the caller may not see does not exist for it
    if not may_maintain(principal, owner):
        return refusal_to_maintain(owner)
    refusal = scope_refusal(principal, command.category) or (
        scope_refusal(principal, ServiceCategory(current["category"])) if current else None)
    if refusal is not None:
        return refusal
    if current is None:
        return NotFound(NO_SUCH_SERVICE, field="id") if command.version is not None else None
    if command.version is None:
        return Conflict("A service with this id exists: send the version you read to update it.", field="version")
    if command.organization_id not in (None, owner):
        return BadInput("A service cannot move to another organisation.", field="organization_id")
    if command.version != current["version"]:
        return stale(command.version, current["version"])
    return None


def identity_refusal(principal: Principal, command: SaveDirectoryService, owner: str,
                     organizations: list[dict[str, Any]]) -> SeginError | None:
    """Who the organisation is comes from its token, not from what it writes: another type of
    organisation would receive referrals that consent gave to that type (an NGO declaring itself a
    state body), and another's name would pass its services off as that organisation's."""
    if is_steward(principal):
        return None
    declared = command.organization_type.value if command.organization_type else None
    if declared not in (None, principal.org_type):
        return Forbidden(f"An organisation describes itself as the type its credentials say "
                         f"('{principal.org_type}'); the platform steward changes it.", field="organization_type")
    taken = command.organization_name is not None and any(
        o["id"] != owner and same_name(o["name"], command.organization_name) for o in organizations)
    if taken:
        return Conflict("Another organisation in the directory has this name; the platform steward settles "
                        "names.", field="organization_name")
    return None


def same_name(a: str, b: str) -> bool:
    """Names that read the same to a person: case, accents and spacing aside ("Croix-Rouge" and "croix rouge")."""
    def folded(name: str) -> str:
        plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
        return "".join(ch for ch in plain.casefold() if ch.isalnum())
    return folded(a) == folded(b)


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
        owner = current["organization_id"] if current else (command.organization_id or principal.org_id)
        # Names are compared only when the save gives one: most saves (a capacity, a phone) do not.
        named = await ds.all_organizations(conn) if command.organization_name is not None else []
        refusal = save_refusal(principal, command, current, owner) or identity_refusal(principal, command, owner,
                                                                                       named)
        if refusal is not None:
            await TRAIL.denied(conn, principal, "directory.save", [], CATEGORIES)
        else:
            org_type = command.organization_type.value if command.organization_type else (
                principal.org_type if owner == principal.org_id else None)
            await ds.ensure_organization(conn, owner, command.organization_name, org_type)
            if current is None:
                await ds.insert_service(conn, service_id, owner, values, principal.subject,
                                        approved_after_save(principal, command.category, None, values, False))
                await ds.replace_locations(conn, service_id, places)
                row, stored = await _load(conn, service_id)
                await _announce(conn, principal, row, "CREATED", "directory.create")
            else:
                stored = (await ds.locations_of(conn, [service_id]))[service_id]
                if stored_values(current) != values or stored_locations(stored) != places:
                    approved = approved_after_save(principal, command.category, stored_values(current), values,
                                                   current["approved"])
                    await ds.update_service(conn, service_id, current["version"], values, principal.subject,
                                            capacity_changed(current, values), approved)
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
            refusal = NotFound(NO_SUCH_SERVICE, field="service_id")
        elif not may_maintain(principal, current["organization_id"]):
            refusal = refusal_to_maintain(current["organization_id"])
        elif command.version != current["version"]:
            refusal = stale(command.version, current["version"])
        if refusal is not None:
            await TRAIL.denied(conn, principal, "directory.set_capacity", [], CATEGORIES)
        else:
            await ds.set_capacity(conn, service_id, command.version, command.available, command.maximum,
                                  principal.subject)
            row, stored = await _load(conn, service_id)
            await _announce(conn, principal, row, "CAPACITY", "directory.set_capacity")
    if refusal is not None:
        raise refusal
    return service_view(row, stored, principal)


async def approve(pool: AsyncConnectionPool, principal: Principal,
                  command: ApproveDirectoryService) -> DirectoryServiceView:
    """The steward puts a sensitive service to use, as of the version it reviewed (``directory:manage``)."""
    service_id = parse_id(command.id, "id", not_found=NO_SUCH_SERVICE)
    refusal: SeginError | None = None
    async with pool.connection() as conn, conn.transaction():
        current = await ds.get_service(conn, service_id, lock=True)
        if current is None or not visible(current, principal):
            refusal = NotFound(NO_SUCH_SERVICE, field="id")
        elif not is_steward(principal):
            refusal = Forbidden("Only the platform steward (directory:manage) approves a directory service.",
                                field="id", code="INSUFFICIENT_SCOPE")
        elif command.version != current["version"]:
            refusal = stale(command.version, current["version"])
        elif current["approved"]:
            row = current  # already in use: approving again changes nothing
        else:
            await ds.approve(conn, service_id, command.version, principal.subject)
            row = (await _load(conn, service_id))[0]
            await _announce(conn, principal, row, "APPROVED", "directory.approve")
        if refusal is not None:
            await TRAIL.denied(conn, principal, "directory.approve", [], CATEGORIES)
        else:
            stored = (await ds.locations_of(conn, [service_id]))[service_id]
    if refusal is not None:
        raise refusal
    return service_view(row, stored, principal)


async def services(pool: AsyncConnectionPool, principal: Principal, query: DirectoryQuery) -> Page[DirectoryServiceView]:
    async with pool.connection() as conn:
        rows = await ds.list_services(
            conn, viewer(principal), query.first, query.after,
            category=query.category.value if query.category else None, region=query.region,
            vulnerability=query.vulnerability.value if query.vulnerability else None,
            open_capacity_only=query.open_capacity_only, organization_id=query.organization_id,
            include_inactive=query.include_inactive, awaiting_approval=query.awaiting_approval)
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
