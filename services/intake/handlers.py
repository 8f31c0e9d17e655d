"""Intake's commands, queries and event handlers: one function each, given the pool, the caller and
the validated command (the runtime checked the endpoint's scope first, see ``app.py``).

Access is decided here, by the service that owns the data, not by the gateway: every read of a
case checks ownership or an open referral plus a covering legal basis, hides sensitive
categories the token has no scope for, and leaves an audit record.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from psycopg_pool import AsyncConnectionPool

from contracts.channels import ARRIVAL_REGISTERED, SHARING_CHANGED
from contracts.commands import (
    CaseRef,
    RecordConsent,
    RecordLegalBasis,
    RegisterArrival,
    RegisterArrivalRequest,
    StatisticsRequest,
    WithdrawConsent,
)
from contracts.events import (
    ArrivalRegisteredV1,
    CaseAssignedV1,
    ReferralCreatedV1,
    ReferralStatusChangedV1,
    SharingChangedV1,
)
from contracts.reference import SensitiveCategory
from contracts.replies import CaseExport, CaseView, SharingResult, StatisticsCell, StatisticsView
from kernel.audit import AuditPurpose
from kernel.db import Connection, idempotent
from kernel.errors import NotFound, SeginError, parse_id
from kernel.events import CloudEvent
from kernel.outbox import add_event
from kernel.statistics import minimum_cell, suppress_small_cells
from kernel.tokens import Principal
from services.intake import domain, family, match_store, matches, reception_store, store, views

IDENTITY = ["identity", "arrival"]
OWNER_CATEGORIES = [*IDENTITY, "vulnerabilities", "consent"]


def _categories(principal: Principal, owner: bool) -> list[str]:
    seen = [*IDENTITY, "vulnerabilities"] + [c.value for c in domain.visible_categories(principal.scopes)]
    return seen + (["consent"] if owner else [])


async def _create_case(conn: Connection, principal: Principal, arrival: RegisterArrival,
                       looked_up: matches.Lookup | None = None) -> dict[str, Any]:
    """Insert the case and announce it (the response an idempotency key replays). ``looked_up``: the match
    lookup the caller made for this person in this transaction, if it made one (``matches.on_case_created``)."""
    case_id = uuid.uuid4()
    await store.insert_case(conn, case_id, principal.org_id, principal.subject, arrival)
    await matches.on_case_created(conn, principal, case_id, arrival, looked_up)  # indexed, told to the steward
    await family.create_links(conn, principal, case_id, arrival)  # refused: nothing written; before the arrival
    await add_event(
        conn, store.SCHEMA, ARRIVAL_REGISTERED,
        ArrivalRegisteredV1(
            case_id=str(case_id), owner_org_id=principal.org_id, arrival_point=arrival.arrival_point,
            arrival_date=arrival.arrival_date, destination_region=arrival.destination_region,
            is_child=domain.is_child(arrival, datetime.now(UTC).date()), vulnerabilities=list(arrival.vulnerabilities),
            consent_given=arrival.consent.given, consent_recipient_org_ids=arrival.consent.recipient_org_ids,
            consent_recipient_org_types=arrival.consent.recipient_org_types, consent_purposes=arrival.consent.purposes,
            sex=arrival.sex, age_years=arrival.age_on(datetime.now(UTC).date()),
            sharing_version=store.FIRST_SHARING_VERSION,
        ),
        subject=str(case_id),
    )
    return {"case_id": str(case_id)}


async def register_arrival(pool: AsyncConnectionPool, principal: Principal, request: RegisterArrivalRequest
                           ) -> CaseView:
    """Register once per idempotency key (the key is the sender's own); a retry reads the case it made."""
    async with pool.connection() as conn, conn.transaction():
        case_id, created = await register_once(conn, principal, request.idempotency_key, request.arrival)
        case = await registered_case(conn, principal, case_id, created)
    return case


Produced = Callable[[uuid.UUID], Awaitable[dict[str, Any]]]


async def register_once(conn: Connection, principal: Principal, key: str, arrival: RegisterArrival, *,
                        operation: str = "register_arrival", request: Any = None, then: Produced | None = None,
                        looked_up: matches.Lookup | None = None) -> tuple[uuid.UUID, bool]:
    """The one way a case is registered (registerArrival, a check-in): ``_create_case`` once per idempotency
    key of ``operation``, in the caller's transaction. ``then`` runs after a creation and adds to the response
    the key replays. Returns the case's id and whether it was created now."""
    created: list[dict[str, Any]] = []

    async def create() -> dict[str, Any]:
        created.append(await _create_case(conn, principal, arrival, looked_up))
        if then is not None:
            created[-1] |= await then(uuid.UUID(created[-1]["case_id"]))
        return created[-1]

    result = await idempotent(
        conn, store.SCHEMA, org_id=principal.org_id, subject=principal.subject, operation=operation,
        key=key, request=request if request is not None else arrival.model_dump(mode="json"), produce=create,
    )
    return uuid.UUID(result["case_id"]), bool(created)


async def registered_case(conn: Connection, principal: Principal, case_id: uuid.UUID, created: bool) -> CaseView:
    """The owner's view of a case it just registered (or a retry read), audited as registerArrival does:
    call it last in the transaction (the audit chain's lock is held until commit)."""
    case = await store.get_case(conn, case_id)
    sharing = await store.sharing_rows(conn, case_id)
    links = await family.links_of(conn, principal, case_id)
    await store.TRAIL.allowed(conn, principal, "case.create" if created else "case.read", [case_id],
                              OWNER_CATEGORIES, AuditPurpose.CASE_MANAGEMENT)
    assert case is not None
    return views.case_view(case, domain.visible_categories(principal.scopes),
                           domain.Access(True, domain.OWNER_PURPOSE), sharing, links)


async def _readable_case(conn: Connection, principal: Principal, case_id: uuid.UUID, operation: str
                         ) -> tuple[dict[str, Any], domain.Access, list[dict[str, Any]]] | None:
    """Load a case the caller may read; otherwise record the refusal and return None."""
    # The same queries whether the case exists or not: a refusal must not be told apart from an
    # absence by how long it takes.
    case = await store.get_case(conn, case_id)
    rows = await store.sharing_rows(conn, case_id)
    grants = await store.grants(conn, case_id)
    manager = await store.manager(conn, case_id)
    access = domain.Access(False)
    if case is not None:
        access = domain.case_access(case["owner_org_id"], principal.org_id, principal.org_type, grants,
                                    [store.to_basis(r) for r in rows], manager)
    if case is None or not access.allowed:
        await store.TRAIL.denied(conn, principal, operation, [case_id])
        return None
    return case, access, rows


def _not_found() -> NotFound:
    # The same answer for "absent" and "not for you": a case's existence is itself personal data.
    return NotFound("No such case, or it is not shared with your organisation.", field="id")


async def get_case(pool: AsyncConnectionPool, principal: Principal, request: CaseRef) -> CaseView:
    asked = parse_id(request.case_id, "id")
    async with pool.connection() as conn, conn.transaction():  # the refusal's audit record commits too
        case_id = await match_store.redirect(conn, asked)  # a merged case's id answers its survivor
        found = await _readable_case(conn, principal, case_id, "case.read")
        if found is not None:
            case, access, rows = found
            owner = case["owner_org_id"] == principal.org_id
            links = await family.links_of(conn, principal, case_id,
                                          AuditPurpose((access.purpose or domain.OWNER_PURPOSE).lower()))
            await store.TRAIL.allowed(conn, principal, "case.read", [case_id], _categories(principal, owner),
                                      AuditPurpose((access.purpose or domain.OWNER_PURPOSE).lower()),
                                      legal_basis=access.legal_basis.value if access.legal_basis else None)
    if found is None:
        raise _not_found()
    view = views.case_view(case, domain.visible_categories(principal.scopes), access, rows if owner else None,
                           links)
    return view.model_copy(update={"redirected_from": str(asked)}) if case_id != asked else view


async def _owned_case(conn: Connection, principal: Principal, case_id: uuid.UUID, operation: str
                      ) -> dict[str, Any] | None:
    case = await store.get_case(conn, case_id)
    if case is None or case["owner_org_id"] != principal.org_id:
        await store.TRAIL.denied(conn, principal, operation, [case_id], ["consent"])
        return None
    return case


async def _announce_sharing(conn: Connection, case: dict[str, Any], change: str, version: int
                            ) -> list[dict[str, Any]]:
    rows = await store.sharing_rows(conn, case["id"])
    await add_event(conn, store.SCHEMA, SHARING_CHANGED, SharingChangedV1(
        case_id=str(case["id"]), owner_org_id=case["owner_org_id"], change=change,
        coverage=domain.coverage(store.to_basis(r) for r in rows), sharing_version=version), subject=str(case["id"]))
    return rows


SharingChange = Callable[[Connection], Awaitable[None]]


async def _sharing_command(pool: AsyncConnectionPool, principal: Principal, case_id: uuid.UUID, operation: str,
                           change: str, apply: SharingChange) -> SharingResult:
    """Shared shape of consent and legal-basis commands: owner only, audited, announced."""
    async with pool.connection() as conn, conn.transaction():  # the refusal's audit record commits too
        case = await _owned_case(conn, principal, case_id, operation)
        if case is not None:
            # First: the case stays locked until commit, so the coverage announced is the one of this version.
            version = await store.next_sharing_version(conn, case_id)
            await apply(conn)
            rows = await _announce_sharing(conn, case, change, version)
            await store.TRAIL.allowed(conn, principal, operation, [case_id], ["consent"],
                                      AuditPurpose.CASE_MANAGEMENT)
    if case is None:
        raise NotFound("No such case, or your organisation does not own it.", field="caseId")
    return SharingResult(case_id=str(case_id), sharing=[views.sharing_view(r) for r in rows])


async def record_consent(pool: AsyncConnectionPool, principal: Principal, request: RecordConsent) -> SharingResult:
    case_id = parse_id(request.case_id, "caseId")

    async def apply(conn: Connection) -> None:
        await store.insert_consent(conn, case_id, principal.subject, request.consent)

    return await _sharing_command(pool, principal, case_id, "consent.record", "CONSENT_RECORDED", apply)


async def withdraw_consent(pool: AsyncConnectionPool, principal: Principal, request: WithdrawConsent
                           ) -> SharingResult:
    case_id = parse_id(request.case_id, "caseId")
    consent_id = parse_id(request.consent_id, "consentId")

    async def apply(conn: Connection) -> None:
        if not await store.withdraw_consent(conn, case_id, consent_id, principal.subject):
            raise NotFound("No consent in force with this identifier on this case.", field="consentId")

    return await _sharing_command(pool, principal, case_id, "consent.withdraw", "CONSENT_WITHDRAWN", apply)


async def record_legal_basis(pool: AsyncConnectionPool, principal: Principal, request: RecordLegalBasis
                             ) -> SharingResult:
    case_id = parse_id(request.case_id, "caseId")

    async def apply(conn: Connection) -> None:
        await store.insert_legal_basis(conn, principal.subject, request)

    return await _sharing_command(pool, principal, case_id, "legal_basis.record", "LEGAL_BASIS_RECORDED", apply)


async def statistics(pool: AsyncConnectionPool, principal: Principal, request: StatisticsRequest) -> StatisticsView:
    """Aggregates only, across all organisations; cells with fewer than five people registered by
    other organisations (ten for three dimensions) suppressed."""
    async with pool.connection() as conn:
        rows = await store.statistics(conn, request.group_by, principal.org_id)
    minimum = minimum_cell(len(request.group_by))
    # How many cells were suppressed is not told: one decoy into an empty cell would change that
    # number only if the cell already held someone.
    cells, _ = suppress_small_cells([(k, n) for k, n, _ in rows], {k: own for k, _, own in rows}, minimum)
    return StatisticsView(group_by=request.group_by, minimum_cell=minimum,
                          cells=[StatisticsCell(keys=list(k), count=n) for k, n in cells])


async def on_referral_created(conn: Connection, event: CloudEvent) -> None:
    """Keep the access projection: a referral may open the case to its recipient."""
    referral = ReferralCreatedV1.model_validate(event.data)
    await store.upsert_grant(conn, referral.referral_id, referral.case_id, referral.to_org_id,
                             referral.legal_basis, referral.status, event.time)


async def on_referral_status_changed(conn: Connection, event: CloudEvent) -> None:
    """A rejected, completed or revoked referral closes the access it opened."""
    change = ReferralStatusChangedV1.model_validate(event.data)
    await store.upsert_grant(conn, change.referral_id, change.case_id, change.to_org_id,
                             change.legal_basis, change.new_status, event.time)


async def on_case_assigned(conn: Connection, event: CloudEvent) -> None:
    """Keep the management projection: the new manager may read the case (while a basis covers it for
    FOLLOW_UP); the previous one keeps only what another basis gives it (the owner stays the owner)."""
    assigned = CaseAssignedV1.model_validate(event.data)
    await store.set_manager(conn, assigned.case_id, assigned.to_org_id, assigned.legal_basis, assigned.version)


DSAR_PURPOSE = "DATA_SUBJECT_REQUEST"  # why the steward sees the case (reported in the export's ``access``)
# One steward credential must not be a bulk export of the whole database.
DSAR_PER_DAY = int(os.environ.get("SEGIN_DSAR_PER_DAY", "20"))


async def subject_access(pool: AsyncConnectionPool, principal: Principal, request: CaseRef) -> CaseExport:
    """Everything intake holds about one person, for the platform steward answering their request
    (Loi 2013-015: access in intelligible form, with the origin of the data). Audited, and at
    most ``DSAR_PER_DAY`` exports per organisation in 24 hours (counted from the audit trail)."""
    case_id = parse_id(request.case_id, "caseId")
    async with pool.connection() as conn, conn.transaction():
        if await store.exports_since(conn, principal.org_id, hours=24) >= DSAR_PER_DAY:
            raise SeginError(f"The daily number of data-subject exports ({DSAR_PER_DAY}) is reached; the platform "
                             "operator can raise SEGIN_DSAR_PER_DAY.", code="RATE_LIMITED")
        case = await store.get_case(conn, case_id)
        categories = [*OWNER_CATEGORIES, *(c.value for c in SensitiveCategory)]
        if case is None:
            await store.TRAIL.denied(conn, principal, "dsar.export", [case_id], categories,
                                     AuditPurpose.DATA_SUBJECT_REQUEST)
        else:
            rows = await store.sharing_rows(conn, case_id)
            screening = await store.screening(conn, case_id)
            # Family links as a steward sees them: the relation, the linked case's id and owner, not its person.
            links = await family.links_of(conn, principal, case_id, AuditPurpose.DATA_SUBJECT_REQUEST)
            entry = await reception_store.entry_of_case(conn, case_id)  # the manifest row, if checked in from one
            await store.TRAIL.allowed(conn, principal, "dsar.export", [case_id], categories,
                                      AuditPurpose.DATA_SUBJECT_REQUEST)
    if case is None:
        raise _not_found()
    return views.case_export(case, rows, screening, domain.Access(True, DSAR_PURPOSE), entry).model_copy(
        update={"links": links})
