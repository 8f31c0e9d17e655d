"""Follow-up's replies built from its rows: a case's follow-up as its owner or manager sees it."""

from __future__ import annotations

from datetime import date
from typing import Any

from contracts.reference import FollowupStatus, PlanActionStatus
from contracts.reference import ReintegrationDimension
from contracts.replies import (
    AssignmentView,
    FollowupCaseView,
    InstrumentIndicatorView,
    InstrumentOptionView,
    InstrumentView,
    MissingPlanView,
    PlanActionView,
    PlanGoalView,
    PlanView,
    SurveyAnswerView,
    SurveyView,
)
from services.followup import domain
from services.followup.instrument import Instrument


def plan_view(row: dict[str, Any], goals: list[dict[str, Any]], today: date) -> PlanView | None:
    if not row["has_plan"]:
        return None
    return PlanView(saved_at=row["plan_saved_at"], saved_by_org_id=row["plan_saved_by_org_id"], goals=[
        PlanGoalView(id=str(g["id"]), dimension=g["dimension"], description=g["description"], actions=[
            PlanActionView(id=str(a["id"]), description=a["description"], referral_id=a["referral_id"],
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


def case_view(row: dict[str, Any], goals: list[dict[str, Any]], assignments: list[dict[str, Any]], today: date,
              due_days: int, surveys: list[SurveyView] | None = None) -> FollowupCaseView:
    """The follow-up as of ``today``: ``plan_overdue`` and each action's ``overdue`` depend on it."""
    due_on = domain.plan_due_on(row["arrival_date"], due_days)
    return FollowupCaseView(
        case_id=str(row["case_id"]), owner_org_id=row["owner_org_id"], manager_org_id=row["manager_org_id"],
        status=row["status"], closure_reason=row["closure_reason"], arrival_date=row["arrival_date"],
        destination_region=row["destination_region"], plan_due_on=due_on,
        plan_overdue=domain.plan_overdue(FollowupStatus(row["status"]), row["has_plan"], due_on, today),
        plan=plan_view(row, goals, today), version=row["version"], updated_at=row["updated_at"],
        assignments=[AssignmentView(from_org_id=a["from_org_id"], to_org_id=a["to_org_id"],
                                    reason_code=a["reason_code"], legal_basis=a["legal_basis"],
                                    assigned_at=a["assigned_at"], assigned_by_org_id=a["assigned_by_org_id"])
                     for a in assignments],
        surveys=surveys or [],
    )


def missing_plan_view(row: dict[str, Any], today: date, due_days: int) -> MissingPlanView:
    due_on = domain.plan_due_on(row["arrival_date"], due_days)
    return MissingPlanView(case_id=str(row["id"]), arrival_date=row["arrival_date"],
                           destination_region=row["destination_region"], plan_due_on=due_on,
                           overdue=domain.plan_overdue(FollowupStatus.OPEN, False, due_on, today),
                           managed_since=row["created_at"])
