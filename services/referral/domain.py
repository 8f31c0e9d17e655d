"""Routing rules: which needs go to which kind of service, how fast, on which legal basis. No I/O."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from contracts.events import ArrivalRegisteredV1, SharingRecipient
from contracts.reference import (
    OPEN_REFERRAL_STATES,
    LegalBasis,
    Priority,
    Purpose,
    ReferralStatus,
    ServiceCategory,
    Vulnerability,
)

PENDING = ReferralStatus.PENDING
ACCEPTED = ReferralStatus.ACCEPTED
REJECTED = ReferralStatus.REJECTED
DONE = ReferralStatus.DONE
REVOKED = ReferralStatus.REVOKED
AWAITING_CONSENT = ReferralStatus.AWAITING_CONSENT
OPEN_STATES = OPEN_REFERRAL_STATES


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
    org_type: str | None = None


@dataclass(frozen=True)
class PlannedReferral:
    to_org_id: str
    category: ServiceCategory
    priority: Priority
    due_at: datetime
    reason_code: str
    legal_basis: LegalBasis | None
    status: ReferralStatus


def choose_provider(providers: list[Provider], category: ServiceCategory, region: str) -> Provider | None:
    """A provider covering the destination region, else one with national coverage."""
    offering = sorted((p for p in providers if p.category == category), key=lambda p: p.org_id)
    regional = [p for p in offering if region in p.regions]
    national = [p for p in offering if not p.regions]
    return (regional or national or [None])[0]


def arrival_recipients(arrival: ArrivalRegisteredV1) -> list[SharingRecipient]:
    """Who the consent taken at registration covers for referral (only consent given for that purpose)."""
    if not (arrival.consent_given and Purpose.REFERRAL in arrival.consent_purposes):
        return []
    return ([SharingRecipient(org_id=o, legal_basis=LegalBasis.CONSENT) for o in arrival.consent_recipient_org_ids]
            + [SharingRecipient(org_type=t, legal_basis=LegalBasis.CONSENT)
               for t in arrival.consent_recipient_org_types])


def plan_referrals(arrival: ArrivalRegisteredV1, providers: list[Provider], now: datetime) -> list[PlannedReferral]:
    """Apply every rule whose trigger is present; one referral per (recipient, category)."""
    present = set(arrival.vulnerabilities)
    # Only consent given for the purpose of referral covers a referral.
    for_referral = arrival.consent_given and Purpose.REFERRAL in arrival.consent_purposes
    consented = set(arrival.consent_recipient_org_ids) if for_referral else set()
    consented_types = {t.value for t in arrival.consent_recipient_org_types} if for_referral else set()
    planned: dict[tuple[str, ServiceCategory], PlannedReferral] = {}
    for rule in RULES:
        if not rule.triggers & present:
            continue
        provider = choose_provider(providers, rule.category, arrival.destination_region)
        if provider is None or provider.org_id == arrival.owner_org_id:
            continue
        covered = provider.org_id in consented or provider.org_type in consented_types
        basis = LegalBasis.CONSENT if covered else rule.basis_without_consent
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


# --- transitions (Primero's model: one record per referral, explicit states) -------------------

# action → (states it applies to, resulting state, who may do it)
TRANSITIONS: dict[str, tuple[frozenset[ReferralStatus], ReferralStatus, str]] = {
    "accept": (frozenset({PENDING}), ACCEPTED, "recipient"),
    "reject": (frozenset({PENDING}), REJECTED, "recipient"),
    "complete": (frozenset({ACCEPTED}), DONE, "recipient"),
    "revoke": (frozenset({PENDING, ACCEPTED, AWAITING_CONSENT}), REVOKED, "owner"),
}


class TransitionRefused(Exception):
    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.message, self.code = message, code


def transition(action: str, status: str, *, is_recipient: bool, is_owner: bool) -> ReferralStatus:
    """The state after ``action``, or TransitionRefused saying why not."""
    allowed_from, target, actor = TRANSITIONS[action]
    if (actor == "recipient" and not is_recipient) or (actor == "owner" and not is_owner):
        raise TransitionRefused(f"Only the {'receiving' if actor == 'recipient' else 'referring'} organisation "
                                f"may {action} this referral.", "FORBIDDEN")
    if status not in allowed_from:
        raise TransitionRefused(f"A referral in state {status} cannot be {action}ed.", "INVALID_TRANSITION")
    return target


def basis_for(recipients: list[SharingRecipient], org_id: str, org_type: str | None) -> LegalBasis | None:
    """The basis on which the case may go to this organisation for referral, consent first."""
    matching = [r.legal_basis for r in recipients
                if r.org_id == org_id or (org_type is not None and r.org_type == org_type)]
    if LegalBasis.CONSENT in matching:
        return LegalBasis.CONSENT
    return matching[0] if matching else None


@dataclass(frozen=True)
class Reassessment:
    referral_id: str
    old_status: ReferralStatus
    new_status: ReferralStatus
    legal_basis: LegalBasis | None
    reason: str


def reassess(referrals: list[dict[str, object]], basis: Callable[[str], LegalBasis | None]) -> list[Reassessment]:
    """After a sharing change: waiting referrals now covered go live; open referrals that rested on
    consent and are no longer covered are revoked at once. Referrals on a child's vital interest
    decided at routing are untouched."""
    changes = []
    for r in referrals:
        to_org, status, current = str(r["to_org_id"]), ReferralStatus(str(r["status"])), r["legal_basis"]
        new_basis = basis(to_org)
        if status == AWAITING_CONSENT and new_basis is not None:
            changes.append(Reassessment(str(r["id"]), status, PENDING, new_basis, "SHARING_RECORDED"))
        elif status in OPEN_STATES and current == LegalBasis.CONSENT.value and new_basis is None:
            changes.append(Reassessment(str(r["id"]), status, REVOKED, LegalBasis.CONSENT, "CONSENT_WITHDRAWN"))
        elif status in OPEN_STATES and current == LegalBasis.CONSENT.value and new_basis != LegalBasis.CONSENT:
            changes.append(Reassessment(str(r["id"]), status, status, new_basis, "BASIS_CHANGED"))
    return changes
