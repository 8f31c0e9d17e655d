"""Follow-up's replies built from its rows: a case's follow-up as its owner or manager sees it."""

from __future__ import annotations

from datetime import date
from typing import Any

from contracts.reference import FollowupStatus, PlanActionStatus
from contracts.replies import (
    AssignmentView,
    FollowupCaseView,
    MissingPlanView,
    PlanActionView,
    PlanGoalView,
    PlanView,
)
from services.followup import domain


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


def case_view(row: dict[str, Any], goals: list[dict[str, Any]], assignments: list[dict[str, Any]], today: date,
              due_days: int) -> FollowupCaseView:
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
    )


def missing_plan_view(row: dict[str, Any], today: date, due_days: int) -> MissingPlanView:
    due_on = domain.plan_due_on(row["arrival_date"], due_days)
    return MissingPlanView(case_id=str(row["id"]), arrival_date=row["arrival_date"],
                           destination_region=row["destination_region"], plan_due_on=due_on,
                           overdue=domain.plan_overdue(FollowupStatus.OPEN, False, due_on, today),
                           managed_since=row["created_at"])
