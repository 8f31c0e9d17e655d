"""Reply payloads of the NATS request/reply endpoints: what each service answers, field by field.

Services build these models (in their ``views.py``), ``kernel.rpc`` validates and serialises them,
and the gateway validates the JSON back into them before building its GraphQL types. Strict
(``extra="forbid"``): a misspelt or forgotten field fails at the service that produced it, not
in a client's screen.
"""

from __future__ import annotations

import datetime as _dt
from datetime import date, datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, RootModel

from contracts.reference import (
    ArrivalGroupKind,
    ArrivalGroupStatus,
    ArrivalPoint,
    ClosureReason,
    ContactMode,
    ContactState,
    DirectoryStatus,
    ExpectedStatus,
    FollowupStatus,
    GivenBy,
    LegalBasis,
    ManifestField,
    OrganisationType,
    PlanActionStatus,
    PossibleDuplicateStatus,
    Priority,
    ProviderReason,
    Purpose,
    ReferralOrigin,
    ReferralStatus,
    ReintegrationDimension,
    Relation,
    ServiceCategory,
    Sex,
    StatisticsDimension,
    SubmissionStatus,
    SyncStatus,
    UnassignedReason,
    Vulnerability,
    Weekday,
)

T = TypeVar("T")


class Reply(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class PageInfo(Reply):
    has_next_page: bool
    end_cursor: str | None


class Page(Reply, Generic[T]):
    """One page of a list, newest first; ``page_info.end_cursor`` is the next request's ``after``."""

    nodes: list[T]
    page_info: PageInfo


# --- intake -------------------------------------------------------------------------------------


class SharingView(Reply):
    """A recorded basis for sharing a case: a consent (given or refused) or another legal basis."""

    id: str
    legal_basis: LegalBasis
    given: bool
    purposes: list[Purpose]
    recipient_org_ids: list[str]
    recipient_org_types: list[OrganisationType]
    language: str
    given_by: GivenBy | None
    guardian_name: str | None
    justification: str | None
    recorded_by: str
    recorded_at: datetime
    withdrawn_at: datetime | None


class SensitiveView(Reply):
    """Per sensitive category, its flags, or None when the caller's token may not see it (restricted)."""

    health: list[Vulnerability] | None
    gbv: list[Vulnerability] | None
    trafficking: list[Vulnerability] | None
    child_protection: list[Vulnerability] | None


class AccessView(Reply):
    """Why the caller may see the case (CASE_MANAGEMENT, REFERRAL, DATA_SUBJECT_REQUEST) and on which basis."""

    purpose: str | None
    legal_basis: LegalBasis | None


class CaseView(Reply):
    """A case as this caller may see it: sensitive flags per its scopes; ``sharing`` for the owner only."""

    id: str
    owner_org_id: str
    given_name: str
    family_name: str
    sex: Sex
    date_of_birth: date | None
    estimated_age: int | None
    country_returned_from: str
    arrival_point: ArrivalPoint
    arrival_date: date
    destination_region: str
    phone_numbers: list[str]
    place_of_origin: str | None
    vulnerabilities: list[Vulnerability]
    sensitive: SensitiveView
    sharing: list[SharingView] | None
    access: AccessView
    created_at: datetime
    version: int
    # People already known (decision record 0022): the id asked for when it was merged into this case,
    # and the ids merged into this case (merges in force).
    redirected_from: str | None = None
    merged_from: list[str] = Field(default_factory=list)
    links: list[CaseLinkView] = Field(default_factory=list, description="Family links, each linked case "
                                                                         "under its own access rules")


class ScreeningView(Reply):
    """One vulnerability flag with who assessed it and when (the origin of the data)."""

    code: Vulnerability
    severity: str | None
    assessed_by: str
    assessed_at: datetime


class CaseExport(CaseView):
    """Everything intake holds on one person, for the steward answering a data-subject request."""

    registered_by: str
    screening: list[ScreeningView]
    arrival_group_entry: ExpectedPersonView | None = Field(
        default=None, description="The manifest row the person was checked in from, as received (issue 10)")


class SharingResult(Reply):
    """The sharing record of a case after a consent or legal-basis command."""

    case_id: str
    sharing: list[SharingView]


class StatisticsCell(Reply):
    keys: list[str]
    count: int


class StatisticsView(Reply):
    """Counts rounded to multiples of five. A cell holding fewer than ``minimum_cell`` people registered
    by other organisations is left out, and how many were left out is not told."""

    group_by: list[StatisticsDimension]
    cells: list[StatisticsCell]
    minimum_cell: int


# --- referral -----------------------------------------------------------------------------------


class ReferralView(Reply):
    """A referral, whole: a caller who may not see part of it does not see it at all."""

    id: str
    case_id: str
    from_org_id: str
    to_org_id: str | None  # None while the need is UNASSIGNED
    service_category: ServiceCategory
    priority: Priority
    legal_basis: LegalBasis | None
    status: ReferralStatus
    status_reason: str | None
    reason_code: str
    due_at: datetime
    created_at: datetime
    updated_at: datetime
    # Referrals made by people, outcomes and deadlines (issue 8). ``note`` is free text about the
    # person: shown to the referring and the receiving organisation only (null for the case owner
    # and anyone else); ``made_by`` (a person's id) to the referring organisation only.
    origin: ReferralOrigin = ReferralOrigin.RULE
    service_id: str | None = None
    made_by: str | None = None
    note: str | None = None
    accepted_at: datetime | None = None
    outcome_code: str | None = None
    outcome_delivered: bool | None = None
    outcome_date: date | None = None
    overdue: bool = Field(default=False, description="PENDING past due_at, or ACCEPTED past the service's "
                                                       "expected duration with no outcome, at the time of the answer")
    # Routing: by which rule of which rules version, and, for an unmet need or a re-routed referral,
    # why and where it went.
    rule_id: str | None = None
    rules_version: str | None = None
    unassigned_reason: UnassignedReason | None = None
    rerouted_from: str | None = None
    rerouted_to: str | None = None
    # Why routing chose this provider (FAMILY: the one already serving a linked family member); null
    # for a referral a person made, an unmet need, or one routed before the reason was kept.
    provider_reason: ProviderReason | None = None


class OverdueCounts(Reply):
    """Overdue work of one organisation: referrals it received and did not accept in time, referrals it
    accepted with no outcome past the service's expected duration, and referrals it made that are overdue."""

    org_id: str
    incoming_not_accepted: int
    accepted_without_outcome: int
    outgoing_overdue: int


class OverdueCountsView(OverdueCounts):
    """The caller's organisation's counts; ``by_organisation`` for the coordinating body only (null for
    others). Referrals to sensitive services the token may not see are left out of every count, as
    they are of every list, except those addressed to the caller's own organisation."""

    by_organisation: list[OverdueCounts] | None = None


# --- the service directory ----------------------------------------------------------------------


class DirectoryLocationView(Reply):
    id: str
    name: str | None
    address: str | None
    city: str | None
    region: str | None
    latitude: float | None
    longitude: float | None


class OpeningHoursView(Reply):
    days: list[Weekday]
    opens_at: str
    closes_at: str


class CapacityView(Reply):
    """Capacity as last reported; ``updated_by`` (who) only for the service's organisation and the steward."""

    available: int | None
    maximum: int | None
    updated_at: datetime | None
    updated_by: str | None


class DirectoryServiceView(Reply):
    """One directory service as its readers see it; ``version`` is what an update must send back."""

    id: str
    organization_id: str
    organization_name: str
    name_fr: str
    name_en: str | None
    description_fr: str | None
    description_en: str | None
    category: ServiceCategory
    regions: list[str]
    locations: list[DirectoryLocationView]
    minimum_age: int | None
    maximum_age: int | None
    sexes: list[Sex]
    vulnerabilities: list[Vulnerability]
    hours: list[OpeningHoursView]
    email: str | None
    phone: str | None
    url: str | None
    status: DirectoryStatus
    expected_duration_days: int | None
    capacity: CapacityView | None
    awaiting_approval: bool = Field(
        default=False, description="A sensitive-category service not yet approved by the platform steward: not used "
                                   "by routing or referrals, seen only by its organisation and the steward")
    version: int
    created_at: datetime
    updated_at: datetime


class HsdsDocument(RootModel[dict[str, Any]]):
    """One HSDS 3 object (a fully nested ``service``, or an ``organization`` with its services), field names as
    the specification gives them; its conformance is checked against the official schemas by the test suite."""


class HsdsPage(Reply):
    """A page of the HSDS 3 API: its paging fields and ``contents`` (HSDS documents, built by the directory)."""

    total_items: int
    total_pages: int
    page_number: int
    size: int
    first_page: bool
    last_page: bool
    empty: bool
    contents: list[dict[str, Any]]


# --- notifications ------------------------------------------------------------------------------


class NotificationView(Reply):
    id: str
    kind: str
    priority: Priority
    title_fr: str
    title_en: str
    referral_id: str | None
    case_id: str | None
    created_at: datetime
    read_at: datetime | None


class NotificationExport(NotificationView):
    """A notification in a data-subject export: which organisation was told."""

    org_id: str


# --- follow-up (suivi) ---------------------------------------------------------------------------


class PlanActionView(Reply):
    """One action of a goal. ``description`` is None when the case has a sensitive vulnerability whose
    scope the caller lacks: then ``text_restricted`` names that scope (the rule of contact notes)."""

    id: str
    description: str | None
    text_restricted: str | None = None
    referral_id: str | None
    target_date: date
    status: PlanActionStatus
    overdue: bool  # open past its target date, as of the time of the answer
    updated_at: datetime


class PlanGoalView(Reply):
    """One goal; ``description`` None with ``text_restricted`` as for an action."""

    id: str
    dimension: ReintegrationDimension
    description: str | None
    text_restricted: str | None = None
    actions: list[PlanActionView]


class PlanView(Reply):
    """A case's reintegration plan as last saved."""

    saved_at: datetime
    saved_by_org_id: str
    goals: list[PlanGoalView]


class AssignmentView(Reply):
    """One hand-over of a case's follow-up from one organisation to another (none: the owner at the start)."""

    from_org_id: str | None
    to_org_id: str
    reason_code: str
    legal_basis: LegalBasis | None  # none: the owner manages its own case
    assigned_at: datetime
    assigned_by_org_id: str


class SurveyAnswerView(Reply):
    indicator: str
    dimension: ReintegrationDimension
    option: str  # an option code of the instrument's version, or DECLINED


class SurveyView(Reply):
    """One administration of a survey instrument, with the scores stored when it was recorded (a later
    version of the instrument changes none of them). ``psychosocial_answers`` is None for a caller
    without ``sensitive:health``: a person's answers on distress and safety are health data."""

    id: str
    case_id: str
    instrument_id: str
    instrument_version: int
    instrument_digest: str
    taken_on: date
    economic: float | None
    social: float | None
    psychosocial: float | None
    composite: float | None
    economic_band: str | None
    social_band: str | None
    psychosocial_band: str | None
    composite_band: str | None
    answers: list[SurveyAnswerView]  # economic and social
    psychosocial_answers: list[SurveyAnswerView] | None
    recorded_by_org_id: str
    recorded_at: datetime


class ScheduledContactView(Reply):
    """One contact of the case's follow-up schedule, where it stands as of the time of the answer."""

    code: str
    opens_on: date
    due_on: date
    overdue_after: date  # the last day it is on time
    state: ContactState
    done_on: date | None
    on_time: bool | None  # None until done


class ContactView(Reply):
    """One logged follow-up contact. ``note`` and ``next_step`` are None when there is none, or when the
    case has a sensitive vulnerability whose scope the caller lacks: then ``text_restricted`` names
    that scope (the case's free text, plan included, follows one rule)."""

    id: str
    date: _dt.date
    mode: ContactMode
    reached: bool
    next_step: str | None
    note: str | None
    text_restricted: str | None = None
    logged_by_org_id: str
    logged_at: datetime


class FollowupCaseView(Reply):
    """A case's follow-up: who manages it, its plan, whether the plan is late, its state and history,
    its schedule of contacts, the contacts logged (newest first) and the surveys taken (oldest first).

    ``plan_overdue``: no plan yet and ``plan_due_on`` has passed (as of the time of the answer);
    ``schedule`` the same, computed from the schedule the case follows (``schedule_id``/``schedule_version``).
    """

    case_id: str
    owner_org_id: str
    manager_org_id: str
    status: FollowupStatus
    closure_reason: ClosureReason | None
    arrival_date: date
    destination_region: str
    plan_due_on: date
    plan_overdue: bool
    plan: PlanView | None
    version: int
    assignments: list[AssignmentView]
    updated_at: datetime
    schedule_id: str
    schedule_version: int
    schedule: list[ScheduledContactView]
    contacts: list[ContactView] | None  # the newest (at most 50); None: for neither the owner nor the manager
    contact_count: int | None = None  # how many contacts the case holds (None: as for contacts)
    failed_in_a_row: int  # contacts in a row that did not reach the person
    unreachable: bool  # failed_in_a_row reached the schedule's threshold
    surveys: list[SurveyView] = []  # oldest first (by the day taken)


class MissingPlanView(Reply):
    """A case the caller's organisation manages that has no plan yet (a row of ``plansMissing``)."""

    case_id: str
    arrival_date: date
    destination_region: str
    plan_due_on: date
    overdue: bool
    managed_since: datetime


class ContactDueView(Reply):
    """A case the caller's organisation manages whose next scheduled contact is due soon, due or
    overdue (a row of ``followupsDue`` and ``followupsOverdue``)."""

    case_id: str
    arrival_date: date
    destination_region: str
    contact_code: str
    opens_on: date
    due_on: date
    overdue_after: date
    state: ContactState


class UnreachableCaseView(Reply):
    """A case the caller's organisation manages whose person could not be reached (``unreachableCases``)."""

    case_id: str
    arrival_date: date
    destination_region: str
    failed_in_a_row: int
    unreachable_since: datetime


# --- the audit trail (every service) ------------------------------------------------------------


class AuditEntryView(Reply):
    """One audit entry: identifiers and codes only."""

    seq: int
    at: datetime
    actor: str
    org_id: str
    client_id: str
    operation: str
    case_ids: list[str]
    field_categories: list[str]
    purpose: str
    legal_basis: str | None
    outcome: str
    trace_id: str | None
    prev_hash: str
    hash: str


class ChainHeadView(Reply):
    seq: int
    hash: str


class ChainProblem(Reply):
    """One break in a chain. ``kind``: altered | deleted | broken_link | truncated | anchor_mismatch."""

    kind: str
    seq: int
    detail: str


class AuditVerification(Reply):
    """The result of recomputing one service's audit chain."""

    schema_name: str = Field(alias="schema")
    ok: bool
    head: ChainHeadView | None
    problems: list[ChainProblem]


# --- survey instruments and follow-up statistics ---------------------------------------------------


class InstrumentOptionView(Reply):
    code: str
    label_fr: str
    label_en: str


class InstrumentIndicatorView(Reply):
    code: str
    dimension: ReintegrationDimension
    question_fr: str
    question_en: str
    options: list[InstrumentOptionView]


class InstrumentView(Reply):
    """One version of a survey instrument, as a client renders its form (answer with an option code or
    DECLINED, every indicator once)."""

    id: str
    version: int
    digest: str
    title_fr: str
    title_en: str
    latest_version: int
    indicators: list[InstrumentIndicatorView]


class FollowupStatisticsView(Reply):
    """Follow-up aggregates, with intake's suppression: a cell is shown only when it holds at least
    ``minimum_cell`` cases the caller's organisation neither registered nor manages, and every count is
    rounded to a multiple of five. Cell keys: ``[region or arrival month, PLAN_ON_TIME | NO_PLAN_ON_TIME
    | NOT_YET_DUE]`` for plans, ``[region or months since return (0-3, 3-6, 6-12, 12+), band]`` for the
    latest composite score of each case, ``[scheduled contact (M1, M3…), ON_TIME | LATE | NOT_MADE]``
    for the contacts whose fate is known."""

    plan_due_days: int
    minimum_cell: int
    plans_by_region: list[StatisticsCell]
    plans_by_arrival_month: list[StatisticsCell]
    composite_by_region: list[StatisticsCell]
    composite_by_months_since_return: list[StatisticsCell]
    contacts_on_time: list[StatisticsCell]


# --- offline capture ------------------------------------------------------------------------------


class ItemError(Reply):
    """Why one item was refused: a code, a message, the field at fault; for a CONFLICT, the case's current
    version and the fields changed since the item's base version (names only, those the caller may see)."""

    code: str
    message: str
    field: str | None = None
    current_version: int | None = None
    changed_fields: list[str] | None = None


class SyncItemResult(Reply):
    client_id: str
    status: SyncStatus
    case_id: str | None = None
    version: int | None = None  # the case's version after the item (its current one on a CONFLICT)
    errors: list[ItemError] = Field(default_factory=list)


class SyncResult(Reply):
    """One result per item, in the order sent."""

    results: list[SyncItemResult]


class SubmissionResult(Reply):
    """What became of one Kobo/ODK submission (the HTTP answer Kobo logs)."""

    submission_id: str
    status: SubmissionStatus
    case_id: str | None = None
    problems: list[ItemError] = Field(default_factory=list)


class OfflineSubmissionView(Reply):
    """A received submission as its organisation sees it: a rejected one with the answers kept to fix it
    (until they are fixed or their retention ends; vulnerabilities of categories the caller may not see left out)."""

    id: str
    submission_id: str
    source: str
    status: SubmissionStatus
    case_id: str | None
    problems: list[ItemError]
    answers: dict[str, Any] | None
    attempts: int
    received_at: datetime
    last_received_at: datetime
class LinkedPersonView(Reply):
    """Who a linked case is: given only to a caller that may read that case."""

    given_name: str
    family_name: str
    sex: Sex
    date_of_birth: date | None
    estimated_age: int | None
    arrival_point: ArrivalPoint
    arrival_date: date


class CaseLinkView(Reply):
    """One family link seen from a case: ``relation`` is what this case's person is to the linked one.
    A caller that may not read the linked case sees the link, the linked case's id and owning
    organisation (whom to ask when tracing a family), and ``person`` null (decision record 0023)."""

    id: str
    linked_case_id: str
    relation: Relation
    travelling_together: bool
    owner_org_id: str
    person: LinkedPersonView | None
    created_at: datetime


class FamilyMemberView(Reply):
    """One case of a family: its person only when the caller may read that case."""

    case_id: str
    owner_org_id: str
    person: LinkedPersonView | None


class FamilyLinkView(Reply):
    """One link of a family: ``case_id``'s person is ``relation`` ``linked_case_id``'s."""

    id: str
    case_id: str
    linked_case_id: str
    relation: Relation
    travelling_together: bool


class FamilyView(Reply):
    """The cases linked to one case, transitively, at most ``max_members`` (``truncated`` when more)."""

    case_id: str
    members: list[FamilyMemberView]
    links: list[FamilyLinkView]
    truncated: bool


# --- reception of groups (issue 10): arrival groups, manifests, check-in ------------------------

class ManifestProblem(Reply):
    """One problem in a manifest: the row as the spreadsheet numbers it (the header is row 1; none for
    the whole file), the sender's column header, the field it maps to, and why."""

    row: int | None
    column: str | None
    field: str | None
    reason: str


class ManifestColumn(Reply):
    """A column of the sender's file (its header as written) and the field it filled."""

    column: str
    field: ManifestField


class ManifestResult(Reply):
    """What an upload did: rows kept, rows already in the group (re-upload), and every problem."""

    group_id: str
    sender: str
    file_sha256: str
    rows_read: int
    added: int
    added_rows: list[int]
    already_present_rows: list[int]
    rejected_rows: list[int]
    problems: list[ManifestProblem]
    warnings: list[ManifestProblem]
    mapping: list[ManifestColumn] = Field(description="Each column read, in the file's order")


class ExpectedPersonView(Reply):
    """One person of an arrival group: as the manifest (or the check-in) gave them, and where they stand."""

    id: str
    group_id: str
    source_row: int | None
    given_name: str | None  # null once erased (never checked in, past the manifest's retention)
    family_name: str | None
    sex: Sex | None
    date_of_birth: date | None
    estimated_age: int | None
    phone_numbers: list[str]
    document_number: str | None
    place_of_origin: str | None
    household_ref: str | None
    relationship: str | None
    destination_region: str | None
    status: ExpectedStatus
    added_on_arrival: bool
    case_id: str | None
    checked_in_at: datetime | None
    created_at: datetime
    erased_at: datetime | None = None  # never checked in: identity erased after the retention period


class ArrivalGroupTotals(Reply):
    expected: int = Field(description="People on the manifest(s)")
    checked_in: int
    no_show: int
    added_on_arrival: int = Field(description="Checked in without being on the manifest")
    children: int = Field(description="Under 18 at the group's arrival date, or flagged as a child")
    vulnerable: int = Field(description="Checked-in cases with at least one vulnerability flag")


class ArrivalGroupView(Reply):
    id: str
    owner_org_id: str
    kind: ArrivalGroupKind
    reference: str
    arrival_date: date
    arrival_point: ArrivalPoint
    country_returned_from: str
    status: ArrivalGroupStatus
    closed_at: datetime | None
    created_at: datetime
    totals: ArrivalGroupTotals
    people: Page[ExpectedPersonView] | None = None


# --- people already known (decision record 0022) ----------------------------------------------------

class MatchReasonView(Reply):
    code: str  # NAME_SAME, NAME_VARIANT, NAME_TYPO, NAME_ORDER_SWAPPED, SAME_BIRTH_DATE, AGE_CLOSE, SAME_PHONE…
    text: str  # for the agent, e.g. "Mahamadou ~ Mohamed"


class MatchCandidateView(Reply):
    """A case the caller may read that may be the same person, with how alike and why."""

    score: float
    reasons: list[MatchReasonView]
    case: CaseView


class MatchCandidatesView(Reply):
    threshold: float
    candidates: list[MatchCandidateView]


class CheckInResult(Reply):
    expected_person: ExpectedPersonView
    case: CaseView
    match_candidates: MatchCandidatesView | None = None  # when the check-in asked for them (match_first)


class CaseMergeView(Reply):
    id: str
    survivor_case_id: str
    merged_case_id: str
    reason: str
    merged_by_org_id: str
    merged_at: datetime
    undone_at: datetime | None
    undone_by_org_id: str | None


class PossibleDuplicateView(Reply):
    """For the platform steward: ids, organisations, score and reason codes, never an identity."""

    id: str
    case_id: str
    other_case_id: str
    case_owner_org_id: str
    other_owner_org_id: str
    score: float
    reasons: list[str]
    status: PossibleDuplicateStatus
    created_at: datetime
    decided_at: datetime | None
