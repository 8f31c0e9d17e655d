"""Routing of the referral service (services/referral/domain.py) by the packaged rules file: pure
functions only. The first part checks the six protection rules ported from code (the immediate
package every arrival also gets is left out there, see ``plan``); the second the package, the
provider order, eligibility, capacity and the reason of an unmet need."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from dataclasses import replace

from contracts.events import ArrivalRegisteredV1
from contracts.reference import ArrivalPoint, LegalBasis, Priority, ServiceCategory, Sex, UnassignedReason, Vulnerability
from services.referral.domain import (
    AWAITING_CONSENT,
    PENDING,
    UNASSIGNED,
    Person,
    PlannedReferral,
    Provider,
    Rule,
    RuleSet,
    choose_provider,
    plan_referrals,
    rank_providers,
    unassigned_reason,
)
from services.referral.rules import load_rules

RULES = load_rules()  # the packaged file, as the service loads it

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


def provider(org_id: str, category: ServiceCategory, *regions: str, **more: object) -> Provider:
    return Provider(org_id=org_id, category=category, regions=frozenset(regions), **more)  # type: ignore[arg-type]


def plan(arrival: ArrivalRegisteredV1, providers: list[Provider], now: datetime = NOW) -> list[PlannedReferral]:
    """The referrals the protection rules make, the immediate package and unmet needs left out."""
    return [p for p in plan_referrals(arrival, providers, now, RULES)
            if not p.reason_code.startswith("IMMEDIATE_") and p.status != UNASSIGNED]


def unmet(arrival: ArrivalRegisteredV1, providers: list[Provider]) -> dict[ServiceCategory, UnassignedReason | None]:
    return {p.category: p.unassigned_reason for p in plan_referrals(arrival, providers, NOW, RULES)
            if p.status == UNASSIGNED and not p.reason_code.startswith("IMMEDIATE_")}


CHILD_PROTECTION = provider("org-child", C.CHILD_PROTECTION)
HEALTH_NATIONAL = provider("org-health-national", C.HEALTH_CARE)
HEALTH_REGIONAL = provider("org-health-gao", C.HEALTH_CARE, REGION)
HEALTH_ELSEWHERE = provider("org-health-kayes", C.HEALTH_CARE, OTHER_REGION)


# --- children -------------------------------------------------------------------------------


def test_unaccompanied_child_is_referred_to_child_protection_urgently_without_consent() -> None:
    plans = plan(arrival(V.UNACCOMPANIED_CHILD, is_child=True), [CHILD_PROTECTION], NOW)

    assert len(plans) == 1
    made = plans[0]
    assert made.to_org_id == "org-child"
    assert made.category == C.CHILD_PROTECTION
    assert made.priority == Priority.URGENT
    assert made.due_at == NOW + timedelta(hours=24)
    assert made.legal_basis == LegalBasis.VITAL_INTEREST
    assert made.status == PENDING
    assert made.reason_code == made.rule_id == "UNACCOMPANIED_OR_SEPARATED_CHILD"
    assert made.rules_version == RULES.version


def test_separated_child_triggers_the_same_rule() -> None:
    plans = plan(arrival(V.SEPARATED_CHILD, is_child=True), [CHILD_PROTECTION], NOW)
    assert [(p.category, p.priority, p.legal_basis, p.status) for p in plans] == [
        (C.CHILD_PROTECTION, Priority.URGENT, LegalBasis.VITAL_INTEREST, PENDING)
    ]


def test_child_referral_uses_consent_when_the_provider_is_a_consented_recipient() -> None:
    plans = plan(
        arrival(V.UNACCOMPANIED_CHILD, consent=True, recipients=("org-child",), is_child=True),
        [CHILD_PROTECTION],
        NOW,
    )
    assert len(plans) == 1
    assert plans[0].legal_basis == LegalBasis.CONSENT
    assert plans[0].status == PENDING


def test_child_with_consent_to_another_org_still_goes_on_vital_interest() -> None:
    plans = plan(
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

    plans = plan(
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
    plans = plan(arrival(V.MEDICAL_NEEDS), providers, NOW)
    assert [p.to_org_id for p in plans] == ["org-health-national"]


def test_provider_of_another_region_only_is_not_chosen() -> None:
    assert choose_provider([HEALTH_ELSEWHERE], C.HEALTH_CARE, REGION) is None
    assert plan(arrival(V.MEDICAL_NEEDS), [HEALTH_ELSEWHERE], NOW) == []
    assert unmet(arrival(V.MEDICAL_NEEDS), [HEALTH_ELSEWHERE]) == {C.HEALTH_CARE: UnassignedReason.NO_PROVIDER_IN_REGION}


def test_provider_choice_is_deterministic() -> None:
    a = provider("org-a", C.HEALTH_CARE, REGION)
    b = provider("org-b", C.HEALTH_CARE, REGION)
    assert choose_provider([b, a], C.HEALTH_CARE, REGION) == a
    assert choose_provider([a, b], C.HEALTH_CARE, REGION) == a


def test_provider_of_another_category_is_ignored() -> None:
    assert choose_provider([CHILD_PROTECTION], C.HEALTH_CARE, REGION) is None


def test_no_provider_means_an_unassigned_need_not_silence() -> None:
    assert plan(arrival(V.UNACCOMPANIED_CHILD, is_child=True), [], NOW) == []
    assert unmet(arrival(V.UNACCOMPANIED_CHILD, is_child=True), []) == {
        C.CHILD_PROTECTION: UnassignedReason.NO_PROVIDER_IN_REGION}
    assert unmet(arrival(V.MEDICAL_NEEDS, V.GBV_SURVIVOR), [CHILD_PROTECTION]) == {
        C.HEALTH_CARE: UnassignedReason.NO_PROVIDER_IN_REGION, C.GBV_RESPONSE: UnassignedReason.NO_PROVIDER_IN_REGION}


def test_never_refers_to_the_owner_organisation_itself() -> None:
    """The owner serves the need in house: no referral, and no unmet need either."""
    own = provider(OWNER, C.CHILD_PROTECTION, REGION)
    assert plan(arrival(V.UNACCOMPANIED_CHILD, is_child=True), [own], NOW) == []
    assert unmet(arrival(V.UNACCOMPANIED_CHILD, is_child=True), [own]) == {}


def test_an_owner_service_that_does_not_take_the_person_is_no_reason_to_skip_the_need() -> None:
    own_for_adults = provider(OWNER, C.CHILD_PROTECTION, REGION, min_age=18)
    plans = plan(arrival(V.UNACCOMPANIED_CHILD, is_child=True), [own_for_adults, CHILD_PROTECTION], NOW)
    assert [p.to_org_id for p in plans] == ["org-child"]


def test_owner_offering_a_service_itself_gets_no_referral_for_it_but_others_still_go() -> None:
    own = provider(OWNER, C.HEALTH_CARE, REGION)
    plans = plan(
        arrival(V.MEDICAL_NEEDS, V.UNACCOMPANIED_CHILD, is_child=True), [own, HEALTH_NATIONAL, CHILD_PROTECTION], NOW
    )
    assert all(p.to_org_id != OWNER for p in plans)
    assert [p.category for p in plans] == [C.CHILD_PROTECTION]


# --- consent ------------------------------------------------------------------------------------


def test_adult_without_consent_is_awaiting_consent() -> None:
    plans = plan(arrival(V.GBV_SURVIVOR), [provider("org-gbv", C.GBV_RESPONSE)], NOW)
    assert len(plans) == 1
    assert plans[0].status == AWAITING_CONSENT
    assert plans[0].legal_basis is None
    assert plans[0].priority == Priority.URGENT
    assert plans[0].due_at == NOW + timedelta(hours=24)


def test_adult_with_consent_to_other_organisations_only_is_awaiting_consent() -> None:
    plans = plan(
        arrival(V.TRAFFICKING_VICTIM, consent=True, recipients=("org-unrelated",)),
        [provider("org-ct", C.COUNTER_TRAFFICKING)],
        NOW,
    )
    assert [(p.to_org_id, p.status, p.legal_basis) for p in plans] == [("org-ct", AWAITING_CONSENT, None)]


def test_recipients_are_ignored_when_consent_is_not_given() -> None:
    # Inconsistent input (intake refuses it): recipients without consent grant nothing.
    plans = plan(
        arrival(V.GBV_SURVIVOR, consent=False, recipients=("org-gbv",)),
        [provider("org-gbv", C.GBV_RESPONSE)],
        NOW,
    )
    assert plans[0].status == AWAITING_CONSENT
    assert plans[0].legal_basis is None


# --- de-duplication and combinations ---------------------------------------------------------


def test_one_referral_per_recipient_and_category_when_several_triggers_match() -> None:
    plans = plan(arrival(V.MEDICAL_NEEDS, V.PREGNANT), [HEALTH_REGIONAL], NOW)
    assert len(plans) == 1
    assert (plans[0].to_org_id, plans[0].category) == ("org-health-gao", C.HEALTH_CARE)


def test_both_child_flags_give_a_single_child_protection_referral() -> None:
    plans = plan(
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
    plans = plan(
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


def test_no_vulnerabilities_means_no_protection_referral() -> None:
    providers = [CHILD_PROTECTION, HEALTH_REGIONAL, HEALTH_NATIONAL]
    assert plan(arrival(), providers, NOW) == []
    assert plan(arrival(consent=True, recipients=("org-child",)), providers, NOW) == []
    assert unmet(arrival(), providers) == {}


def test_vulnerabilities_without_a_rule_give_no_referral() -> None:
    providers = [CHILD_PROTECTION, HEALTH_REGIONAL]
    assert plan(arrival(V.ELDERLY, V.EX_DETAINEE, V.SINGLE_PARENT), providers, NOW) == []
    assert unmet(arrival(V.ELDERLY, V.EX_DETAINEE, V.SINGLE_PARENT), providers) == {}


# --- the immediate reception package, for every returnee ------------------------------------------

PACKAGE = {C.RECEPTION, C.FOOD, C.SHELTER, C.NON_FOOD_ITEMS, C.ONWARD_TRANSPORT, C.CASH_ALLOWANCE}


def package(arrival: ArrivalRegisteredV1, providers: list[Provider]) -> dict[ServiceCategory, PlannedReferral]:
    return {p.category: p for p in plan_referrals(arrival, providers, NOW, RULES) if p.reason_code.startswith("IMMEDIATE_")}


def test_every_arrival_gets_the_immediate_package_even_without_any_vulnerability() -> None:
    """Arriving at Gao, going to Kayes: all six needs, served where the person is (Gao), unmet here."""
    needs = package(replace_arrival(arrival(), arrival_point=ArrivalPoint.GAO, destination_region=OTHER_REGION), [])
    assert set(needs) == PACKAGE
    assert {p.need_region for p in needs.values()} == {"07"}
    assert {p.status for p in needs.values()} == {UNASSIGNED}
    assert needs[C.RECEPTION].priority == Priority.URGENT and needs[C.RECEPTION].due_at == NOW + timedelta(hours=6)
    assert needs[C.ONWARD_TRANSPORT].due_at == NOW + timedelta(days=3)


def test_shelter_and_onward_transport_only_for_a_person_not_yet_home() -> None:
    home = replace_arrival(arrival(), arrival_point=ArrivalPoint.GAO, destination_region="07")
    assert set(package(home, [])) == PACKAGE - {C.SHELTER, C.ONWARD_TRANSPORT}
    unknown_place = replace_arrival(arrival(), arrival_point=ArrivalPoint.BORDER_POST, destination_region="07")
    assert set(package(unknown_place, [])) == PACKAGE


def test_package_needs_go_to_providers_covering_the_arrival_point_not_the_destination() -> None:
    bamako_food = provider("org-food-bamako", C.FOOD, "00")
    gao_food = provider("org-food-gao", C.FOOD, "07")
    person = replace_arrival(arrival(consent=True, recipients=("org-food-bamako",)),
                             arrival_point=ArrivalPoint.BAMAKO_AIRPORT, destination_region="07")
    food = package(person, [bamako_food, gao_food])[C.FOOD]
    assert (food.to_org_id, food.status, food.legal_basis, food.need_region) == (
        "org-food-bamako", PENDING, LegalBasis.CONSENT, "00")


def test_a_border_post_with_no_known_region_is_served_by_national_services_only() -> None:
    regional = provider("org-food-gao", C.FOOD, "07")
    person = replace_arrival(arrival(), arrival_point=ArrivalPoint.BORDER_POST)
    assert package(person, [regional])[C.FOOD].unassigned_reason == UnassignedReason.NO_PROVIDER_IN_REGION
    national = provider("org-food", C.FOOD)
    assert package(person, [regional, national])[C.FOOD].to_org_id == "org-food"


def test_without_consent_a_package_referral_waits_for_consent() -> None:
    person = replace_arrival(arrival(), arrival_point=ArrivalPoint.GAO)
    food = package(person, [provider("org-food", C.FOOD)])[C.FOOD]
    assert (food.status, food.legal_basis) == (AWAITING_CONSENT, None)


def replace_arrival(a: ArrivalRegisteredV1, **changes: object) -> ArrivalRegisteredV1:
    return a.model_copy(update=changes)


# --- the order among fitting providers (stated in domain.tie_order) ----------------------------------


def test_tie_order_regional_then_stated_capacity_most_free_then_organisation_then_service() -> None:
    national_roomy = provider("org-a", C.FOOD, capacity_available=50)
    regional_unknown = provider("org-z", C.FOOD, REGION)
    regional_few = provider("org-y", C.FOOD, REGION, capacity_available=2)
    regional_many = provider("org-x", C.FOOD, REGION, capacity_available=9)
    same_b = provider("org-b", C.FOOD, REGION, capacity_available=2, service_id="s-2")
    same_b_first = provider("org-b", C.FOOD, REGION, capacity_available=2, service_id="s-1")
    ranked = rank_providers([national_roomy, regional_unknown, regional_few, regional_many, same_b, same_b_first],
                            C.FOOD, REGION)
    assert ranked == [regional_many, same_b_first, same_b, regional_few, regional_unknown, national_roomy]


def test_order_does_not_depend_on_the_order_providers_are_read() -> None:
    providers = [provider(f"org-{i}", C.FOOD, REGION, capacity_available=i % 3) for i in range(9)]
    assert rank_providers(providers, C.FOOD, REGION) == rank_providers(providers[::-1], C.FOOD, REGION)


def test_excluded_organisations_are_skipped_for_the_next_one() -> None:
    providers = [provider("org-a", C.FOOD, REGION), provider("org-b", C.FOOD, REGION), provider("org-c", C.FOOD)]
    assert choose_provider(providers, C.FOOD, REGION, exclude={"org-a"}) == providers[1]
    assert choose_provider(providers, C.FOOD, REGION, exclude={"org-a", "org-b"}) == providers[2]
    assert choose_provider(providers, C.FOOD, REGION, exclude={"org-a", "org-b", "org-c"}) is None


# --- eligibility and capacity -------------------------------------------------------------------------


def test_a_provider_for_adults_only_does_not_take_a_child_and_the_next_one_does() -> None:
    adults = provider("org-a", C.CHILD_PROTECTION, REGION, min_age=18)
    anyone = provider("org-b", C.CHILD_PROTECTION)
    child = replace_arrival(arrival(V.UNACCOMPANIED_CHILD, is_child=True), age_years=15)
    assert [p.to_org_id for p in plan(child, [adults, anyone])] == ["org-b"]
    # Age unknown: a child still does not pass an adults-only service.
    assert [p.to_org_id for p in plan(arrival(V.UNACCOMPANIED_CHILD, is_child=True), [adults, anyone])] == ["org-b"]


def test_eligibility_by_age_range_sex_and_vulnerability() -> None:
    woman = replace_arrival(arrival(V.GBV_SURVIVOR), sex=Sex.FEMALE, age_years=30)
    for service, eligible in [
        (provider("o", C.GBV_RESPONSE, sexes=frozenset({"FEMALE"})), True),
        (provider("o", C.GBV_RESPONSE, sexes=frozenset({"MALE"})), False),
        (provider("o", C.GBV_RESPONSE, min_age=18, max_age=35), True),
        (provider("o", C.GBV_RESPONSE, max_age=25), False),
        (provider("o", C.GBV_RESPONSE, vulnerabilities=frozenset({"GBV_SURVIVOR", "TRAFFICKING_VICTIM"})), True),
        (provider("o", C.GBV_RESPONSE, vulnerabilities=frozenset({"TRAFFICKING_VICTIM"})), False),
    ]:
        assert (choose_provider([service], C.GBV_RESPONSE, REGION, Person.from_arrival(woman)) is not None) is eligible, service


def test_a_stated_capacity_of_zero_is_full_and_an_unstated_one_is_open() -> None:
    full = provider("org-full", C.FOOD, REGION, capacity_available=0, capacity_maximum=40)
    unknown = provider("org-unknown", C.FOOD)
    assert choose_provider([full], C.FOOD, REGION) is None
    assert choose_provider([full, unknown], C.FOOD, REGION) == unknown


def test_the_reason_of_an_unmet_need_is_the_furthest_check_a_service_passed() -> None:
    person = Person.from_arrival(replace_arrival(arrival(V.GBV_SURVIVOR), sex=Sex.MALE, age_years=30))
    elsewhere = provider("org-e", C.GBV_RESPONSE, OTHER_REGION)
    women_only = provider("org-w", C.GBV_RESPONSE, REGION, sexes=frozenset({"FEMALE"}))
    full = provider("org-f", C.GBV_RESPONSE, capacity_available=0)
    assert unassigned_reason([], C.GBV_RESPONSE, REGION, person) == UnassignedReason.NO_PROVIDER_IN_REGION
    assert unassigned_reason([elsewhere], C.GBV_RESPONSE, REGION, person) == UnassignedReason.NO_PROVIDER_IN_REGION
    assert unassigned_reason([elsewhere, women_only], C.GBV_RESPONSE, REGION, person) == UnassignedReason.NOT_ELIGIBLE
    assert unassigned_reason([women_only, full], C.GBV_RESPONSE, REGION, person) == UnassignedReason.NO_CAPACITY
    # Excluded organisations (the owner, those already tried) count as absent.
    assert unassigned_reason([full], C.GBV_RESPONSE, REGION, person, exclude={"org-f"}) == (
        UnassignedReason.NO_PROVIDER_IN_REGION)


# --- rule triggers and one need per category ----------------------------------------------------------


def _rules(*rules: Rule) -> RuleSet:
    return RuleSet(version="2026-01-01.1", rules=rules)


def test_triggers_all_must_hold_age_sex_arrival_point_children_adults() -> None:
    base = Rule("R", C.LEGAL_AID, Priority.NORMAL, timedelta(days=1))
    person = replace_arrival(arrival(), sex=Sex.FEMALE, age_years=70)
    lawyer = [provider("org-law", C.LEGAL_AID)]
    for rule, applies in [
        (replace(base, every_arrival=True), True),
        (replace(base, min_age=65), True),
        (replace(base, min_age=65, sexes=frozenset({Sex.MALE})), False),
        (replace(base, max_age=17), False),
        (replace(base, arrival_points=frozenset({ArrivalPoint.GAO})), True),
        (replace(base, arrival_points=frozenset({ArrivalPoint.KAYES})), False),
        (replace(base, children=True), False),
        (replace(base, children=False), True),
        (replace(base, vulnerabilities=frozenset({V.ELDERLY})), False),
    ]:
        assert bool(plan_referrals(person, lawyer, NOW, _rules(rule))) is applies, rule
    # An age trigger never holds for an unknown age.
    assert plan_referrals(arrival(), lawyer, NOW, _rules(replace(base, min_age=0))) == []


def test_two_rules_for_one_category_make_one_need_the_most_urgent() -> None:
    slow = Rule("SLOW", C.HEALTH_CARE, Priority.NORMAL, timedelta(days=7), every_arrival=True)
    fast = Rule("FAST", C.HEALTH_CARE, Priority.HIGH, timedelta(hours=72), vulnerabilities=frozenset({V.PREGNANT}))
    [made] = plan_referrals(arrival(V.PREGNANT), [HEALTH_REGIONAL], NOW, _rules(slow, fast))
    assert (made.rule_id, made.priority, made.rules_version) == ("FAST", Priority.HIGH, "2026-01-01.1")
    [made] = plan_referrals(arrival(), [HEALTH_REGIONAL], NOW, _rules(slow, fast))
    assert made.rule_id == "SLOW"
