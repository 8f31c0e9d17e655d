"""The rules of referrals people make, without I/O: deadlines, who may refer a case, overdue, outcomes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from contracts.commands import ReferralOutcome
from contracts.events import SharingRecipient
from contracts.reference import LegalBasis, Priority, ReferralStatus
from services.referral import manual_domain
from services.referral.manual_domain import InputRefused, due_at, is_overdue, may_read_case, opening_status

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
CONSENT_TO_IOM = [SharingRecipient(org_id="iom", legal_basis=LegalBasis.CONSENT)]


@pytest.mark.parametrize("priority,hours", [(Priority.URGENT, 24), (Priority.HIGH, 72), (Priority.NORMAL, 168)])
def test_the_deadline_defaults_to_the_priority(priority: Priority, hours: int) -> None:
    assert due_at(priority, NOW) == NOW + timedelta(hours=hours)
    assert manual_domain.DUE_IN[priority] == timedelta(hours=hours)


def test_a_deadline_given_is_kept_when_it_lies_ahead_and_not_too_far() -> None:
    assert due_at(Priority.NORMAL, NOW, in_hours=5) == NOW + timedelta(hours=5)
    assert due_at(Priority.NORMAL, NOW, at=NOW + timedelta(days=2)) == NOW + timedelta(days=2)
    for at in (NOW, NOW - timedelta(minutes=1), NOW + timedelta(days=91)):
        with pytest.raises(InputRefused) as refused:
            due_at(Priority.NORMAL, NOW, at=at)
        assert refused.value.field == "due_at"


def test_who_may_refer_a_case() -> None:
    assert may_read_case("ame", "ame", "NGO", [], [])
    assert not may_read_case("ame", "iom", "INTERNATIONAL", [], CONSENT_TO_IOM)  # consent alone is not a referral
    assert may_read_case("ame", "iom", "INTERNATIONAL", ["CONSENT"], CONSENT_TO_IOM)
    assert not may_read_case("ame", "iom", "INTERNATIONAL", ["CONSENT"], [])  # consent withdrawn since
    assert may_read_case("ame", "unicef", "INTERNATIONAL", ["VITAL_INTEREST"], [])
    by_type = [SharingRecipient(org_type="INTERNATIONAL", legal_basis=LegalBasis.CONSENT)]
    assert may_read_case("ame", "iom", "INTERNATIONAL", ["CONSENT"], by_type)


def test_a_referral_waits_for_consent_unless_a_basis_covers_the_recipient() -> None:
    assert opening_status(CONSENT_TO_IOM, "iom", "INTERNATIONAL") == (LegalBasis.CONSENT, ReferralStatus.PENDING)
    assert opening_status(CONSENT_TO_IOM, "croix-rouge", "NGO") == (None, ReferralStatus.AWAITING_CONSENT)


def test_overdue() -> None:
    due, month = NOW, timedelta(days=30)
    assert not is_overdue("PENDING", due, None, None, None, NOW)
    assert is_overdue("PENDING", due, None, None, None, NOW + timedelta(seconds=1))
    accepted = NOW
    assert not is_overdue("ACCEPTED", due, accepted, month, None, NOW + timedelta(days=29))
    assert is_overdue("ACCEPTED", due, accepted, month, None, NOW + timedelta(days=31))
    assert not is_overdue("ACCEPTED", due, accepted, None, None, NOW + timedelta(days=365))  # no expected duration
    for closed in ("DONE", "REJECTED", "REVOKED", "AWAITING_CONSENT"):
        assert not is_overdue(closed, due, accepted, month, None, NOW + timedelta(days=365))


def test_a_delivery_date_lies_between_the_referral_and_today() -> None:
    def outcome(day: date) -> ReferralOutcome:
        return ReferralOutcome(service_delivered=True, delivered_on=day, outcome_code="SERVICE_PROVIDED")

    manual_domain.check_outcome(outcome(date(2026, 12, 1)), NOW, date(2026, 12, 3))
    for day in (date(2026, 11, 30), date(2026, 12, 4)):
        with pytest.raises(InputRefused) as refused:
            manual_domain.check_outcome(outcome(day), NOW, date(2026, 12, 3))
        assert refused.value.field == "outcome.delivered_on"
