"""Follow-up rules, free of I/O: who manages a case and who may hand it over, what a plan may hold,
when it is late, and which state changes are allowed.

Time is an argument (``today``), never read here: "overdue" is computed when a case is read, so a
test moves the clock instead of sleeping.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, timedelta
from enum import StrEnum

from contracts.commands import PlanGoalInput, SurveyAnswerInput
from contracts.events import SharingRecipient, covering_basis
from contracts.reference import (
    OPEN_ACTION_STATES,
    ClosureReason,
    ContactState,
    FollowupStatus,
    LegalBasis,
    PlanActionStatus,
    SensitiveCategory,
)
from services.followup import instrument as rss
from services.followup.schedule import Standing

OPEN, CLOSED = FollowupStatus.OPEN, FollowupStatus.CLOSED
SAME_RETURN_DAYS = 30  # two registrations arriving this close are one return registered twice (decision record 0026)
REGISTERED = "REGISTERED"  # reason code of the first "assignment": the owner manages its own case


class Refused(Exception):
    """A command the rules refuse: a message without personal data, an error code, the field at fault
    (and, when there are several, every problem: ``{"field", "message", …}``, codes only)."""

    def __init__(self, message: str, code: str, field: str | None = None,
                 problems: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.message, self.code, self.field, self.problems = message, code, field, problems or []


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
    manager_org_type: str | None = None  # the manager's type at hand-over (None: unknown, or the owner)
    closure_reason: ClosureReason | None = None
    merged_into: str | None = None  # the case this registration is merged into (decision record 0026)

    def basis_for(self, org_id: str, org_type: str | None) -> LegalBasis | None:
        """The recorded basis letting ``org_id`` follow the case up (the same rule as for referrals)."""
        return covering_basis(list(self.recipients), org_id, org_type)

    def manager_covered(self) -> bool:
        """Whether a basis still lets the manager follow the case up. The owner managing its own case
        needs none. When the manager's type is not known (a hand-over older than it was kept), any
        basis given to a type of organisation is taken to cover it: the owner is then refused rather
        than let take a case a basis may still cover (the steward can)."""
        if self.manager_org_id == self.owner_org_id:
            return True
        if self.basis_for(self.manager_org_id, self.manager_org_type) is not None:
            return True
        return self.manager_org_type is None and any(r.org_type for r in self.recipients)


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
    for any case. The owner may too once no basis covers the manager any more (consent withdrawn):
    the manager can no longer act, and the case must not wait for the steward (decision record
    0017). While a basis covers the manager, the owner may not take the case from it. The new
    organisation needs consent (or another recorded basis) covering it, by id or by type, for the
    purpose FOLLOW_UP: the rule referrals follow for REFERRAL.
    """
    if steward:
        if to_org_id == caller_org_id and caller_org_id != case.manager_org_id:
            # followup:manage hands a case over without reading it: taking it on would open the plan to the steward.
            raise Refused("The platform steward hands a follow-up over; it does not take it on.", "FORBIDDEN",
                          "organizationId")
    elif caller_org_id == case.owner_org_id and not case.manager_covered():
        pass  # the owner takes the case back, or hands it on, from a manager no basis covers any more
    else:
        may_write(case, caller_org_id, caller_org_type)
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


def check_plan(case: FollowupCase, goals: list[PlanGoalInput], known: Mapping[str, PlanActionStatus],
               known_goals: Iterable[str] = ()) -> None:
    """A plan may only be written to an open follow-up; a goal or action id given must be one of the
    plan's (``known``: action id and state; ``known_goals``), once; a kept action's state may only
    move as ``update_action`` allows. A description left out keeps the saved text of the goal or
    action named by its id (a manager without the case's sensitive scopes cannot read it), so a new
    goal or action needs one."""
    if case.status == CLOSED:
        raise Refused("A closed follow-up has no plan to change: re-open it first.", "CASE_CLOSED", "caseId")
    goal_ids, action_ids = set(known_goals), set()
    seen_goals: set[str] = set()
    for g, goal in enumerate(goals):
        if goal.id is not None and (goal.id not in goal_ids or goal.id in seen_goals):
            raise Refused("No such goal in this case's plan, or given twice (leave id out for a new goal).",
                          "BAD_USER_INPUT", f"goals.{g}.id")
        if goal.id is not None:
            seen_goals.add(goal.id)
        if goal.id is None and goal.description is None:
            raise Refused("A new goal needs a description.", "BAD_USER_INPUT", f"goals.{g}.description")
        for a, action in enumerate(goal.actions):
            if action.id is None:
                if action.description is None:
                    raise Refused("A new action needs a description.", "BAD_USER_INPUT",
                                  f"goals.{g}.actions.{a}.description")
                continue
            if action.id in action_ids:
                raise Refused("An action is given twice.", "BAD_USER_INPUT", f"goals.{g}.actions.{a}.id")
            action_ids.add(action.id)
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


MERGED_MESSAGE = ("This follow-up's registration is merged into another case of the same return: follow the "
                  "person up under that case.")


def not_merged(case: FollowupCase) -> None:
    """A follow-up a merge closed takes no command: the person is followed up under the case it was merged
    into (an undo of the merge re-opens it). Which case that is, is intake's to say, under its access rules.
    Checked only for a caller with standing: to anyone else the case does not exist."""
    if case.closure_reason == ClosureReason.MERGED:
        raise Refused(MERGED_MESSAGE, "CASE_CLOSED", "caseId")


def merge_closes(merged: FollowupCase, survivor: FollowupCase) -> bool:
    """Whether merging ``merged`` into ``survivor`` closes its follow-up: only a second registration of the
    same return (arrivals at most SAME_RETURN_DAYS apart), only while open (one a merge closed counts as
    open), and only while the survivor's own follow-up is open, so that the return is never left without
    one. A registration of another return keeps its own follow-up (each return has its own reintegration)."""
    open_ = merged.status == OPEN or merged.closure_reason == ClosureReason.MERGED
    same_return = abs((merged.arrival_date - survivor.arrival_date).days) <= SAME_RETURN_DAYS
    return open_ and same_return and survivor.status == OPEN


def close(case: FollowupCase) -> FollowupStatus:
    if case.status == CLOSED:
        raise Refused("This follow-up is already closed.", "INVALID_TRANSITION", "caseId")
    return CLOSED


def reopen(case: FollowupCase, survivor: FollowupCase | None = None) -> FollowupStatus:
    """``survivor``: the case this registration is merged into, if any. Re-opened, a second registration of
    the same return would be the return's second follow-up, so it is refused as a merge would close it."""
    if case.status == OPEN:
        raise Refused("This follow-up is open.", "INVALID_TRANSITION", "caseId")
    if survivor is not None and merge_closes(replace(case, status=OPEN, closure_reason=None), survivor):
        raise Refused(MERGED_MESSAGE, "CASE_CLOSED", "caseId")
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


# --- surveys ------------------------------------------------------------------------------------------

# The psychosocial answers (distress, safety, belonging, discrimination, wish to leave again) are
# health data whatever the case's flags: shown only with this scope, for every case alike, so that
# their masking never tells whether a case is flagged MENTAL_HEALTH_NEEDS.
PSYCHOSOCIAL_ANSWERS_SCOPE = SensitiveCategory.HEALTH.scope


def resolve_instrument(registry: rss.Registry, instrument_id: str, version: int | None) -> rss.Instrument:
    """The instrument version asked for (None: the latest), or Refused naming the field."""
    try:
        return registry.latest(instrument_id) if version is None else registry[(instrument_id, version)]
    except KeyError:
        known = sorted(f"{i} {v}" for i, v in registry)
        if version is None or not any(i == instrument_id for i, _ in registry):
            raise Refused(f"No survey instrument {instrument_id} (known: {', '.join(known)}).", "BAD_USER_INPUT",
                          "instrument_id") from None
        raise Refused(f"{instrument_id} has no version {version} (known: {', '.join(known)}).", "BAD_USER_INPUT",
                      "instrument_version") from None


def check_survey(case: FollowupCase, taken_on: date, today: date, recorded: int = 0) -> None:
    """A survey is recorded for an open follow-up, taken between arrival and today, while the case
    holds fewer than ``MAX_SURVEYS``."""
    if case.status == CLOSED:
        raise Refused("A closed follow-up takes no survey: re-open it first.", "CASE_CLOSED", "caseId")
    if recorded >= MAX_SURVEYS:
        raise Refused(f"This case already holds {MAX_SURVEYS} surveys, the most one case keeps.", "LIMIT_REACHED",
                      "caseId")
    if taken_on > today:
        raise Refused("takenOn: the survey cannot be taken in the future.", "BAD_USER_INPUT", "taken_on")
    if taken_on < case.arrival_date:
        raise Refused("takenOn: the survey cannot be taken before the person's arrival.", "BAD_USER_INPUT", "taken_on")


def survey_answers(instrument: rss.Instrument, answers: list[SurveyAnswerInput]) -> dict[str, str]:
    """The answers as indicator -> option, once every one fits ``instrument`` (that exact version);
    otherwise Refused listing every problem, each naming its indicator and the field at fault."""
    position: dict[str, int] = {}
    problems: list[dict[str, str]] = []
    for i, answer in enumerate(answers):
        if answer.indicator in position:
            problems.append({"field": f"answers.{i}.indicator", "indicator": answer.indicator,
                             "message": f"{answer.indicator}: answered twice (answers {position[answer.indicator]} "
                                        f"and {i})"})
        position.setdefault(answer.indicator, i)
    given = {a.indicator: a.option for a in reversed(answers)}  # the first answer of each indicator, checked
    for problem in rss.validate_answers(instrument, given):
        at = position.get(problem.indicator)
        if at is None:
            field = "answers"
        elif instrument.indicator(problem.indicator) is None:
            field = f"answers.{at}.indicator"
        else:
            field = f"answers.{at}.option"
        problems.append({"field": field, "indicator": problem.indicator,
                         "message": f"{problem.indicator}: {problem.reason}"})
    if problems:
        raise Refused(f"{len(problems)} answer problem(s) for {instrument.id} version {instrument.version}: "
                      + "; ".join(p["message"] for p in problems), "BAD_USER_INPUT", problems[0]["field"], problems)
    return given


# --- statistics ---------------------------------------------------------------------------------------

PLAN_ON_TIME, NO_PLAN_ON_TIME, NOT_YET_DUE = "PLAN_ON_TIME", "NO_PLAN_ON_TIME", "NOT_YET_DUE"
NO_SCORE = "NO_SCORE"  # the latest survey had too few answers for a composite score
MONTHS_SINCE_RETURN = ((3, "0-3"), (6, "3-6"), (12, "6-12"))
MORE_THAN_A_YEAR = "12+"


def plan_timeliness(arrival_date: date, first_plan_saved_on: date | None, today: date, due_days: int) -> str:
    """Whether the case's first plan was saved by its due day (``SEGIN_PLAN_DUE_DAYS`` after arrival):
    PLAN_ON_TIME; NO_PLAN_ON_TIME once the day has passed without one; NOT_YET_DUE before."""
    due_on = plan_due_on(arrival_date, due_days)
    if first_plan_saved_on is not None and first_plan_saved_on <= due_on:
        return PLAN_ON_TIME
    return NO_PLAN_ON_TIME if today > due_on else NOT_YET_DUE


def months_since_return(arrival_date: date, on: date) -> str:
    """The bucket of whole months between arrival and ``on``: 0-3, 3-6, 6-12 or 12+ (lower bound included)."""
    months = (on.year - arrival_date.year) * 12 + on.month - arrival_date.month - (on.day < arrival_date.day)
    return next((label for limit, label in MONTHS_SINCE_RETURN if months < limit), MORE_THAN_A_YEAR)


ON_TIME, LATE, NOT_MADE = "ON_TIME", "LATE", "NOT_MADE"


def contact_timeliness(standing: Standing, open_case: bool) -> list[tuple[str, str]]:
    """Each scheduled contact whose fate is known, as (code, ON_TIME | LATE | NOT_MADE): made by its
    overdue date, made after it, or missed. A contact still ahead or within its window is not
    counted yet; nor is an overdue one on a closed case (closing ends the schedule: it was not
    forgotten, it was no longer due)."""
    found = []
    for contact in standing.contacts:
        if contact.state == ContactState.DONE:
            found.append((contact.code, ON_TIME if contact.on_time else LATE))
        elif contact.state == ContactState.MISSED or (contact.state == ContactState.OVERDUE and open_case):
            found.append((contact.code, NOT_MADE))
    return found


Cell = tuple[str, ...]


def tally(rows: Iterable[tuple[Cell, bool]]) -> tuple[list[tuple[Cell, int]], dict[Cell, int]]:
    """Per cell: how many cases, and how many of them are the caller's own (``own`` True), for
    ``kernel.statistics.suppress_small_cells``; cells in key order."""
    counts: dict[Cell, int] = {}
    own: dict[Cell, int] = {}
    for keys, mine in rows:
        counts[keys] = counts.get(keys, 0) + 1
        own[keys] = own.get(keys, 0) + int(mine)
    return sorted(counts.items()), own


# --- contacts and their timers (schedule.py says where a case stands; these say what follows) -------


# What one case keeps, so that reading it (its view, each reply, the steward's export) stays within
# what the bus carries: 200 contacts with 2,000-character notes are about 500 kB. Four scheduled
# contacts a year and their failed attempts are far below; a case at the limit is a broken client.
MAX_CONTACTS, MAX_SURVEYS = 200, 100
CONTACTS_SHOWN = 50  # the newest contacts a case's view holds; the export holds them all


def check_contact(case: FollowupCase, on: date, today: date, logged: int = 0) -> None:
    """A contact is logged on an open follow-up, dated neither after ``today`` nor before arrival,
    while the case holds fewer than ``MAX_CONTACTS`` (``logged``: how many it holds)."""
    if case.status == CLOSED:
        raise Refused("A closed follow-up takes no contact: re-open it first.", "CASE_CLOSED", "caseId")
    if logged >= MAX_CONTACTS:
        raise Refused(f"This case already holds {MAX_CONTACTS} contacts, the most one case keeps.", "LIMIT_REACHED",
                      "caseId")
    if on > today:
        raise Refused("input.date: a contact cannot be dated in the future.", "BAD_USER_INPUT", "input.date")
    if on < case.arrival_date:
        raise Refused("input.date: a contact cannot be dated before the person's arrival.", "BAD_USER_INPUT",
                      "input.date")


def free_text_scopes(categories: Iterable[str] | None) -> list[str]:
    """The scopes a token needs to read a case's free text (the plan's goal and action descriptions, a
    contact's note and next step): one per sensitive category of the case's vulnerabilities; every
    category's when they are not known (a case older than contacts). Free text about a person may
    say what intake's flags say, so it is behind the same scopes (decision records 0017, 0018)."""
    known = list(SensitiveCategory) if categories is None else [SensitiveCategory(c) for c in categories]
    return sorted({c.scope for c in known})


def missing_free_text_scope(categories: Iterable[str] | None, scopes: frozenset[str]) -> str | None:
    """The first scope the caller lacks to read the case's free text (None: it may read it all)."""
    return next((s for s in free_text_scopes(categories) if s not in scopes), None)


def free_text_categories(categories: Iterable[str] | None) -> list[str]:
    """The sensitive categories reading a case's free text touches, for the audit record (every one
    when they are not known)."""
    return sorted(categories) if categories is not None else sorted(c.value for c in SensitiveCategory)


class Mark(StrEnum):
    """What a scan tells the managing organisation about a scheduled contact, once each."""

    DUE = "DUE"  # its window opened
    OVERDUE = "OVERDUE"  # its window passed and nobody reached the person


def marks_due(standing: Standing) -> list[tuple[str, Mark]]:
    """The marks a case's standing calls for now: DUE for a contact within its window, OVERDUE for one
    past it. A contact already overdue when first seen (the scan did not run while it was due, or the
    case came late) is told as overdue only: a "due" notice for it would be stale."""
    found = []
    for contact in standing.contacts:
        if contact.state == ContactState.DUE:
            found.append((contact.code, Mark.DUE))
        elif contact.state == ContactState.OVERDUE:
            found.append((contact.code, Mark.OVERDUE))
    return found


def marks_told(marks: list[tuple[str, Mark]]) -> list[tuple[str, Mark]]:
    """Which of the marks fired together are told: every DUE one, and of the OVERDUE ones only the
    latest contact. Several contacts overdue at once happen only when a case is first looked at long
    after its return (cases known before contacts existed, a late registration, a long outage): one
    notice says the case is behind; the earlier contacts are marked without a notice, never told later."""
    overdue = [m for m in marks if m[1] == Mark.OVERDUE]
    return [m for m in marks if m[1] == Mark.DUE or m == overdue[-1]]


def next_check_on(standing: Standing, today: date) -> date:
    """The first day after ``today`` a mark may fire for this case, once those due by ``today`` fired:
    an upcoming contact's window opening, a due one's passing (``date.max``: none ever will, unless a
    new contact is logged, which never makes a mark fire earlier)."""
    days = [c.opens_on if c.state == ContactState.UPCOMING else c.overdue_after + timedelta(days=1)
            for c in standing.contacts if c.state in (ContactState.UPCOMING, ContactState.DUE)]
    return min((d for d in days if d > today), default=date.max)


def unreachable_change(standing: Standing, flagged: bool) -> bool | None:
    """True: the case just became unreachable (announce it once); False: reached again (clear the
    flag, so a later run of failures is announced again); None: no change."""
    if standing.unreachable and not flagged:
        return True
    if flagged and not standing.unreachable:
        return False
    return None
