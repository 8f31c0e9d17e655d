"""Intake rules, free of I/O: who is a child, who may read a case, what they may see of it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from contracts.commands import RegisterArrival
from contracts.events import SharingCoverage, SharingRecipient
from contracts.reference import (
    CHILD_VULNERABILITIES,
    OPEN_REFERRAL_STATES,
    SENSITIVE_VULNERABILITIES,
    LegalBasis,
    Purpose,
    ReferralStatus,
    SensitiveCategory,
    Vulnerability,
)

ADULT_AGE = 18
OWNER_PURPOSE = "CASE_MANAGEMENT"  # why the owner sees its case (reported in the case's ``access``)


def is_child(arrival: RegisterArrival, today: date) -> bool:
    """A child by age, or by a screening flag that only applies to children."""
    return arrival.age_on(today) < ADULT_AGE or bool(CHILD_VULNERABILITIES & set(arrival.vulnerabilities))


@dataclass(frozen=True)
class Basis:
    """One recorded basis for sharing (a consent given or refused, or another legal basis)."""

    id: str
    legal_basis: LegalBasis
    given: bool
    purposes: frozenset[Purpose]
    org_ids: frozenset[str]
    org_types: frozenset[str]
    withdrawn: bool

    def covers(self, org_id: str, org_type: str | None, purpose: Purpose) -> bool:
        if self.withdrawn or purpose not in self.purposes:
            return False
        if self.legal_basis == LegalBasis.CONSENT and not self.given:
            return False
        return org_id in self.org_ids or (org_type is not None and org_type in self.org_types)


@dataclass(frozen=True)
class Grant:
    """A referral held by an organisation for the case (projected from referral events)."""

    org_id: str
    legal_basis: LegalBasis | None
    status: ReferralStatus

    @property
    def open(self) -> bool:
        return self.status in OPEN_REFERRAL_STATES


@dataclass(frozen=True)
class Access:
    allowed: bool
    purpose: str | None = None
    legal_basis: LegalBasis | None = None


def case_access(owner_org_id: str, org_id: str, org_type: str | None, grants: Iterable[Grant],
                bases: Iterable[Basis], manager: str | None = None) -> Access:
    """The owner always; another organisation only while it holds an open referral, or manages the
    case's follow-up, AND a basis covers it for that purpose.

    For a referral the basis is the consent covering that organisation for referral, or a basis other
    than consent recorded on the referral itself (a child's vital interest) or on the case. For the
    follow-up manager (``manager``, from the follow-up service's hand-overs) it is consent or another
    recorded basis covering it for FOLLOW_UP: a manager whose basis is withdrawn reads no more.
    """
    if org_id == owner_org_id:
        return Access(True, OWNER_PURPOSE)
    bases = list(bases)
    open_grants = [g for g in grants if g.org_id == org_id and g.open]
    for grant in open_grants:
        if grant.legal_basis not in (None, LegalBasis.CONSENT):
            return Access(True, Purpose.REFERRAL.value, grant.legal_basis)
    if open_grants:
        for basis in bases:
            if basis.covers(org_id, org_type, Purpose.REFERRAL):
                return Access(True, Purpose.REFERRAL.value, basis.legal_basis)
    if manager == org_id:
        for basis in bases:
            if basis.covers(org_id, org_type, Purpose.FOLLOW_UP):
                return Access(True, Purpose.FOLLOW_UP.value, basis.legal_basis)
    return Access(False)


def visible_categories(scopes: frozenset[str]) -> frozenset[SensitiveCategory]:
    return frozenset(c for c in SensitiveCategory if c.scope in scopes)


def split_vulnerabilities(codes: Iterable[str], visible: frozenset[SensitiveCategory]) -> dict[str, object]:
    """Every flag the caller may see, and per sensitive category either its flags or None (restricted).

    A restricted category is reported as restricted whether or not the case has flags in it,
    and its flags are left out of the list, so the answer never reveals that one exists.
    """
    shown = visible_flags(codes, visible)
    sensitive: dict[str, list[str] | None] = {c.value: ([] if c in visible else None) for c in SensitiveCategory}
    for code in shown:
        category = SENSITIVE_VULNERABILITIES.get(Vulnerability(code))
        if category is not None:
            sensitive[category.value].append(code)  # type: ignore[union-attr]
    return {"vulnerabilities": shown, "sensitive": sensitive}


def visible_flags(codes: Iterable[str], visible: frozenset[SensitiveCategory]) -> list[str]:
    """The flags the caller may see, sorted: every flag of no sensitive category, and those of ``visible``."""
    return [code for code in sorted(codes)
            if SENSITIVE_VULNERABILITIES.get(Vulnerability(code)) in (None, *visible)]


def coverage(bases: Iterable[Basis]) -> list[SharingCoverage]:
    """Who the case may be shared with, per purpose, from the bases in force (consent listed first)."""
    live = [b for b in bases if not b.withdrawn and (b.given or b.legal_basis != LegalBasis.CONSENT)]
    live.sort(key=lambda b: b.legal_basis != LegalBasis.CONSENT)
    result = []
    for purpose in Purpose:
        seen: set[tuple[str | None, str | None]] = set()
        recipients = []
        for basis in (b for b in live if purpose in b.purposes):
            targets = [(o, None) for o in sorted(basis.org_ids)] + [(None, t) for t in sorted(basis.org_types)]
            for org_id, org_type in targets:
                if (org_id, org_type) not in seen:
                    seen.add((org_id, org_type))
                    recipients.append(SharingRecipient(org_id=org_id, org_type=org_type,
                                                       legal_basis=basis.legal_basis))
        result.append(SharingCoverage(purpose=purpose, recipients=recipients))
    return result
