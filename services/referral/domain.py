"""Routing rules: which needs go to which kind of service, how fast, on which legal basis. No I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from contracts.events import ArrivalRegisteredV1
from contracts.reference import LegalBasis, Priority, ServiceCategory, Vulnerability

PENDING = "PENDING"
AWAITING_CONSENT = "AWAITING_CONSENT"


@dataclass(frozen=True)
class Rule:
    reason_code: str
    triggers: frozenset[Vulnerability]
    category: ServiceCategory
    priority: Priority
    due_in: timedelta
    # Basis that applies without consent (a child's best interest is a vital interest).
    basis_without_consent: LegalBasis | None = None


RULES: tuple[Rule, ...] = (
    Rule("UNACCOMPANIED_OR_SEPARATED_CHILD",
         frozenset({Vulnerability.UNACCOMPANIED_CHILD, Vulnerability.SEPARATED_CHILD}),
         ServiceCategory.CHILD_PROTECTION, Priority.URGENT, timedelta(hours=24), LegalBasis.VITAL_INTEREST),
    Rule("TRAFFICKING_VICTIM", frozenset({Vulnerability.TRAFFICKING_VICTIM}),
         ServiceCategory.COUNTER_TRAFFICKING, Priority.URGENT, timedelta(hours=24)),
    Rule("GBV_SURVIVOR", frozenset({Vulnerability.GBV_SURVIVOR}),
         ServiceCategory.GBV_RESPONSE, Priority.URGENT, timedelta(hours=24)),
    Rule("MEDICAL_NEEDS", frozenset({Vulnerability.MEDICAL_NEEDS, Vulnerability.PREGNANT}),
         ServiceCategory.HEALTH_CARE, Priority.HIGH, timedelta(hours=72)),
    Rule("MENTAL_HEALTH_NEEDS", frozenset({Vulnerability.MENTAL_HEALTH_NEEDS}),
         ServiceCategory.MHPSS_COUNSELLING, Priority.NORMAL, timedelta(days=7)),
    Rule("INTERNATIONAL_PROTECTION", frozenset({Vulnerability.INTERNATIONAL_PROTECTION}),
         ServiceCategory.INTERNATIONAL_PROTECTION, Priority.HIGH, timedelta(hours=72)),
)


@dataclass(frozen=True)
class Provider:
    org_id: str
    category: ServiceCategory
    regions: frozenset[str]  # empty: national coverage


@dataclass(frozen=True)
class PlannedReferral:
    to_org_id: str
    category: ServiceCategory
    priority: Priority
    due_at: datetime
    reason_code: str
    legal_basis: LegalBasis | None
    status: str


def choose_provider(providers: list[Provider], category: ServiceCategory, region: str) -> Provider | None:
    """A provider covering the destination region, else one with national coverage."""
    offering = sorted((p for p in providers if p.category == category), key=lambda p: p.org_id)
    regional = [p for p in offering if region in p.regions]
    national = [p for p in offering if not p.regions]
    return (regional or national or [None])[0]


def plan_referrals(arrival: ArrivalRegisteredV1, providers: list[Provider], now: datetime) -> list[PlannedReferral]:
    """Apply every rule whose trigger is present; one referral per (recipient, category)."""
    present = set(arrival.vulnerabilities)
    consented = set(arrival.consent_recipient_org_ids) if arrival.consent_given else set()
    planned: dict[tuple[str, ServiceCategory], PlannedReferral] = {}
    for rule in RULES:
        if not rule.triggers & present:
            continue
        provider = choose_provider(providers, rule.category, arrival.destination_region)
        if provider is None or provider.org_id == arrival.owner_org_id:
            continue
        basis = LegalBasis.CONSENT if provider.org_id in consented else rule.basis_without_consent
        planned.setdefault(
            (provider.org_id, rule.category),
            PlannedReferral(
                to_org_id=provider.org_id,
                category=rule.category,
                priority=rule.priority,
                due_at=now + rule.due_in,
                reason_code=rule.reason_code,
                legal_basis=basis,
                status=PENDING if basis else AWAITING_CONSENT,
            ),
        )
    return list(planned.values())
