"""Unmet needs and re-routing: the unassigned list, assigning a need by hand, re-routing a referral.

Who: the case's registering (or referring) organisation, and the coordinating body
(``kernel.config.coordinator_org_id``, env ``SEGIN_COORDINATOR_ORG``), which sees every case's unmet
needs. The referring organisation re-routes its referrals; the coordinating body steps in only where
the network failed: a referral escalated by the deadline scan (``escalated_at``) or rejected. A
fresh referral is none of its business: it answers NOT_FOUND, as for an id that does not exist.
Someone other than the referring organisation re-routing is told to it and to the case's owner
(``routing.reroute_referral`` names the re-routing organisation in the new referral's event).
A need or referral of a sensitive category exists only for tokens holding that category's scope,
exactly as other referral reads: the same NOT_FOUND as for an id that does not exist.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from psycopg_pool import AsyncConnectionPool

from contracts.commands import AssignNeed, PageRequest, RerouteReferral
from contracts.reference import SENSITIVE_SERVICES, LegalBasis, ReferralStatus, ServiceCategory, hidden_services
from contracts.replies import Page, ReferralView
from kernel.audit import AuditPurpose
from kernel.config import coordinator_org_id
from kernel.errors import BadInput, NotFound, SeginError, parse_id
from kernel.pagination import page
from kernel.tokens import Principal
from services.referral import domain, routing, store
from services.referral.views import referral_view

NO_SUCH = "No such referral."




def _involved(row: dict[str, Any], principal: Principal) -> bool:
    """The registering or referring organisation, or the coordinating body, with the category's scope."""
    org = principal.org_id
    return (org in (row["case_owner_org_id"], row["from_org_id"]) or org == coordinator_org_id()) and (
        ServiceCategory(row["service_category"]) not in hidden_services(principal.scopes))


def _categories(rows: list[dict[str, Any]]) -> list[str]:
    revealed = {ServiceCategory(r["service_category"]) for r in rows}
    return ["referral"] + sorted(SENSITIVE_SERVICES[c].value for c in revealed if c in SENSITIVE_SERVICES)


async def unassigned(pool: AsyncConnectionPool, principal: Principal, request: PageRequest) -> Page[ReferralView]:
    """Unmet needs, newest first: of the caller's own cases, or of every case for the coordinating body."""
    async with pool.connection() as conn, conn.transaction():
        rows = await store.unassigned(conn, principal.org_id, principal.org_id == coordinator_org_id(),
                                      hidden_services(principal.scopes), request.first, request.after)
        found = page(rows, request.first)
        result = Page[ReferralView](nodes=[referral_view(r) for r in found["nodes"]], page_info=found["page_info"])
        if found["nodes"]:
            await store.TRAIL.allowed(conn, principal, "referral.list_unassigned", {n.case_id for n in result.nodes},
                                      _categories(found["nodes"]), AuditPurpose.REFERRAL)
    return result


async def assign(pool: AsyncConnectionPool, principal: Principal, request: AssignNeed) -> ReferralView:
    """Give an unmet need to a directory service chosen by a person. The legal basis is decided as
    in routing: the case's recorded sharing covering the recipient, else the rule's basis without
    consent (a child's vital interest), else the referral waits for consent. The deadline restarts."""
    referral_id = parse_id(request.referral_id, "id", not_found=NO_SUCH)
    service_id = parse_id(request.service_id, "serviceId", not_found="No such directory service.")
    refusal: SeginError | None = None
    async with pool.connection() as conn, conn.transaction():
        row = await store.get_for_update(conn, referral_id)
        cases = [row["case_id"]] if row else []
        if row is None or not _involved(row, principal):
            refusal = NotFound(NO_SUCH, field="id")
        elif row["status"] != ReferralStatus.UNASSIGNED:
            refusal = SeginError(f"A referral in state {row['status']} is not an unmet need.", field="id",
                                 code="INVALID_TRANSITION")
        else:
            provider = await store.directory_service(conn, service_id)
            refusal = _unfit(provider, row)
            if refusal is None:
                assert provider is not None
                case = await store.get_case(conn, row["case_id"])
                recipients = store.case_recipients(case) if case else []
                basis, status = domain.consent_basis(recipients, provider.org_id, provider.org_type,
                                                     _without_consent(row))
                due_in = row["due_in"] or (row["due_at"] - row["created_at"])
                row = await store.assign(conn, referral_id, provider, status, basis.value if basis else None,
                                         datetime.now(UTC) + due_in, principal.subject, principal.org_id)
                await routing.announce_status(conn, row, ReferralStatus.UNASSIGNED)
        if refusal or row is None:
            await store.TRAIL.denied(conn, principal, "referral.assign", cases, ["referral"], AuditPurpose.REFERRAL)
        else:
            await store.TRAIL.allowed(conn, principal, "referral.assign", cases, _categories([row]),
                                      AuditPurpose.REFERRAL, legal_basis=row["legal_basis"])
    if refusal:
        raise refusal
    assert row is not None
    return referral_view(row)


def _unfit(provider: domain.Provider | None, row: dict[str, Any]) -> SeginError | None:
    if provider is None:
        return NotFound("No such active directory service.", field="serviceId")
    if provider.category != row["service_category"]:
        return BadInput(f"This service offers {provider.category.value}, not {row['service_category']}.",
                        field="serviceId")
    if provider.org_id == row["case_owner_org_id"]:
        return BadInput("A case is not referred to its own organisation.", field="serviceId")
    return None


def _without_consent(row: dict[str, Any]) -> LegalBasis | None:
    """What the need's rule allowed without consent (recorded at routing: later rule changes do not apply)."""
    return LegalBasis(row["basis_without_consent"]) if row["basis_without_consent"] else None


async def reroute(pool: AsyncConnectionPool, principal: Principal, request: RerouteReferral) -> ReferralView:
    """The referring organisation (or the coordinating body, for an escalated or rejected referral)
    sends a referral on to the next provider (``routing.reroute_referral``); answers with the new referral."""
    referral_id = parse_id(request.referral_id, "id", not_found=NO_SUCH)
    refusal: SeginError | None = None
    new: dict[str, Any] | None = None
    async with pool.connection() as conn, conn.transaction():
        row = await store.get_for_update(conn, referral_id)
        cases = [row["case_id"]] if row else []
        if row is None or not _may_reroute(row, principal):
            refusal = NotFound(NO_SUCH, field="id")
        elif not routing.reroutable(row):
            refusal = SeginError(f"A referral in state {row['status']} cannot be re-routed"
                                 + (" again." if row["rerouted_to"] else "."), field="id", code="INVALID_TRANSITION")
        else:
            new = await routing.reroute_referral(conn, row, datetime.now(UTC), principal.subject, request.reason,
                                                 by_org=principal.org_id)
        if refusal or new is None:
            await store.TRAIL.denied(conn, principal, "referral.reroute", cases, ["referral"], AuditPurpose.REFERRAL)
        else:
            await store.TRAIL.allowed(conn, principal, "referral.reroute", cases, _categories([new]),
                                      AuditPurpose.REFERRAL, legal_basis=new["legal_basis"])
    if refusal:
        raise refusal
    assert new is not None
    return referral_view(new)


def _may_reroute(row: dict[str, Any], principal: Principal) -> bool:
    """The referring organisation (not the recipient, nor the owner of a case another organisation
    referred), or the coordinating body once the referral was escalated or rejected; with the
    category's scope."""
    org = principal.org_id
    stuck = row.get("escalated_at") is not None or row["status"] == ReferralStatus.REJECTED
    return (org == row["from_org_id"] or (org == coordinator_org_id() and stuck)) and (
        ServiceCategory(row["service_category"]) not in hidden_services(principal.scopes))
