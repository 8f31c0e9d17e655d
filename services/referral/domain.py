"""Routing rules: which needs go to which kind of service, how fast, on which legal basis. No I/O."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from contracts.events import ArrivalRegisteredV1, SharingRecipient, covering_basis
from contracts.reference import (
    OPEN_REFERRAL_STATES,
    ArrivalPoint,
    LegalBasis,
    Priority,
    ProviderReason,
    Purpose,
    ReferralOrigin,
    ReferralStatus,
    ServiceCategory,
    Sex,
    UnassignedReason,
    Vulnerability,
)

PENDING = ReferralStatus.PENDING
ACCEPTED = ReferralStatus.ACCEPTED
REJECTED = ReferralStatus.REJECTED
DONE = ReferralStatus.DONE
REVOKED = ReferralStatus.REVOKED
AWAITING_CONSENT = ReferralStatus.AWAITING_CONSENT
UNASSIGNED = ReferralStatus.UNASSIGNED
OPEN_STATES = OPEN_REFERRAL_STATES
ADULT_AGE = 18


class ServedIn(StrEnum):
    """Where a need is served: at the arrival point (reception, food, a night's shelter, the start of
    the journey home) or in the destination region (care and protection near home)."""

    ARRIVAL_POINT = "ARRIVAL_POINT"
    DESTINATION = "DESTINATION"


class RegionCondition(StrEnum):
    """A rule that applies only where it is needed, decided from the regions alone."""

    # The person is not yet home: their destination is not the arrival point's region (or the
    # arrival point's region is unknown), so they need a place to stay and a way home.
    AWAY_FROM_DESTINATION = "AWAY_FROM_DESTINATION"


@dataclass(frozen=True)
class Person:
    """What routing may know of a person: the routing facts of the case, never a name."""

    owner_org_id: str
    arrival_point: ArrivalPoint
    destination_region: str
    is_child: bool
    sex: Sex = Sex.UNKNOWN
    age_years: int | None = None
    vulnerabilities: frozenset[Vulnerability] = frozenset()
    # Who the case may be shared with for referral, and on which basis.
    recipients: tuple[SharingRecipient, ...] = ()

    @classmethod
    def from_arrival(cls, arrival: ArrivalRegisteredV1) -> "Person":
        return cls(arrival.owner_org_id, arrival.arrival_point, arrival.destination_region, arrival.is_child,
                   arrival.sex, arrival.age_years, frozenset(arrival.vulnerabilities),
                   tuple(arrival_recipients(arrival)))


@dataclass(frozen=True)
class Rule:
    """One routing rule of the rules file (``services/referral/rules/routing.yaml``).

    It applies when every trigger it states holds (within a list: any of); ``every_arrival`` states
    that it applies to everyone. An age trigger never holds for an unknown age.
    """

    id: str
    category: ServiceCategory
    priority: Priority
    due_in: timedelta
    vulnerabilities: frozenset[Vulnerability] = frozenset()
    min_age: int | None = None
    max_age: int | None = None
    sexes: frozenset[Sex] = frozenset()
    arrival_points: frozenset[ArrivalPoint] = frozenset()
    children: bool | None = None  # True: children only; False: adults only
    every_arrival: bool = False
    # Basis that applies without consent (a child's best interest is a vital interest).
    basis_without_consent: LegalBasis | None = None
    served_in: ServedIn = ServedIn.DESTINATION
    when_region: RegionCondition | None = None

    @property
    def reason_code(self) -> str:
        return self.id

    def applies_to(self, person: Person, arrival_region: str | None) -> bool:
        if self.vulnerabilities and not self.vulnerabilities & person.vulnerabilities:
            return False
        if (self.min_age is not None or self.max_age is not None) and (
                person.age_years is None
                or (self.min_age is not None and person.age_years < self.min_age)
                or (self.max_age is not None and person.age_years > self.max_age)):
            return False
        if self.sexes and person.sex not in self.sexes:
            return False
        if self.arrival_points and person.arrival_point not in self.arrival_points:
            return False
        if self.children is not None and person.is_child != self.children:
            return False
        if self.when_region == RegionCondition.AWAY_FROM_DESTINATION and arrival_region == person.destination_region:
            return False
        return True


@dataclass(frozen=True)
class RuleSet:
    """A version of the routing rules, as loaded (and validated) from the rules file."""

    version: str
    rules: tuple[Rule, ...]
    # The region each arrival point is in; a point not listed (a border post, a bus station) has none.
    arrival_point_regions: Mapping[ArrivalPoint, str] = field(default_factory=lambda: MappingProxyType({}))

    def rule(self, rule_id: str | None) -> Rule | None:
        return next((r for r in self.rules if r.id == rule_id), None)

    def region_served(self, rule: Rule, person: Person) -> str | None:
        """The region a provider must cover for this need; None: only a national service will do."""
        if rule.served_in == ServedIn.ARRIVAL_POINT:
            return self.arrival_point_regions.get(person.arrival_point)
        return person.destination_region


@dataclass(frozen=True)
class Provider:
    """One active directory service, with what routing needs of it."""

    org_id: str
    category: ServiceCategory
    regions: frozenset[str]  # empty: national coverage
    org_type: str | None = None
    service_id: str | None = None
    min_age: int | None = None
    max_age: int | None = None
    sexes: frozenset[str] = frozenset()  # empty: any
    vulnerabilities: frozenset[str] = frozenset()  # eligible only with one of these; empty: anyone
    capacity_available: int | None = None  # None: capacity not stated
    capacity_maximum: int | None = None

    def covers(self, region: str | None) -> bool:
        return not self.regions or (region is not None and region in self.regions)

    def takes(self, person: Person | None) -> bool:
        """Whether the person is eligible. An unknown age passes an age range unless the person's
        side of 18 (child or adult) alone rules it out; an unknown sex passes a sex restriction
        (the provider checks at intake)."""
        if person is None:
            return True
        if person.age_years is not None:
            if (self.min_age is not None and person.age_years < self.min_age) or (
                    self.max_age is not None and person.age_years > self.max_age):
                return False
        elif (self.max_age is not None and self.max_age < ADULT_AGE and not person.is_child) or (
                self.min_age is not None and self.min_age >= ADULT_AGE and person.is_child):
            return False
        if self.sexes and person.sex != Sex.UNKNOWN and person.sex.value not in self.sexes:
            return False
        return not self.vulnerabilities or bool(self.vulnerabilities & {v.value for v in person.vulnerabilities})

    @property
    def has_room(self) -> bool:
        """Open capacity: a stated free place, or capacity not stated at all."""
        return self.capacity_available is None or self.capacity_available > 0


@dataclass(frozen=True)
class PlannedReferral:
    to_org_id: str | None  # None: an unmet need (UNASSIGNED)
    category: ServiceCategory
    priority: Priority
    due_at: datetime
    reason_code: str
    legal_basis: LegalBasis | None
    status: ReferralStatus
    service_id: str | None = None
    rule_id: str | None = None
    rules_version: str | None = None
    unassigned_reason: UnassignedReason | None = None
    need_region: str | None = None
    basis_without_consent: LegalBasis | None = None
    due_in: timedelta | None = None
    provider_reason: ProviderReason | None = None  # why this provider (None: an unmet need)


def tie_order(provider: Provider, region: str | None) -> tuple[int, int, int, str, str]:
    """The stated order among eligible providers with room: a service covering the region by name
    before a national one; then a stated capacity before an unstated one, the most free places
    first; then organisation id, then service id (so the choice never depends on storage order)."""
    regional = 0 if region is not None and region in provider.regions else 1
    stated = 0 if provider.capacity_available is not None else 1
    return regional, stated, -(provider.capacity_available or 0), provider.org_id, provider.service_id or ""


def rank_providers(providers: Iterable[Provider], category: ServiceCategory, region: str | None,
                   person: Person | None = None, exclude: Iterable[str] = ()) -> list[Provider]:
    """Every provider that fits, best first (``tie_order``): of the category, covering the region,
    taking this person, with room, and not of an excluded organisation."""
    excluded = set(exclude)
    fitting = [p for p in providers if p.category == category and p.org_id not in excluded and p.covers(region)
               and p.takes(person) and p.has_room]
    return sorted(fitting, key=lambda p: tie_order(p, region))


def choose_provider(providers: Iterable[Provider], category: ServiceCategory, region: str | None,
                    person: Person | None = None, exclude: Iterable[str] = ()) -> Provider | None:
    """The first provider in ``tie_order`` that fits (see ``rank_providers``), or None."""
    ranked = rank_providers(providers, category, region, person, exclude)
    return ranked[0] if ranked else None


def unassigned_reason(providers: Iterable[Provider], category: ServiceCategory, region: str | None,
                      person: Person | None = None, exclude: Iterable[str] = ()) -> UnassignedReason:
    """Why no provider fits, the most specific reason: the checks run in the order region,
    eligibility, capacity, and the reason names the first check no remaining service passed. So
    NO_CAPACITY means some service covers the region and takes the person but has no place;
    NOT_ELIGIBLE that some cover the region but none takes the person; NO_PROVIDER_IN_REGION that
    no active service of the category (outside the excluded organisations) covers the region."""
    excluded = set(exclude)
    covering = [p for p in providers if p.category == category and p.org_id not in excluded and p.covers(region)]
    if not covering:
        return UnassignedReason.NO_PROVIDER_IN_REGION
    if not any(p.takes(person) for p in covering):
        return UnassignedReason.NOT_ELIGIBLE
    return UnassignedReason.NO_CAPACITY


def arrival_recipients(arrival: ArrivalRegisteredV1) -> list[SharingRecipient]:
    """Who the consent taken at registration covers for referral (only consent given for that purpose)."""
    if not (arrival.consent_given and Purpose.REFERRAL in arrival.consent_purposes):
        return []
    return ([SharingRecipient(org_id=o, legal_basis=LegalBasis.CONSENT) for o in arrival.consent_recipient_org_ids]
            + [SharingRecipient(org_type=t, legal_basis=LegalBasis.CONSENT)
               for t in arrival.consent_recipient_org_types])


def needs_of(person: Person, rules: RuleSet) -> list[Rule]:
    """The rules that apply to a person, one per service category: the most urgent, then the
    shortest deadline, then the first in the file."""
    arrival_region = rules.arrival_point_regions.get(person.arrival_point)
    chosen: dict[ServiceCategory, tuple[tuple[int, timedelta, int], Rule]] = {}
    urgency = list(Priority)
    for position, rule in enumerate(rules.rules):
        if not rule.applies_to(person, arrival_region):
            continue
        key = (urgency.index(rule.priority), rule.due_in, position)
        if rule.category not in chosen or key < chosen[rule.category][0]:
            chosen[rule.category] = (key, rule)
    return [rule for _, rule in sorted(chosen.values(), key=lambda kv: kv[0])]


def choose_for_family(providers: Iterable[Provider], category: ServiceCategory, region: str | None,
                      person: Person | None, exclude: Iterable[str], family_services: Collection[str],
                      without_consent: LegalBasis | None) -> tuple[Provider | None, ProviderReason | None]:
    """``choose_provider``, except that a family goes to the same provider where the rules allow: the first
    fitting provider (eligible, covering the region, with room, not excluded) among ``family_services``
    (the services already serving a linked family member for this category) on which the person's own
    consent or legal basis allows the referral at once. Otherwise the stated order (TIE_ORDER)."""
    ranked = rank_providers(providers, category, region, person, exclude)
    recipients = list(person.recipients) if person else []
    for provider in ranked:
        if provider.service_id in family_services and \
                consent_basis(recipients, provider.org_id, provider.org_type, without_consent)[0] is not None:
            return provider, ProviderReason.FAMILY
    return (ranked[0], ProviderReason.TIE_ORDER) if ranked else (None, None)


def plan_need(person: Person, rule: Rule, rules_version: str | None, region: str | None,
              providers: Iterable[Provider], now: datetime, exclude: Iterable[str] = (),
              family_services: Collection[str] = ()) -> PlannedReferral | None:
    """The referral one need gets: to the first fitting provider (``tie_order``), or UNASSIGNED with
    its reason; None when the case's owner serves the need itself.

    A case is never referred to its owner: when the owner has an active service of its own covering
    the region that takes the person, the owner serves the need in house and no referral is made."""
    providers = list(providers)
    own = [p for p in providers if p.org_id == person.owner_org_id and p.category == rule.category
           and p.covers(region) and p.takes(person)]
    if own:
        return None
    exclude = {*exclude, person.owner_org_id}
    provider, provider_reason = choose_for_family(providers, rule.category, region, person, exclude, family_services,
                                                  rule.basis_without_consent)
    common = dict(category=rule.category, priority=rule.priority, due_at=now + rule.due_in, reason_code=rule.id,
                  rule_id=rule.id, rules_version=rules_version, need_region=region,
                  basis_without_consent=rule.basis_without_consent, due_in=rule.due_in)
    if provider is None:
        return PlannedReferral(to_org_id=None, legal_basis=None, status=UNASSIGNED,
                               unassigned_reason=unassigned_reason(providers, rule.category, region, person, exclude),
                               **common)  # type: ignore[arg-type]
    basis, status = consent_basis(list(person.recipients), provider.org_id, provider.org_type,
                                  rule.basis_without_consent)
    return PlannedReferral(to_org_id=provider.org_id, service_id=provider.service_id, legal_basis=basis,
                           status=status, provider_reason=provider_reason, **common)  # type: ignore[arg-type]


def plan_referrals(arrival: ArrivalRegisteredV1 | Person, providers: list[Provider], now: datetime,
                   rules: RuleSet, family: Mapping[ServiceCategory, Collection[str]] | None = None,
                   needs: list[Rule] | None = None,
                   exclude: Mapping[ServiceCategory, Collection[str]] | None = None) -> list[PlannedReferral]:
    """One referral per need, most urgent first: to a provider, or UNASSIGNED with its reason. ``needs``:
    those the rules find (``needs_of``) unless the caller found them already. Nothing is skipped except what
    the owner serves in house. ``family``: per category, the services already serving a linked family
    member (``choose_for_family``); ``exclude``: per category, organisations not to refer to."""
    person = arrival if isinstance(arrival, Person) else Person.from_arrival(arrival)
    planned = []
    for rule in needs_of(person, rules) if needs is None else needs:
        plan = plan_need(person, rule, rules.version, rules.region_served(rule, person), providers, now,
                         exclude=(exclude or {}).get(rule.category, ()),
                         family_services=(family or {}).get(rule.category, ()))
        if plan is not None:
            planned.append(plan)
    return planned


def consent_basis(recipients: list[SharingRecipient], org_id: str, org_type: str | None,
                  without_consent: LegalBasis | None) -> tuple[LegalBasis | None, ReferralStatus]:
    """The basis and state of a referral to ``org_id``: covered by the case's recorded sharing, or
    the rule's basis without consent (a child's vital interest), else waiting for consent."""
    basis = basis_for(recipients, org_id, org_type) or without_consent
    return basis, PENDING if basis else AWAITING_CONSENT


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
    """The basis on which the case may go to this organisation for referral, consent first (the
    platform's one rule, ``contracts.events.covering_basis``)."""
    return covering_basis(recipients, org_id, org_type)


@dataclass(frozen=True)
class Reassessment:
    referral_id: str
    old_status: ReferralStatus
    new_status: ReferralStatus
    legal_basis: LegalBasis | None
    reason: str


def _withdrawable(r: Mapping[str, object]) -> bool:
    """A referral a correction may take back: the rules' or a re-routing's, no provider working on it yet."""
    return r["origin"] != ReferralOrigin.MANUAL.value and r["status"] in (PENDING, AWAITING_CONSENT, UNASSIGNED)


def _withdrawn(r: Mapping[str, object]) -> Reassessment:
    return Reassessment(str(r["id"]), ReferralStatus(str(r["status"])), REVOKED,
                        LegalBasis(str(r["legal_basis"])) if r["legal_basis"] else None, "NEED_WITHDRAWN")


def needs_withdrawn(referrals: list[dict[str, object]], gone: Collection[ServiceCategory]) -> list[Reassessment]:
    """After a correction: the rules' referrals (and their re-routings) of a need the correction took away
    (``gone``: a flag ticked by mistake and taken back, a destination changed) are revoked while no provider
    has accepted them: the case was shared for that need only; an unmet one (UNASSIGNED) leaves the unassigned
    lists. Accepted ones, and referrals people made, stay the owner's to close."""
    return [_withdrawn(r) for r in referrals
            if _withdrawable(r) and ServiceCategory(str(r["service_category"])) in gone]


def _no_longer_fits(r: Mapping[str, object], region: str | None, services: Mapping[str, Provider],
                    person: Person) -> bool:
    """Whether a referral's provider does not serve the need as the corrected case has it: it does not cover
    ``region`` or does not take the person. Without a provider to judge (an unmet need, a service no longer in
    the directory), whether the need's region changed."""
    provider = services.get(str(r["service_id"])) if r["service_id"] is not None else None
    if provider is None:
        return r["need_region"] != region
    return not (provider.covers(region) and provider.takes(person))


def _moved(r: Mapping[str, object], served_in: Mapping[ServiceCategory, str | None],
           services: Mapping[str, Provider], person: Person) -> bool:
    """A referral of a need the corrected case still has (``served_in``: its region per category) whose
    provider no longer fits it."""
    category = ServiceCategory(str(r["service_category"]))
    return category in served_in and _no_longer_fits(r, served_in[category], services, person)


def needs_moved(referrals: list[dict[str, object]], served_in: Mapping[ServiceCategory, str | None],
                services: Mapping[str, Provider], person: Person) -> list[Reassessment]:
    """After a correction: the rules' referrals (and their re-routings) of a need the corrected case still has
    (``served_in``: its region per category) that no longer fit it, withdrawn while no provider has accepted
    them, so that routing sends the need anew: the provider does not cover the region the need is now served in
    or does not take the person any more (a child now, another destination); an unmet need (UNASSIGNED), when
    the need's region changed. Accepted ones, and referrals people made, stay the owner's to close."""
    return [_withdrawn(r) for r in referrals if _withdrawable(r) and _moved(r, served_in, services, person)]


def rejections_moved(referrals: list[dict[str, object]], served_in: Mapping[ServiceCategory, str | None],
                     services: Mapping[str, Provider], person: Person) -> list[dict[str, object]]:
    """After a correction: the rules' referrals of a kept need that their provider rejected and nobody re-routed
    yet, whose provider would not fit the corrected case anyway. They no longer hold the need: routing sends it
    anew (and they point to what took it over, so they are not re-routed to the old region later)."""
    return [r for r in referrals
            if r["origin"] != ReferralOrigin.MANUAL.value and r["status"] == ReferralStatus.REJECTED
            and r["rerouted_to"] is None and _moved(r, served_in, services, person)]


def referred_categories(referrals: Iterable[Mapping[str, Any]]) -> set[ServiceCategory]:
    """The needs a case counts as referred for: every referral's category, whoever made it, except a referral
    a correction withdrew (``needs_withdrawn``, ``needs_moved``: the need went away or moved, and is routed
    again when needed) and one re-routed (its need lives on in the referral that took it over)."""
    return {ServiceCategory(str(r["service_category"])) for r in referrals
            if not (r["status"] == REVOKED and r.get("status_reason") == "NEED_WITHDRAWN")
            and r.get("rerouted_to") is None}


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
