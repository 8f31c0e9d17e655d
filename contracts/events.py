"""Event payloads. They carry references and routing attributes only, never a dossier:
no names, contact details, documents or narratives. Stream access is limited to platform services.
"""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict

from contracts.reference import (
    ArrivalPoint,
    ClosureReason,
    ContactMode,
    DeadlineKind,
    DirectoryStatus,
    LegalBasis,
    OrganisationType,
    PlanActionStatus,
    Priority,
    Purpose,
    ReferralStatus,
    ReintegrationDimension,
    Relation,
    ServiceCategory,
    Sex,
    UnassignedReason,
    Vulnerability,
)


class Event(BaseModel):
    model_config = ConfigDict(extra="ignore")  # tolerate new optional fields from newer producers


class ArrivalRegisteredV1(Event):
    """A person was registered at an arrival point."""

    case_id: str
    owner_org_id: str
    arrival_point: ArrivalPoint
    arrival_date: date
    destination_region: str
    is_child: bool
    vulnerabilities: list[Vulnerability]
    consent_given: bool
    consent_recipient_org_ids: list[str]
    consent_recipient_org_types: list[OrganisationType] = []
    consent_purposes: list[Purpose] = [Purpose.REFERRAL]  # earlier producers only recorded referral consent
    # Routing attributes for eligibility (a service's age range and sexes); absent from earlier producers.
    sex: Sex = Sex.UNKNOWN
    age_years: int | None = None
    # The case's sharing version this consent is (1 at registration; see SharingChangedV1). 0: an
    # event from a producer before versions, applied as before unless a versioned state is known.
    sharing_version: int = 0


class ReferralFacts(Event):
    """What every referral event says about the referral: who refers whom, for what, on which basis."""

    referral_id: str
    case_id: str
    from_org_id: str
    to_org_id: str
    service_category: ServiceCategory
    priority: Priority
    legal_basis: LegalBasis | None


class ReferralCreatedV1(ReferralFacts):
    """A referral was opened from one organisation to another for a case."""

    status: ReferralStatus
    due_at: datetime
    reason_code: str
    # Absent from earlier producers. A re-routed referral names the one it replaces and the
    # organisation that moved it (none: the platform), so the referring organisation and the case's
    # owner are told when someone else moved their referral.
    case_owner_org_id: str | None = None
    rerouted_from: str | None = None
    rerouted_by_org_id: str | None = None


class SharingRecipient(Event):
    """An organisation (or every organisation of a type) the case may be shared with, and why."""

    org_id: str | None = None
    org_type: OrganisationType | None = None
    legal_basis: LegalBasis


def covering_basis(recipients: list[SharingRecipient], org_id: str, org_type: str | None) -> LegalBasis | None:
    """The basis on which a case may go to this organisation (named, or by its type), consent first.

    The one rule every service applies to a purpose's recipients (referral routing and manual
    referrals, follow-up assignment): consent naming the organisation or its type, else another
    recorded basis (vital interest, legal obligation, public interest) naming it.
    """
    matching = [r.legal_basis for r in recipients
                if r.org_id == org_id or (org_type is not None and r.org_type == org_type)]
    if LegalBasis.CONSENT in matching:
        return LegalBasis.CONSENT
    return matching[0] if matching else None


class SharingCoverage(Event):
    """Who a case may be shared with for one purpose, after a change."""

    purpose: Purpose
    recipients: list[SharingRecipient]


class SharingChangedV1(Event):
    """Consent or another legal basis was recorded or withdrawn for a case.

    Carries the resulting coverage per purpose, so consumers need no history to act on it, and the
    case's sharing version, so they can put it in order: events are not delivered in order (a
    failed delivery is retried later while the next one goes through), and a consumer applies a
    coverage only if its version is newer than the one it holds (decision record 0020).
    """

    case_id: str
    owner_org_id: str
    change: str  # CONSENT_RECORDED | CONSENT_WITHDRAWN | LEGAL_BASIS_RECORDED
    coverage: list[SharingCoverage]
    # Raised by every sharing change of the case (the registration's consent is 1). 0: an event
    # from a producer before versions (still in the streams), applied as before, in the order it
    # arrives, unless a versioned coverage is already applied (which is then necessarily newer).
    sharing_version: int = 0


class ReferralStatusChangedV1(ReferralFacts):
    """A referral moved between states (PENDING, ACCEPTED, REJECTED, DONE, REVOKED, AWAITING_CONSENT)."""

    old_status: ReferralStatus
    new_status: ReferralStatus
    reason_code: str | None = None  # why it changed (a rejection reason, CONSENT_WITHDRAWN…), not the routing rule
    # On completion, what came of it (codes only; a note never travels in an event).
    outcome_code: str | None = None
    outcome_delivered: bool | None = None


class DirectoryServiceChangedV1(Event):
    """A directory service was created, changed, or had its capacity updated.

    What routing needs to keep a projection current: identifiers, category, service area, status,
    capacity and version. Never names, descriptions or contact details (ask the directory).
    """

    service_id: str
    organization_id: str
    change: str  # CREATED | UPDATED | CAPACITY | APPROVED
    category: ServiceCategory
    regions: list[str]  # empty: national
    status: DirectoryStatus
    capacity_available: int | None
    capacity_maximum: int | None
    version: int


class ReferralDeadlineV1(ReferralFacts):
    """A referral's deadline passed: a reminder, an escalation or an overdue outcome (each once).

    ``due_at`` is the deadline that passed: the referral's due time (REMINDER, ESCALATED; the
    escalation fired after the grace period on top of it) or acceptance + the service's expected
    duration (OUTCOME_OVERDUE). An escalated referral may be re-routed to the next eligible provider.
    """

    kind: DeadlineKind
    due_at: datetime


class NeedUnassignedV1(Event):
    """A need of a case has no directory service yet (no provider in the region, no capacity, or the
    person is not eligible): the registering organisation and the coordinating body must act on it."""

    referral_id: str
    case_id: str
    owner_org_id: str  # the registering organisation
    service_category: ServiceCategory
    priority: Priority
    reason: UnassignedReason
    rule_id: str | None = None
    rerouted_from: str | None = None  # set when re-routing found no next provider
    # With rerouted_from (absent from earlier producers): who referred, and who re-routed (none: the platform).
    from_org_id: str | None = None
    rerouted_by_org_id: str | None = None


# --- follow-up (suivi): identifiers, codes and dates only, never a plan's text -------------------


class CaseAssignedV1(Event):
    """A case's follow-up was handed to another organisation, on a legal basis covering it.

    The new manager may read the case (intake keeps the grant); the previous one keeps only what
    another basis gives it (the owner stays the owner).
    """

    case_id: str
    owner_org_id: str
    from_org_id: str
    to_org_id: str
    reason_code: str
    legal_basis: LegalBasis | None  # none: the case went back to its owner
    assigned_by_org_id: str
    version: int


class PlanSavedV1(Event):
    """A case's reintegration plan was saved (the numbers and dimensions; the text stays in follow-up)."""

    case_id: str
    manager_org_id: str
    version: int
    dimensions: list[ReintegrationDimension]
    goal_count: int
    action_count: int
    linked_referral_ids: list[str]


class PlanActionUpdatedV1(Event):
    """One action of a case's plan changed state."""

    case_id: str
    manager_org_id: str
    action_id: str
    dimension: ReintegrationDimension
    old_status: PlanActionStatus
    new_status: PlanActionStatus
    version: int


class CaseClosedV1(Event):
    """A case's follow-up was closed, with its reason; its open plan actions were closed with it."""

    case_id: str
    manager_org_id: str
    reason: ClosureReason
    closed_action_ids: list[str]
    version: int


MERGE_UNDONE = "MERGE_UNDONE"  # CaseReopenedV1.reason_code of a re-opening by the undo of a merge (decision 0026)


class CaseReopenedV1(Event):
    """A closed follow-up was opened again: by hand with a ``ReopenReason``, or by the undo of a merge
    (``MERGE_UNDONE``)."""

    case_id: str
    manager_org_id: str
    reason_code: str
    version: int


class SurveyRecordedV1(Event):
    """A survey instrument was administered for a case: which version, when, and the four scores
    (None: too few answers). Never the answers, which stay in follow-up."""

    survey_id: str
    case_id: str
    manager_org_id: str
    instrument_id: str
    instrument_version: int
    taken_on: date
    economic: float | None
    social: float | None
    psychosocial: float | None
    composite: float | None


class ContactLoggedV1(Event):
    """A follow-up contact was logged (never its note nor its next step: they stay in follow-up)."""

    case_id: str
    manager_org_id: str
    contact_id: str
    date: date
    mode: ContactMode
    reached: bool
    failed_in_a_row: int
    unreachable: bool


class ScheduledContactFacts(Event):
    """One scheduled contact of a case, and the organisation managing the case (to be told)."""

    case_id: str
    manager_org_id: str
    schedule_id: str
    schedule_version: int
    contact_code: str
    opens_on: date
    due_on: date
    overdue_after: date


class ContactDueV1(ScheduledContactFacts):
    """A scheduled contact's window opened (once per case and contact)."""


class ContactOverdueV1(ScheduledContactFacts):
    """A scheduled contact's window passed without a contact reaching the person (once per case and contact)."""


class CaseUnreachableV1(Event):
    """The person could not be reached the schedule's number of times in a row (once, until reached again)."""

    case_id: str
    manager_org_id: str
    failed_in_a_row: int
    last_attempt_on: date


class PlanOverdueV1(Event):
    """A case's follow-up still has no reintegration plan past its due day (once per case)."""

    case_id: str
    manager_org_id: str
    plan_due_on: date


class CaseCorrectedV1(Event):
    """The owner corrected a case's identity or screening (offline capture, ``updateCase``): which fields
    changed (names only) and the routing attributes as they now are, as ``ArrivalRegisteredV1`` gives them."""

    case_id: str
    owner_org_id: str
    version: int  # the case's version after the correction: apply only if newer than the one held
    changed_fields: list[str]
    destination_region: str
    is_child: bool
    vulnerabilities: list[Vulnerability]
    sex: Sex
    age_years: int
class CasesLinkedV1(Event):
    """Two cases were linked as family (at registration or later): ids and the relation only, never a name.
    ``relation`` is what ``case_id``'s person is to ``linked_case_id``'s."""

    link_id: str
    case_id: str
    linked_case_id: str
    relation: Relation
    travelling_together: bool


class CasesUnlinkedV1(CasesLinkedV1):
    """A family link between two cases was removed."""


class CasesMergedV1(Event):
    """A case was merged into another (an explicit act; nothing deleted): its id now answers the survivor.

    Ids and organisations only, never a name (decision record 0022)."""

    merge_id: str
    survivor_case_id: str
    merged_case_id: str
    survivor_owner_org_id: str
    merged_owner_org_id: str


class MergeUndoneV1(CasesMergedV1):
    """A merge was undone: both cases stand on their own again."""
