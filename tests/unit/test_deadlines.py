"""Deadline rules with the clock moved by hand: when a referral is reminded, escalated or flagged,
and that each fires once; who is told; how the settings are read."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from contracts.events import ReferralDeadlineV1
from contracts.reference import DeadlineKind, LegalBasis, Priority, ReferralStatus, ServiceCategory
from services.notifications.domain import SUPERVISORS, notices_for_deadline
from services.referral.deadlines import (
    GRACE,
    DeadlineSettings,
    ReferralClock,
    deadline,
    due_now,
    escalation_cutoffs,
    fires,
)

DUE = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
H = timedelta(hours=1)
REMINDER, ESCALATED, OVERDUE = DeadlineKind.REMINDER, DeadlineKind.ESCALATED, DeadlineKind.OUTCOME_OVERDUE


def pending(priority: Priority = Priority.URGENT, **marks: datetime) -> ReferralClock:
    return ReferralClock(ReferralStatus.PENDING, priority, DUE, **marks)


def accepted(after: timedelta | None = timedelta(days=14), **overrides: object) -> ReferralClock:
    clock = ReferralClock(ReferralStatus.ACCEPTED, Priority.NORMAL, DUE, accepted_at=DUE, expected_duration=after)
    return replace(clock, **overrides)  # type: ignore[arg-type]


def test_a_pending_referral_is_reminded_from_its_due_time_on_and_not_before() -> None:
    assert due_now(pending(), DUE - timedelta(seconds=1)) == []
    assert due_now(pending(), DUE) == [REMINDER]
    assert due_now(pending(), DUE + 11 * H) == [REMINDER]


def test_escalation_waits_for_the_grace_of_the_priority() -> None:
    for priority, grace in [(Priority.URGENT, 12 * H), (Priority.HIGH, 24 * H), (Priority.NORMAL, 72 * H)]:
        assert GRACE[priority] == grace
        assert not fires(ESCALATED, pending(priority), DUE + grace - timedelta(seconds=1))
        assert fires(ESCALATED, pending(priority), DUE + grace)
        assert deadline(ESCALATED, pending(priority)) == DUE + grace


def test_long_overdue_it_is_reminded_then_escalated_in_one_scan() -> None:
    assert due_now(pending(), DUE + 100 * H) == [REMINDER, ESCALATED]


def test_a_mark_already_set_never_fires_again_however_late() -> None:
    reminded = pending(reminded_at=DUE)
    assert due_now(reminded, DUE + 1 * H) == []
    assert due_now(reminded, DUE + 13 * H) == [ESCALATED]
    both = pending(reminded_at=DUE, escalated_at=DUE + 12 * H)
    assert due_now(both, DUE + 1000 * H) == []


def test_only_pending_referrals_are_reminded_or_escalated() -> None:
    for status in set(ReferralStatus) - {ReferralStatus.PENDING}:
        clock = replace(pending(), status=status)
        assert not fires(REMINDER, clock, DUE + 1000 * H)
        assert not fires(ESCALATED, clock, DUE + 1000 * H)


def test_an_accepted_referral_with_no_outcome_is_flagged_past_the_service_expected_duration() -> None:
    assert not fires(OVERDUE, accepted(), DUE + timedelta(days=14) - timedelta(seconds=1))
    assert due_now(accepted(), DUE + timedelta(days=14)) == [OVERDUE]
    assert deadline(OVERDUE, accepted()) == DUE + timedelta(days=14)
    assert due_now(accepted(overdue_flagged_at=DUE), DUE + timedelta(days=99)) == []


def test_no_service_duration_no_acceptance_time_or_an_outcome_means_never_overdue() -> None:
    late = DUE + timedelta(days=999)
    assert not fires(OVERDUE, accepted(None), late)
    assert not fires(OVERDUE, accepted(accepted_at=None), late)
    assert not fires(OVERDUE, accepted(outcome_code="SERVICE_DELIVERED"), late)
    assert not fires(OVERDUE, accepted(status=ReferralStatus.DONE), late)
    assert not fires(OVERDUE, pending(), late)


def test_escalation_cutoffs_are_now_minus_each_grace() -> None:
    grace = {Priority.URGENT: 1 * H, Priority.HIGH: 2 * H, Priority.NORMAL: 3 * H}
    assert escalation_cutoffs(DUE, grace) == {Priority.URGENT: DUE - 1 * H, Priority.HIGH: DUE - 2 * H,
                                              Priority.NORMAL: DUE - 3 * H}


def test_settings_default_and_override_from_the_environment() -> None:
    assert DeadlineSettings.from_env({}) == DeadlineSettings()
    assert DeadlineSettings().scan_seconds == 60 and DeadlineSettings().batch == 500
    settings = DeadlineSettings.from_env({"SEGIN_DEADLINE_SCAN_SECONDS": "1", "SEGIN_DEADLINE_BATCH": "50",
                                          "SEGIN_DEADLINE_GRACE_HOURS": "urgent=6, NORMAL=48"})
    assert (settings.scan_seconds, settings.batch) == (1.0, 50)
    assert settings.grace == {Priority.URGENT: 6 * H, Priority.HIGH: 24 * H, Priority.NORMAL: 48 * H}


@pytest.mark.parametrize(("name", "value"), [
    ("SEGIN_DEADLINE_GRACE_HOURS", "URGENT"), ("SEGIN_DEADLINE_GRACE_HOURS", "SOON=4"),
    ("SEGIN_DEADLINE_GRACE_HOURS", "HIGH=-1"), ("SEGIN_DEADLINE_SCAN_SECONDS", "0"),
    ("SEGIN_DEADLINE_SCAN_SECONDS", "often"), ("SEGIN_DEADLINE_BATCH", "1.5"),
])
def test_a_bad_setting_is_refused_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(ValueError, match=name):
        DeadlineSettings.from_env({name: value})


# --- who is told -------------------------------------------------------------------------------

def event(kind: DeadlineKind, category: ServiceCategory = ServiceCategory.FAMILY_TRACING,
          from_org: str = "ame") -> ReferralDeadlineV1:
    return ReferralDeadlineV1(referral_id="r1", case_id="c1", from_org_id=from_org, to_org_id="unicef",
                              service_category=category, priority=Priority.HIGH, legal_basis=LegalBasis.CONSENT,
                              kind=kind, due_at=DUE)


def told(kind: DeadlineKind, **kwargs: object) -> list[tuple[str, str, str | None, str | None]]:
    return [(n.org_id, n.kind, n.scope, n.audience)
            for n in notices_for_deadline(event(kind, **kwargs), coordinator_org_id="dgme")]  # type: ignore[arg-type]


def test_a_reminder_tells_the_recipient_only() -> None:
    assert told(REMINDER) == [("unicef", "referral.reminder", None, None)]
    (notice,) = notices_for_deadline(event(REMINDER), "dgme")
    assert "recherche familiale" in notice.title_fr and "family tracing" in notice.title_en


def test_an_escalation_tells_the_referrers_supervisors_and_the_coordinating_body() -> None:
    assert told(ESCALATED) == [("ame", "referral.escalated", None, SUPERVISORS),
                               ("dgme", "referral.escalated", None, None)]
    assert all("re-routed" in n.title_en for n in notices_for_deadline(event(ESCALATED), "dgme"))


def test_when_the_referrer_is_the_coordinating_body_the_whole_body_is_told_once() -> None:
    assert told(ESCALATED, from_org="dgme") == [("dgme", "referral.escalated", None, None)]


def test_an_overdue_outcome_tells_the_recipient_and_the_referrer() -> None:
    assert told(OVERDUE) == [("unicef", "referral.outcome_overdue", None, None),
                             ("ame", "referral.outcome_overdue", None, None)]


def test_about_a_sensitive_service_others_than_the_recipient_need_its_scope_and_it_goes_unnamed() -> None:
    gbv = ServiceCategory.GBV_RESPONSE
    assert told(ESCALATED, category=gbv) == [("ame", "referral.escalated", "sensitive:gbv", SUPERVISORS),
                                            ("dgme", "referral.escalated", "sensitive:gbv", None)]
    assert told(OVERDUE, category=gbv) == [("unicef", "referral.outcome_overdue", None, None),
                                          ("ame", "referral.outcome_overdue", "sensitive:gbv", None)]
    for notice in notices_for_deadline(event(ESCALATED, category=gbv), "dgme"):
        assert "VBG" not in notice.title_fr and "GBV" not in notice.title_en
