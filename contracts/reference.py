"""Reference lists the product needs at run time (copied from the domain reference, versioned here)."""

from __future__ import annotations

import csv
from enum import StrEnum
from functools import cache
from importlib import resources


@cache
def regions() -> dict[str, str]:
    """Mali's national local-government (CT) region codes → names (2023 reform: Bamako + 19 regions)."""
    text = resources.files("contracts").joinpath("mali-regions.csv").read_text(encoding="utf-8")
    return {row["ct_code"]: row["name"] for row in csv.DictReader(text.splitlines())}


class Vulnerability(StrEnum):
    """IOM Determinants of Migrant Vulnerability categories used at screening."""

    UNACCOMPANIED_CHILD = "UNACCOMPANIED_CHILD"
    SEPARATED_CHILD = "SEPARATED_CHILD"
    TRAFFICKING_VICTIM = "TRAFFICKING_VICTIM"
    GBV_SURVIVOR = "GBV_SURVIVOR"
    VIOLENCE_IN_TRANSIT = "VIOLENCE_IN_TRANSIT"
    MEDICAL_NEEDS = "MEDICAL_NEEDS"
    MENTAL_HEALTH_NEEDS = "MENTAL_HEALTH_NEEDS"
    DISABILITY = "DISABILITY"
    PREGNANT = "PREGNANT"
    ELDERLY = "ELDERLY"
    SINGLE_PARENT = "SINGLE_PARENT"
    EX_DETAINEE = "EX_DETAINEE"
    INTERNATIONAL_PROTECTION = "INTERNATIONAL_PROTECTION"


CHILD_VULNERABILITIES = frozenset({Vulnerability.UNACCOMPANIED_CHILD, Vulnerability.SEPARATED_CHILD})


class SensitiveCategory(StrEnum):
    """Categories of sensitive data (Loi 2013-015): hidden unless the token holds ``sensitive:<value>``."""

    HEALTH = "health"
    GBV = "gbv"
    TRAFFICKING = "trafficking"
    CHILD_PROTECTION = "child_protection"

    @property
    def scope(self) -> str:
        return f"sensitive:{self.value}"


SENSITIVE_VULNERABILITIES: dict[Vulnerability, SensitiveCategory] = {
    Vulnerability.MEDICAL_NEEDS: SensitiveCategory.HEALTH,
    Vulnerability.MENTAL_HEALTH_NEEDS: SensitiveCategory.HEALTH,
    Vulnerability.DISABILITY: SensitiveCategory.HEALTH,
    Vulnerability.PREGNANT: SensitiveCategory.HEALTH,
    Vulnerability.GBV_SURVIVOR: SensitiveCategory.GBV,
    Vulnerability.TRAFFICKING_VICTIM: SensitiveCategory.TRAFFICKING,
    Vulnerability.UNACCOMPANIED_CHILD: SensitiveCategory.CHILD_PROTECTION,
    Vulnerability.SEPARATED_CHILD: SensitiveCategory.CHILD_PROTECTION,
}


class ServiceCategory(StrEnum):
    """Service directory categories (immediate, protection, psychosocial, economic, social)."""

    RECEPTION = "RECEPTION"
    FOOD = "FOOD"
    SHELTER = "SHELTER"
    NON_FOOD_ITEMS = "NON_FOOD_ITEMS"
    HEALTH_CARE = "HEALTH_CARE"
    ONWARD_TRANSPORT = "ONWARD_TRANSPORT"
    CASH_ALLOWANCE = "CASH_ALLOWANCE"
    CHILD_PROTECTION = "CHILD_PROTECTION"
    GBV_RESPONSE = "GBV_RESPONSE"
    COUNTER_TRAFFICKING = "COUNTER_TRAFFICKING"
    FAMILY_TRACING = "FAMILY_TRACING"
    LEGAL_AID = "LEGAL_AID"
    CIVIL_DOCUMENTATION = "CIVIL_DOCUMENTATION"
    INTERNATIONAL_PROTECTION = "INTERNATIONAL_PROTECTION"
    MHPSS_COUNSELLING = "MHPSS_COUNSELLING"
    CLINICAL_MENTAL_HEALTH = "CLINICAL_MENTAL_HEALTH"
    COMMUNITY_ACTIVITIES = "COMMUNITY_ACTIVITIES"
    BUSINESS_START_UP = "BUSINESS_START_UP"
    JOB_PLACEMENT = "JOB_PLACEMENT"
    VOCATIONAL_TRAINING = "VOCATIONAL_TRAINING"
    FINANCIAL_COUNSELLING = "FINANCIAL_COUNSELLING"
    CASH_OR_IN_KIND = "CASH_OR_IN_KIND"
    MICROCREDIT = "MICROCREDIT"
    SAVINGS_GROUPS = "SAVINGS_GROUPS"
    HOUSING = "HOUSING"
    EDUCATION = "EDUCATION"
    SOCIAL_PROTECTION = "SOCIAL_PROTECTION"


SENSITIVE_SERVICES: dict[ServiceCategory, SensitiveCategory] = {
    ServiceCategory.CHILD_PROTECTION: SensitiveCategory.CHILD_PROTECTION,
    ServiceCategory.COUNTER_TRAFFICKING: SensitiveCategory.TRAFFICKING,
    ServiceCategory.GBV_RESPONSE: SensitiveCategory.GBV,
    ServiceCategory.HEALTH_CARE: SensitiveCategory.HEALTH,
    ServiceCategory.MHPSS_COUNSELLING: SensitiveCategory.HEALTH,
    ServiceCategory.CLINICAL_MENTAL_HEALTH: SensitiveCategory.HEALTH,
}


def hidden_services(scopes: frozenset[str]) -> list[ServiceCategory]:
    """Service categories whose very existence on a case a caller with these scopes may not learn."""
    return sorted(s for s, c in SENSITIVE_SERVICES.items() if c.scope not in scopes)


class OrganisationType(StrEnum):
    STATE = "STATE"
    NGO = "NGO"
    INTERNATIONAL = "INTERNATIONAL"
    DIASPORA = "DIASPORA"
    SERVICE_PROVIDER = "SERVICE_PROVIDER"


class Sex(StrEnum):
    FEMALE = "FEMALE"
    MALE = "MALE"
    OTHER = "OTHER"
    UNKNOWN = "UNKNOWN"


class ArrivalPoint(StrEnum):
    """Where people are received; OTHER covers any other place."""

    BAMAKO_AIRPORT = "BAMAKO_AIRPORT"
    GAO = "GAO"
    KAYES = "KAYES"
    BORDER_POST = "BORDER_POST"
    BUS_STATION = "BUS_STATION"
    OTHER = "OTHER"


class Priority(StrEnum):
    URGENT = "URGENT"
    HIGH = "HIGH"
    NORMAL = "NORMAL"


class ReferralStatus(StrEnum):
    """Where a referral stands. PENDING and ACCEPTED are open: they give the recipient access to the case."""

    PENDING = "PENDING"
    ACCEPTED = "ACCEPTED"
    REJECTED = "REJECTED"
    DONE = "DONE"
    REVOKED = "REVOKED"
    AWAITING_CONSENT = "AWAITING_CONSENT"  # no basis to share yet: exists for the referring side only
    UNASSIGNED = "UNASSIGNED"  # a need no directory service fits yet: no recipient, grants no access


OPEN_REFERRAL_STATES = frozenset({ReferralStatus.PENDING, ReferralStatus.ACCEPTED})


class UnassignedReason(StrEnum):
    """Why no directory service was found for a need (the furthest check any service passed)."""

    NO_PROVIDER_IN_REGION = "NO_PROVIDER_IN_REGION"  # no active service of the category covers the region
    NOT_ELIGIBLE = "NOT_ELIGIBLE"  # some cover it, but none takes this person (age, sex, vulnerability)
    NO_CAPACITY = "NO_CAPACITY"  # some would take the person, but every one says it has no place left


class ReferralOrigin(StrEnum):
    """Who made a referral: a routing rule, a person, or re-routing of an earlier referral."""

    RULE = "RULE"
    MANUAL = "MANUAL"
    REROUTE = "REROUTE"


class DeadlineKind(StrEnum):
    """What a referral's deadline scan found: each fires at most once per referral."""

    REMINDER = "REMINDER"  # pending past its due time: the recipient is reminded
    ESCALATED = "ESCALATED"  # pending past due time + grace: the referrer's supervisors and the coordinator are told
    OUTCOME_OVERDUE = "OUTCOME_OVERDUE"  # accepted, no outcome past the service's expected duration


class Purpose(StrEnum):
    """Why data is shared. Consent and other legal bases are recorded per purpose."""

    REFERRAL = "REFERRAL"  # providing the service a referral asks for
    FOLLOW_UP = "FOLLOW_UP"  # reintegration plan and follow-up visits
    FAMILY_TRACING = "FAMILY_TRACING"


class GivenBy(StrEnum):
    PERSON = "PERSON"
    GUARDIAN = "GUARDIAN"  # a child's legal representative


class StatisticsDimension(StrEnum):
    """What aggregate counts can be grouped by."""

    REGION = "REGION"
    ARRIVAL_POINT = "ARRIVAL_POINT"
    SEX = "SEX"
    MONTH = "MONTH"
    AGE_GROUP = "AGE_GROUP"
    VULNERABILITY = "VULNERABILITY"


class LegalBasis(StrEnum):
    CONSENT = "CONSENT"
    VITAL_INTEREST = "VITAL_INTEREST"
    LEGAL_OBLIGATION = "LEGAL_OBLIGATION"
    PUBLIC_INTEREST = "PUBLIC_INTEREST"


class DirectoryStatus(StrEnum):
    """Whether a directory service takes referrals (HSDS ``service.status``, the two values Segin uses)."""

    ACTIVE = "active"
    INACTIVE = "inactive"


class Weekday(StrEnum):
    """Days of the week as iCalendar (RFC 5545) writes them, as HSDS schedules do."""

    MO = "MO"
    TU = "TU"
    WE = "WE"
    TH = "TH"
    FR = "FR"
    SA = "SA"
    SU = "SU"


# --- follow-up (suivi) ----------------------------------------------------------------------------


class ReintegrationDimension(StrEnum):
    """The three dimensions of a reintegration plan (IOM's integrated approach to reintegration)."""

    ECONOMIC = "ECONOMIC"
    SOCIAL = "SOCIAL"
    PSYCHOSOCIAL = "PSYCHOSOCIAL"


class PlanActionStatus(StrEnum):
    """Where one action of a reintegration plan stands. PLANNED and IN_PROGRESS are open."""

    PLANNED = "PLANNED"
    IN_PROGRESS = "IN_PROGRESS"
    DONE = "DONE"
    CANCELLED = "CANCELLED"


OPEN_ACTION_STATES = frozenset({PlanActionStatus.PLANNED, PlanActionStatus.IN_PROGRESS})


class FollowupStatus(StrEnum):
    """Whether a case's follow-up is open or closed (closing closes its open plan actions)."""

    OPEN = "OPEN"
    CLOSED = "CLOSED"


class ContactMode(StrEnum):
    """How a follow-up contact with a returned person was made."""

    VISIT = "VISIT"  # a home (or community) visit
    PHONE = "PHONE"
    OFFICE = "OFFICE"  # the person came to the organisation's office


class ContactState(StrEnum):
    """Where one scheduled follow-up contact of a case stands on a given day (services/followup/schedule.py)."""

    UPCOMING = "UPCOMING"  # its window has not opened yet
    DUE = "DUE"  # within its window
    OVERDUE = "OVERDUE"  # past its window, not done
    DONE = "DONE"  # a contact that reached the person counted for it
    MISSED = "MISSED"  # never done, and a later one was


class ClosureReason(StrEnum):
    """Why a case's follow-up was closed."""

    REINTEGRATED = "REINTEGRATED"  # reintegration judged sustainable
    RE_MIGRATED = "RE_MIGRATED"  # the person left again
    UNREACHABLE = "UNREACHABLE"  # the person could not be reached
    DECEASED = "DECEASED"
    TRANSFERRED = "TRANSFERRED"  # followed elsewhere, outside Segin
    DECLINED_SUPPORT = "DECLINED_SUPPORT"  # the person declined further support
    MERGED = "MERGED"  # a second registration of the same return, merged into another case (never by hand)


class AssignmentReason(StrEnum):
    """Why a case's follow-up was handed to another organisation: a closed list, so that a reason,
    stored and announced in ``followup.case_assigned``, can never carry a name or a condition.
    (Hand-overs stored before the list keep the code they were given; ``REGISTERED``, the owner's
    first "assignment" at registration, is the service's own and is not given by a caller.)"""

    SPECIALISED_SUPPORT = "SPECIALISED_SUPPORT"  # the new manager offers support the case needs
    CHILD_PROTECTION_MANDATE = "CHILD_PROTECTION_MANDATE"  # a child: the child-protection actor's mandate
    ECONOMIC_REINTEGRATION = "ECONOMIC_REINTEGRATION"
    PSYCHOSOCIAL_SUPPORT = "PSYCHOSOCIAL_SUPPORT"
    CLOSER_TO_HOME = "CLOSER_TO_HOME"  # an organisation present where the person lives
    RELOCATION = "RELOCATION"  # the person moved
    CAPACITY = "CAPACITY"  # the manager cannot take on more cases
    MANAGER_LEFT = "MANAGER_LEFT"  # the manager no longer works in the area, or on follow-up
    CONSENT_WITHDRAWN = "CONSENT_WITHDRAWN"  # the basis covering the manager ended: the owner takes it back
    RETURN_TO_OWNER = "RETURN_TO_OWNER"
    OTHER = "OTHER"


class ReopenReason(StrEnum):
    """Why a closed follow-up was opened again: a closed list, for the same reason as ``AssignmentReason``."""

    RETURNED_AGAIN = "RETURNED_AGAIN"  # the person was returned to Mali again
    NEW_NEEDS = "NEW_NEEDS"  # new needs came up after closure
    CONTACT_RESUMED = "CONTACT_RESUMED"  # a person closed as unreachable was found again
    CLOSED_IN_ERROR = "CLOSED_IN_ERROR"
    OTHER = "OTHER"


# --- offline capture (Kobo/ODK submissions, batch sync) -------------------------------------------


class SubmissionStatus(StrEnum):
    """What became of one Kobo/ODK submission received (every one is kept, whatever its fate)."""

    ACCEPTED = "ACCEPTED"  # registered a case
    REJECTED = "REJECTED"  # a value the contract refuses: kept with its reason, to be fixed
    DUPLICATE = "DUPLICATE"  # sent again after it was accepted: the same case, nothing registered


class OfflineSource(StrEnum):
    KOBO = "KOBO"  # a KoboToolbox REST service's JSON (flat "group/question" keys, Kobo's metadata)


class SyncCommand(StrEnum):
    """What an offline client may send in a batch."""

    REGISTER_ARRIVAL = "REGISTER_ARRIVAL"
    UPDATE_CASE = "UPDATE_CASE"


class SyncStatus(StrEnum):
    """The result of one command of a batch."""

    APPLIED = "APPLIED"
    ALREADY_APPLIED = "ALREADY_APPLIED"  # the same client id was applied before: nothing changed
    CONFLICT = "CONFLICT"  # the case changed since the version the edit started from: nothing written
    REJECTED = "REJECTED"  # a value refused, or no such case: nothing written
class Relation(StrEnum):
    """How one case's person is related to another's (a family link), read as "this person is <relation>
    the other": a child's link to her mother is CHILD_OF, the same link seen from the mother PARENT_OF.
    A link is stored once and shown from both sides with its inverse (``INVERSE_RELATIONS``)."""

    PARENT_OF = "PARENT_OF"
    CHILD_OF = "CHILD_OF"
    SIBLING_OF = "SIBLING_OF"
    SPOUSE_OF = "SPOUSE_OF"
    GUARDIAN_OF = "GUARDIAN_OF"  # a legal guardian or usual caregiver who is not a parent
    WARD_OF = "WARD_OF"
    OTHER_RELATIVE_OF = "OTHER_RELATIVE_OF"  # aunt, uncle, cousin, grandparent…: not a caregiver by itself


INVERSE_RELATIONS: dict[Relation, Relation] = {
    Relation.PARENT_OF: Relation.CHILD_OF,
    Relation.CHILD_OF: Relation.PARENT_OF,
    Relation.SIBLING_OF: Relation.SIBLING_OF,
    Relation.SPOUSE_OF: Relation.SPOUSE_OF,
    Relation.GUARDIAN_OF: Relation.WARD_OF,
    Relation.WARD_OF: Relation.GUARDIAN_OF,
    Relation.OTHER_RELATIVE_OF: Relation.OTHER_RELATIVE_OF,
}


class ProviderReason(StrEnum):
    """Why routing chose a referral's provider (rule-made and re-routed referrals; decision record 0023)."""

    TIE_ORDER = "TIE_ORDER"  # the rules' stated order among eligible providers with room
    FAMILY = "FAMILY"  # the provider already serving a linked family member for this category


# --- reception of groups (issue 10): arrival groups, manifests, check-in ------------------------

class ArrivalGroupKind(StrEnum):
    """How an expected group travels: a charter flight (reference: its flight number) or a convoy (its label)."""

    FLIGHT = "FLIGHT"
    CONVOY = "CONVOY"


class ArrivalGroupStatus(StrEnum):
    OPEN = "OPEN"  # people are still being checked in
    CLOSED = "CLOSED"  # reception is over: whoever was not checked in is a no-show


class ExpectedStatus(StrEnum):
    """Where one person of an arrival group stands."""

    EXPECTED = "EXPECTED"  # on the manifest, not checked in (yet)
    CHECKED_IN = "CHECKED_IN"  # received: their case is registered
    NO_SHOW = "NO_SHOW"  # the group was closed without them


class ManifestField(StrEnum):
    """What a manifest column holds, for an explicit column mapping (``docs/manifests.md``)."""

    GIVEN_NAME = "GIVEN_NAME"
    FAMILY_NAME = "FAMILY_NAME"
    SEX = "SEX"
    DATE_OF_BIRTH = "DATE_OF_BIRTH"
    ESTIMATED_AGE = "ESTIMATED_AGE"
    PHONE = "PHONE"
    DOCUMENT_NUMBER = "DOCUMENT_NUMBER"
    PLACE_OF_ORIGIN = "PLACE_OF_ORIGIN"
    HOUSEHOLD = "HOUSEHOLD"
    RELATIONSHIP = "RELATIONSHIP"
    DESTINATION_REGION = "DESTINATION_REGION"
    IGNORE = "IGNORE"  # a column the sender sends that is not to be read


class PossibleDuplicateStatus(StrEnum):
    """Where a possible duplicate recorded for the platform steward stands (decision record 0022)."""

    OPEN = "OPEN"  # recorded at registration, not looked at yet
    DISMISSED = "DISMISSED"  # the steward found two different people
    RESOLVED = "RESOLVED"  # the steward had the cases merged (or the owners told)
