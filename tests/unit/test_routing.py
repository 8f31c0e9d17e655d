"""Routing rules of the referral service (services/referral/domain.py): pure functions only."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from contracts.events import ArrivalRegisteredV1
from contracts.reference import ArrivalPoint, LegalBasis, Priority, ServiceCategory, Vulnerability
from services.referral.domain import (
    AWAITING_CONSENT,
    PENDING,
    Provider,
    choose_provider,
    plan_referrals,
)

NOW = datetime(2025, 3, 10, 9, 30, tzinfo=UTC)
OWNER = "org-owner"
REGION = "07"  # Gao
OTHER_REGION = "01"  # Kayes

V = Vulnerability
C = ServiceCategory


def arrival(
    *vulnerabilities: Vulnerability,
    consent: bool = False,
    recipients: tuple[str, ...] = (),
    region: str = REGION,
    owner: str = OWNER,
    is_child: bool = False,
) -> ArrivalRegisteredV1:
    return ArrivalRegisteredV1(
        case_id="case-1",
        owner_org_id=owner,
        arrival_point=ArrivalPoint.GAO,
        arrival_date=date(2025, 3, 9),
        destination_region=region,
        is_child=is_child,
        vulnerabilities=list(vulnerabilities),
        consent_given=consent,
        consent_recipient_org_ids=list(recipients),
    )


def provider(org_id: str, category: ServiceCategory, *regions: str) -> Provider:
    return Provider(org_id=org_id, category=category, regions=frozenset(regions))


CHILD_PROTECTION = provider("org-child", C.CHILD_PROTECTION)
HEALTH_NATIONAL = provider("org-health-national", C.HEALTH_CARE)
HEALTH_REGIONAL = provider("org-health-gao", C.HEALTH_CARE, REGION)
HEALTH_ELSEWHERE = provider("org-health-kayes", C.HEALTH_CARE, OTHER_REGION)


# --- children -------------------------------------------------------------------------------


def test_unaccompanied_child_is_referred_to_child_protection_urgently_without_consent() -> None:
    plans = plan_referrals(arrival(V.UNACCOMPANIED_CHILD, is_child=True), [CHILD_PROTECTION], NOW)

    assert len(plans) == 1
    plan = plans[0]
    assert plan.to_org_id == "org-child"
    assert plan.category == C.CHILD_PROTECTION
    assert plan.priority == Priority.URGENT
    assert plan.due_at == NOW + timedelta(hours=24)
    assert plan.legal_basis == LegalBasis.VITAL_INTEREST
    assert plan.status == PENDING
    assert plan.reason_code == "UNACCOMPANIED_OR_SEPARATED_CHILD"


def test_separated_child_triggers_the_same_rule() -> None:
    plans = plan_referrals(arrival(V.SEPARATED_CHILD, is_child=True), [CHILD_PROTECTION], NOW)
    assert [(p.category, p.priority, p.legal_basis, p.status) for p in plans] == [
        (C.CHILD_PROTECTION, Priority.URGENT, LegalBasis.VITAL_INTEREST, PENDING)
    ]


def test_child_referral_uses_consent_when_the_provider_is_a_consented_recipient() -> None:
    plans = plan_referrals(
        arrival(V.UNACCOMPANIED_CHILD, consent=True, recipients=("org-child",), is_child=True),
        [CHILD_PROTECTION],
        NOW,
    )
    assert len(plans) == 1
    assert plans[0].legal_basis == LegalBasis.CONSENT
    assert plans[0].status == PENDING


def test_child_with_consent_to_another_org_still_goes_on_vital_interest() -> None:
    plans = plan_referrals(
        arrival(V.UNACCOMPANIED_CHILD, consent=True, recipients=("org-somebody-else",), is_child=True),
        [CHILD_PROTECTION],
        NOW,
    )
    assert plans[0].legal_basis == LegalBasis.VITAL_INTEREST
    assert plans[0].status == PENDING


# --- provider choice --------------------------------------------------------------------------


def test_regional_provider_is_preferred_over_national() -> None:
    providers = [HEALTH_NATIONAL, HEALTH_ELSEWHERE, HEALTH_REGIONAL]
    assert choose_provider(providers, C.HEALTH_CARE, REGION) == HEALTH_REGIONAL

    plans = plan_referrals(
        arrival(V.MEDICAL_NEEDS, consent=True, recipients=("org-health-gao",)), providers, NOW
    )
    assert [p.to_org_id for p in plans] == ["org-health-gao"]
    assert plans[0].category == C.HEALTH_CARE
    assert plans[0].priority == Priority.HIGH
    assert plans[0].due_at == NOW + timedelta(hours=72)
    assert plans[0].legal_basis == LegalBasis.CONSENT
    assert plans[0].status == PENDING


def test_national_provider_when_no_regional_one_covers_the_region() -> None:
    providers = [HEALTH_ELSEWHERE, HEALTH_NATIONAL]
    assert choose_provider(providers, C.HEALTH_CARE, REGION) == HEALTH_NATIONAL
    plans = plan_referrals(arrival(V.MEDICAL_NEEDS), providers, NOW)
    assert [p.to_org_id for p in plans] == ["org-health-national"]


def test_provider_of_another_region_only_is_not_chosen() -> None:
    assert choose_provider([HEALTH_ELSEWHERE], C.HEALTH_CARE, REGION) is None
    assert plan_referrals(arrival(V.MEDICAL_NEEDS), [HEALTH_ELSEWHERE], NOW) == []


def test_provider_choice_is_deterministic() -> None:
    a = provider("org-a", C.HEALTH_CARE, REGION)
    b = provider("org-b", C.HEALTH_CARE, REGION)
    assert choose_provider([b, a], C.HEALTH_CARE, REGION) == a
    assert choose_provider([a, b], C.HEALTH_CARE, REGION) == a


def test_provider_of_another_category_is_ignored() -> None:
    assert choose_provider([CHILD_PROTECTION], C.HEALTH_CARE, REGION) is None


def test_no_provider_means_no_referral() -> None:
    assert plan_referrals(arrival(V.UNACCOMPANIED_CHILD, is_child=True), [], NOW) == []
    assert plan_referrals(arrival(V.MEDICAL_NEEDS, V.GBV_SURVIVOR), [CHILD_PROTECTION], NOW) == []


def test_never_refers_to_the_owner_organisation_itself() -> None:
    own = provider(OWNER, C.CHILD_PROTECTION, REGION)
    assert plan_referrals(arrival(V.UNACCOMPANIED_CHILD, is_child=True), [own], NOW) == []


def test_owner_offering_a_service_itself_gets_no_referral_for_it_but_others_still_go() -> None:
    own = provider(OWNER, C.HEALTH_CARE, REGION)
    plans = plan_referrals(
        arrival(V.MEDICAL_NEEDS, V.UNACCOMPANIED_CHILD, is_child=True), [own, HEALTH_NATIONAL, CHILD_PROTECTION], NOW
    )
    assert all(p.to_org_id != OWNER for p in plans)
    assert [p.category for p in plans] == [C.CHILD_PROTECTION]


# --- consent ------------------------------------------------------------------------------------


def test_adult_without_consent_is_awaiting_consent() -> None:
    plans = plan_referrals(arrival(V.GBV_SURVIVOR), [provider("org-gbv", C.GBV_RESPONSE)], NOW)
    assert len(plans) == 1
    assert plans[0].status == AWAITING_CONSENT
    assert plans[0].legal_basis is None
    assert plans[0].priority == Priority.URGENT
    assert plans[0].due_at == NOW + timedelta(hours=24)


def test_adult_with_consent_to_other_organisations_only_is_awaiting_consent() -> None:
    plans = plan_referrals(
        arrival(V.TRAFFICKING_VICTIM, consent=True, recipients=("org-unrelated",)),
        [provider("org-ct", C.COUNTER_TRAFFICKING)],
        NOW,
    )
    assert [(p.to_org_id, p.status, p.legal_basis) for p in plans] == [("org-ct", AWAITING_CONSENT, None)]


def test_recipients_are_ignored_when_consent_is_not_given() -> None:
    # Inconsistent input (intake refuses it): recipients without consent grant nothing.
    plans = plan_referrals(
        arrival(V.GBV_SURVIVOR, consent=False, recipients=("org-gbv",)),
        [provider("org-gbv", C.GBV_RESPONSE)],
        NOW,
    )
    assert plans[0].status == AWAITING_CONSENT
    assert plans[0].legal_basis is None


# --- de-duplication and combinations ---------------------------------------------------------


def test_one_referral_per_recipient_and_category_when_several_triggers_match() -> None:
    plans = plan_referrals(arrival(V.MEDICAL_NEEDS, V.PREGNANT), [HEALTH_REGIONAL], NOW)
    assert len(plans) == 1
    assert (plans[0].to_org_id, plans[0].category) == ("org-health-gao", C.HEALTH_CARE)


def test_both_child_flags_give_a_single_child_protection_referral() -> None:
    plans = plan_referrals(
        arrival(V.UNACCOMPANIED_CHILD, V.SEPARATED_CHILD, is_child=True), [CHILD_PROTECTION], NOW
    )
    assert len(plans) == 1


def test_several_needs_give_one_referral_per_category() -> None:
    providers = [
        CHILD_PROTECTION,
        HEALTH_REGIONAL,
        provider("org-ct", C.COUNTER_TRAFFICKING),
        provider("org-mh", C.MHPSS_COUNSELLING, REGION),
    ]
    plans = plan_referrals(
        arrival(V.UNACCOMPANIED_CHILD, V.TRAFFICKING_VICTIM, V.PREGNANT, V.MENTAL_HEALTH_NEEDS, is_child=True),
        providers,
        NOW,
    )
    by_category = {p.category: p for p in plans}
    assert set(by_category) == {C.CHILD_PROTECTION, C.COUNTER_TRAFFICKING, C.HEALTH_CARE, C.MHPSS_COUNSELLING}
    assert len(plans) == 4
    # Only the child-protection rule has a basis without consent.
    assert by_category[C.CHILD_PROTECTION].status == PENDING
    assert by_category[C.COUNTER_TRAFFICKING].status == AWAITING_CONSENT
    assert by_category[C.MHPSS_COUNSELLING].priority == Priority.NORMAL
    assert by_category[C.MHPSS_COUNSELLING].due_at == NOW + timedelta(days=7)


def test_no_vulnerabilities_means_no_referral() -> None:
    providers = [CHILD_PROTECTION, HEALTH_REGIONAL, HEALTH_NATIONAL]
    assert plan_referrals(arrival(), providers, NOW) == []
    assert plan_referrals(arrival(consent=True, recipients=("org-child",)), providers, NOW) == []


def test_vulnerabilities_without_a_rule_give_no_referral() -> None:
    providers = [CHILD_PROTECTION, HEALTH_REGIONAL]
    assert plan_referrals(arrival(V.ELDERLY, V.EX_DETAINEE, V.SINGLE_PARENT), providers, NOW) == []
