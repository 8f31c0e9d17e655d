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
from datetime import datetime
from typing import Any

from psycopg_pool import AsyncConnectionPool

from contracts.channels import (
    CASE_ASSIGNED,
    CASE_CLOSED,
    CASE_REOPENED,
    CASE_UNREACHABLE,
    CONTACT_LOGGED,
    PLAN_ACTION_UPDATED,
    PLAN_SAVED,
)
from contracts.commands import (
    AssignCaseManagement,
    CaseRef,
    CloseCase,
    LogContact,
    PageRequest,
    ReopenCase,
    SavePlan,
    UpdatePlanAction,
)
from contracts.events import (
    MERGE_UNDONE,
    ArrivalRegisteredV1,
    CaseAssignedV1,
    CaseCorrectedV1,
    CaseClosedV1,
    CaseReopenedV1,
    CasesMergedV1,
    CaseUnreachableV1,
    ContactLoggedV1,
    MergeUndoneV1,
    PlanActionUpdatedV1,
    PlanSavedV1,
    SharingChangedV1,
    SharingRecipient,
)
from contracts.reference import (
    SENSITIVE_VULNERABILITIES,
    ClosureReason,
    FollowupStatus,
    LegalBasis,
    PlanActionStatus,
    Purpose,
    ReintegrationDimension,
    Vulnerability,
)
from contracts.replies import FollowupCaseView, MissingPlanView, Page, SurveyView
from kernel import merges
from kernel.audit import AuditPurpose
from kernel.bus import RetryLater
from kernel.clock import Clock, utcnow
from kernel.config import plan_due_days
from kernel.db import Connection
from kernel.errors import SeginError, parse_id
from kernel.events import CloudEvent
from kernel.outbox import add_event
from kernel.pagination import page
from kernel.tokens import Principal
from services.followup import answering, contacts, domain, store, views
from services.followup.schedule import shipped

STEWARD_SCOPE = "followup:manage"


async def _surveys(conn: Connection, case_id: uuid.UUID, *, psychosocial_answers: bool) -> list[SurveyView]:
    return [views.survey_view(r, psychosocial_answers=psychosocial_answers) for r in await store.surveys(conn, case_id)]


def _categories(view: FollowupCaseView, base: list[str]) -> list[str]:
    """What of the case's personal data an answer showed (codes for the audit trail): ``base`` and the surveys."""
    shown = list(base)
    if view.surveys:
        shown += answering.SURVEYS
        if any(s.psychosocial_answers is not None for s in view.surveys):
            shown += answering.PSYCHOSOCIAL_ANSWERS
    return shown


async def _view(conn: Connection, row: dict[str, Any], principal: Principal, now: datetime
                ) -> tuple[FollowupCaseView, str | None, list[str]]:
    """The follow-up as the caller may see it now: the plan, the contacts and the surveys only for its
    owner and manager; the case's free text (the plan's goals and actions, a contact's note and next
    step) only with the scope of each sensitive category of the case; the psychosocial answers only
    with ``sensitive:health``. Also the categories of data shown (for the audit record)."""
    case_id = row["case_id"]
    standing = domain.standing(store.to_case(row), principal.org_id, principal.org_type)
    goals = await store.plan(conn, case_id) if standing else []
    psychosocial = answering.sees_psychosocial_answers(principal)
    surveys = await _surveys(conn, case_id, psychosocial_answers=psychosocial) if standing else []
    attempts = (await store.attempts_of(conn, [case_id]))[case_id]  # every one, for the schedule
    logged = await store.contacts(conn, case_id, domain.CONTACTS_SHOWN) if standing else None  # the newest
    restricted = domain.missing_free_text_scope(row["sensitive_categories"], principal.scopes)
    view = views.case_view(row, goals, await store.assignments(conn, case_id), now.date(), plan_due_days(),
                           contacts.stand(row, attempts, now.date()), logged, restricted, surveys,
                           contact_count=len(attempts))
    if standing is None:
        view = view.model_copy(update={"plan": None, "surveys": []})
    return view, standing, _categories(view, _shown(row, view, logged, restricted))


def _shown(row: dict[str, Any], view: FollowupCaseView, logged: list[dict[str, Any]] | None,
           restricted: str | None) -> list[str]:
    """The categories of the follow-up's data an answer showed, surveys aside: the plan's text and the
    case's sensitive categories only when the text was shown, its structure otherwise; the contacts,
    and their notes with the case's categories when shown."""
    if view.plan is None:
        shown = list(answering.FOLLOW_UP)
    elif restricted:
        shown = list(answering.PLAN_STRUCTURE)
    else:
        shown = [*answering.WITH_PLAN, *domain.free_text_categories(row["sensitive_categories"])]
    if logged:
        shown = [*shown, "contact"]
        if restricted is None and any(c["note"] or c["next_step"] for c in logged):
            shown = [*shown, *contacts.categories_read(row)]
    return shown


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
            view, _, shown = await _view(conn, row, principal, now)
            await store.TRAIL.allowed(conn, principal, "followup.read", [case_id], shown,
                                      answering.purpose(standing))
    if view is None:
        raise answering.not_found()
    return view


Decide = Callable[[Connection, dict[str, Any], domain.FollowupCase], Awaitable[dict[str, Any]]]
# What a command answers from what it decided: the reply, the caller's standing and the categories shown.
Answer = Callable[[Connection, dict[str, Any]], Awaitable[tuple[Any, str | None, list[str]]]]


async def command(pool: AsyncConnectionPool, principal: Principal, case_id: uuid.UUID, operation: str,
                  decide: Decide, now: datetime, answer: Answer | None = None) -> Any:
    """Shared shape of every command: lock the case, decide and write (``decide``), then answer (by
    default the follow-up as the caller may see it); a refusal rolls back what ``decide`` wrote but
    not its audit record."""
    refusal: SeginError | None = None
    reply: Any = None
    async with pool.connection() as conn, conn.transaction():
        row = await store.get_case(conn, case_id, lock=True)
        if row is None:
            refusal = answering.not_found()
        else:
            try:
                async with conn.transaction():
                    case = store.to_case(row)
                    if domain.standing(case, principal.org_id, principal.org_type):  # to others: not found
                        domain.not_merged(case)
                    row = await decide(conn, row, case)
            except domain.Refused as exc:
                refusal = answering.refusal(exc)
            except SeginError as exc:
                refusal = exc
        if refusal is not None or row is None:
            await store.TRAIL.denied(conn, principal, f"followup.{operation}", [case_id])
        else:
            reply, standing, shown = await (answer(conn, row) if answer else _view(conn, row, principal, now))
            await store.TRAIL.allowed(conn, principal, f"followup.{operation}", [case_id], shown,
                                      answering.purpose(standing))
    if refusal is not None:
        raise refusal
    return reply


async def assign(pool: AsyncConnectionPool, principal: Principal, request: AssignCaseManagement, *,
                 clock: Clock = utcnow) -> FollowupCaseView:
    """Hand the case's follow-up to another organisation a basis covers (the manager, the steward, or
    the owner once no basis covers the manager); announced, so that intake opens the case to the new
    manager and closes it to the old one (unless it is the owner)."""
    case_id = parse_id(request.case_id, "caseId")

    async def decide(conn: Connection, row: dict[str, Any], case: domain.FollowupCase) -> dict[str, Any]:
        to_org_type = request.organization_type.value if request.organization_type else None
        basis = domain.assignment_basis(
            case, caller_org_id=principal.org_id, caller_org_type=principal.org_type,
            steward=STEWARD_SCOPE in principal.scopes, to_org_id=request.organization_id, to_org_type=to_org_type)
        row = await store.set_manager(conn, case_id, request.organization_id, to_org_type)
        await store.insert_assignment(conn, case_id, case.manager_org_id, request.organization_id,
                                      request.reason.value, basis, principal.org_id)
        await add_event(conn, store.SCHEMA, CASE_ASSIGNED, CaseAssignedV1(
            case_id=str(case_id), owner_org_id=case.owner_org_id, from_org_id=case.manager_org_id,
            to_org_id=request.organization_id, reason_code=request.reason.value, legal_basis=basis,
            assigned_by_org_id=principal.org_id, version=row["version"]), subject=str(case_id))
        return row

    return await command(pool, principal, case_id, "assign", decide, clock())


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
            domain.check_plan(case, request.goals, await store.action_states(conn, case_id),
                              await store.goal_ids(conn, case_id))
            saved, actions = await store.replace_plan(conn, case_id, principal.org_id, request.goals)
            await add_event(conn, store.SCHEMA, PLAN_SAVED, PlanSavedV1(
                case_id=str(case_id), manager_org_id=principal.org_id, version=saved["version"],
                dimensions=sorted({g.dimension for g in request.goals}, key=list(ReintegrationDimension).index),
                goal_count=len(request.goals), action_count=actions,
                linked_referral_ids=sorted({a.referral_id for g in request.goals for a in g.actions
                                            if a.referral_id})), subject=str(case_id))
            return {"case_id": str(case_id), "version": saved["version"]}

        await store.once(conn, principal, "save_plan", request, produce)
        current = await store.get_case(conn, case_id)
        assert current is not None
        return current

    return await command(pool, principal, case_id, "save_plan", decide, clock())


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

    return await command(pool, principal, case_id, "update_action", decide, clock())


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

    return await command(pool, principal, case_id, "close", decide, clock())


async def reopen_case(pool: AsyncConnectionPool, principal: Principal, request: ReopenCase, *,
                      clock: Clock = utcnow) -> FollowupCaseView:
    case_id = parse_id(request.case_id, "caseId")

    async def decide(conn: Connection, row: dict[str, Any], case: domain.FollowupCase) -> dict[str, Any]:
        domain.may_write(case, principal.org_id, principal.org_type)
        domain.check_version(case, request.version)
        survivor = await store.get_case(conn, uuid.UUID(case.merged_into)) if case.merged_into else None
        domain.reopen(case, store.to_case(survivor) if survivor else None)
        row = await store.reopen(conn, case_id)
        await add_event(conn, store.SCHEMA, CASE_REOPENED, CaseReopenedV1(
            case_id=str(case_id), manager_org_id=case.manager_org_id, reason_code=request.reason.value,
            version=row["version"]), subject=str(case_id))
        return row

    return await command(pool, principal, case_id, "reopen", decide, clock())


async def log_contact(pool: AsyncConnectionPool, principal: Principal, request: LogContact, *,
                      clock: Clock = utcnow) -> FollowupCaseView:
    """Log a contact with the person (the managing organisation), once per idempotency key; announced
    without its note or next step. The case's standing is kept for the work lists, and crossing the
    schedule's number of failed attempts in a row flags the case unreachable, announced once (until
    a contact reaches the person again)."""
    case_id = parse_id(request.case_id, "caseId")
    now = clock()

    async def decide(conn: Connection, row: dict[str, Any], case: domain.FollowupCase) -> dict[str, Any]:
        # Before the key is looked up, as for save_plan: a replay must not answer an organisation that no
        # longer manages the case, nor a key used elsewhere tell a stranger that the case exists.
        domain.may_write(case, principal.org_id, principal.org_type)

        async def produce() -> dict[str, Any]:
            domain.check_contact(case, request.input.date, now.date(), await store.count(conn, "contacts", case_id))
            contact_id = await store.insert_contact(conn, case_id, request.input, principal.org_id)
            attempts = (await store.attempts_of(conn, [case_id]))[case_id]
            standing = contacts.stand(row, attempts, now.date())
            change = domain.unreachable_change(standing, row["unreachable_since"] is not None)
            # Contacts are appended: the follow-up's version (what a plan being edited was read at) stays.
            saved = await store.save_standing(conn, case_id, standing, last_attempt_on=contacts.last_attempt(attempts),
                                              unreachable=change, touched=True)
            await add_event(conn, store.SCHEMA, CONTACT_LOGGED, ContactLoggedV1(
                case_id=str(case_id), manager_org_id=case.manager_org_id, contact_id=str(contact_id),
                date=request.input.date, mode=request.input.mode, reached=request.input.reached,
                failed_in_a_row=standing.failed_in_a_row, unreachable=standing.unreachable), subject=str(case_id))
            if change is True:
                await add_event(conn, store.SCHEMA, CASE_UNREACHABLE, CaseUnreachableV1(
                    case_id=str(case_id), manager_org_id=case.manager_org_id,
                    failed_in_a_row=standing.failed_in_a_row,
                    last_attempt_on=contacts.last_attempt(attempts) or request.input.date), subject=str(case_id))
            return {"case_id": str(case_id), "contact_id": str(contact_id), "version": saved["version"]}

        await store.once(conn, principal, "log_contact", request, produce)
        current = await store.get_case(conn, case_id)
        assert current is not None
        return current

    return await command(pool, principal, case_id, "log_contact", decide, now)


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
                                      answering.FOLLOW_UP, AuditPurpose.FOLLOW_UP)
    return result


async def subject_access(pool: AsyncConnectionPool, principal: Principal, request: CaseRef, *,
                         clock: Clock = utcnow) -> list[FollowupCaseView]:
    """A person's follow-up whole (plan, hand-overs, contacts with their notes, surveys with every
    answer), for the platform steward's export. Audited."""
    case_id = parse_id(request.case_id, "caseId")
    now = clock()
    async with pool.connection() as conn, conn.transaction():
        row = await store.get_case(conn, case_id)
        found, shown = [], answering.WITH_PLAN + answering.SURVEYS + answering.PSYCHOSOCIAL_ANSWERS
        if row is not None:  # the person's own export: the plan's text, contacts with their notes, every answer
            shown = [*shown, *domain.free_text_categories(row["sensitive_categories"])]
            logged = await store.contacts(conn, case_id)
            found = [views.case_view(row, await store.plan(conn, case_id), await store.assignments(conn, case_id),
                                     now.date(), plan_due_days(), await contacts.standing_of(conn, row, now.date()),
                                     logged, surveys=await _surveys(conn, case_id, psychosocial_answers=True))]
            if logged:
                shown = [*shown, "contact", *contacts.categories_read(row)]
        await store.TRAIL.allowed(conn, principal, "dsar.export", [case_id], shown,
                                  AuditPurpose.DATA_SUBJECT_REQUEST)
    return found


# --- events from intake: the cases to follow, and who they may be shared with for FOLLOW_UP -------


def _arrival_recipients(arrival: ArrivalRegisteredV1) -> list[SharingRecipient]:
    """Who the consent taken at registration covers for follow-up (only consent given for that purpose)."""
    if not (arrival.consent_given and Purpose.FOLLOW_UP in arrival.consent_purposes):
        return []
    return ([SharingRecipient(org_id=o, legal_basis=LegalBasis.CONSENT) for o in arrival.consent_recipient_org_ids]
            + [SharingRecipient(org_type=t, legal_basis=LegalBasis.CONSENT)
               for t in arrival.consent_recipient_org_types])


async def on_arrival_registered(conn: Connection, event: CloudEvent) -> None:
    """A new case: its owner manages its follow-up until it hands it over, on the latest DEFAULT
    schedule (a redelivery changes nothing, but fills in the sensitive categories of a case known
    before they were kept). Its next contact is known at once for the work lists; the scan looks at
    it at its next tick."""
    arrival = ArrivalRegisteredV1.model_validate(event.data)
    schedule = shipped().latest()
    sensitive = _sensitive_categories(arrival.vulnerabilities)
    if await store.save_case(conn, arrival, _arrival_recipients(arrival), (schedule.id, schedule.version), sensitive):
        case_id = uuid.UUID(arrival.case_id)
        row = await store.get_case(conn, case_id)
        assert row is not None
        await store.save_standing(conn, case_id, contacts.stand(row, [], utcnow().date()), last_attempt_on=None,
                                  unreachable=None)


async def on_case_corrected(conn: Connection, event: CloudEvent) -> None:
    """The owner corrected the case (offline capture, ``updateCase``): the destination the work lists and
    statistics count it under, and a sensitive flag added after registration now guards the case's notes.
    A correction for a case not known yet is retried, never dropped."""
    corrected = CaseCorrectedV1.model_validate(event.data)
    if await store.correct_case(conn, corrected.case_id, corrected.destination_region,
                                _sensitive_categories(corrected.vulnerabilities), corrected.version) is None:
        raise RetryLater(f"correction {corrected.version} of case {corrected.case_id} came before the case")


async def on_cases_merged(conn: Connection, event: CloudEvent) -> None:
    await _merges_changed(conn, CasesMergedV1.model_validate(event.data), undone=False)


async def on_merge_undone(conn: Connection, event: CloudEvent) -> None:
    await _merges_changed(conn, MergeUndoneV1.model_validate(event.data), undone=True)


async def _merges_changed(conn: Connection, merge: CasesMergedV1, *, undone: bool) -> None:
    """Intake merged a registration into another case, or undid it (decision record 0026): the merged
    registration's follow-up, if it is the same return's second one, closes (MERGED) and leaves the work
    lists and statistics; an undo re-opens it. Worked out from every merge held, so events in any order,
    or delivered twice, end the same. A merge of a case not known yet is retried, never dropped."""
    await merges.record(conn, store.SCHEMA, merge, undone=undone)
    row = await store.get_case(conn, uuid.UUID(merge.merged_case_id), lock=True)
    if row is None:
        raise RetryLater(f"merge {merge.merge_id} came before its merged case")
    survivor_id = await merges.survivor_of(conn, store.SCHEMA, merge.merged_case_id)
    survivor = await store.get_case(conn, survivor_id) if survivor_id else None
    if survivor_id and survivor is None:
        raise RetryLater(f"merge {merge.merge_id} came before its survivor")
    case = store.to_case(row)
    closes = survivor is not None and domain.merge_closes(case, store.to_case(survivor))
    if closes != (case.closure_reason == ClosureReason.MERGED):
        row = await store.bump(conn, row["case_id"], merged_into=survivor_id,
                               **({"status": FollowupStatus.CLOSED.value, "closure_reason": ClosureReason.MERGED.value}
                                  if closes else {"status": FollowupStatus.OPEN.value, "closure_reason": None}))
        await _announce_merge(conn, case, row, closed=closes)
    elif row["merged_into"] != survivor_id:
        await store.set_merged_into(conn, row["case_id"], survivor_id)


async def _announce_merge(conn: Connection, case: domain.FollowupCase, row: dict[str, Any], *, closed: bool) -> None:
    """A merge closed the follow-up, or its undo re-opened it: announced as any closure or re-opening, so the
    manager is told (it did not do it). Not while no basis covers the manager: it may no longer see the case,
    and would learn that the person has another registration."""
    if domain.standing(case, case.manager_org_id, case.manager_org_type) is None:
        return
    case_id = str(row["case_id"])
    if closed:
        await add_event(conn, store.SCHEMA, CASE_CLOSED, CaseClosedV1(
            case_id=case_id, manager_org_id=case.manager_org_id, reason=ClosureReason.MERGED, closed_action_ids=[],
            version=row["version"]), subject=case_id)
    else:
        await add_event(conn, store.SCHEMA, CASE_REOPENED, CaseReopenedV1(
            case_id=case_id, manager_org_id=case.manager_org_id, reason_code=MERGE_UNDONE,
            version=row["version"]), subject=case_id)


def _sensitive_categories(vulnerabilities: list[Vulnerability]) -> list[str]:
    return sorted({SENSITIVE_VULNERABILITIES[v].value for v in vulnerabilities if v in SENSITIVE_VULNERABILITIES})


async def on_sharing_changed(conn: Connection, event: CloudEvent) -> None:
    """Consent or another basis recorded or withdrawn: who the case may now be followed up by, if this
    change is newer than the one applied (events come out of order: a late one never restores a
    withdrawn consent). A case not known yet (its ``arrival_registered`` not handled yet) is retried
    later, never dropped: dropped, the registration's consent would stand instead of this change."""
    change = SharingChangedV1.model_validate(event.data)
    recipients = next((c.recipients for c in change.coverage if c.purpose == Purpose.FOLLOW_UP), [])
    if await store.set_recipients(conn, change.case_id, recipients, change.sharing_version) is None:
        raise RetryLater(f"sharing change {change.sharing_version} of case {change.case_id} came before the case")
