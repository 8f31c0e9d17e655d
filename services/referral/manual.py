"""Referrals people make: a case worker refers a case their organisation may read to a service of
the directory, on the same legal-basis rules as automatic referrals.

What the answers reveal, decided here:
- A case the caller may not read answers NOT_FOUND exactly as an absent one (same message, same
  statements), and the refusal is audited.
- The directory is public (``directory:read``), so a service's existence is no secret: an unknown,
  inactive or not yet approved service answers NOT_FOUND on ``serviceId``; a sensitive service the token has no scope
  for answers INSUFFICIENT_SCOPE on ``serviceId``. Both are decided from the service and the token
  alone, before the case's referrals are looked at, so they tell nothing about the case (a
  DUPLICATE answer could otherwise reveal that the case has a referral to a sensitive service).
- A service of the caller's own organisation is refused (OWN_SERVICE): providing it needs no
  referral, and automatic routing never refers a case to its owner either.
- DUPLICATE counts only the open or waiting referrals to the service that exist for the caller (the
  rule of ``handlers.visible``: its organisation's own, those it receives once live, those of its
  case as owner, none to a sensitive service its token may not see). Another organisation's
  referral to the same service is not revealed by a refusal: the caller's referral is made, and the
  recipient, which sees both, learns the true fact that two organisations referred the person to
  it. The partial unique index ``referrals_one_per_need`` binds only rule-made referrals.
- The note is personal data: it is stored in ``referrals.note`` and returned to the referring and
  receiving organisations; it never enters an event, a log or an audit record.
"""

from __future__ import annotations

import uuid
from typing import Any

from psycopg_pool import AsyncConnectionPool

from contracts.channels import REFERRAL_CREATED
from contracts.commands import ReferCase
from contracts.events import ReferralCreatedV1
from contracts.reference import SENSITIVE_SERVICES, Priority, ServiceCategory, hidden_services
from contracts.replies import ReferralView
from kernel.audit import AuditPurpose
from kernel.clock import Clock, utcnow
from kernel.db import idempotent
from kernel.errors import BadInput, Conflict, Forbidden, NotFound, SeginError, parse_id
from kernel.outbox import add_event
from kernel.tokens import Principal
from services.referral import manual_domain, manual_store, store
from services.referral.handlers import visible
from services.referral.views import referral_view

OPERATION = "refer"  # the idempotency keys' operation


def _no_case() -> NotFound:
    # The same answer as intake's for "absent" and "not for you": a case's existence is personal data.
    return NotFound("No such case, or it is not shared with your organisation.", field="caseId")


def _service_refusal(service: dict[str, Any] | None, principal: Principal) -> SeginError | None:
    if service is None or service["status"] != "active" or not service["approved"]:
        return NotFound("No such service in the directory, or it is not active.", field="serviceId")
    category = ServiceCategory(service["category"])
    if category in hidden_services(principal.scopes):
        return Forbidden(f"Referring to this service needs the '{SENSITIVE_SERVICES[category].scope}' scope.",
                         field="serviceId", code="INSUFFICIENT_SCOPE")
    if service["organization_id"] == principal.org_id:
        return SeginError("This service is your own organisation's: providing it needs no referral.",
                          field="serviceId", code="OWN_SERVICE")
    return None


async def refer(pool: AsyncConnectionPool, principal: Principal, request: ReferCase, *,
                clock: Clock = utcnow) -> ReferralView:
    """Load (service, case, the caller's hold on it), decide, then create once per idempotency key and announce."""
    now = clock()
    case_id = parse_id(request.case_id, "caseId")
    service_id = parse_id(request.service_id, "serviceId")
    try:
        due = manual_domain.due_at(request.priority, now, at=request.due_at, in_hours=request.due_in_hours)
    except manual_domain.InputRefused as exc:
        raise BadInput(exc.message, field=exc.field) from None
    refusal: SeginError | None = None
    created: list[dict[str, Any]] = []
    view: ReferralView | None = None
    async with pool.connection() as conn, conn.transaction():
        service = await manual_store.directory_service(conn, service_id)
        # The same statements whether the case exists or not, or is not the caller's to read.
        case = await store.get_case(conn, case_id)
        held = await manual_store.open_bases_held(conn, case_id, principal.org_id)
        readable = case is not None and manual_domain.may_read_case(
            case["owner_org_id"], principal.org_id, principal.org_type, held, store.case_recipients(case))
        refusal = _service_refusal(service, principal) or (None if readable else _no_case())
        if refusal is None:
            assert case is not None and service is not None

            async def create() -> dict[str, Any]:
                await manual_store.lock_case(conn, case_id)
                if await manual_store.has_open_referral_to(conn, case_id, service, principal.org_id,
                                                           hidden_services(principal.scopes)):
                    raise Conflict("This case already has an open or waiting referral to this service.",
                                   field="serviceId", code="DUPLICATE")
                basis, status = manual_domain.opening_status(store.case_recipients(case), service["organization_id"],
                                                             service["org_type"])
                row = await manual_store.insert_manual(
                    conn, case_id=case_id, case_owner_org_id=case["owner_org_id"], from_org_id=principal.org_id,
                    service=service, priority=request.priority, legal_basis=basis.value if basis else None,
                    status=status, reason_code=request.reason_code, due_at=due, made_by=principal.subject,
                    note=request.note)
                await add_event(conn, store.SCHEMA, REFERRAL_CREATED, ReferralCreatedV1(
                    referral_id=str(row["id"]), case_id=str(case_id), from_org_id=principal.org_id,
                    to_org_id=row["to_org_id"], service_category=ServiceCategory(row["service_category"]),
                    priority=Priority(row["priority"]), legal_basis=basis, status=status, due_at=row["due_at"],
                    reason_code=row["reason_code"]), subject=str(row["id"]))
                created.append(row)
                return {"referral_id": str(row["id"])}

            try:
                async with conn.transaction():  # a refusal inside rolls back the key's claim, not the audit
                    result = await idempotent(
                        conn, store.SCHEMA, org_id=principal.org_id, subject=principal.subject, operation=OPERATION,
                        key=request.idempotency_key, produce=create,
                        request=request.model_dump(mode="json", exclude={"idempotency_key"}))
            except SeginError as exc:
                refusal = exc
        if refusal is not None:
            await store.TRAIL.denied(conn, principal, "referral.refer", [case_id], ["referral"], AuditPurpose.REFERRAL)
        else:
            row = await manual_store.get_with_duration(conn, uuid.UUID(result["referral_id"]))
            if row is None or not visible(row, principal):  # a replay after the referral became hidden to it
                refusal = _no_case()
                await store.TRAIL.denied(conn, principal, "referral.refer", [case_id], ["referral"],
                                         AuditPurpose.REFERRAL)
            else:
                view = referral_view(row, viewer=principal.org_id, now=now)
                category = SENSITIVE_SERVICES.get(view.service_category)
                await store.TRAIL.allowed(
                    conn, principal, "referral.refer" if created else "referral.read", [case_id],
                    ["referral", *([category.value] if category else []), *(["note"] if view.note else [])],
                    AuditPurpose.REFERRAL, legal_basis=view.legal_basis.value if view.legal_basis else None)
    if refusal is not None:
        raise refusal
    assert view is not None
    return view

