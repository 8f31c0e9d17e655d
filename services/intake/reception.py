"""Reception of groups: expected-arrival groups, their manifests, and check-in at arrival.

A group belongs to the organisation that created it; its people (personal data, from a manifest)
are read and written by that organisation only, every time with an audit record (the people's ids as
subjects, and their cases' once checked in). Any other caller gets the same NOT_FOUND whether the
group exists or not. A check-in registers the case through ``handlers.register_once``, the code
path of registerArrival (same validation, same event, same audit). See docs/decisions/0021.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import logging
import os
import uuid
from datetime import UTC, date, datetime
from typing import Any

from psycopg_pool import AsyncConnectionPool
from pydantic import ValidationError

from contracts.commands import (
    ArrivalGroupQuery,
    ArrivalGroupRef,
    CheckIn,
    CreateArrivalGroup,
    PageRequest,
    RegisterArrival,
    UploadManifest,
)
from contracts.reference import ArrivalGroupStatus, ExpectedStatus, ManifestField
from contracts.replies import (
    ArrivalGroupTotals,
    ArrivalGroupView,
    CheckInResult,
    ExpectedPersonView,
    ManifestResult,
    Page,
)
from kernel.audit import AuditPurpose
from kernel.db import Connection, idempotent
from kernel.errors import BadInput, Conflict, NotFound, SeginError, bad_input_from, parse_id
from kernel.runtime import PeriodicTask
from kernel.tokens import Principal
from services.intake import domain, handlers, manifests, matches, reception_domain, views
from services.intake import reception_store as rstore
from services.intake.store import SCHEMA, TRAIL

IDENTITY = ["identity"]
AUDIT_BATCH = 1000  # kernel.audit's bound on the ids one entry names
GROUP_NOT_FOUND = "No such arrival group, or it is not your organisation's."


log = logging.getLogger(__name__)


def _today() -> date:
    return datetime.now(UTC).date()


def _group_id(value: str) -> uuid.UUID:
    return parse_id(value, "groupId", not_found=GROUP_NOT_FOUND)


async def _owned_group(conn: Connection, principal: Principal, group_id: uuid.UUID, operation: str, *,
                       lock: bool = False) -> dict[str, Any] | None:
    """The caller's group; otherwise None, the refusal audited (the same whether it exists or not)."""
    group = await rstore.get_group(conn, group_id, lock=lock)
    if group is None or group["owner_org_id"] != principal.org_id:
        await TRAIL.denied(conn, principal, operation, [])
        return None
    return group


async def _audit_people(conn: Connection, principal: Principal, operation: str, ids: list[uuid.UUID]) -> None:
    """One record per thousand people at most (kernel.audit's bound on the ids one entry names)."""
    for start in range(0, max(len(ids), 1), AUDIT_BATCH):
        await TRAIL.allowed(conn, principal, operation, ids[start:start + AUDIT_BATCH], IDENTITY,
                            AuditPurpose.CASE_MANAGEMENT)


async def _group_view(conn: Connection, principal: Principal, group: dict[str, Any],
                      people: dict[str, Any] | None = None) -> ArrivalGroupView:
    counts = reception_domain.totals(await rstore.totals_rows(conn, group["id"]), group["arrival_date"],
                                     domain.visible_categories(principal.scopes))
    page = None
    if people is not None:
        page = Page[ExpectedPersonView](nodes=[views.person_view(r) for r in people["nodes"]],
                                        page_info=people["page_info"])
    return ArrivalGroupView(
        id=str(group["id"]), owner_org_id=group["owner_org_id"], kind=group["kind"], reference=group["reference"],
        arrival_date=group["arrival_date"], arrival_point=group["arrival_point"],
        country_returned_from=group["country_returned_from"], status=group["status"], closed_at=group["closed_at"],
        created_at=group["created_at"], totals=ArrivalGroupTotals(**counts), people=page)


def _subjects(rows: list[dict[str, Any]]) -> list[uuid.UUID]:
    """Who an audit record is about: each person's id, and their case's once checked in."""
    return [r["id"] for r in rows] + [r["case_id"] for r in rows if r.get("case_id")]


# --- groups ----------------------------------------------------------------------------------------

async def create_group(pool: AsyncConnectionPool, principal: Principal, request: CreateArrivalGroup
                       ) -> ArrivalGroupView:
    async with pool.connection() as conn, conn.transaction():
        async def create() -> dict[str, Any]:
            group_id = uuid.uuid4()
            await rstore.insert_group(conn, group_id, principal.org_id, principal.subject, request)
            return {"group_id": str(group_id)}

        result = await idempotent(conn, SCHEMA, org_id=principal.org_id, subject=principal.subject,
                                  operation="create_arrival_group", key=request.idempotency_key,
                                  request=request.model_dump(mode="json", exclude={"idempotency_key"}),
                                  produce=create)
        group = await rstore.get_group(conn, uuid.UUID(result["group_id"]))
        assert group is not None
        view = await _group_view(conn, principal, group)
    return view


async def arrival_group(pool: AsyncConnectionPool, principal: Principal, request: ArrivalGroupQuery
                        ) -> ArrivalGroupView:
    group_id = _group_id(request.group_id)
    async with pool.connection() as conn, conn.transaction():
        group = await _owned_group(conn, principal, group_id, "arrival_group.read")
        if group is not None:
            people = await rstore.people_page(conn, group_id, request.status, request.first, request.after)
            view = await _group_view(conn, principal, group, people)
            await TRAIL.allowed(conn, principal, "arrival_group.read", _subjects(people["nodes"]), IDENTITY,
                                AuditPurpose.CASE_MANAGEMENT)
    if group is None:
        raise NotFound(GROUP_NOT_FOUND, field="groupId")
    return view


async def arrival_groups(pool: AsyncConnectionPool, principal: Principal, request: PageRequest
                         ) -> Page[ArrivalGroupView]:
    """The organisation's groups, newest first, with their totals (no people: no personal data)."""
    async with pool.connection() as conn:
        found = await rstore.groups_page(conn, principal.org_id, request.first, request.after)
        nodes = [await _group_view(conn, principal, g) for g in found["nodes"]]
    return Page[ArrivalGroupView](nodes=nodes, page_info=found["page_info"])


async def close_group(pool: AsyncConnectionPool, principal: Principal, request: ArrivalGroupRef
                      ) -> ArrivalGroupView:
    """Reception is over: whoever was not checked in becomes NO_SHOW (still listed). Closing twice is harmless."""
    group_id = _group_id(request.group_id)
    async with pool.connection() as conn, conn.transaction():
        group = await _owned_group(conn, principal, group_id, "arrival_group.close", lock=True)
        if group is not None:
            if group["status"] != ArrivalGroupStatus.CLOSED.value:
                await _audit_people(conn, principal, "arrival_group.close", await rstore.close_group(conn, group_id))
            group = await rstore.get_group(conn, group_id)
            assert group is not None
            view = await _group_view(conn, principal, group)
    if group is None:
        raise NotFound(GROUP_NOT_FOUND, field="groupId")
    return view


# --- manifests -------------------------------------------------------------------------------------

def _content(request: UploadManifest) -> bytes:
    try:
        return base64.b64decode(request.content_base64, validate=True)
    except (binascii.Error, ValueError):
        raise BadInput("The file's content is not valid base64.", field="file") from None


async def upload_manifest(pool: AsyncConnectionPool, principal: Principal, request: UploadManifest
                          ) -> ManifestResult:
    """Read a manifest into the group: valid rows kept, every problem named. The same file again answers
    the same and adds nothing; a corrected file adds the rows not yet in the group and names the others."""
    group_id = _group_id(request.group_id)
    content = _content(request)
    digest = hashlib.sha256(content).hexdigest()
    sender = " ".join(request.sender.split())
    async with pool.connection() as conn, conn.transaction():
        group = await _owned_group(conn, principal, group_id, "manifest.upload", lock=True)
        if group is not None:
            result = await rstore.upload_result(conn, group_id, digest)
            if result is None:
                result, ids = await _read_into(conn, principal, group, request, content, digest, sender)
                await _audit_people(conn, principal, "manifest.upload", ids)
    if group is None:
        raise NotFound(GROUP_NOT_FOUND, field="groupId")
    return ManifestResult.model_validate(result)


async def _read_into(conn: Connection, principal: Principal, group: dict[str, Any], request: UploadManifest,
                     content: bytes, digest: str, sender: str) -> tuple[dict[str, Any], list[uuid.UUID]]:
    if group["status"] == ArrivalGroupStatus.CLOSED.value:
        raise Conflict("This arrival group is closed; a manifest can no longer be added.", field="groupId")
    sender_key = manifests.fold(sender)
    if request.mapping is not None:
        pairs = [{"column": m.column, "field": m.field.value} for m in request.mapping]
        await rstore.save_mapping(conn, principal.org_id, sender_key, pairs, principal.subject)
    else:
        pairs = await rstore.saved_mapping(conn, principal.org_id, sender_key) or []
    explicit = {p["column"]: ManifestField(p["field"]) for p in pairs}
    # Off the event loop: a large workbook takes a while to read, and other callers must not wait for it.
    manifest = await asyncio.to_thread(manifests.read_manifest, content, explicit, _today())
    known = await rstore.known_fingerprints(conn, group["id"])
    new_rows, present = [], []
    for number, row, fp in manifest.rows:
        if fp in known:
            present.append(number)
        else:
            known.add(fp)
            new_rows.append((number, row, fp))
    ids = await rstore.insert_expected(conn, group["id"], new_rows)
    result = ManifestResult(
        group_id=str(group["id"]), sender=sender, file_sha256=digest, rows_read=manifest.rows_read,
        added=len(new_rows), added_rows=[n for n, _, _ in new_rows], already_present_rows=present,
        rejected_rows=manifest.rejected_rows, problems=manifest.problems, warnings=manifest.warnings,
        mapping=manifest.mapping).model_dump(mode="json")
    await rstore.save_upload(conn, group["id"], digest, sender, principal.subject, result)
    return result, ids


# --- check-in ----------------------------------------------------------------------------------------

def _arrival(data: dict[str, Any]) -> RegisterArrival:
    """The registration as registerArrival would validate it; an error names the check-in's input field."""
    try:
        return RegisterArrival.model_validate(data)
    except ValidationError as exc:
        raise bad_input_from(exc, "input") from None


def _under_input(error: SeginError) -> SeginError:
    """A registration error names ``arrival.<field>`` (registerArrival's command); a check-in's input is ``input``."""
    def moved(field: str | None) -> str | None:
        return f"input.{field.removeprefix('arrival.')}" if field and field.startswith("arrival.") else field

    error.field = moved(error.field)
    for problem in error.problems or []:
        problem["field"] = moved(problem.get("field"))
    return error


async def check_in(pool: AsyncConnectionPool, principal: Principal, request: CheckIn) -> CheckInResult:
    """Check one person in (or add someone not on the list): their case is registered exactly as
    registerArrival registers it, once per idempotency key; the same person twice is a CONFLICT."""
    group_id = _group_id(request.group_id)
    person_id = parse_id(request.expected_person_id, "expectedPersonId") if request.expected_person_id else None
    async with pool.connection() as conn, conn.transaction():
        group = await _owned_group(conn, principal, group_id, "check_in")
        if group is not None:
            person = None
            if person_id is not None:
                # Locked until commit: two agents checking the same person in are served one after the other.
                person = await rstore.get_person(conn, group_id, person_id, lock=True)
                if person is None:
                    raise NotFound("No such person in this arrival group.", field="expectedPersonId")
            arrival = _arrival(reception_domain.arrival_data(group, person, request.input))

            checked: list[dict[str, Any]] = []

            async def then(case_id: uuid.UUID) -> dict[str, Any]:
                if person is None:
                    checked.append(await rstore.insert_walk_in(conn, group_id, case_id, arrival))
                elif person["status"] == ExpectedStatus.CHECKED_IN.value:
                    raise Conflict("This person is already checked in (another idempotency key).",
                                   field="expectedPersonId", code="CONFLICT")
                else:
                    checked.append(await rstore.mark_checked_in(conn, person["id"], case_id))
                return {"expected_person_id": str(checked[0]["id"])}

            # Asked for candidates: the registration's own lookup serves both the steward and the answer. They
            # are reads of other cases: only for a token match_candidates itself would answer (cases:read).
            wanted = request.match_first if matches.CANDIDATES_SCOPE in principal.scopes else None
            person_looked_up = matches.person_of_arrival(arrival)
            looked_up = await matches.lookup(conn, principal, person_looked_up) if wanted is not None else None
            try:
                case_id, created = await handlers.register_once(
                    conn, principal, request.idempotency_key, arrival, operation="check_in",
                    request=request.model_dump(mode="json", exclude={"match_first"}), then=then, looked_up=looked_up)
            except SeginError as exc:
                raise _under_input(exc) from None
            if not checked:  # a retry: the person its first call checked in
                first = await rstore.entry_of_case(conn, case_id)
                assert first is not None
                checked.append(first)
            candidates = None
            if looked_up is not None and wanted is not None:
                if not created:  # a retry: its case is among the cases now; the lookup is made again without it
                    looked_up = await matches.lookup(conn, principal, person_looked_up, case_id)
                candidates = await matches.readable_candidates(
                    conn, principal, looked_up, case_id, domain.Access(True, domain.OWNER_PURPOSE), wanted,
                    domain.visible_categories(principal.scopes))
            case = await handlers.registered_case(conn, principal, case_id, created)
    if group is None:
        raise NotFound(GROUP_NOT_FOUND, field="groupId")
    return CheckInResult(expected_person=views.person_view(checked[0]), case=case, match_candidates=candidates)



# --- retention -----------------------------------------------------------------------------------------

# How long a manifest's people who never came keep their identity after the group's arrival date.
MANIFEST_RETENTION_DAYS = int(os.environ.get("SEGIN_MANIFEST_RETENTION_DAYS", "90"))


async def erase_unarrived(pool: AsyncConnectionPool, today: date | None = None) -> int:
    """Periodic: erase the identity of people a manifest listed who were never checked in, once their
    group's arrival is ``MANIFEST_RETENTION_DAYS`` behind (counts stay; migration 0010)."""
    async with pool.connection() as conn:
        erased = await rstore.erase_unarrived(conn, MANIFEST_RETENTION_DAYS, today or _today())
    if erased:
        log.info("manifest rows of people never checked in erased", extra={"rows": erased})
    return erased


RETENTION_TASK = PeriodicTask("manifest-retention", erase_unarrived,
                              lambda: float(os.environ.get("SEGIN_MANIFEST_RETENTION_SECONDS", "3600")))
