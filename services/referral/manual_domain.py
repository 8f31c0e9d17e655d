"""Rules for referrals people make and the work lists they follow: who may refer a case, by when the
recipient should act, when a referral is overdue, what an outcome must say. No I/O; the clock is an
argument everywhere, so tests move it instead of waiting.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from contracts.commands import MAX_DUE_IN_HOURS, ReferralOutcome
from contracts.events import SharingRecipient
from contracts.reference import LegalBasis, Priority, ReferralStatus
from services.referral.domain import basis_for

# How long a recipient has to accept a referral a person made, when they set no deadline themselves.
# The same figures as the routing rules' priorities (domain.RULES), in one place for manual referrals.
DUE_IN: Mapping[Priority, timedelta] = {
    Priority.URGENT: timedelta(hours=24),
    Priority.HIGH: timedelta(hours=72),
    Priority.NORMAL: timedelta(days=7),
}
MAX_DUE_IN = timedelta(hours=MAX_DUE_IN_HOURS)


@dataclass(frozen=True)
class InputRefused(Exception):
    """A request that is well-formed but wrong at this moment (a deadline already past)."""

    field: str
    message: str


def due_at(priority: Priority, now: datetime, *, at: datetime | None = None, in_hours: int | None = None) -> datetime:
    """The referral's deadline: the one given (in the future, within MAX_DUE_IN), else the priority's."""
    if at is not None:
        if at <= now:
            raise InputRefused("due_at", "the deadline must be in the future")
        if at > now + MAX_DUE_IN:
            raise InputRefused("due_at", f"the deadline must be within {MAX_DUE_IN.days} days")
        return at
    if in_hours is not None:
        return now + timedelta(hours=in_hours)
    return now + DUE_IN[priority]


def may_read_case(owner_org_id: str, org_id: str, org_type: str | None, held_bases: Iterable[str | None],
                  recipients: list[SharingRecipient]) -> bool:
    """Intake's rule, on the referral service's own projection: the owner always; another organisation
    while it holds an open referral for the case whose basis still stands (a basis other than consent
    recorded on the referral, or the current sharing coverage)."""
    if org_id == owner_org_id:
        return True
    held = list(held_bases)
    if not held:
        return False
    if any(b not in (None, LegalBasis.CONSENT.value) for b in held):
        return True
    return basis_for(recipients, org_id, org_type) is not None


def opening_status(recipients: list[SharingRecipient], to_org_id: str,
                   to_org_type: str | None) -> tuple[LegalBasis | None, ReferralStatus]:
    """The same legal-basis rule as automatic referrals: live when a basis covers the recipient,
    otherwise waiting for consent (``on_sharing_changed`` makes it live once consent is recorded)."""
    basis = basis_for(recipients, to_org_id, to_org_type)
    return basis, ReferralStatus.PENDING if basis else ReferralStatus.AWAITING_CONSENT


def is_overdue(status: str, due: datetime, accepted_at: datetime | None, expected_duration: timedelta | None,
               outcome_code: str | None, now: datetime) -> bool:
    """PENDING past its deadline, or ACCEPTED with no outcome past the service's expected duration
    (a service with no expected duration is never overdue once accepted).

    ``manual_store.OVERDUE`` says the same in SQL, for filters and counts; a test keeps them in step.
    """
    if status == ReferralStatus.PENDING:
        return due < now
    if status == ReferralStatus.ACCEPTED and outcome_code is None:
        return accepted_at is not None and expected_duration is not None and accepted_at + expected_duration < now
    return False


def check_outcome(outcome: ReferralOutcome, referred_at: datetime, today: date) -> None:
    """A delivery date is neither in the future nor before the referral was made."""
    if outcome.delivered_on is None:
        return
    if outcome.delivered_on > today:
        raise InputRefused("outcome.delivered_on", "the delivery date cannot be in the future")
    if outcome.delivered_on < referred_at.date():
        raise InputRefused("outcome.delivered_on", "the delivery date is before the referral was made")
