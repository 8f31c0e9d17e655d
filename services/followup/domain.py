"""Follow-up rules, free of I/O: who manages a case and who may hand it over, what a plan may hold,
when it is late, and which state changes are allowed.

Time is an argument (``today``), never read here: "overdue" is computed when a case is read, so a
test moves the clock instead of sleeping.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from contracts.commands import PlanGoalInput
from contracts.events import SharingRecipient, covering_basis
from contracts.reference import (
    OPEN_ACTION_STATES,
    FollowupStatus,
    LegalBasis,
    PlanActionStatus,
)

OPEN, CLOSED = FollowupStatus.OPEN, FollowupStatus.CLOSED
REGISTERED = "REGISTERED"  # reason code of the first "assignment": the owner manages its own case


class Refused(Exception):
    """A command the rules refuse: a message without personal data, an error code, the field at fault."""

    def __init__(self, message: str, code: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message, self.code, self.field = message, code, field


@dataclass(frozen=True)
class FollowupCase:
    """What the rules need to know of a case's follow-up."""

    case_id: str
    owner_org_id: str
    manager_org_id: str
    status: FollowupStatus
    version: int
    arrival_date: date
    recipients: tuple[SharingRecipient, ...] = ()  # who the case may be shared with for FOLLOW_UP

    def basis_for(self, org_id: str, org_type: str | None) -> LegalBasis | None:
        """The recorded basis letting ``org_id`` follow the case up (the same rule as for referrals)."""
        return covering_basis(list(self.recipients), org_id, org_type)


# --- who may see and act ----------------------------------------------------------------------------


def standing(case: FollowupCase, org_id: str, org_type: str | None) -> str | None:
    """Why ``org_id`` may see the case's follow-up: ``OWNER``, ``MANAGER`` (while a basis covers it
    for FOLLOW_UP: withdrawing consent ends it at once, as for a referral), or None."""
    if org_id == case.owner_org_id:
        return "OWNER"
    if org_id == case.manager_org_id and case.basis_for(org_id, org_type) is not None:
        return "MANAGER"
    return None


def may_write(case: FollowupCase, org_id: str, org_type: str | None) -> None:
    """Only the managing organisation writes the plan, closes or re-opens (Refused otherwise).

    The owner that handed the case over is told why; anyone else cannot tell the case exists.
    """
    seen = standing(case, org_id, org_type)
    if seen is None:
        raise Refused("No such case, or it is not shared with your organisation.", "NOT_FOUND", "caseId")
    if org_id != case.manager_org_id:
        raise Refused("Only the organisation managing the case's follow-up may change it.", "FORBIDDEN", "caseId")


def check_version(case: FollowupCase, version: int) -> None:
    if version != case.version:
        raise Refused(f"The follow-up changed since you read it (version {case.version}, not {version}): read it "
                      "again and reapply.", "CONFLICT", "version")


def assignment_basis(case: FollowupCase, *, caller_org_id: str, caller_org_type: str | None, steward: bool,
                     to_org_id: str, to_org_type: str | None) -> LegalBasis | None:
    """The basis on which ``to_org_id`` may take over the case's follow-up (None: it is the owner,
    whose own case it is), or Refused saying why not.

    The current manager may hand the case over, and the platform steward (``followup:manage``) may
    for any case. The new organisation needs consent (or another recorded basis) covering it, by
    id or by type, for the purpose FOLLOW_UP: the rule referrals follow for REFERRAL.
    """
    if not steward:
        may_write(case, caller_org_id, caller_org_type)
    elif to_org_id == caller_org_id and caller_org_id != case.manager_org_id:
        # followup:manage hands a case over without reading it: taking it on would open the plan to the steward.
        raise Refused("The platform steward hands a follow-up over; it does not take it on.", "FORBIDDEN",
                      "organizationId")
    if case.status == CLOSED:
        raise Refused("A closed follow-up cannot be handed over: re-open it first.", "CASE_CLOSED", "caseId")
    if to_org_id == case.manager_org_id:
        raise Refused("This organisation already manages the case's follow-up.", "ALREADY_MANAGER", "organizationId")
    if to_org_id == case.owner_org_id:
        return None
    basis = case.basis_for(to_org_id, to_org_type)
    if basis is None:
        raise Refused("organizationId: no consent or other recorded legal basis covers this organisation for "
                      "follow-up (FOLLOW_UP); record one first.", "NO_LEGAL_BASIS", "organizationId")
    return basis


# --- the plan -----------------------------------------------------------------------------------------


def check_plan(case: FollowupCase, goals: list[PlanGoalInput], known: Mapping[str, PlanActionStatus]) -> None:
    """A plan may only be written to an open follow-up; an action id given must be one of the plan's
    (``known``: id and state), and a kept action's state may only move as ``update_action`` allows."""
    if case.status == CLOSED:
        raise Refused("A closed follow-up has no plan to change: re-open it first.", "CASE_CLOSED", "caseId")
    for g, goal in enumerate(goals):
        for a, action in enumerate(goal.actions):
            if action.id is None:
                continue
            if action.id not in known:
                raise Refused("No such action in this case's plan (leave id out for a new action).", "BAD_USER_INPUT",
                              f"goals.{g}.actions.{a}.id")
            old = known[action.id]
            if action.status != old and action.status not in ACTION_TRANSITIONS[old]:
                raise Refused(f"An action {old} cannot become {action.status}.", "INVALID_TRANSITION",
                              f"goals.{g}.actions.{a}.status")


# An action moves on while open; DONE and CANCELLED are final (a new action takes up what remains).
ACTION_TRANSITIONS: dict[PlanActionStatus, frozenset[PlanActionStatus]] = {
    PlanActionStatus.PLANNED: frozenset({PlanActionStatus.IN_PROGRESS, PlanActionStatus.DONE,
                                         PlanActionStatus.CANCELLED}),
    PlanActionStatus.IN_PROGRESS: frozenset({PlanActionStatus.PLANNED, PlanActionStatus.DONE,
                                             PlanActionStatus.CANCELLED}),
    PlanActionStatus.DONE: frozenset(),
    PlanActionStatus.CANCELLED: frozenset(),
}


def action_transition(case: FollowupCase, old: PlanActionStatus, new: PlanActionStatus) -> PlanActionStatus:
    if case.status == CLOSED:
        raise Refused("A closed follow-up has no plan to change: re-open it first.", "CASE_CLOSED", "caseId")
    if new not in ACTION_TRANSITIONS[old]:
        raise Refused(f"An action {old} cannot become {new}.", "INVALID_TRANSITION", "status")
    return new


# --- closure ------------------------------------------------------------------------------------------


def close(case: FollowupCase) -> FollowupStatus:
    if case.status == CLOSED:
        raise Refused("This follow-up is already closed.", "INVALID_TRANSITION", "caseId")
    return CLOSED


def reopen(case: FollowupCase) -> FollowupStatus:
    if case.status == OPEN:
        raise Refused("This follow-up is open.", "INVALID_TRANSITION", "caseId")
    return OPEN


def actions_closed_by_closure(actions: Iterable[tuple[str, PlanActionStatus]]) -> list[str]:
    """The open actions closing the follow-up cancels (done and cancelled ones stay as they are)."""
    return [action_id for action_id, status in actions if status in OPEN_ACTION_STATES]


# --- time ---------------------------------------------------------------------------------------------


def plan_due_on(arrival_date: date, due_days: int) -> date:
    """The plan is due within ``due_days`` of arrival (``SEGIN_PLAN_DUE_DAYS``)."""
    return arrival_date + timedelta(days=due_days)


def plan_overdue(status: FollowupStatus, has_plan: bool, due_on: date, today: date) -> bool:
    """An open follow-up with no plan after its due day."""
    return status == OPEN and not has_plan and today > due_on


def action_overdue(status: PlanActionStatus, target_date: date, today: date) -> bool:
    """An open action past its target date."""
    return status in OPEN_ACTION_STATES and today > target_date
