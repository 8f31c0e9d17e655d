"""A family to the same provider where the rules allow (services/referral/domain.py ``choose_for_family``):
pure, no database."""

from __future__ import annotations

from datetime import UTC, datetime

from contracts.events import SharingRecipient
from contracts.reference import ArrivalPoint, LegalBasis, ProviderReason, ServiceCategory
from services.referral.domain import PENDING, Person, Provider, choose_for_family, plan_need, Rule
from services.referral.rules import load_rules

C = ServiceCategory
REGION = "07"
NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


def person(*consented: str, owner: str = "dgme") -> Person:
    return Person(owner, ArrivalPoint.GAO, REGION, is_child=False, age_years=30,
                  recipients=tuple(SharingRecipient(org_id=o, legal_basis=LegalBasis.CONSENT) for o in consented))


def shelter(org: str, free: int | None = None, regions: frozenset[str] = frozenset({REGION}),
            **kw: object) -> Provider:
    return Provider(org, C.SHELTER, regions, service_id=f"svc-{org}", capacity_available=free,
                    **kw)  # type: ignore[arg-type]


# By the stated order "a-big" (most free places) comes first; the family's member is served by "b-small".
PROVIDERS = [shelter("a-big", 20), shelter("b-small", 2)]


def test_without_a_family_the_stated_order_decides_and_says_so() -> None:
    chosen, reason = choose_for_family(PROVIDERS, C.SHELTER, REGION, person("a-big", "b-small"), (), (), None)
    assert (chosen.org_id if chosen else None, reason) == ("a-big", ProviderReason.TIE_ORDER)


def test_the_provider_already_serving_a_family_member_is_preferred_when_consent_allows() -> None:
    chosen, reason = choose_for_family(PROVIDERS, C.SHELTER, REGION, person("a-big", "b-small"), (),
                                       {"svc-b-small"}, None)
    assert (chosen.org_id if chosen else None, reason) == ("b-small", ProviderReason.FAMILY)


def test_a_basis_other_than_consent_allows_it_too() -> None:
    chosen, reason = choose_for_family(PROVIDERS, C.SHELTER, REGION, person(), (), {"svc-b-small"},
                                       LegalBasis.VITAL_INTEREST)
    assert (chosen.org_id if chosen else None, reason) == ("b-small", ProviderReason.FAMILY)


def test_otherwise_the_normal_rule() -> None:
    # The person's consent does not cover the family's provider: not sent there without a basis.
    assert choose_for_family(PROVIDERS, C.SHELTER, REGION, person("a-big"), (), {"svc-b-small"}, None)[1] \
        == ProviderReason.TIE_ORDER
    # No room left there.
    full = [shelter("a-big", 20), shelter("b-small", 0)]
    assert choose_for_family(full, C.SHELTER, REGION, person("a-big", "b-small"), (), {"svc-b-small"}, None)[0] \
        == full[0]
    # Not covering the person's region, not eligible (adults only over 60), or excluded.
    elsewhere = [shelter("a-big", 20), shelter("b-small", 2, regions=frozenset({"01"}))]
    assert choose_for_family(elsewhere, C.SHELTER, REGION, person("a-big", "b-small"), (), {"svc-b-small"},
                             None)[0] == elsewhere[0]
    older = [shelter("a-big", 20), shelter("b-small", 2, min_age=60)]
    assert choose_for_family(older, C.SHELTER, REGION, person("a-big", "b-small"), (), {"svc-b-small"},
                             None)[0] == older[0]
    assert choose_for_family(PROVIDERS, C.SHELTER, REGION, person("a-big", "b-small"), {"b-small"},
                             {"svc-b-small"}, None)[0] == PROVIDERS[0]
    # Another category's service of the family is no reason.
    assert choose_for_family(PROVIDERS, C.SHELTER, REGION, person("a-big", "b-small"), (), {"svc-other"},
                             None)[1] == ProviderReason.TIE_ORDER


def test_a_planned_referral_carries_the_reason() -> None:
    rule = next(r for r in load_rules().rules if r.category == C.SHELTER)
    plan = plan_need(person("a-big", "b-small"), rule, "v", REGION, PROVIDERS, NOW, family_services={"svc-b-small"})
    assert plan is not None and (plan.to_org_id, plan.status, plan.provider_reason) == (
        "b-small", PENDING, ProviderReason.FAMILY)
    assert isinstance(rule, Rule)
