"""Request and reply payloads of the NATS request/reply endpoints behind the gateway."""

from __future__ import annotations

import datetime as _dt
import unicodedata
import uuid
from datetime import UTC, date, datetime
from typing import Annotated, Any

import phonenumbers
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from contracts.reference import (
    ArrivalGroupKind,
    ArrivalPoint,
    AssignmentReason,
    ClosureReason,
    ContactMode,
    DirectoryStatus,
    ExpectedStatus,
    GivenBy,
    LegalBasis,
    ManifestField,
    OfflineSource,
    OrganisationType,
    PlanActionStatus,
    PossibleDuplicateStatus,
    Priority,
    Purpose,
    ReferralStatus,
    ReintegrationDimension,
    Relation,
    ReopenReason,
    ServiceCategory,
    Sex,
    StatisticsDimension,
    SubmissionStatus,
    SyncCommand,
    Vulnerability,
    Weekday,
    regions,
)

# Text a client sends: lengths bounded before anything else looks at it; no control characters
# (a NUL byte cannot be stored, and a line break in an identifier has no business there).
_LINE_BREAKS = frozenset("\n\r\t")
_INVISIBLE = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp"})  # controls, zero-width/format, blanks

ARRIVAL_FLOOR = date(2000, 1, 1)  # returns the platform records started long after this
BIRTH_FLOOR = date(1900, 1, 1)


def _no_controls(value: str, *, allow: frozenset[str] = frozenset()) -> str:
    if any(unicodedata.category(c) in ("Cc", "Zl", "Zp") and c not in allow for c in value):
        raise ValueError("must not contain control characters")
    return value


def _strip_invisible(value: str) -> str:
    """Blanks, zero-width and format characters at either end are not part of a name."""
    start, end = 0, len(value)
    while start < end and unicodedata.category(value[start]) in _INVISIBLE:
        start += 1
    while end > start and unicodedata.category(value[end - 1]) in _INVISIBLE:
        end -= 1
    return value[start:end]


def _single_line(value: str) -> str:
    return _no_controls(value)


def _visible_text(value: str) -> str:
    value = _strip_invisible(_no_controls(value, allow=_LINE_BREAKS))
    if not value:
        raise ValueError("must contain visible characters")
    return value


def _person_name(value: str) -> str:
    value = _strip_invisible(_no_controls(value))
    if not any(unicodedata.category(c).startswith("L") for c in value):
        raise ValueError("must contain at least one letter")
    return value


def _justification(value: str) -> str:
    value = _visible_text(value)
    if len(value) < 3:
        raise ValueError("must have at least 3 characters")
    return value


# A person's name: at least one letter once blanks and zero-width characters are set aside.
Name = Annotated[str, StringConstraints(max_length=200), AfterValidator(_person_name)]
# Identifiers (cases, referrals, organisations) and page cursors: short, one line.
Identifier = Annotated[str, StringConstraints(min_length=1, max_length=100), AfterValidator(_single_line)]
Cursor = Annotated[str, StringConstraints(min_length=1, max_length=500), AfterValidator(_single_line)]
# Free text about a decision (never about the person): line breaks allowed, other controls not.
Justification = Annotated[str, StringConstraints(max_length=500), AfterValidator(_justification)]


PHONE_DEFAULT_REGION = "ML"  # a number written without its country code is taken as Malian


def _e164(value: str) -> str:
    """A person's phone number in E.164 (+22376123456), whatever way it was written."""
    try:
        number = phonenumbers.parse(value, PHONE_DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        raise ValueError("not a valid phone number; write it with its country code, e.g. +223 76 12 34 56")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# A person's phone number, stored in E.164 (a Malian number may be written without +223).
PersonPhone = Annotated[str, StringConstraints(min_length=4, max_length=40), AfterValidator(_e164)]
# Where a person comes from (village, commune or cercle), as they say it: one line.
PlaceName = Annotated[str, StringConstraints(max_length=100), AfterValidator(_person_name)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ConsentInput(Strict):
    """Consent as the person (or a child's guardian) gave it: for which purposes, to whom.

    Express and specific: recipients are named organisations or organisation types, and each
    purpose is listed. Refusal is recorded too (``given`` false): assistance never depends on it.
    """

    given: bool
    recipient_org_ids: list[Identifier] = Field(default_factory=list, max_length=50)
    recipient_org_types: list[OrganisationType] = Field(default_factory=list, max_length=5)
    purposes: list[Purpose] = Field(default_factory=lambda: [Purpose.REFERRAL], max_length=10)
    language: Annotated[str, AfterValidator(_single_line)] = Field(default="fr", min_length=2, max_length=20)
    given_by: GivenBy = GivenBy.PERSON
    guardian_name: Name | None = None

    @model_validator(mode="after")
    def _coherent(self) -> "ConsentInput":
        if not self.given and (self.recipient_org_ids or self.recipient_org_types):
            raise ValueError("recipient organisations can only be listed when consent is given")
        if self.given and not self.purposes:
            raise ValueError("consent must name at least one purpose")
        if self.given_by == GivenBy.GUARDIAN and not self.guardian_name:
            raise ValueError("name the guardian who gave consent for the child")
        return self


MAX_LINKS = 20  # family links given with one registration


class CaseLinkInput(Strict):
    """A family link from the person being registered (or ``case_id`` of LinkCases) to an existing case:
    ``relation`` is what this person is to the other (CHILD_OF the mother's case)."""

    case_id: Identifier = Field(description="The existing case linked to")
    relation: Relation
    travelling_together: bool = Field(description="True when they arrive together")


class RegisterArrival(Strict):
    """One person received at an arrival point."""

    given_name: Name
    family_name: Name
    sex: Sex
    date_of_birth: date | None = Field(default=None, description="Not in the future; give it or estimated_age")
    estimated_age: int | None = Field(default=None, ge=0, le=120, validate_default=True)
    country_returned_from: str = Field(min_length=2, max_length=2, pattern="^[A-Z]{2}$")
    arrival_point: ArrivalPoint
    arrival_date: date
    destination_region: str = Field(
        description="National (CT) region code", json_schema_extra={"enum": sorted(regions())}
    )
    vulnerabilities: list[Vulnerability] = Field(default_factory=list, max_length=20)
    consent: ConsentInput
    phone_numbers: list[PersonPhone] = Field(default_factory=list, max_length=5,
                                             description="Stored in E.164; without +country code, Malian")
    place_of_origin: PlaceName | None = Field(default=None, description="Village, commune or cercle of origin")
    links: list[CaseLinkInput] = Field(default_factory=list, max_length=MAX_LINKS,
                                       description="Family links to existing cases (a child CHILD_OF her mother's)")

    @field_validator("links")
    @classmethod
    def _one_link_per_case(cls, value: list[CaseLinkInput]) -> list[CaseLinkInput]:
        if len({link.case_id for link in value}) != len(value):
            raise ValueError("link each case at most once")
        return value

    @field_validator("phone_numbers")
    @classmethod
    def _distinct_phones(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))

    @field_validator("date_of_birth")
    @classmethod
    def _born_in_past(cls, value: date | None) -> date | None:
        if value is not None and value > datetime.now(UTC).date():
            raise ValueError("date of birth cannot be in the future")
        if value is not None and value < BIRTH_FLOOR:
            raise ValueError("date of birth is before 1900")
        return value

    @field_validator("arrival_date")
    @classmethod
    def _arrived_in_past(cls, value: date, info: ValidationInfo) -> date:
        if value > datetime.now(UTC).date():
            raise ValueError("arrival date cannot be in the future")
        if value < ARRIVAL_FLOOR:
            raise ValueError(f"arrival date is before {ARRIVAL_FLOOR.isoformat()}")
        born = info.data.get("date_of_birth")
        if born is not None and value < born:
            raise ValueError("arrival date is before the date of birth")
        return value

    @field_validator("destination_region")
    @classmethod
    def _known_region(cls, value: str) -> str:
        if value not in regions():
            raise ValueError(f"unknown region code; expected one of {', '.join(sorted(regions()))}")
        return value

    @field_validator("vulnerabilities")
    @classmethod
    def _no_duplicates(cls, value: list[Vulnerability]) -> list[Vulnerability]:
        return sorted(set(value))

    @field_validator("estimated_age", mode="after")
    @classmethod
    def _age_known(cls, value: int | None, info: ValidationInfo) -> int | None:
        """Reported on estimated_age: the field to fill when the date of birth is unknown.

        A date of birth that failed its own validation is absent from ``info.data``: no second error then.
        """
        if value is None and "date_of_birth" in info.data and info.data["date_of_birth"] is None:
            raise ValueError("give a date of birth or, when it is unknown, an estimated age")
        return value

    def age_on(self, day: date) -> int:
        if self.date_of_birth is None:
            assert self.estimated_age is not None
            return self.estimated_age
        born = self.date_of_birth
        return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


class RegisterArrivalRequest(Strict):
    idempotency_key: Annotated[str, AfterValidator(_single_line)] = Field(min_length=8, max_length=200)
    arrival: RegisterArrival


class CaseRef(Strict):
    case_id: Identifier


class RecordConsent(Strict):
    """A new consent (or refusal) for a case the caller's organisation owns; adds to earlier ones."""

    case_id: Identifier
    consent: ConsentInput


class WithdrawConsent(Strict):
    """Withdraw one recorded consent: the access it allowed ends at once."""

    case_id: Identifier
    consent_id: Identifier


class RecordLegalBasis(Strict):
    """A basis other than consent (vital interest, legal obligation, public interest) for sharing."""

    case_id: Identifier
    legal_basis: LegalBasis
    purposes: list[Purpose] = Field(min_length=1, max_length=10)
    recipient_org_ids: list[Identifier] = Field(default_factory=list, max_length=50)
    recipient_org_types: list[OrganisationType] = Field(default_factory=list, max_length=5)
    justification: Justification

    @field_validator("legal_basis")
    @classmethod
    def _not_consent(cls, value: LegalBasis) -> LegalBasis:
        if value == LegalBasis.CONSENT:
            raise ValueError("record consent with the consent operation")
        return value

    @model_validator(mode="after")
    def _has_recipient(self) -> "RecordLegalBasis":
        if not self.recipient_org_ids and not self.recipient_org_types:
            raise ValueError("name at least one recipient organisation or organisation type")
        return self


class ReferralAction(Strict):
    """Accept, reject (with a reason code), complete or revoke one referral."""

    referral_id: Identifier
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=60,
                                             pattern="^[A-Z0-9_]+$")] | None = None


# A code from a list people and rules share (a reason, an outcome): never prose, so it can travel in
# events and audit records. Upper-case letters, digits and underscores, starting with a letter.
Code = Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=60,
                                        pattern="^[A-Z][A-Z0-9_]*$")]
# What a case worker writes about a person for the recipient of a referral: personal data, kept in
# the referral service's table only, never in an event, a log or an audit record.
Note = Annotated[str, StringConstraints(max_length=2000), AfterValidator(_visible_text)]
MAX_DUE_IN_HOURS = 24 * 90


class ReferCase(Strict):
    """A case worker refers a case their organisation may read to a service of the directory.

    The deadline is ``due_at``, or ``due_in_hours`` from now, or else the priority's default.
    """

    idempotency_key: Annotated[str, AfterValidator(_single_line)] = Field(min_length=8, max_length=200)
    case_id: Identifier
    service_id: Identifier
    reason_code: Code
    priority: Priority
    note: Note | None = None
    due_at: AwareDatetime | None = None
    due_in_hours: int | None = Field(default=None, ge=1, le=MAX_DUE_IN_HOURS)

    @model_validator(mode="after")
    def _one_deadline(self) -> "ReferCase":
        if self.due_at is not None and self.due_in_hours is not None:
            raise ValueError("give dueAt or dueInHours, not both")
        return self


class ReferralOutcome(Strict):
    """What came of a referral, recorded by the recipient when it completes it."""

    service_delivered: bool
    delivered_on: date | None = Field(default=None, description="Required when the service was delivered")
    outcome_code: Code

    @model_validator(mode="after")
    def _date_when_delivered(self) -> "ReferralOutcome":
        if self.service_delivered and self.delivered_on is None:
            raise ValueError("give the date the service was delivered (deliveredOn)")
        if not self.service_delivered and self.delivered_on is not None:
            raise ValueError("a service not delivered has no delivery date")
        return self


class CompleteReferral(ReferralAction):
    """Complete an accepted referral; the outcome is optional so that earlier clients keep working."""

    outcome: ReferralOutcome | None = None


class StatisticsRequest(Strict):
    group_by: list[StatisticsDimension] = Field(min_length=1, max_length=3)

    @field_validator("group_by")
    @classmethod
    def _distinct(cls, value: list[StatisticsDimension]) -> list[StatisticsDimension]:
        if len(set(value)) != len(value):
            raise ValueError("group by distinct dimensions")
        return value


class PageRequest(Strict):
    first: int = Field(default=20, ge=1, le=100)
    after: Cursor | None = None


class ReferralListRequest(PageRequest):
    """A page of a work list (incoming or outgoing referrals), optionally filtered."""

    status: ReferralStatus | None = None
    priority: Priority | None = None
    overdue_only: bool = False


class OverdueCountsRequest(Strict):
    """No parameters: the counts are the caller's organisation's (and, for the coordinating body, everyone's)."""


class NotificationsRequest(PageRequest):
    unread_only: bool = False


class MarkRead(Strict):
    notification_id: Identifier


# --- the service directory (HSDS 3) -------------------------------------------------------------


def _visible_line(value: str) -> str:
    value = _strip_invisible(_no_controls(value))
    if not value:
        raise ValueError("must contain visible characters")
    return value


def _region_code(value: str) -> str:
    if value not in regions():
        raise ValueError(f"unknown region code; expected one of {', '.join(sorted(regions()))}")
    return value


# Directory text is public-facing and never about a person: one line for names and places, a few
# paragraphs for descriptions.
DirectoryLine = Annotated[str, StringConstraints(max_length=200), AfterValidator(_visible_line)]
DirectoryText = Annotated[str, StringConstraints(max_length=2000), AfterValidator(_visible_text)]
RegionCode = Annotated[str, AfterValidator(_region_code)]
Email = Annotated[str, StringConstraints(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
Phone = Annotated[str, StringConstraints(min_length=6, max_length=30, pattern=r"^\+?[0-9][0-9 ().-]{4,28}[0-9]$")]
WebAddress = Annotated[str, StringConstraints(max_length=500, pattern=r"^https?://[^\s/$.?#][^\s]*$")]
ClockTime = Annotated[str, StringConstraints(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
AGE_CEILING = 120


class DirectoryLocationInput(Strict):
    """A place where the service is delivered (HSDS ``location``); coordinates in WGS 84, both or neither."""

    name: DirectoryLine | None = None
    address: DirectoryLine | None = None
    city: DirectoryLine | None = None
    region: RegionCode | None = None
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180, validate_default=True)

    @field_validator("longitude")
    @classmethod
    def _both_coordinates(cls, value: float | None, info: ValidationInfo) -> float | None:
        """Reported on longitude: a lone latitude or longitude places nothing."""
        if "latitude" in info.data and (info.data["latitude"] is None) != (value is None):
            raise ValueError("give latitude and longitude together, or neither")
        return value


class OpeningHours(Strict):
    """Opening hours on some days of the week (HSDS ``schedule``: WEEKLY, ``byday``), local time (Bamako, UTC)."""

    days: list[Weekday] = Field(min_length=1, max_length=7)
    opens_at: ClockTime
    closes_at: ClockTime

    @field_validator("days")
    @classmethod
    def _distinct_days(cls, value: list[Weekday]) -> list[Weekday]:
        if len(set(value)) != len(value):
            raise ValueError("name each day once")
        return sorted(value, key=list(Weekday).index)

    @field_validator("closes_at")
    @classmethod
    def _closes_after_opening(cls, value: str, info: ValidationInfo) -> str:
        if "opens_at" in info.data and value <= info.data["opens_at"]:
            raise ValueError("closing time must be after opening time")
        return value


class CapacityInput(Strict):
    """How many more people the service can take now, of how many at most (HSDS ``service_capacity``)."""

    available: int = Field(ge=0, le=1_000_000)
    maximum: int | None = Field(default=None, ge=0, le=1_000_000)

    @field_validator("maximum")
    @classmethod
    def _available_within_maximum(cls, value: int | None, info: ValidationInfo) -> int | None:
        if value is not None and info.data.get("available") is not None and info.data["available"] > value:
            raise ValueError("maximum must be at least the available capacity")
        return value


class SaveDirectoryService(Strict):
    """Create one directory service, or update it (``id`` and the ``version`` last read).

    ``id`` without ``version`` creates the service with that id (a stable key for seeding and
    imports); an existing id then answers CONFLICT. ``organization_id`` defaults to the caller's.
    """

    id: Identifier | None = None
    version: int | None = Field(default=None, ge=1)
    organization_id: Identifier | None = None
    organization_name: DirectoryLine | None = Field(
        default=None, description="The organisation's display name in the directory (HSDS organization.name)")
    organization_type: OrganisationType | None = None
    name_fr: DirectoryLine
    name_en: DirectoryLine | None = None
    description_fr: DirectoryText | None = None
    description_en: DirectoryText | None = None
    category: ServiceCategory
    regions: list[RegionCode] = Field(default_factory=list, max_length=20,
                                      description="Service area (CT region codes); empty: national")
    locations: list[DirectoryLocationInput] = Field(default_factory=list, max_length=20)
    minimum_age: int | None = Field(default=None, ge=0, le=AGE_CEILING)
    maximum_age: int | None = Field(default=None, ge=0, le=AGE_CEILING)
    sexes: list[Sex] = Field(default_factory=list, max_length=4, description="Eligible sexes; empty: any")
    vulnerabilities: list[Vulnerability] = Field(default_factory=list, max_length=20,
                                                 description="Eligible with one of these; empty: anyone")
    hours: list[OpeningHours] = Field(default_factory=list, max_length=14)
    email: Email | None = None
    phone: Phone | None = None
    url: WebAddress | None = None
    status: DirectoryStatus = DirectoryStatus.ACTIVE
    expected_duration_days: int | None = Field(
        default=None, ge=1, le=365, description="An accepted referral with no outcome after this is flagged")
    capacity: CapacityInput | None = None

    @field_validator("maximum_age")
    @classmethod
    def _age_range(cls, value: int | None, info: ValidationInfo) -> int | None:
        low = info.data.get("minimum_age")
        if value is not None and low is not None and value < low:
            raise ValueError("maximum age must be at least the minimum age")
        return value

    @field_validator("regions", "sexes", "vulnerabilities")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        return sorted(set(value))


class SetServiceCapacity(CapacityInput):
    """A new capacity count for one service, with the ``version`` last read."""

    service_id: Identifier
    version: int = Field(ge=1)


class DirectoryServiceRef(Strict):
    id: Identifier


class ApproveDirectoryService(Strict):
    """The platform steward puts a sensitive-category service to use, as of the ``version`` reviewed."""

    id: Identifier
    version: int = Field(ge=1)


class DirectoryQuery(Strict):
    """One page of directory services, newest first, with filters (all optional, combined with AND)."""

    first: int = Field(default=20, ge=1, le=100)
    after: Cursor | None = None
    category: ServiceCategory | None = None
    region: RegionCode | None = Field(default=None, description="Services covering it: regional there, or national")
    vulnerability: Vulnerability | None = Field(default=None, description="Services a person with it is eligible for")
    open_capacity_only: bool = Field(
        default=False, description="Leave out services known to be full (unknown capacity counts as open)")
    organization_id: Identifier | None = None
    include_inactive: bool = False
    awaiting_approval: bool | None = Field(
        default=None, description="Only services awaiting (true) or not awaiting (false) the steward's approval")


class HsdsPageRequest(Strict):
    """HSDS 3 API paging (``page`` from 1, ``per_page``) and its ``organization_id`` filter."""

    page: int = Field(default=1, ge=1, le=100_000)
    per_page: int = Field(default=50, ge=1, le=100)
    organization_id: Identifier | None = None


class HsdsRef(Strict):
    id: Identifier


class AssignNeed(Strict):
    """Assign an unassigned need to a directory service by hand (its case's owner or the coordinating body)."""

    referral_id: Identifier
    service_id: Identifier


class RerouteReferral(Strict):
    """Send a referral on to the next eligible provider (the referring organisation or the coordinating body)."""

    referral_id: Identifier
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=60,
                                             pattern="^[A-Z0-9_]+$")] | None = None


# --- follow-up (suivi) ----------------------------------------------------------------------------

# What a case worker writes in a plan (a goal, an action): personal data, kept in the follow-up
# service's tables only, never in an event, a log or an audit record.
PlanText = Annotated[str, StringConstraints(max_length=500), AfterValidator(_visible_text)]
MAX_GOALS = 30
MAX_ACTIONS = 30


def _referral_id(value: str) -> str:
    """A referral's id (a UUID): it is announced in ``plan_saved`` events, so it may not carry text."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ValueError("not a referral id") from None


ReferralId = Annotated[Identifier, AfterValidator(_referral_id)]


class AssignCaseManagement(Strict):
    """Hand a case's follow-up to another organisation (the current manager, or the platform steward).

    ``organization_type`` is filled in by the gateway from the organisation registry (the authority
    on organisations, as for a token's ``org_type``), so consent given to a type of organisation counts.
    """

    case_id: Identifier
    organization_id: Identifier
    organization_type: OrganisationType | None = None
    reason: AssignmentReason  # a closed list: a reason is announced in case_assigned, never free text


class PlanActionInput(Strict):
    """One action of a goal: what, by when, its state, and the referral it rests on if any."""

    id: Identifier | None = Field(default=None, description="An action of the plan you read; none: a new action")
    # None: keep the action's text as saved (a caller without the case's sensitive scopes cannot read
    # it, and must not have to re-type it to change the plan); required for a new action.
    description: PlanText | None = None
    referral_id: ReferralId | None = None
    target_date: date
    status: PlanActionStatus = PlanActionStatus.PLANNED


class PlanGoalInput(Strict):
    """One goal of a reintegration plan, in one dimension, with its actions."""

    id: Identifier | None = Field(default=None, description="A goal of the plan you read; none: a new goal")
    dimension: ReintegrationDimension
    description: PlanText | None = None  # None: keep the goal's text as saved (as for an action); required for a new goal
    actions: list[PlanActionInput] = Field(default_factory=list, max_length=MAX_ACTIONS)


class SavePlan(Strict):
    """Save the whole reintegration plan of a case (the managing organisation), as of the version read.

    ``version`` is the follow-up case's ``version`` the caller read: a stale one is refused (CONFLICT).
    """

    idempotency_key: Annotated[str, AfterValidator(_single_line)] = Field(min_length=8, max_length=200)
    case_id: Identifier
    version: int = Field(ge=0)
    goals: list[PlanGoalInput] = Field(min_length=1, max_length=MAX_GOALS)

    @model_validator(mode="after")
    def _distinct_actions(self) -> "SavePlan":
        ids = [a.id for g in self.goals for a in g.actions if a.id is not None]
        if len(ids) != len(set(ids)):
            raise ValueError("an action id appears twice in the plan")
        return self


class UpdatePlanAction(Strict):
    """Move one plan action to another state, as of the follow-up case's version read."""

    case_id: Identifier
    action_id: Identifier
    version: int = Field(ge=0)
    status: PlanActionStatus


class CloseCase(Strict):
    """Close a case's follow-up with its reason; its open plan actions are closed too."""

    case_id: Identifier
    reason: ClosureReason
    version: int = Field(ge=0)

    @field_validator("reason")
    @classmethod
    def _not_merged(cls, reason: ClosureReason) -> ClosureReason:
        if reason == ClosureReason.MERGED:
            raise ValueError("MERGED is set when a registration is merged into another, never by hand")
        return reason


class ReopenCase(Strict):
    """Re-open a closed follow-up, with a reason from a closed list (it is announced in case_reopened)."""

    case_id: Identifier
    reason: ReopenReason
    version: int = Field(ge=0)


# --- the Reintegration Sustainability Survey --------------------------------------------------------

# An instrument's codes (indicators, options, instruments): upper-case letters, digits and
# underscores, so an answer can never carry free text, and a refusal can name what it refuses.
SurveyCode = Annotated[str, StringConstraints(min_length=1, max_length=60, pattern="^[A-Z][A-Z0-9_]*$")]
MAX_ANSWERS = 100


class SurveyAnswerInput(Strict):
    """One answer: the indicator's code and the chosen option's code (or DECLINED: the person chose not to answer)."""

    indicator: SurveyCode
    option: SurveyCode


class RecordSurvey(Strict):
    """Record one administration of a survey instrument for a case (the managing organisation).

    The answers are checked against that exact version (``instrument_version``; none: the latest),
    every indicator answered once; every problem is reported, and nothing is stored unless all pass.
    """

    idempotency_key: Annotated[str, AfterValidator(_single_line)] = Field(min_length=8, max_length=200)
    case_id: Identifier
    instrument_id: SurveyCode = "RSS"
    instrument_version: int | None = Field(default=None, ge=1)
    taken_on: date
    answers: list[SurveyAnswerInput] = Field(min_length=1, max_length=MAX_ANSWERS)


class InstrumentRef(Strict):
    """One version of a survey instrument (none: the latest)."""

    id: SurveyCode = "RSS"
    version: int | None = Field(default=None, ge=1)


class FollowupStatisticsRequest(Strict):
    """Follow-up aggregates for the coordinating body: nothing to choose yet (the dimensions are fixed)."""


# A contact's note: what the case worker heard. Personal data (it may touch health, violence, a
# child's situation): it stays in the follow-up service's tables, never in an event, a log or an
# audit record, and on a case with a sensitive vulnerability it is shown only with that scope.
ContactNote = Annotated[str, StringConstraints(max_length=2000), AfterValidator(_visible_text)]


class ContactInput(Strict):
    """One follow-up contact, as the case worker logs it. ``date`` may be neither in the future nor
    before the person's arrival (checked by the service, against its clock and its copy of the case)."""

    date: _dt.date
    mode: ContactMode
    reached: bool
    next_step: PlanText | None = None
    note: ContactNote | None = None


class LogContact(Strict):
    """Log a contact with the person whose follow-up the caller's organisation manages (once per key)."""

    idempotency_key: Annotated[str, AfterValidator(_single_line)] = Field(min_length=8, max_length=200)
    case_id: Identifier
    input: ContactInput


class ContactWorkListRequest(PageRequest):
    """A page of a follow-up work list; ``within_days``: how far ahead "due" looks (followupsDue)."""

    within_days: int = Field(default=7, ge=0, le=90)


# --- offline capture: case corrections, Kobo/ODK submissions, batch sync --------------------------


class CaseChanges(Strict):
    """Corrections to a case's identity or screening. Only the fields sent change (``null`` clears an
    optional one); the corrected case is checked with RegisterArrival's rules. ``vulnerabilities``
    replaces the flags of the categories the caller may see; flags it may not see are kept."""

    given_name: Name | None = None
    family_name: Name | None = None
    sex: Sex | None = None
    date_of_birth: date | None = None
    estimated_age: int | None = Field(default=None, ge=0, le=120)
    phone_numbers: list[PersonPhone] | None = Field(default=None, max_length=5)
    place_of_origin: PlaceName | None = None
    destination_region: str | None = Field(default=None, json_schema_extra={"enum": sorted(regions())})
    vulnerabilities: list[Vulnerability] | None = Field(default=None, max_length=20)


class UpdateCase(Strict):
    """The owner corrects a case as of the ``version`` it read; a stale version is a CONFLICT, nothing written.
    With an ``idempotency_key``, a retry of an applied correction answers the case as it made it."""

    case_id: Identifier
    version: int = Field(ge=1, le=1_000_000)
    changes: CaseChanges
    idempotency_key: Annotated[str, AfterValidator(_single_line)] | None = Field(default=None, min_length=8,
                                                                                 max_length=200)


class OfflineSubmission(Strict):
    """One submission as KoboToolbox's REST service posts it (JSON), read by intake with ``contracts.xlsform``."""

    source: OfflineSource = OfflineSource.KOBO
    submission: dict[str, Any] = Field(max_length=500)


class OfflineSubmissionsRequest(PageRequest):
    """The caller's organisation's received submissions, newest first, optionally of one status."""

    status: SubmissionStatus | None = None


class SyncItem(Strict):
    """One command of a batch. Its content is checked item by item (a bad one is REJECTED, the others go on):
    REGISTER_ARRIVAL takes ``arrival`` (a RegisterArrival); UPDATE_CASE ``case_id``, ``base_version`` and
    ``changes`` (a CaseChanges). ``client_id`` is a UUID the client made: the command's idempotency key."""

    client_id: Identifier
    command: SyncCommand
    arrival: dict[str, Any] | None = Field(default=None, max_length=50)
    case_id: Identifier | None = None
    base_version: int | None = None
    changes: dict[str, Any] | None = Field(default=None, max_length=50)


SYNC_MAX_ITEMS = 100


class SyncBatch(Strict):
    """Commands captured offline, applied in order, each on its own: per-item results in the same order."""

    items: list[SyncItem] = Field(min_length=1, max_length=SYNC_MAX_ITEMS)
class LinkCases(Strict):
    """Link two existing cases (a family): the caller's organisation must be able to read both and own
    at least one. ``relation`` is what ``case_id``'s person is to ``linked_case_id``'s. Linking again the
    same way changes nothing."""

    case_id: Identifier
    linked_case_id: Identifier
    relation: Relation
    travelling_together: bool


class UnlinkCases(Strict):
    """Remove the link between two cases (same access as LinkCases); removing an absent link changes nothing."""

    case_id: Identifier
    linked_case_id: Identifier


# --- reception of groups (issue 10): arrival groups, manifests, check-in ------------------------

# A manifest file is sent to intake whole, base64-encoded in one NATS request (docs/decisions/0021):
# 400,000 bytes (about 4,000 rows of CSV) become 533,336 characters, well inside NATS's default
# 1 MiB payload and the gateway's 512 KiB body limit.
MAX_MANIFEST_BYTES = 400_000
MAX_MANIFEST_ROWS = 3000
# A group reference (flight number, convoy label) and a sender's name: short, one line.
Label = Annotated[str, StringConstraints(min_length=1, max_length=100), AfterValidator(_visible_text),
                  AfterValidator(_single_line)]
IdempotencyKey = Annotated[str, AfterValidator(_single_line), StringConstraints(min_length=8, max_length=200)]


class CreateArrivalGroup(Strict):
    """A group of people expected together: a charter flight or a convoy (once per idempotency key)."""

    idempotency_key: IdempotencyKey
    kind: ArrivalGroupKind
    reference: Label = Field(description="Flight number or convoy label")
    arrival_date: date = Field(description="The day the group arrives (may be ahead)")
    arrival_point: ArrivalPoint
    country_returned_from: str = Field(min_length=2, max_length=2, pattern="^[A-Z]{2}$")

    @field_validator("arrival_date")
    @classmethod
    def _plausible(cls, value: date) -> date:
        if value < ARRIVAL_FLOOR:
            raise ValueError(f"arrival date is before {ARRIVAL_FLOOR.isoformat()}")
        if value > datetime.now(UTC).date() + _dt.timedelta(days=366):
            raise ValueError("arrival date is more than a year ahead")
        return value


class ColumnMapping(Strict):
    """One column of the sender's file (its header as written) and what it holds."""

    column: Label
    field: ManifestField


class UploadManifest(Strict):
    """A passenger list for a group: CSV (UTF-8, ``,`` or ``;``) or XLSX (first sheet), base64-encoded.

    ``mapping`` (optional) names what some columns hold; it is saved for ``sender`` and used again
    when that sender uploads without one. Other columns are recognised by their usual headers.
    """

    group_id: Identifier
    sender: Label = Field(description="Who sent the list, as your organisation names them (e.g. OIM Libye)")
    content_base64: str = Field(min_length=1, max_length=(MAX_MANIFEST_BYTES + 2) // 3 * 4)
    filename: Label | None = None
    mapping: list[ColumnMapping] | None = Field(default=None, max_length=100)


class CheckInInput(Strict):
    """What the agent confirms or corrects at arrival: every field overrides the manifest row and the group;
    consent is always asked."""

    consent: ConsentInput
    given_name: Name | None = None
    family_name: Name | None = None
    sex: Sex | None = None
    date_of_birth: date | None = None
    estimated_age: int | None = Field(default=None, ge=0, le=120)
    country_returned_from: str | None = Field(default=None, min_length=2, max_length=2, pattern="^[A-Z]{2}$")
    arrival_point: ArrivalPoint | None = None
    arrival_date: date | None = None
    destination_region: str | None = Field(default=None, max_length=10)
    vulnerabilities: list[Vulnerability] = Field(default_factory=list, max_length=20)
    phone_numbers: list[PersonPhone] | None = Field(default=None, max_length=5)
    place_of_origin: PlaceName | None = None
    links: list[CaseLinkInput] = Field(default_factory=list, max_length=MAX_LINKS,
                                       description="Family links to cases already registered (a child CHILD_OF her "
                                                   "mother's, checked in before her)")


MAX_CANDIDATES = 20


class CheckIn(Strict):
    """Check one person of a group in (or, without ``expected_person_id``, someone not on the list): registers
    their case as registerArrival does, once per idempotency key."""

    idempotency_key: IdempotencyKey
    group_id: Identifier
    expected_person_id: Identifier | None = None
    input: CheckInInput
    # Answer with the person's match candidates too (the first this many the caller may read), from the
    # registration's own lookup: one lookup instead of a second request (decision record 0022).
    match_first: int | None = Field(default=None, ge=1, le=MAX_CANDIDATES)


class ArrivalGroupRef(Strict):
    group_id: Identifier


class ArrivalGroupQuery(Strict):
    """One group with its totals and a page of its people (manifest order), optionally of one status."""

    group_id: Identifier
    first: int = Field(default=50, ge=1, le=100)
    after: Cursor | None = None
    status: ExpectedStatus | None = None


# --- people already known (decision record 0022) -----------------------------------------------------

class MatchPerson(Strict):
    """An identity to look up before registering it (a check-in screen asks first)."""

    given_name: Name
    family_name: Name
    sex: Sex | None = None
    date_of_birth: date | None = None
    estimated_age: int | None = Field(default=None, ge=0, le=120)
    arrival_date: date | None = Field(default=None, description="When the age was estimated; default today")
    phone_numbers: list[PersonPhone] = Field(default_factory=list, max_length=5)
    place_of_origin: PlaceName | None = None
    destination_region: str | None = Field(default=None, max_length=2)

    @model_validator(mode="after")
    def _age_known(self) -> "MatchPerson":
        if self.date_of_birth is None and self.estimated_age is None:
            raise ValueError("give a date of birth or, when it is unknown, an estimated age")
        return self



class MatchCandidatesRequest(Strict):
    """Candidates for a case the caller may read (``case_id``) or for a person not registered yet."""

    case_id: Identifier | None = None
    person: MatchPerson | None = None
    first: int = Field(default=10, ge=1, le=MAX_CANDIDATES)

    @model_validator(mode="after")
    def _one_subject(self) -> "MatchCandidatesRequest":
        if (self.case_id is None) == (self.person is None):
            raise ValueError("give either a case id or a person, not both")
        return self


class MergeCases(Strict):
    """Merge ``merged_case_id`` into ``survivor_case_id`` (explicit, audited, undoable)."""

    survivor_case_id: Identifier
    merged_case_id: Identifier
    reason: Justification

    @model_validator(mode="after")
    def _two_cases(self) -> "MergeCases":
        if self.survivor_case_id.strip().lower() == self.merged_case_id.strip().lower():
            raise ValueError("a case cannot be merged into itself")
        return self


class UndoMerge(Strict):
    merge_id: Identifier


class PossibleDuplicatesRequest(PageRequest):
    status: PossibleDuplicateStatus | None = None


class DecidePossibleDuplicate(Strict):
    """The steward's decision on a possible duplicate: two people (DISMISSED) or one (RESOLVED)."""

    id: Identifier
    status: PossibleDuplicateStatus

    @field_validator("status")
    @classmethod
    def _decided(cls, value: PossibleDuplicateStatus) -> PossibleDuplicateStatus:
        if value == PossibleDuplicateStatus.OPEN:
            raise ValueError("a decision is DISMISSED or RESOLVED")
        return value
