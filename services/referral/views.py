"""Referral's replies built from its rows."""

from __future__ import annotations

from typing import Any

from contracts.replies import ReferralView


def referral_view(row: dict[str, Any]) -> ReferralView:
    """A referral as its callers see it, whole: a caller who may not see part of it does not see it at all."""
    return ReferralView(
        id=str(row["id"]), case_id=str(row["case_id"]), from_org_id=row["from_org_id"], to_org_id=row["to_org_id"],
        service_category=row["service_category"], priority=row["priority"], legal_basis=row["legal_basis"],
        status=row["status"], status_reason=row["status_reason"], reason_code=row["reason_code"],
        due_at=row["due_at"], created_at=row["created_at"], updated_at=row["updated_at"],
        service_id=_text(row.get("service_id")), origin=row.get("origin") or "RULE", rule_id=row.get("rule_id"),
        rules_version=row.get("rules_version"), unassigned_reason=row.get("unassigned_reason"),
        rerouted_from=_text(row.get("rerouted_from")), rerouted_to=_text(row.get("rerouted_to")),
    )


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
