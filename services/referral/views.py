"""Referral's replies built from its rows."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from contracts.reference import SENSITIVE_SERVICES
from contracts.replies import ReferralView
from services.referral.manual_domain import is_overdue


def referral_view(row: dict[str, Any], *, viewer: str | None = None, now: datetime | None = None,
                  export: bool = False) -> ReferralView:
    """A referral as its callers see it, whole: a caller who may not see part of it does not see it at all.

    Two fields depend on who asks (``viewer``, an organisation): the case worker's ``note`` exists for
    the referring and the receiving organisation only, and ``made_by`` (a person) for the referring
    one; the steward's data-subject ``export`` shows both. ``overdue`` is as of ``now``; it uses the
    service's ``expected_duration`` when the row carries it (``manual_store.with_durations``).
    """
    now = now or datetime.now(UTC)
    parties = (row["from_org_id"], row["to_org_id"])
    return ReferralView(
        id=str(row["id"]), case_id=str(row["case_id"]), from_org_id=row["from_org_id"], to_org_id=row["to_org_id"],
        service_category=row["service_category"], priority=row["priority"], legal_basis=row["legal_basis"],
        status=row["status"], status_reason=row["status_reason"], reason_code=row["reason_code"],
        due_at=row["due_at"], created_at=row["created_at"], updated_at=row["updated_at"],
        origin=row.get("origin") or "RULE",
        service_id=_text(row.get("service_id")), rule_id=row.get("rule_id"),
        rules_version=row.get("rules_version"), unassigned_reason=row.get("unassigned_reason"),
        rerouted_from=_text(row.get("rerouted_from")), rerouted_to=_text(row.get("rerouted_to")),
        made_by=row.get("made_by") if export or viewer == row["from_org_id"] else None,
        note=row.get("note") if export or (viewer is not None and viewer in parties) else None,
        accepted_at=row.get("accepted_at"), outcome_code=row.get("outcome_code"),
        outcome_delivered=row.get("outcome_delivered"), outcome_date=row.get("outcome_date"),
        overdue=is_overdue(row["status"], row["due_at"], row.get("accepted_at"), row.get("expected_duration"),
                           row.get("outcome_code"), now),
        provider_reason=row.get("provider_reason"),
    )


def audit_categories(views: list[ReferralView]) -> list[str]:
    """What a list of referrals revealed, for its audit entry: referrals, each sensitive category
    shown, and ``note`` when a case worker's note was among them."""
    revealed = {v.service_category for v in views}
    return (["referral"] + sorted(SENSITIVE_SERVICES[c].value for c in revealed if c in SENSITIVE_SERVICES)
            + (["note"] if any(v.note for v in views) else []))


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
