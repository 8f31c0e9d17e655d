"""Intake's commands, queries and event handlers: one function each, given the pool and the caller.

Access is decided here, by the service that owns the data, not by the gateway: every read of a
case checks ownership or an open referral plus a covering legal basis, hides sensitive
categories the token has no scope for, and leaves an audit record.
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime
from typing import Any

from psycopg_pool import AsyncConnectionPool

from contracts.channels import ARRIVAL_REGISTERED, SHARING_CHANGED
from contracts.commands import (
    CaseRef,
    RecordConsent,
    RecordLegalBasis,
    RegisterArrivalRequest,
    StatisticsRequest,
    WithdrawConsent,
)
from contracts.events import ArrivalRegisteredV1, ReferralCreatedV1, ReferralStatusChangedV1, SharingChangedV1
from contracts.reference import SensitiveCategory
from kernel.audit import AuditEntry, record
from kernel.db import Connection, idempotent
from kernel.errors import NotFound, SeginError, parse_id
from kernel.events import CloudEvent
from kernel.outbox import add_event
from kernel.tokens import Principal
from services.intake import domain, store

IDENTITY = ["identity", "arrival"]
AUDIT_OWNER_PURPOSE = domain.OWNER_PURPOSE.lower()
AUDIT_DENIED_PURPOSE = "access_check"  # a refused request has no purpose of its own


def sharing_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "legal_basis": row["legal_basis"],
        "given": row["given"],
        "purposes": list(row["purposes"]),
        "recipient_org_ids": list(row["recipient_org_ids"]),
        "recipient_org_types": list(row["recipient_org_types"]),
        "language": row["language"],
        "given_by": row["given_by"],
        "guardian_name": row["guardian_name"],
        "justification": row["justification"],
        "recorded_by": row["recorded_by"],
        "recorded_at": row["recorded_at"],
        "withdrawn_at": row["withdrawn_at"],
    }


def case_view(case: dict[str, Any], visible: frozenset[SensitiveCategory], access: domain.Access,
              sharing: list[dict[str, Any]] | None) -> dict[str, Any]:
    """What this caller may see of the case: the sensitive categories in ``visible`` (those its
    scopes allow), the sharing record (consents, guardians) only when given (to the owner)."""
    return {
        "id": str(case["id"]),
        "owner_org_id": case["owner_org_id"],
        "given_name": case["given_name"],
        "family_name": case["family_name"],
        "sex": case["sex"],
        "date_of_birth": case["date_of_birth"],
        "estimated_age": case["estimated_age"],
        "country_returned_from": case["country_returned_from"],
        "arrival_point": case["arrival_point"],
        "arrival_date": case["arrival_date"],
        "destination_region": case["destination_region"],
        **domain.split_vulnerabilities(case["vulnerabilities"], visible),
        "sharing": [sharing_view(r) for r in sharing] if sharing is not None else None,
        "access": {"purpose": access.purpose, "legal_basis": access.legal_basis},
        "created_at": case["created_at"],
    }


def _categories(principal: Principal, owner: bool) -> list[str]:
    seen = [*IDENTITY, "vulnerabilities"] + [c.value for c in domain.visible_categories(principal.scopes)]
    return seen + (["consent"] if owner else [])


async def register_arrival(pool: AsyncConnectionPool, principal: Principal, payload: dict[str, Any]) -> dict[str, Any]:
    principal.require("cases:write")
    request = RegisterArrivalRequest.model_validate(payload)
    arrival = request.arrival
    today = datetime.now(UTC).date()

    created = False

    async def create() -> dict[str, Any]:
        nonlocal created
        created = True
        case_id = uuid.uuid4()
        await store.insert_case(conn, case_id, principal.org_id, principal.subject, arrival)
        await add_event(
            conn, store.SCHEMA, ARRIVAL_REGISTERED,
            ArrivalRegisteredV1(
                case_id=str(case_id), owner_org_id=principal.org_id, arrival_point=arrival.arrival_point,
                arrival_date=arrival.arrival_date, destination_region=arrival.destination_region,
                is_child=domain.is_child(arrival, today), vulnerabilities=list(arrival.vulnerabilities),
                consent_given=arrival.consent.given, consent_recipient_org_ids=arrival.consent.recipient_org_ids,
                consent_recipient_org_types=arrival.consent.recipient_org_types,
                consent_purposes=arrival.consent.purposes,
            ),
            subject=str(case_id),
        )
        return {"case_id": str(case_id)}

    async with pool.connection() as conn, conn.transaction():
        result = await idempotent(
            conn, store.SCHEMA, org_id=principal.org_id, subject=principal.subject, operation="register_arrival",
            key=request.idempotency_key, request=arrival.model_dump(mode="json"), produce=create,
        )
        case_id = uuid.UUID(result["case_id"])
        case = await store.get_case(conn, case_id)
        sharing = await store.sharing_rows(conn, case_id)
        # Last in the transaction: the audit chain's lock is held until commit. A retry with the
        # same key is a read of the case it created.
        await record(conn, store.SCHEMA, principal, AuditEntry(
            operation="case.create" if created else "case.read", case_ids=[case_id],
            field_categories=[*IDENTITY, "vulnerabilities", "consent"], purpose=AUDIT_OWNER_PURPOSE,
            outcome="allowed"))
    assert case is not None
    return case_view(case, domain.visible_categories(principal.scopes), domain.Access(True, domain.OWNER_PURPOSE),
                     sharing)


async def _readable_case(conn: Connection, principal: Principal, case_id: uuid.UUID, operation: str
                         ) -> tuple[dict[str, Any], domain.Access, list[dict[str, Any]]] | None:
    """Load a case the caller may read; otherwise record the refusal and return None."""
    # The same queries whether the case exists or not: a refusal must not be told apart from an
    # absence by how long it takes.
    case = await store.get_case(conn, case_id)
    rows = await store.sharing_rows(conn, case_id)
    grants = await store.grants(conn, case_id)
    access = domain.Access(False)
    if case is not None:
        access = domain.case_access(case["owner_org_id"], principal.org_id, principal.org_type, grants,
                                    [store.to_basis(r) for r in rows])
    if case is None or not access.allowed:
        await record(conn, store.SCHEMA, principal, AuditEntry(
            operation=operation, case_ids=[str(case_id)], field_categories=[], purpose=AUDIT_DENIED_PURPOSE, outcome="denied"))
        return None
    return case, access, rows


def _not_found() -> NotFound:
    # The same answer for "absent" and "not for you": a case's existence is itself personal data.
    return NotFound("No such case, or it is not shared with your organisation.", field="id")


async def get_case(pool: AsyncConnectionPool, principal: Principal, payload: dict[str, Any]) -> dict[str, Any]:
    principal.require("cases:read")
    case_id = parse_id(CaseRef.model_validate(payload).case_id, "id")
    async with pool.connection() as conn, conn.transaction():  # the refusal's audit record commits too
        found = await _readable_case(conn, principal, case_id, "case.read")
        if found is not None:
            case, access, rows = found
            owner = case["owner_org_id"] == principal.org_id
            await record(conn, store.SCHEMA, principal, AuditEntry(
                operation="case.read", case_ids=[str(case_id)], field_categories=_categories(principal, owner),
                purpose=(access.purpose or AUDIT_OWNER_PURPOSE).lower(),
                legal_basis=access.legal_basis.value if access.legal_basis else None,
                outcome="allowed"))
    if found is None:
        raise _not_found()
    return case_view(case, domain.visible_categories(principal.scopes), access, rows if owner else None)


async def _owned_case(conn: Connection, principal: Principal, case_id: uuid.UUID, operation: str
                      ) -> dict[str, Any] | None:
    case = await store.get_case(conn, case_id)
    if case is None or case["owner_org_id"] != principal.org_id:
        await record(conn, store.SCHEMA, principal, AuditEntry(
            operation=operation, case_ids=[str(case_id)], field_categories=["consent"],
            purpose=AUDIT_DENIED_PURPOSE, outcome="denied"))
        return None
    return case


async def _announce_sharing(conn: Connection, case: dict[str, Any], change: str) -> list[dict[str, Any]]:
    rows = await store.sharing_rows(conn, case["id"])
    await add_event(conn, store.SCHEMA, SHARING_CHANGED, SharingChangedV1(
        case_id=str(case["id"]), owner_org_id=case["owner_org_id"], change=change,
        coverage=domain.coverage(store.to_basis(r) for r in rows)), subject=str(case["id"]))
    return rows


async def _sharing_command(pool: AsyncConnectionPool, principal: Principal, case_id: uuid.UUID, operation: str,
                           change: str, apply: Any) -> dict[str, Any]:
    """Shared shape of consent and legal-basis commands: owner only, audited, announced."""
    principal.require("consent:write")
    async with pool.connection() as conn, conn.transaction():  # the refusal's audit record commits too
        case = await _owned_case(conn, principal, case_id, operation)
        if case is not None:
            await apply(conn)
            rows = await _announce_sharing(conn, case, change)
            await record(conn, store.SCHEMA, principal, AuditEntry(
                operation=operation, case_ids=[str(case_id)], field_categories=["consent"],
                purpose=AUDIT_OWNER_PURPOSE, outcome="allowed"))
    if case is None:
        raise NotFound("No such case, or your organisation does not own it.", field="caseId")
    return {"case_id": str(case_id), "sharing": [sharing_view(r) for r in rows]}


async def record_consent(pool: AsyncConnectionPool, principal: Principal, payload: dict[str, Any]) -> dict[str, Any]:
    request = RecordConsent.model_validate(payload)
    case_id = parse_id(request.case_id, "caseId")

    async def apply(conn: Connection) -> None:
        await store.insert_consent(conn, case_id, principal.subject, request.consent)

    return await _sharing_command(pool, principal, case_id, "consent.record", "CONSENT_RECORDED", apply)


async def withdraw_consent(pool: AsyncConnectionPool, principal: Principal, payload: dict[str, Any]) -> dict[str, Any]:
    request = WithdrawConsent.model_validate(payload)
    case_id = parse_id(request.case_id, "caseId")
    consent_id = parse_id(request.consent_id, "consentId")

    async def apply(conn: Connection) -> None:
        if not await store.withdraw_consent(conn, case_id, consent_id, principal.subject):
            raise NotFound("No consent in force with this identifier on this case.", field="consentId")

    return await _sharing_command(pool, principal, case_id, "consent.withdraw", "CONSENT_WITHDRAWN", apply)


async def record_legal_basis(pool: AsyncConnectionPool, principal: Principal, payload: dict[str, Any]
                             ) -> dict[str, Any]:
    request = RecordLegalBasis.model_validate(payload)
    case_id = parse_id(request.case_id, "caseId")

    async def apply(conn: Connection) -> None:
        await store.insert_legal_basis(conn, principal.subject, request)

    return await _sharing_command(pool, principal, case_id, "legal_basis.record", "LEGAL_BASIS_RECORDED", apply)


async def statistics(pool: AsyncConnectionPool, principal: Principal, payload: dict[str, Any]) -> dict[str, Any]:
    """Aggregates only, across all organisations; cells with fewer than five people registered by
    other organisations (ten for three dimensions) suppressed."""
    principal.require("statistics:read")
    request = StatisticsRequest.model_validate(payload)
    async with pool.connection() as conn:
        rows = await store.statistics(conn, request.group_by, principal.org_id)
    minimum = domain.minimum_cell(len(request.group_by))
    # How many cells were suppressed is not told: one decoy into an empty cell would change that
    # number only if the cell already held someone.
    cells, _ = domain.suppress_small_cells([(k, n) for k, n, _ in rows], {k: own for k, _, own in rows}, minimum)
    return {"group_by": request.group_by, "cells": [{"keys": list(k), "count": n} for k, n in cells],
            "minimum_cell": minimum}


async def on_referral_created(conn: Connection, event: CloudEvent) -> None:
    """Keep the access projection: a referral may open the case to its recipient."""
    referral = ReferralCreatedV1.model_validate(event.data)
    await store.upsert_grant(conn, referral.referral_id, referral.case_id, referral.to_org_id,
                             referral.legal_basis.value if referral.legal_basis else None, referral.status,
                             event.time)


async def on_referral_status_changed(conn: Connection, event: CloudEvent) -> None:
    """A rejected, completed or revoked referral closes the access it opened."""
    change = ReferralStatusChangedV1.model_validate(event.data)
    await store.upsert_grant(conn, change.referral_id, change.case_id, change.to_org_id,
                             change.legal_basis.value if change.legal_basis else None, change.new_status,
                             event.time)


DSAR_PURPOSE = "data_subject_request"
# One steward credential must not be a bulk export of the whole database.
DSAR_PER_DAY = int(os.environ.get("SEGIN_DSAR_PER_DAY", "20"))


async def subject_access(pool: AsyncConnectionPool, principal: Principal, payload: dict[str, Any]) -> dict[str, Any]:
    """Everything intake holds about one person, for the platform steward answering their request
    (Loi 2013-015: access in intelligible form, with the origin of the data). Audited, and at
    most ``DSAR_PER_DAY`` exports per organisation in 24 hours (counted from the audit trail)."""
    principal.require("audit:read")
    case_id = parse_id(CaseRef.model_validate(payload).case_id, "caseId")
    async with pool.connection() as conn, conn.transaction():
        if await store.exports_since(conn, principal.org_id, hours=24) >= DSAR_PER_DAY:
            raise SeginError(f"The daily number of data-subject exports ({DSAR_PER_DAY}) is reached; the platform "
                             "operator can raise SEGIN_DSAR_PER_DAY.", code="RATE_LIMITED")
        case = await store.get_case(conn, case_id)
        if case is not None:
            rows = await store.sharing_rows(conn, case_id)
            screening = await store.screening(conn, case_id)
        await record(conn, store.SCHEMA, principal, AuditEntry(
            operation="dsar.export", case_ids=[str(case_id)],
            field_categories=[*IDENTITY, "vulnerabilities", "consent", *(c.value for c in SensitiveCategory)],
            purpose=DSAR_PURPOSE, outcome="allowed" if case else "denied"))
    if case is None:
        raise _not_found()
    view = case_view(case, frozenset(SensitiveCategory), domain.Access(True, DSAR_PURPOSE.upper()), rows)
    return {**view, "registered_by": case["registered_by"], "screening": screening}
