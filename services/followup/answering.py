"""How the follow-up service answers a caller, whatever the operation: the refusals (a case not the
caller's is "not found", as intake says it), the audit purpose and the categories of data an answer
showed (codes for the audit trail, never the data)."""

from __future__ import annotations

from kernel.audit import AuditPurpose
from kernel.errors import NotFound, SeginError
from kernel.tokens import Principal
from services.followup import domain

FOLLOW_UP = ["follow_up"]  # who manages the case, its state
WITH_PLAN = ["follow_up", "plan"]  # … and the plan's text
PLAN_STRUCTURE = ["follow_up", "plan_structure"]  # … the plan without its text (dimensions, states, dates)
SURVEYS = ["survey"]  # survey answers (economic, social) and scores
PSYCHOSOCIAL_ANSWERS = ["survey_psychosocial"]  # the psychosocial answers: health data


def not_found() -> NotFound:
    # The same answer as intake's for "absent" and "not for you": a case's existence is personal data.
    return NotFound("No such case, or it is not shared with your organisation.", field="caseId")


def refusal(exc: domain.Refused) -> SeginError:
    if exc.code == "NOT_FOUND":
        return NotFound(exc.message, field=exc.field)
    return SeginError(exc.message, field=exc.field, code=exc.code, problems=exc.problems)


def purpose(standing: str | None) -> AuditPurpose:
    """The owner reads its own case for case management; a manager for follow-up."""
    return AuditPurpose.CASE_MANAGEMENT if standing == "OWNER" else AuditPurpose.FOLLOW_UP


def sees_psychosocial_answers(principal: Principal) -> bool:
    return domain.PSYCHOSOCIAL_ANSWERS_SCOPE in principal.scopes
