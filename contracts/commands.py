"""Request and reply payloads of the NATS request/reply endpoints behind the gateway."""

from __future__ import annotations

import unicodedata
from datetime import UTC, date, datetime
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from contracts.reference import (
    ArrivalPoint,
    GivenBy,
    LegalBasis,
    OrganisationType,
    Purpose,
    Sex,
    StatisticsDimension,
    Vulnerability,
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


class NotificationsRequest(PageRequest):
    unread_only: bool = False


class MarkRead(Strict):
    notification_id: Identifier


class AssignNeed(Strict):
    """Assign an unassigned need to a directory service by hand (its case's owner or the coordinating body)."""

    referral_id: Identifier
    service_id: Identifier


class RerouteReferral(Strict):
    """Send a referral on to the next eligible provider (the referring organisation or the coordinating body)."""

    referral_id: Identifier
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=60,
                                             pattern="^[A-Z0-9_]+$")] | None = None
