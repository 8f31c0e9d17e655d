"""Follow-up's commands, queries and event handlers: one function each, given the pool, the caller
and the validated command (the runtime checked the endpoint's scope first, see ``app.py``).

Who sees what: a case's follow-up exists for its owner and for the organisation managing it (while
consent or another recorded basis covers that organisation for FOLLOW_UP); for anyone else it
answers NOT_FOUND exactly as an absent case. Only the manager writes the plan, closes or re-opens;
the manager, or the platform steward (``followup:manage``), hands the case over. Every answer is on
the record (a refusal too). Plan text is personal data: it never enters an event, a log or an
audit record. "Overdue" depends on the time, which every function takes as ``clock``.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from psycopg_pool import AsyncConnectionPool

from contracts.channels import CASE_ASSIGNED, CASE_CLOSED, CASE_REOPENED, PLAN_ACTION_UPDATED, PLAN_SAVED
from contracts.commands import (
    AssignCaseManagement,
    CaseRef,
    CloseCase,
    PageRequest,
    ReopenCase,
    SavePlan,
    UpdatePlanAction,
)
from contracts.events import (
    ArrivalRegisteredV1,
    CaseAssignedV1,
    CaseClosedV1,
    CaseReopenedV1,
    PlanActionUpdatedV1,
    PlanSavedV1,
    SharingChangedV1,
    SharingRecipient,
)
from contracts.reference import LegalBasis, PlanActionStatus, Purpose, ReintegrationDimension
from contracts.replies import FollowupCaseView, MissingPlanView, Page
from kernel.audit import AuditPurpose
from kernel.config import plan_due_days
from kernel.db import Connection, idempotent
from kernel.errors import NotFound, SeginError, parse_id
from kernel.events import CloudEvent
from kernel.outbox import add_event
from kernel.pagination import page
from kernel.tokens import Principal
from services.followup import domain, store, views

Clock = Callable[[], datetime]
STEWARD_SCOPE = "followup:manage"
FOLLOW_UP = ["follow_up"]  # audit category: who manages the case, its state
WITH_PLAN = ["follow_up", "plan"]  # … and the plan's text


def utcnow() -> datetime:
    return datetime.now(UTC)


def _not_found() -> NotFound:
    # The same answer as intake's for "absent" and "not for you": a case's existence is personal data.
    return NotFound("No such case, or it is not shared with your organisation.", field="caseId")


def _refusal(exc: domain.Refused) -> SeginError:
    if exc.code == "NOT_FOUND":
        return NotFound(exc.message, field=exc.field)
    return SeginError(exc.message, field=exc.field, code=exc.code)


def _purpose(standing: str | None) -> AuditPurpose:
    return AuditPurpose.CASE_MANAGEMENT if standing == "OWNER" else AuditPurpose.FOLLOW_UP


async def _view(conn: Connection, row: dict[str, Any], principal: Principal, now: datetime
                ) -> tuple[FollowupCaseView, str | None]:
    """The follow-up as the caller may see it now: the plan only for its owner and manager."""
    case_id = row["case_id"]
    standing = domain.standing(store.to_case(row), principal.org_id, principal.org_type)
    goals = await store.plan(conn, case_id) if standing else []
    view = views.case_view(row, goals, await store.assignments(conn, case_id), now.date(), plan_due_days())
    if standing is None:
        view = view.model_copy(update={"plan": None})
    return view, standing


async def get_case(pool: AsyncConnectionPool, principal: Principal, request: CaseRef, *,
                   clock: Clock = utcnow) -> FollowupCaseView:
    case_id = parse_id(request.case_id, "caseId")
    now = clock()
    async with pool.connection() as conn, conn.transaction():  # the refusal's audit record commits too
        row = await store.get_case(conn, case_id)
        standing = domain.standing(store.to_case(row), principal.org_id, principal.org_type) if row else None
        if row is None or standing is None:
            await store.TRAIL.denied(conn, principal, "followup.read", [case_id])
            view = None
        else:
            view, _ = await _view(conn, row, principal, now)
            await store.TRAIL.allowed(conn, principal, "followup.read", [case_id], WITH_PLAN, _purpose(standing))
    if view is None:
        raise _not_found()
    return view


Decide = Callable[[Connection, dict[str, Any], domain.FollowupCase], Awaitable[dict[str, Any]]]


async def _command(pool: AsyncConnectionPool, principal: Principal, case_id: uuid.UUID, operation: str,
                   decide: Decide, now: datetime) -> FollowupCaseView:
    """Shared shape of every command: lock the case, decide and write (``decide``), then answer; a
    refusal rolls back what ``decide`` wrote but not its audit record."""
    refusal: SeginError | None = None
    view: FollowupCaseView | None = None
    async with pool.connection() as conn, conn.transaction():
        row = await store.get_case(conn, case_id, lock=True)
        if row is None:
            refusal = _not_found()
        else:
            try:
                async with conn.transaction():
                    row = await decide(conn, row, store.to_case(row))
            except domain.Refused as exc:
                refusal = _refusal(exc)
            except SeginError as exc:
                refusal = exc
        if refusal is not None or row is None:
            await store.TRAIL.denied(conn, principal, f"followup.{operation}", [case_id])
        else:
            view, standing = await _view(conn, row, principal, now)
            await store.TRAIL.allowed(conn, principal, f"followup.{operation}", [case_id],
                                      WITH_PLAN if view.plan else FOLLOW_UP, _purpose(standing))
    if refusal is not None:
        raise refusal
    assert view is not None
    return view


async def assign(pool: AsyncConnectionPool, principal: Principal, request: AssignCaseManagement, *,
                 clock: Clock = utcnow) -> FollowupCaseView:
    """Hand the case's follow-up to another organisation a basis covers; announced, so that intake
    opens the case to the new manager and closes it to the old one (unless it is the owner)."""
    case_id = parse_id(request.case_id, "caseId")

    async def decide(conn: Connection, row: dict[str, Any], case: domain.FollowupCase) -> dict[str, Any]:
        basis = domain.assignment_basis(
            case, caller_org_id=principal.org_id, caller_org_type=principal.org_type,
            steward=STEWARD_SCOPE in principal.scopes, to_org_id=request.organization_id,
            to_org_type=request.organization_type.value if request.organization_type else None)
        row = await store.set_manager(conn, case_id, request.organization_id)
        await store.insert_assignment(conn, case_id, case.manager_org_id, request.organization_id, request.reason,
                                      basis, principal.org_id)
        await add_event(conn, store.SCHEMA, CASE_ASSIGNED, CaseAssignedV1(
            case_id=str(case_id), owner_org_id=case.owner_org_id, from_org_id=case.manager_org_id,
            to_org_id=request.organization_id, reason_code=request.reason, legal_basis=basis,
            assigned_by_org_id=principal.org_id, version=row["version"]), subject=str(case_id))
        return row

    return await _command(pool, principal, case_id, "assign", decide, clock())


async def save_plan(pool: AsyncConnectionPool, principal: Principal, request: SavePlan, *,
                    clock: Clock = utcnow) -> FollowupCaseView:
    """Save the whole plan, once per idempotency key, as of the version the caller read."""
    case_id = parse_id(request.case_id, "caseId")

    async def decide(conn: Connection, row: dict[str, Any], case: domain.FollowupCase) -> dict[str, Any]:
        # Before the key is looked up: a replay must not answer an organisation that no longer manages
        # the case, nor a key used elsewhere tell a stranger that the case exists (IDEMPOTENCY_KEY_REUSED).
        domain.may_write(case, principal.org_id, principal.org_type)

        async def produce() -> dict[str, Any]:
            domain.check_version(case, request.version)
            domain.check_plan(case, request.goals, await store.action_states(conn, case_id))
            saved, actions = await store.replace_plan(conn, case_id, principal.org_id, request.goals)
            await add_event(conn, store.SCHEMA, PLAN_SAVED, PlanSavedV1(
                case_id=str(case_id), manager_org_id=principal.org_id, version=saved["version"],
                dimensions=sorted({g.dimension for g in request.goals}, key=list(ReintegrationDimension).index),
                goal_count=len(request.goals), action_count=actions,
                linked_referral_ids=sorted({a.referral_id for g in request.goals for a in g.actions
                                            if a.referral_id})), subject=str(case_id))
            return {"case_id": str(case_id), "version": saved["version"]}

        await idempotent(conn, store.SCHEMA, org_id=principal.org_id, subject=principal.subject,
                         operation="save_plan", key=request.idempotency_key, produce=produce,
                         request=request.model_dump(mode="json", exclude={"idempotency_key"}))
        current = await store.get_case(conn, case_id)
        assert current is not None
        return current

    return await _command(pool, principal, case_id, "save_plan", decide, clock())


async def update_action(pool: AsyncConnectionPool, principal: Principal, request: UpdatePlanAction, *,
                        clock: Clock = utcnow) -> FollowupCaseView:
    case_id = parse_id(request.case_id, "caseId")
    action_id = parse_id(request.action_id, "actionId", not_found="No such action in this case's plan.")

    async def decide(conn: Connection, row: dict[str, Any], case: domain.FollowupCase) -> dict[str, Any]:
        domain.may_write(case, principal.org_id, principal.org_type)
        domain.check_version(case, request.version)
        action = await store.action_for_update(conn, case_id, action_id)
        if action is None:
            raise domain.Refused("No such action in this case's plan.", "NOT_FOUND", "actionId")
        old = PlanActionStatus(action["status"])
        new = domain.action_transition(case, old, request.status)
        row = await store.set_action_status(conn, case_id, action_id, new)
        await add_event(conn, store.SCHEMA, PLAN_ACTION_UPDATED, PlanActionUpdatedV1(
            case_id=str(case_id), manager_org_id=principal.org_id, action_id=str(action_id),
            dimension=ReintegrationDimension(action["dimension"]), old_status=old, new_status=new,
            version=row["version"]), subject=str(case_id))
        return row

    return await _command(pool, principal, case_id, "update_action", decide, clock())


async def close_case(pool: AsyncConnectionPool, principal: Principal, request: CloseCase, *,
                     clock: Clock = utcnow) -> FollowupCaseView:
    """Close the follow-up with its reason; the plan's open actions are cancelled with it."""
    case_id = parse_id(request.case_id, "caseId")

    async def decide(conn: Connection, row: dict[str, Any], case: domain.FollowupCase) -> dict[str, Any]:
        domain.may_write(case, principal.org_id, principal.org_type)
        domain.check_version(case, request.version)
        domain.close(case)
        closed = domain.actions_closed_by_closure((await store.action_states(conn, case_id)).items())
        row = await store.close(conn, case_id, request.reason, closed)
        await add_event(conn, store.SCHEMA, CASE_CLOSED, CaseClosedV1(
            case_id=str(case_id), manager_org_id=case.manager_org_id, reason=request.reason,
            closed_action_ids=sorted(closed), version=row["version"]), subject=str(case_id))
        return row

    return await _command(pool, principal, case_id, "close", decide, clock())


async def reopen_case(pool: AsyncConnectionPool, principal: Principal, request: ReopenCase, *,
                      clock: Clock = utcnow) -> FollowupCaseView:
    case_id = parse_id(request.case_id, "caseId")

    async def decide(conn: Connection, row: dict[str, Any], case: domain.FollowupCase) -> dict[str, Any]:
        domain.may_write(case, principal.org_id, principal.org_type)
        domain.check_version(case, request.version)
        domain.reopen(case)
        row = await store.reopen(conn, case_id)
        await add_event(conn, store.SCHEMA, CASE_REOPENED, CaseReopenedV1(
            case_id=str(case_id), manager_org_id=case.manager_org_id, reason_code=request.reason,
            version=row["version"]), subject=str(case_id))
        return row

    return await _command(pool, principal, case_id, "reopen", decide, clock())


async def plans_missing(pool: AsyncConnectionPool, principal: Principal, request: PageRequest, *,
                        clock: Clock = utcnow) -> Page[MissingPlanView]:
    """Open cases the caller's organisation manages with no plan yet, with their due day; no totals."""
    today, due_days = clock().date(), plan_due_days()
    async with pool.connection() as conn, conn.transaction():
        found = page(await store.plans_missing(conn, principal.org_id, principal.org_type, request.first,
                                                request.after), request.first)
        result = Page[MissingPlanView](nodes=[views.missing_plan_view(r, today, due_days) for r in found["nodes"]],
                                       page_info=found["page_info"])
        if result.nodes:
            await store.TRAIL.allowed(conn, principal, "followup.list_plans_missing", [n.case_id for n in result.nodes],
                                      FOLLOW_UP, AuditPurpose.FOLLOW_UP)
    return result


async def subject_access(pool: AsyncConnectionPool, principal: Principal, request: CaseRef, *,
                         clock: Clock = utcnow) -> list[FollowupCaseView]:
    """A person's follow-up whole (plan and hand-overs), for the platform steward's export. Audited."""
    case_id = parse_id(request.case_id, "caseId")
    now = clock()
    async with pool.connection() as conn, conn.transaction():
        row = await store.get_case(conn, case_id)
        found = []
        if row is not None:
            found = [views.case_view(row, await store.plan(conn, case_id), await store.assignments(conn, case_id),
                                     now.date(), plan_due_days())]
        await store.TRAIL.allowed(conn, principal, "dsar.export", [case_id], WITH_PLAN,
                                  AuditPurpose.DATA_SUBJECT_REQUEST)
    return found


# --- events from intake: the cases to follow, and who they may be shared with for FOLLOW_UP ----------


def _arrival_recipients(arrival: ArrivalRegisteredV1) -> list[SharingRecipient]:
    """Who the consent taken at registration covers for follow-up (only consent given for that purpose)."""
    if not (arrival.consent_given and Purpose.FOLLOW_UP in arrival.consent_purposes):
        return []
    return ([SharingRecipient(org_id=o, legal_basis=LegalBasis.CONSENT) for o in arrival.consent_recipient_org_ids]
            + [SharingRecipient(org_type=t, legal_basis=LegalBasis.CONSENT)
               for t in arrival.consent_recipient_org_types])


async def on_arrival_registered(conn: Connection, event: CloudEvent) -> None:
    """A new case: its owner manages its follow-up until it hands it over (a redelivery changes nothing)."""
    arrival = ArrivalRegisteredV1.model_validate(event.data)
    await store.save_case(conn, arrival, _arrival_recipients(arrival))


async def on_sharing_changed(conn: Connection, event: CloudEvent) -> None:
    """Consent or another basis recorded or withdrawn: who the case may now be followed up by."""
    change = SharingChangedV1.model_validate(event.data)
    recipients = next((c.recipients for c in change.coverage if c.purpose == Purpose.FOLLOW_UP), [])
    await store.set_recipients(conn, change.case_id, recipients)
