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
from contracts.commands import CaseRef, CompleteReferral, ReferralAction, ReferralOutcome
from contracts.events import (
    ArrivalRegisteredV1,
    CaseCorrectedV1,
    ReferralStatusChangedV1,
    SharingChangedV1,
)
from contracts.reference import (
    LegalBasis,
    Priority,
    Purpose,
    ReferralStatus,
    ServiceCategory,
    hidden_services,
)
from contracts.replies import ReferralView
from kernel.audit import AuditPurpose, service_principal
from kernel.bus import RetryLater
from kernel.clock import Clock, utcnow
from kernel.db import Connection
from kernel.errors import BadInput, NotFound, SeginError, parse_id
from kernel.events import CloudEvent
from kernel.outbox import add_event
from kernel.tokens import Principal
from services.referral import domain, manual_domain, manual_store, merges, routing, rules, store
from services.referral.views import audit_categories, referral_view
from services.referral.worklists import shown


async def on_arrival_registered(conn: Connection, event: CloudEvent) -> None:
    """Route a new arrival by the rules in force: a referral per need, to a provider or UNASSIGNED, announced."""
    arrival = ArrivalRegisteredV1.model_validate(event.data)
    # A case known already was routed when first handled. Replayed (a dead letter, a consumer reset), the
    # registration's facts would bring back needs a correction withdrew since: only the current facts count.
    if not await store.save_case(conn, arrival, domain.arrival_recipients(arrival)):
        return
    created = await routing.route_arrival(conn, arrival, datetime.now(UTC), rules.active())
    await _shared_by_routing(conn, arrival.case_id, created)


async def on_case_corrected(conn: Connection, event: CloudEvent) -> None:
    """The owner corrected the case (offline capture, ``updateCase``): its routing facts as they now are, if
    newer than those held. A need they no longer call for loses the rules' referrals not accepted yet
    (``domain.needs_withdrawn``: a flag ticked by mistake shares nothing for long), and so does a need whose
    provider no longer fits them (``domain.needs_moved``: another destination); a need they now call for, or
    whose referral was let go, is routed as at arrival (a flag screened after registration reaches its
    provider). A correction for a case not known yet is retried, never dropped (decision record 0025)."""
    corrected = CaseCorrectedV1.model_validate(event.data)
    case_id = parse_id(corrected.case_id, "case_id")
    before = await store.get_case(conn, case_id, lock=True)  # the facts the correction replaces
    if before is None:
        raise RetryLater(f"correction {corrected.version} of case {corrected.case_id} came before the case")
    if not await store.correct_case(conn, corrected):
        return  # older than the facts held: a late or repeated delivery
    facts = store.corrected_facts(corrected)
    if store.same_facts(before, facts):
        return  # only a name, a phone… corrected: routing has nothing to reconsider
    person, ruleset = store.person_of({**before, **facts}), rules.active()
    # The person's referrals under any of their registrations (merged into this case) count as referred.
    referrals = await store.referrals_of_cases(conn, await merges.one_person(conn, case_id), lock=True)
    # What the correction itself took away, under the same rules (a rule changed since is not its doing), and
    # the needs it keeps whose provider no longer fits (another destination, a child now).
    needs = domain.needs_of(person, ruleset)
    gone = {n.category for n in domain.needs_of(store.person_of(before), ruleset)} - {n.category for n in needs}
    served_in = {n.category: ruleset.region_served(n, person) for n in needs}
    services = await store.services_by_id(conn, {r["service_id"] for r in referrals if r["service_id"] is not None})
    # A flag taken back is this registration's; where the person goes is the person's: every registration moves.
    steps = (domain.needs_withdrawn([r for r in referrals if r["case_id"] == case_id], gone)
             + domain.needs_moved(referrals, served_in, services, person))
    rejected = domain.rejections_moved(referrals, served_in, services, person)
    withdrawn = await _apply(conn, steps)
    let_go = [r for r in referrals if str(r["id"]) in {s.referral_id for s in steps}] + rejected
    created = await routing.route_case(conn, corrected.case_id, person, datetime.now(UTC), ruleset,
                                       domain.referred_categories(r for r in referrals if r not in let_go),
                                       exclude=await _tried(conn, [r for r in let_go
                                                                   if r["service_category"] in served_in]))
    await store.link_reroutes(conn, [(r["id"], new["id"]) for r in rejected for new in created
                                     if new["service_category"] == r["service_category"]])
    await _shared_by_routing(conn, corrected.case_id, created)
    await _record_changes(conn, corrected.case_id, withdrawn)


async def _tried(conn: Connection, referrals: list[dict[str, Any]]) -> dict[ServiceCategory, set[str]]:
    """Per category, the organisations these referrals' needs went to already (their re-routing chains): a
    moved need is not sent back to a provider that said no, as a re-routing would not."""
    tried: dict[ServiceCategory, set[str]] = {}
    for r in referrals:
        tried.setdefault(ServiceCategory(r["service_category"]), set()).update(await store.tried_orgs(conn, r["id"]))
    return tried


async def _apply(conn: Connection, steps: list[domain.Reassessment]) -> set[str]:
    """Write each reassessment and announce each change of state; returns the reasons of the changes. An
    unmet need withdrawn had no recipient to tell: it leaves the unassigned lists, which are read, not told."""
    changed: set[str] = set()
    for step in steps:
        row = await store.set_status(conn, step.referral_id, step.new_status,
                                     step.legal_basis.value if step.legal_basis else None, step.reason)
        if step.new_status != step.old_status:
            if row["to_org_id"] is not None:
                await _announce(conn, row, step.old_status)
            changed.add(step.reason.lower())
    return changed


async def _record_changes(conn: Connection, case_id: str, reasons: set[str]) -> None:
    """One audit entry per kind of change (last in the transaction: the audit chain's lock is held until commit)."""
    for reason in sorted(reasons):
        await store.TRAIL.allowed(conn, service_principal("referral"), f"referral.{reason}", [case_id],
                                  ["referral"], AuditPurpose.REFERRAL)


async def _shared_by_routing(conn: Connection, case_id: str, created: list[dict[str, Any]]) -> None:
    """The platform itself shared the case with these organisations: on the record, one entry per basis."""
    for basis in sorted({r["legal_basis"] or "" for r in created if r["to_org_id"] is not None}):
        await store.TRAIL.allowed(conn, service_principal("referral"), "referral.create", [case_id],
                                  ["referral"], AuditPurpose.REFERRAL, legal_basis=basis or None)


async def _announce(conn: Connection, row: dict[str, Any], old_status: ReferralStatus) -> None:
    await add_event(conn, store.SCHEMA, REFERRAL_STATUS_CHANGED, ReferralStatusChangedV1(
        referral_id=str(row["id"]), case_id=str(row["case_id"]), from_org_id=row["from_org_id"],
        to_org_id=row["to_org_id"], service_category=ServiceCategory(row["service_category"]),
        priority=Priority(row["priority"]), legal_basis=LegalBasis(row["legal_basis"]) if row["legal_basis"] else None,
        old_status=old_status, new_status=ReferralStatus(row["status"]), reason_code=row["status_reason"],
        outcome_code=row.get("outcome_code"), outcome_delivered=row.get("outcome_delivered"),
    ), subject=str(row["id"]))


async def on_sharing_changed(conn: Connection, event: CloudEvent) -> None:
    """Consent recorded: waiting referrals go live. Consent withdrawn: referrals resting on it are revoked.

    Only a change newer than the one applied counts (events come out of order): a late one neither
    sends a referral live on withdrawn consent nor revokes one a newer consent covers. A case not
    known yet is retried later, never dropped: dropped, its referrals would be routed on the
    registration's consent and stay there."""
    change = SharingChangedV1.model_validate(event.data)
    recipients = next((c.recipients for c in change.coverage if c.purpose == Purpose.REFERRAL), [])
    applied = await store.set_case_recipients(conn, change.case_id, recipients, change.sharing_version)
    if applied is False:
        return
    referrals = await store.referrals_of_case(conn, parse_id(change.case_id, "case_id"), lock=True)
    if applied is None and not referrals:
        raise RetryLater(f"sharing change {change.sharing_version} of case {change.case_id} came before the case")
    # Unknown but with referrals: routed before this service kept cases (migration 0004); no version
    # is held for it, so the change is applied as it comes, as before.
    types = await store.org_types(conn, sorted({r["to_org_id"] for r in referrals if r["to_org_id"]}))
    changed = await _apply(conn, domain.reassess(referrals, lambda org: domain.basis_for(recipients, org,
                                                                                       types.get(org))))
    await _record_changes(conn, change.case_id, changed)


def visible(row: dict[str, Any], principal: Principal) -> bool:
    """Whether the referral exists for this caller: the recipient once it is live; the referring
    organisation and the case owner unless it is a sensitive service their token may not see."""
    if principal.org_id == row["to_org_id"] and row["status"] != ReferralStatus.AWAITING_CONSENT:
        return True
    involved = principal.org_id in (row["from_org_id"], row["case_owner_org_id"])
    return involved and ServiceCategory(row["service_category"]) not in hidden_services(principal.scopes)


async def case_referrals(pool: AsyncConnectionPool, principal: Principal, request: CaseRef) -> list[ReferralView]:
    case_id = parse_id(request.case_id, "caseId")
    async with pool.connection() as conn, conn.transaction():
        rows = await store.case_referrals(conn, await merges.one_person(conn, case_id), principal.org_id,
                                          hidden_services(principal.scopes))
        views = await shown(conn, rows, principal, utcnow())
        if views:
            await store.TRAIL.allowed(conn, principal, "referral.list_for_case", [case_id], audit_categories(views),
                                      AuditPurpose.REFERRAL)
    return views


async def act(action: str, pool: AsyncConnectionPool, principal: Principal, request: ReferralAction, *,
              clock: Clock = utcnow) -> ReferralView:
    """Accept, reject or complete (the recipient, with the outcome when given), or revoke (the referring
    organisation). Accepting records when, which starts the service's expected duration."""
    referral_id = parse_id(request.referral_id, "id", not_found="No such referral.")
    now = clock()
    outcome = request.outcome if isinstance(request, CompleteReferral) else None
    refusal: SeginError | None = None
    view: ReferralView | None = None
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
                refusal = _input_refusal(action, request, outcome, row, now)
            if refusal is None:
                old = ReferralStatus(row["status"])
                row = await store.set_status(conn, referral_id, new_status, row["legal_basis"],
                                             request.reason or action.upper())
                if action == "accept":
                    row = await manual_store.record_accepted(conn, referral_id, now)
                if outcome is not None:
                    row = await manual_store.record_outcome(conn, referral_id, outcome)
                await _announce(conn, row, old)
                [view] = await shown(conn, [row], principal, now)
        # Every answer is on the record, a refusal too (written, then committed, then raised); an
        # allowed one names the sensitive category touched and the note when the reply shows it.
        cases = [row["case_id"]] if row else []
        if refusal or view is None:
            await store.TRAIL.denied(conn, principal, f"referral.{action}", cases, ["referral"], AuditPurpose.REFERRAL)
        else:
            await store.TRAIL.allowed(conn, principal, f"referral.{action}", cases, audit_categories([view]),
                                      AuditPurpose.REFERRAL)
    if refusal:
        raise refusal
    assert view is not None
    return view


def _input_refusal(action: str, request: ReferralAction, outcome: ReferralOutcome | None, row: dict[str, Any],
                   now: datetime) -> SeginError | None:
    """What the request lacks or gets wrong for this referral (decided after loading it: an outcome's
    date is checked against when the referral was made)."""
    if action == "reject" and not request.reason:
        return BadInput("Give a reason code for the rejection.", field="reason")
    if outcome is not None:
        try:
            manual_domain.check_outcome(outcome, row["created_at"], now.date())
        except manual_domain.InputRefused as exc:
            return BadInput(exc.message, field=exc.field)
    return None


async def subject_access(pool: AsyncConnectionPool, principal: Principal, request: CaseRef) -> list[ReferralView]:
    """Every referral of one person's case, unmasked (notes included), for the platform steward's export. Audited."""
    case_id = parse_id(request.case_id, "caseId")
    async with pool.connection() as conn, conn.transaction():
        rows = await manual_store.with_durations(conn, await store.referrals_of_case(conn, case_id))
        views = [referral_view(row, export=True) for row in rows]
        await store.TRAIL.allowed(conn, principal, "dsar.export", [case_id], ["referral"] +
                                  (["note"] if any(v.note for v in views) else []), AuditPurpose.DATA_SUBJECT_REQUEST)
    return views
