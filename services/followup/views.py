"""Follow-up's replies built from its rows: a case's follow-up as its owner or manager sees it."""

from __future__ import annotations

from datetime import date
from typing import Any

from contracts.reference import FollowupStatus, PlanActionStatus
from contracts.reference import ReintegrationDimension
from contracts.replies import (
    AssignmentView,
    ContactDueView,
    ContactView,
    FollowupCaseView,
    InstrumentIndicatorView,
    InstrumentOptionView,
    InstrumentView,
    MissingPlanView,
    PlanActionView,
    PlanGoalView,
    PlanView,
    ScheduledContactView,
    SurveyAnswerView,
    SurveyView,
    UnreachableCaseView,
)
from services.followup import domain
from services.followup.instrument import Instrument
from services.followup.schedule import ContactState, Standing


def plan_view(row: dict[str, Any], goals: list[dict[str, Any]], today: date,
              restricted: str | None = None) -> PlanView | None:
    """The plan as saved; its text (goal and action descriptions) left out when the caller lacks
    ``restricted``, a scope of the case's sensitive categories. Its structure (dimensions, states,
    dates, ids, referrals) stays, so that the work goes on."""
    if not row["has_plan"]:
        return None

    def text(value: str) -> str | None:
        return None if restricted else value

    return PlanView(saved_at=row["plan_saved_at"], saved_by_org_id=row["plan_saved_by_org_id"], goals=[
        PlanGoalView(id=str(g["id"]), dimension=g["dimension"], description=text(g["description"]),
                     text_restricted=restricted, actions=[
            PlanActionView(id=str(a["id"]), description=text(a["description"]), text_restricted=restricted,
                           referral_id=a["referral_id"],
                           target_date=a["target_date"], status=a["status"], updated_at=a["updated_at"],
                           overdue=domain.action_overdue(PlanActionStatus(a["status"]), a["target_date"], today))
            for a in g["actions"]])
        for g in goals])


def _score(value: Any) -> float | None:
    return None if value is None else float(value)


def survey_view(row: dict[str, Any], *, psychosocial_answers: bool) -> SurveyView:
    """A stored survey as recorded (scores are read, never recomputed); the psychosocial answers only
    when the caller may see health data (``domain.PSYCHOSOCIAL_ANSWERS_SCOPE``)."""
    answers = [SurveyAnswerView.model_validate(a) for a in row["answers"]]
    psychosocial = [a for a in answers if a.dimension == ReintegrationDimension.PSYCHOSOCIAL]
    return SurveyView(
        id=str(row["id"]), case_id=str(row["case_id"]), instrument_id=row["instrument_id"],
        instrument_version=row["instrument_version"], instrument_digest=row["instrument_digest"],
        taken_on=row["taken_on"], economic=_score(row["economic"]), social=_score(row["social"]),
        psychosocial=_score(row["psychosocial"]), composite=_score(row["composite"]),
        economic_band=row["economic_band"], social_band=row["social_band"],
        psychosocial_band=row["psychosocial_band"], composite_band=row["composite_band"],
        answers=[a for a in answers if a.dimension != ReintegrationDimension.PSYCHOSOCIAL],
        psychosocial_answers=psychosocial if psychosocial_answers else None,
        recorded_by_org_id=row["recorded_by_org_id"], recorded_at=row["recorded_at"])


def instrument_view(instrument: Instrument, latest_version: int) -> InstrumentView:
    return InstrumentView(
        id=instrument.id, version=instrument.version, digest=instrument.digest, title_fr=instrument.title.fr,
        title_en=instrument.title.en, latest_version=latest_version,
        indicators=[InstrumentIndicatorView(
            code=i.code, dimension=i.dimension.value, question_fr=i.question.fr, question_en=i.question.en,
            options=[InstrumentOptionView(code=o.code, label_fr=o.label.fr, label_en=o.label.en) for o in i.options])
            for i in instrument.indicators])


def contact_view(row: dict[str, Any], restricted: str | None) -> ContactView:
    """One logged contact; its note and next step left out (``restricted``: the scope the caller lacks)
    when it may not see them."""
    return ContactView(id=str(row["id"]), date=row["contact_date"], mode=row["mode"], reached=row["reached"],
                       next_step=None if restricted else row["next_step"], note=None if restricted else row["note"],
                       text_restricted=restricted, logged_by_org_id=row["logged_by_org_id"],
                       logged_at=row["logged_at"])


def case_view(row: dict[str, Any], goals: list[dict[str, Any]], assignments: list[dict[str, Any]], today: date,
              due_days: int, standing: Standing, contacts: list[dict[str, Any]] | None,
              text_restricted: str | None = None, surveys: list[SurveyView] | None = None,
              contact_count: int | None = None) -> FollowupCaseView:
    """The follow-up as of ``today``: ``plan_overdue``, each action's ``overdue`` and the schedule's
    states depend on it. ``contacts`` None: not for this caller; ``text_restricted``: the scope the
    caller lacks to read the case's free text, the plan's and the contacts' (None: it may);
    ``contact_count``: how many contacts the case holds, when ``contacts`` are only the newest."""
    due_on = domain.plan_due_on(row["arrival_date"], due_days)
    return FollowupCaseView(
        case_id=str(row["case_id"]), owner_org_id=row["owner_org_id"], manager_org_id=row["manager_org_id"],
        status=row["status"], closure_reason=row["closure_reason"], arrival_date=row["arrival_date"],
        destination_region=row["destination_region"], plan_due_on=due_on,
        plan_overdue=domain.plan_overdue(FollowupStatus(row["status"]), row["has_plan"], due_on, today),
        plan=plan_view(row, goals, today, text_restricted), version=row["version"], updated_at=row["updated_at"],
        assignments=[AssignmentView(from_org_id=a["from_org_id"], to_org_id=a["to_org_id"],
                                    reason_code=a["reason_code"], legal_basis=a["legal_basis"],
                                    assigned_at=a["assigned_at"], assigned_by_org_id=a["assigned_by_org_id"])
                     for a in assignments],
        schedule_id=row["schedule_id"], schedule_version=row["schedule_version"],
        schedule=[ScheduledContactView(code=c.code, opens_on=c.opens_on, due_on=c.due_on,
                                       overdue_after=c.overdue_after, state=c.state, done_on=c.done_on,
                                       on_time=c.on_time) for c in standing.contacts],
        contacts=None if contacts is None else [contact_view(c, text_restricted) for c in contacts],
        contact_count=None if contacts is None else (len(contacts) if contact_count is None else contact_count),
        failed_in_a_row=standing.failed_in_a_row, unreachable=standing.unreachable,
        surveys=surveys or [],
    )


def missing_plan_view(row: dict[str, Any], today: date, due_days: int) -> MissingPlanView:
    due_on = domain.plan_due_on(row["arrival_date"], due_days)
    return MissingPlanView(case_id=str(row["id"]), arrival_date=row["arrival_date"],
                           destination_region=row["destination_region"], plan_due_on=due_on,
                           overdue=domain.plan_overdue(FollowupStatus.OPEN, False, due_on, today),
                           managed_since=row["created_at"])


def contact_due_view(row: dict[str, Any], today: date) -> ContactDueView:
    """A row of ``followupsDue``/``followupsOverdue``: the case's next contact, its state as of ``today``."""
    opens, overdue_after = row["next_contact_opens_on"], row["next_contact_overdue_after"]
    state = (ContactState.UPCOMING if today < opens else ContactState.DUE if today <= overdue_after
             else ContactState.OVERDUE)
    return ContactDueView(case_id=str(row["id"]), arrival_date=row["arrival_date"],
                          destination_region=row["destination_region"], contact_code=row["next_contact_code"],
                          opens_on=opens, due_on=row["next_contact_due_on"], overdue_after=overdue_after, state=state)


def unreachable_view(row: dict[str, Any]) -> UnreachableCaseView:
    return UnreachableCaseView(case_id=str(row["id"]), arrival_date=row["arrival_date"],
                               destination_region=row["destination_region"], failed_in_a_row=row["failed_in_a_row"],
                               unreachable_since=row["created_at"])
