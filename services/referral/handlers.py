"""Referral's event handlers, commands and queries.

Who sees what of a referral: the referring organisation and the recipient. A referral to a
sensitive service (child protection, counter-trafficking, GBV, health) exists only for callers
holding the matching ``sensitive:*`` scope, and for the recipient, whose own service it is:
masking its fields would still reveal the category through its recipient, its urgency, its
place in a sorted list and the number of referrals a case has.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from psycopg_pool import AsyncConnectionPool

from contracts.channels import REFERRAL_STATUS_CHANGED
from contracts.commands import CaseRef, PageRequest, ReferralAction
from contracts.events import ArrivalRegisteredV1, ReferralStatusChangedV1, SharingChangedV1
from contracts.reference import (
    SENSITIVE_SERVICES,
    LegalBasis,
    Priority,
    Purpose,
    ReferralStatus,
    ServiceCategory,
    hidden_services,
)
from contracts.replies import Page, ReferralView
from kernel.audit import AuditPurpose, service_principal
from kernel.db import Connection
from kernel.errors import BadInput, NotFound, SeginError, parse_id
from kernel.events import CloudEvent
from kernel.outbox import add_event
from kernel.pagination import page
from kernel.tokens import Principal
from services.referral import domain, routing, rules, store
from services.referral.views import referral_view


async def on_arrival_registered(conn: Connection, event: CloudEvent) -> None:
    """Route a new arrival by the rules in force: a referral per need, to a provider or UNASSIGNED, announced."""
    arrival = ArrivalRegisteredV1.model_validate(event.data)
    await store.save_case(conn, arrival, domain.arrival_recipients(arrival))
    created = await routing.route_arrival(conn, arrival, datetime.now(UTC), rules.active())
    # The platform itself shared the case with these organisations: on the record, one entry per basis.
    for basis in sorted({r["legal_basis"] or "" for r in created if r["to_org_id"] is not None}):
        await store.TRAIL.allowed(conn, service_principal("referral"), "referral.create", [arrival.case_id],
                                  ["referral"], AuditPurpose.REFERRAL, legal_basis=basis or None)


async def _announce(conn: Connection, row: dict[str, Any], old_status: ReferralStatus) -> None:
    await add_event(conn, store.SCHEMA, REFERRAL_STATUS_CHANGED, ReferralStatusChangedV1(
        referral_id=str(row["id"]), case_id=str(row["case_id"]), from_org_id=row["from_org_id"],
        to_org_id=row["to_org_id"], service_category=ServiceCategory(row["service_category"]),
        priority=Priority(row["priority"]), legal_basis=LegalBasis(row["legal_basis"]) if row["legal_basis"] else None,
        old_status=old_status, new_status=ReferralStatus(row["status"]), reason_code=row["status_reason"],
    ), subject=str(row["id"]))


async def on_sharing_changed(conn: Connection, event: CloudEvent) -> None:
    """Consent recorded: waiting referrals go live. Consent withdrawn: referrals resting on it are revoked."""
    change = SharingChangedV1.model_validate(event.data)
    recipients = next((c.recipients for c in change.coverage if c.purpose == Purpose.REFERRAL), [])
    await store.set_case_recipients(conn, change.case_id, recipients)
    referrals = await store.referrals_of_case(conn, parse_id(change.case_id, "case_id"), lock=True)
    types = await store.org_types(conn, sorted({r["to_org_id"] for r in referrals if r["to_org_id"]}))
    changed: set[str] = set()
    for step in domain.reassess(referrals, lambda org: domain.basis_for(recipients, org, types.get(org))):
        row = await store.set_status(conn, step.referral_id, step.new_status,
                                     step.legal_basis.value if step.legal_basis else None, step.reason)
        if step.new_status != step.old_status:
            await _announce(conn, row, step.old_status)
            changed.add(step.reason.lower())
    for reason in sorted(changed):  # last in the transaction: the audit chain's lock is held until commit
        await store.TRAIL.allowed(conn, service_principal("referral"), f"referral.{reason}", [change.case_id],
                                  ["referral"], AuditPurpose.REFERRAL)


def visible(row: dict[str, Any], principal: Principal) -> bool:
    """Whether the referral exists for this caller: the recipient once it is live; the referring
    organisation and the case owner unless it is a sensitive service their token may not see."""
    if principal.org_id == row["to_org_id"] and row["status"] != ReferralStatus.AWAITING_CONSENT:
        return True
    involved = principal.org_id in (row["from_org_id"], row["case_owner_org_id"])
    return involved and ServiceCategory(row["service_category"]) not in hidden_services(principal.scopes)


def _categories(views: list[ReferralView]) -> list[str]:
    revealed = {v.service_category for v in views}
    return ["referral"] + sorted(SENSITIVE_SERVICES[c].value for c in revealed if c in SENSITIVE_SERVICES)


async def case_referrals(pool: AsyncConnectionPool, principal: Principal, request: CaseRef) -> list[ReferralView]:
    case_id = parse_id(request.case_id, "caseId")
    async with pool.connection() as conn, conn.transaction():
        rows = await store.case_referrals(conn, case_id, principal.org_id, hidden_services(principal.scopes))
        views = [referral_view(r) for r in rows]
        if views:
            await store.TRAIL.allowed(conn, principal, "referral.list_for_case", [case_id], _categories(views),
                                      AuditPurpose.REFERRAL)
    return views


async def incoming(pool: AsyncConnectionPool, principal: Principal, request: PageRequest) -> Page[ReferralView]:
    async with pool.connection() as conn, conn.transaction():
        rows = await store.incoming(conn, principal.org_id, request.first, request.after)
        found = page(rows, request.first)
        result = Page[ReferralView](nodes=[referral_view(r) for r in found["nodes"]], page_info=found["page_info"])
        if result.nodes:
            await store.TRAIL.allowed(conn, principal, "referral.list_incoming", {n.case_id for n in result.nodes},
                                      _categories(result.nodes), AuditPurpose.REFERRAL)
    return result


async def act(action: str, pool: AsyncConnectionPool, principal: Principal, request: ReferralAction) -> ReferralView:
    """Accept, reject or complete (the recipient), or revoke (the referring organisation)."""
    referral_id = parse_id(request.referral_id, "id", not_found="No such referral.")
    refusal: SeginError | None = None
    async with pool.connection() as conn, conn.transaction():
        row = await store.get_for_update(conn, referral_id)
        # A referral awaiting consent does not exist for its would-be recipient, nor a sensitive one
        # for a referring organisation's token without that category's scope.
        if row is None or not visible(row, principal):
            refusal = NotFound("No such referral.", field="id")
        else:
            try:
                new_status = domain.transition(action, row["status"], is_recipient=principal.org_id == row["to_org_id"],
                                               is_owner=principal.org_id == row["from_org_id"])
            except domain.TransitionRefused as exc:
                refusal = SeginError(exc.message, field="id", code=exc.code)
            else:
                if action == "reject" and not request.reason:
                    raise BadInput("Give a reason code for the rejection.", field="reason")
                old = ReferralStatus(row["status"])
                row = await store.set_status(conn, referral_id, new_status, row["legal_basis"],
                                             request.reason or action.upper())
                await _announce(conn, row, old)
        cases = [row["case_id"]] if row else []
        if refusal:
            await store.TRAIL.denied(conn, principal, f"referral.{action}", cases, ["referral"], AuditPurpose.REFERRAL)
        else:
            await store.TRAIL.allowed(conn, principal, f"referral.{action}", cases, ["referral"], AuditPurpose.REFERRAL)
    if refusal:
        raise refusal
    assert row is not None
    return referral_view(row)


async def subject_access(pool: AsyncConnectionPool, principal: Principal, request: CaseRef) -> list[ReferralView]:
    """Every referral of one person's case, unmasked, for the platform steward's export. Audited."""
    case_id = parse_id(request.case_id, "caseId")
    async with pool.connection() as conn, conn.transaction():
        rows = await store.referrals_of_case(conn, case_id)
        await store.TRAIL.allowed(conn, principal, "dsar.export", [case_id], ["referral"],
                                  AuditPurpose.DATA_SUBJECT_REQUEST)
    return [referral_view(row) for row in rows]
