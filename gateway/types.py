"""GraphQL output types, built from the services' replies.

Each type builds itself from a reply record of ``contracts/replies.py`` (``Case.from_record``),
validated where it arrives: types depend on records, never the reverse.
"""

from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import Any

import strawberry
from graphql import GraphQLError
from pydantic import TypeAdapter
from strawberry.scalars import JSON
from strawberry.types import Info

from contracts import reference, replies
from gateway.graphql_context import Context, field_path, restricted
from gateway.store import OrganisationRecord

Vulnerability = strawberry.enum(reference.Vulnerability, description="IOM DoMV vulnerability category")
Sex = strawberry.enum(reference.Sex)
ArrivalPoint = strawberry.enum(reference.ArrivalPoint)
ServiceCategory = strawberry.enum(reference.ServiceCategory)
Priority = strawberry.enum(reference.Priority)
ReferralStatus = strawberry.enum(reference.ReferralStatus, description="Where a referral stands; PENDING and "
                                                                       "ACCEPTED are open.")
LegalBasis = strawberry.enum(reference.LegalBasis)
OrganisationType = strawberry.enum(reference.OrganisationType)
Purpose = strawberry.enum(reference.Purpose)
GivenBy = strawberry.enum(reference.GivenBy)
ReferralOrigin = strawberry.enum(reference.ReferralOrigin, description="Who made a referral: a routing rule, a "
                                                                       "person, or re-routing.")
StatisticsDimension = strawberry.enum(reference.StatisticsDimension, description="What statistics can be grouped by.")
ReferralOrigin = strawberry.enum(reference.ReferralOrigin, description="Who made a referral: a routing rule, a "
                                                                       "person, or re-routing of an earlier one.")
UnassignedReason = strawberry.enum(reference.UnassignedReason, description="Why no directory service was found "
                                                                           "for a need.")
ProviderReason = strawberry.enum(reference.ProviderReason, description="Why routing chose a referral's provider.")

# Replies that are lists, validated as such where they arrive.
REFERRAL_LIST: TypeAdapter[list[replies.ReferralView]] = TypeAdapter(list[replies.ReferralView])
NOTIFICATION_EXPORTS: TypeAdapter[list[replies.NotificationExport]] = TypeAdapter(list[replies.NotificationExport])


@strawberry.type
class Region:
    code: str
    name: str


def region(code: str) -> Region:
    return Region(code=code, name=reference.regions().get(code, code))


@strawberry.type
class Organisation:
    id: strawberry.ID
    name: str
    type: OrganisationType

    @classmethod
    def from_record(cls, record: OrganisationRecord) -> "Organisation":
        """The registry hands out records; the GraphQL type depends on them, never the reverse."""
        return cls(id=strawberry.ID(record.id), name=record.name, type=record.type)

    @classmethod
    async def find(cls, ctx: Context, org_id: str) -> "Organisation | None":
        record = await ctx.registry.organisation(org_id)
        return cls.from_record(record) if record else None


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None

    @classmethod
    def from_record(cls, rec: replies.PageInfo) -> "PageInfo":
        return cls(has_next_page=rec.has_next_page, end_cursor=rec.end_cursor)


@strawberry.type(description="A recorded basis for sharing the case: consent (given or refused) or another legal basis.")
class SharingBasis:
    id: strawberry.ID
    legal_basis: LegalBasis
    given: bool
    purposes: list[Purpose]
    recipient_org_ids: list[str]
    recipient_org_types: list[OrganisationType]
    language: str
    given_by: GivenBy | None
    guardian_name: str | None
    justification: str | None
    recorded_at: dt.datetime
    withdrawn_at: dt.datetime | None

    @classmethod
    def from_record(cls, rec: replies.SharingView) -> "SharingBasis":
        return cls(
            id=strawberry.ID(rec.id), legal_basis=rec.legal_basis, given=rec.given, purposes=rec.purposes,
            recipient_org_ids=rec.recipient_org_ids, recipient_org_types=rec.recipient_org_types,
            language=rec.language, given_by=rec.given_by, guardian_name=rec.guardian_name,
            justification=rec.justification, recorded_at=rec.recorded_at, withdrawn_at=rec.withdrawn_at,
        )


@strawberry.type(description="Why your organisation may see this case.")
class CaseAccess:
    purpose: str | None
    legal_basis: LegalBasis | None


@strawberry.type(description="A referral to another organisation's service. A referral to a sensitive service "
                              "(child protection, counter-trafficking, GBV, health) exists only for tokens holding "
                              "that category's scope, and for its recipient.")
class Referral:
    id: strawberry.ID
    case_id: strawberry.ID
    status: ReferralStatus
    service_category: ServiceCategory
    reason_code: str = strawberry.field(description="The screening reason (a code).")
    legal_basis: LegalBasis | None = strawberry.field(
        description="Consent, or another basis (a child's vital interest); null while awaiting consent.")
    priority: Priority
    due_at: dt.datetime = strawberry.field(description="When the recipient should act.")
    status_reason: str | None = strawberry.field(description="Why the referral left the open states (a code).")
    created_at: dt.datetime
    updated_at: dt.datetime
    record: strawberry.Private[replies.ReferralView]

    @strawberry.field
    async def from_organisation(self, info: Info[Context, None]) -> Organisation | None:
        return await Organisation.find(info.context, self.record.from_org_id)

    @strawberry.field(description="The recipient; null while the need is unassigned.")
    async def to_organisation(self, info: Info[Context, None]) -> Organisation | None:
        return await Organisation.find(info.context, self.record.to_org_id) if self.record.to_org_id else None

    @strawberry.field(description="The directory service referred to; null while the need is unassigned.")
    def service_id(self) -> strawberry.ID | None:
        return strawberry.ID(self.record.service_id) if self.record.service_id else None

    @strawberry.field(description="Who made the referral: a routing rule, a person, or re-routing.")
    def origin(self) -> ReferralOrigin:  # type: ignore[valid-type]
        return self.record.origin

    @strawberry.field(description="The routing rule that made the referral (its id in the rules file).")
    def rule_id(self) -> str | None:
        return self.record.rule_id

    @strawberry.field(description="The version of the routing rules the referral was made by; never changes later.")
    def rules_version(self) -> str | None:
        return self.record.rules_version

    @strawberry.field(description="Why no directory service was found for this need (status UNASSIGNED).")
    def unassigned_reason(self) -> UnassignedReason | None:  # type: ignore[valid-type]
        return self.record.unassigned_reason

    @strawberry.field(description="Why routing chose this provider: TIE_ORDER (the rules' order), or FAMILY (the "
                                  "provider already serving a linked family member); null for a person's referral.")
    def provider_reason(self) -> ProviderReason | None:  # type: ignore[valid-type]
        return self.record.provider_reason

    @strawberry.field(description="The referral this one took over from, by re-routing.")
    def rerouted_from(self) -> strawberry.ID | None:
        return strawberry.ID(self.record.rerouted_from) if self.record.rerouted_from else None

    @strawberry.field(description="The referral that took this one over, by re-routing.")
    def rerouted_to(self) -> strawberry.ID | None:
        return strawberry.ID(self.record.rerouted_to) if self.record.rerouted_to else None

    @strawberry.field(description="Who made it: a routing rule (RULE), a case worker (MANUAL), or re-routing.")
    def origin(self) -> ReferralOrigin:  # type: ignore[valid-type]
        return self.record.origin

    @strawberry.field(description="The directory service it is addressed to (null for some automatic referrals).")
    def service_id(self) -> strawberry.ID | None:
        return strawberry.ID(self.record.service_id) if self.record.service_id else None

    @strawberry.field(description="The case worker's note: for the referring and the receiving organisation only "
                                  "(null for anyone else).")
    def note(self) -> str | None:
        return self.record.note

    @strawberry.field(description="Who made a manual referral (token subject): for the referring organisation only.")
    def made_by(self) -> str | None:
        return self.record.made_by

    @strawberry.field(description="When the recipient accepted it.")
    def accepted_at(self) -> dt.datetime | None:
        return self.record.accepted_at

    @strawberry.field(description="What came of it, as the recipient recorded on completion (a code).")
    def outcome_code(self) -> str | None:
        return self.record.outcome_code

    @strawberry.field(description="Whether the service was delivered (recorded on completion).")
    def outcome_delivered(self) -> bool | None:
        return self.record.outcome_delivered

    @strawberry.field(description="When the service was delivered.")
    def outcome_date(self) -> dt.date | None:
        return self.record.outcome_date

    @strawberry.field(description="PENDING past dueAt, or ACCEPTED past the service's expected duration with no "
                                  "outcome, at the time of the answer.")
    def overdue(self) -> bool:
        return self.record.overdue

    @classmethod
    def from_record(cls, rec: replies.ReferralView) -> "Referral":
        return cls(
            id=strawberry.ID(rec.id), case_id=strawberry.ID(rec.case_id), status=rec.status,
            service_category=rec.service_category, reason_code=rec.reason_code, legal_basis=rec.legal_basis,
            priority=rec.priority, due_at=rec.due_at, status_reason=rec.status_reason, created_at=rec.created_at,
            updated_at=rec.updated_at, record=rec,
        )


@strawberry.type
class ReferralConnection:
    nodes: list[Referral]
    page_info: PageInfo

    @classmethod
    def from_record(cls, rec: replies.Page[replies.ReferralView]) -> "ReferralConnection":
        return cls(nodes=[Referral.from_record(r) for r in rec.nodes], page_info=PageInfo.from_record(rec.page_info))


@strawberry.type(description="Overdue referrals of one organisation.")
class OverdueCounts:
    org_id: str
    incoming_not_accepted: int = strawberry.field(description="Addressed to it, not accepted by their deadline.")
    accepted_without_outcome: int = strawberry.field(
        description="Accepted by it, no outcome past the service's expected duration.")
    outgoing_overdue: int = strawberry.field(description="Made by it and overdue at their recipient.")

    @classmethod
    def from_record(cls, rec: replies.OverdueCounts) -> "OverdueCounts":
        return cls(org_id=rec.org_id, incoming_not_accepted=rec.incoming_not_accepted,
                   accepted_without_outcome=rec.accepted_without_outcome, outgoing_overdue=rec.outgoing_overdue)


@strawberry.type(description="Your organisation's overdue referrals; every organisation's for the coordinating "
                              "body. Referrals to sensitive services your token may not see are not counted, "
                              "except those addressed to your organisation.")
class OverdueSummary(OverdueCounts):
    by_organisation: list[OverdueCounts] | None = strawberry.field(
        description="Per organisation: the coordinating body only (null for others).")

    @classmethod
    def from_view(cls, rec: replies.OverdueCountsView) -> "OverdueSummary":
        return cls(org_id=rec.org_id, incoming_not_accepted=rec.incoming_not_accepted,
                   accepted_without_outcome=rec.accepted_without_outcome, outgoing_overdue=rec.outgoing_overdue,
                   by_organisation=None if rec.by_organisation is None
                   else [OverdueCounts.from_record(o) for o in rec.by_organisation])


def _category(name: str, scope: str, description: str) -> Any:
    def resolve(self: "Case") -> list[Vulnerability] | None:  # type: ignore[valid-type]
        codes = getattr(self.record.sensitive, name)
        if codes is None:
            raise restricted(scope)
        return codes

    return strawberry.field(resolver=resolve, description=description)


@strawberry.type
class Case:
    id: strawberry.ID
    given_name: str
    family_name: str
    sex: Sex
    date_of_birth: dt.date | None
    estimated_age: int | None
    country_returned_from: str
    arrival_point: ArrivalPoint
    arrival_date: dt.date
    destination_region: Region
    phone_numbers: list[str] = strawberry.field(description="In E.164, e.g. +22376123456")
    place_of_origin: str | None
    version: int = strawberry.field(description="Raised by every change to the case's identity or screening: "
                                                "an offline edit names the version it started from")
    vulnerabilities: list[Vulnerability] = strawberry.field(
        description="Every screening flag you may see: sensitive ones only with their category's scope.")
    access: CaseAccess
    created_at: dt.datetime
    record: strawberry.Private[replies.CaseView]
    # (first, candidates) when the request that made this case answered them already (a check-in).
    candidates_given: strawberry.Private[tuple[int, list[replies.MatchCandidateView]] | None] = None

    health_needs: list[Vulnerability] | None = _category(
        "health", "sensitive:health", "Medical, mental-health, disability, pregnancy flags; needs sensitive:health.")
    gbv: list[Vulnerability] | None = _category("gbv", "sensitive:gbv", "GBV flags; needs sensitive:gbv.")
    trafficking: list[Vulnerability] | None = _category(
        "trafficking", "sensitive:trafficking", "Trafficking flags; needs sensitive:trafficking.")
    child_protection: list[Vulnerability] | None = _category(
        "child_protection", "sensitive:child_protection",
        "Unaccompanied or separated child flags; needs sensitive:child_protection.")

    @strawberry.field(description="Consents and other legal bases: the owning organisation only.")
    def sharing(self) -> list[SharingBasis] | None:
        if self.record.sharing is None:
            raise restricted("ownership of the case")
        return [SharingBasis.from_record(s) for s in self.record.sharing]

    @strawberry.field
    async def owner_organisation(self, info: Info[Context, None]) -> Organisation | None:
        return await Organisation.find(info.context, self.record.owner_org_id)

    @strawberry.field(description="Referrals of this case that your organisation may see (needs referrals:read).")
    async def referrals(self, info: Info[Context, None]) -> list[Referral] | None:
        rows = await info.context.ask("svc.referral.case_referrals", {"case_id": str(self.id)})
        return [Referral.from_record(r) for r in REFERRAL_LIST.validate_python(rows)]

    @strawberry.field(description="Cases your organisation may read that may be this same person, best first, with "
                                  "score and reasons (never merged automatically; see mergeCases).")
    async def match_candidates(self, info: Info[Context, None], first: int = 10) -> list[MatchCandidate]:
        if self.candidates_given is not None and first <= self.candidates_given[0]:
            given = self.candidates_given[1][:first]  # best first: the first ``first`` of more
        else:
            data = await info.context.ask("svc.intake.match_candidates", {"case_id": str(self.id), "first": first})
            given = replies.MatchCandidatesView.model_validate(data).candidates
        return [MatchCandidate.from_record(c) for c in given]

    @strawberry.field(description="The id asked for, when it was merged into this case (case(id:) answers the "
                                  "survivor); null otherwise.")
    def redirected_from(self) -> strawberry.ID | None:
        return strawberry.ID(self.record.redirected_from) if self.record.redirected_from else None

    @strawberry.field(description="Ids of the cases merged into this one (merges in force); each still answers "
                                  "this case.")
    def merged_from(self) -> list[strawberry.ID]:
        return [strawberry.ID(i) for i in self.record.merged_from]

    @strawberry.field(description="Family links (a mother and her children, siblings), each from this case's side: "
                                  "the linked person only if your organisation may read that case.")
    def links(self) -> list[CaseLink]:
        return [CaseLink.from_record(link) for link in self.record.links]

    @classmethod
    def from_record(cls, rec: replies.CaseView) -> "Case":
        return cls(
            id=strawberry.ID(rec.id), given_name=rec.given_name, family_name=rec.family_name, sex=rec.sex,
            date_of_birth=rec.date_of_birth, estimated_age=rec.estimated_age,
            country_returned_from=rec.country_returned_from, arrival_point=rec.arrival_point,
            arrival_date=rec.arrival_date, destination_region=region(rec.destination_region),
            phone_numbers=rec.phone_numbers, place_of_origin=rec.place_of_origin, version=rec.version,
            vulnerabilities=rec.vulnerabilities,
            access=CaseAccess(purpose=rec.access.purpose, legal_basis=rec.access.legal_basis),
            created_at=rec.created_at, record=rec,
        )


@strawberry.type
class SharingResult:
    case_id: strawberry.ID
    sharing: list[SharingBasis]

    @classmethod
    def from_record(cls, rec: replies.SharingResult) -> "SharingResult":
        return cls(case_id=strawberry.ID(rec.case_id), sharing=[SharingBasis.from_record(s) for s in rec.sharing])


@strawberry.type
class Notification:
    id: strawberry.ID
    kind: str
    priority: Priority
    title_fr: strawberry.Private[str]
    title_en: strawberry.Private[str]
    referral_id: strawberry.ID | None
    case_id: strawberry.ID | None
    created_at: dt.datetime
    read_at: dt.datetime | None

    @strawberry.field(description="The title in French (fr, default) or English (en).")
    def title(self, lang: str = "fr") -> str:
        return self.title_en if lang.lower().startswith("en") else self.title_fr

    @classmethod
    def from_record(cls, rec: replies.NotificationView) -> "Notification":
        return cls(
            id=strawberry.ID(rec.id), kind=rec.kind, priority=rec.priority, title_fr=rec.title_fr,
            title_en=rec.title_en, referral_id=strawberry.ID(rec.referral_id) if rec.referral_id else None,
            case_id=strawberry.ID(rec.case_id) if rec.case_id else None, created_at=rec.created_at,
            read_at=rec.read_at,
        )


@strawberry.type
class NotificationConnection:
    nodes: list[Notification]
    page_info: PageInfo

    @classmethod
    def from_record(cls, rec: replies.Page[replies.NotificationView]) -> "NotificationConnection":
        return cls(nodes=[Notification.from_record(n) for n in rec.nodes],
                   page_info=PageInfo.from_record(rec.page_info))


@strawberry.type
class Me:
    subject: str
    client_id: str
    scopes: list[str]
    organisation: Organisation | None


@strawberry.type
class StatisticsCell:
    keys: list[str]
    count: int


@strawberry.type(description="Counts of people, rounded to a multiple of 5; a cell is shown only when it holds at "
                              "least minimumCell people registered by organisations other than yours.")
class Statistics:
    group_by: list[str]
    cells: list[StatisticsCell]
    minimum_cell: int

    @classmethod
    def from_record(cls, rec: replies.StatisticsView) -> "Statistics":
        return cls(group_by=[d.value for d in rec.group_by], minimum_cell=rec.minimum_cell,
                   cells=[StatisticsCell(keys=c.keys, count=c.count) for c in rec.cells])


@strawberry.enum(description="Services keeping an audit trail (one hash chain each).")
class AuditedService(Enum):
    INTAKE = "intake"
    REFERRAL = "referral"
    NOTIFICATIONS = "notifications"
    FOLLOWUP = "followup"


@strawberry.type(description="Who did what to which cases' data, and why. Identifiers and codes only.")
class AuditEntry:
    seq: int
    at: dt.datetime
    actor: str
    org_id: str
    client_id: str
    operation: str
    case_ids: list[strawberry.ID]
    field_categories: list[str]
    purpose: str
    legal_basis: str | None
    outcome: str
    trace_id: str | None
    hash: str

    @classmethod
    def from_record(cls, rec: replies.AuditEntryView) -> "AuditEntry":
        return cls(seq=rec.seq, at=rec.at, actor=rec.actor, org_id=rec.org_id, client_id=rec.client_id,
                   operation=rec.operation, case_ids=[strawberry.ID(c) for c in rec.case_ids],
                   field_categories=rec.field_categories, purpose=rec.purpose, legal_basis=rec.legal_basis,
                   outcome=rec.outcome, trace_id=rec.trace_id, hash=rec.hash)


@strawberry.type
class AuditConnection:
    nodes: list[AuditEntry]
    page_info: PageInfo

    @classmethod
    def from_record(cls, rec: replies.Page[replies.AuditEntryView]) -> "AuditConnection":
        return cls(nodes=[AuditEntry.from_record(e) for e in rec.nodes], page_info=PageInfo.from_record(rec.page_info))


@strawberry.type(description="Everything recorded about one person and who accessed it (data-subject access).")
class SubjectAccessExport:
    case: JSON
    referrals: JSON
    notifications: JSON
    followup: JSON = strawberry.field(description="The person's follow-up: manager, hand-overs, reintegration plan, "
                                                  "schedule and contacts with their notes, surveys with every "
                                                  "answer and their scores.")
    access_log: list[AuditEntry]
    access_log_complete: bool


# --- follow-up (suivi) -----------------------------------------------------------------------------

FollowupStatus = strawberry.enum(reference.FollowupStatus, description="Whether a case's follow-up is open or closed.")
ClosureReason = strawberry.enum(reference.ClosureReason, description="Why a case's follow-up was closed.")
AssignmentReason = strawberry.enum(reference.AssignmentReason, description="Why a case's follow-up was handed over "
                                                                           "(a closed list: never a name).")
ReopenReason = strawberry.enum(reference.ReopenReason, description="Why a closed follow-up was opened again.")
ReintegrationDimension = strawberry.enum(reference.ReintegrationDimension,
                                         description="The dimensions of a reintegration plan.")
PlanActionStatus = strawberry.enum(reference.PlanActionStatus, description="Where a plan action stands; PLANNED and "
                                                                           "IN_PROGRESS are open.")
FOLLOWUP_LIST: TypeAdapter[list[replies.FollowupCaseView]] = TypeAdapter(list[replies.FollowupCaseView])
ContactMode = strawberry.enum(reference.ContactMode, description="How a follow-up contact was made.")
ContactState = strawberry.enum(reference.ContactState, description="Where a scheduled follow-up contact stands.")


@strawberry.type(description="One contact of the case's follow-up schedule, where it stands now.")
class ScheduledContact:
    code: str = strawberry.field(description="The schedule's code for it, e.g. M1 (one month after return).")
    opens_on: dt.date = strawberry.field(description="A contact from this day on counts for it.")
    due_on: dt.date
    overdue_after: dt.date = strawberry.field(description="The last day it is on time.")
    state: ContactState
    done_on: dt.date | None
    on_time: bool | None = strawberry.field(description="Done by overdueAfter; null until done.")

    @classmethod
    def from_record(cls, rec: replies.ScheduledContactView) -> "ScheduledContact":
        return cls(code=rec.code, opens_on=rec.opens_on, due_on=rec.due_on, overdue_after=rec.overdue_after,
                   state=rec.state, done_on=rec.done_on, on_time=rec.on_time)


FREE_TEXT_RULE = ("the case's owner and manager only; on a case with a sensitive vulnerability, only with the "
                  "sensitive:* scope of each of its categories (else null with RESTRICTED naming the scope). "
                  "Never sent in events, logs or audit records.")


def _free_text(value: str | None, restricted_by: str | None) -> str | None:
    """A case's free text (plan, contact), or the RESTRICTED error naming the scope the token lacks."""
    if restricted_by:
        raise restricted(restricted_by)
    return value


@strawberry.type(description="One logged follow-up contact with the person.")
class Contact:
    id: strawberry.ID
    date: dt.date
    mode: ContactMode
    reached: bool
    logged_by_org_id: str
    logged_at: dt.datetime
    record: strawberry.Private[replies.ContactView]

    @strawberry.field(description=f"What the case worker noted: {FREE_TEXT_RULE}")
    def note(self) -> str | None:
        return _free_text(self.record.note, self.record.text_restricted)

    @strawberry.field(description=f"The next step agreed, as the case worker wrote it: {FREE_TEXT_RULE}")
    def next_step(self) -> str | None:
        return _free_text(self.record.next_step, self.record.text_restricted)

    @classmethod
    def from_record(cls, rec: replies.ContactView) -> "Contact":
        return cls(id=strawberry.ID(rec.id), date=rec.date, mode=rec.mode, reached=rec.reached,
                   logged_by_org_id=rec.logged_by_org_id, logged_at=rec.logged_at, record=rec)


@strawberry.type(description="One action of a reintegration plan goal.")
class PlanAction:
    id: strawberry.ID
    referral_id: strawberry.ID | None = strawberry.field(description="The referral this action rests on, if any.")
    target_date: dt.date
    status: PlanActionStatus
    overdue: bool = strawberry.field(description="Open past its target date, as of now.")
    updated_at: dt.datetime
    record: strawberry.Private[replies.PlanActionView]

    @strawberry.field(description=f"What is to be done: {FREE_TEXT_RULE}")
    def description(self) -> str | None:
        return _free_text(self.record.description, self.record.text_restricted)

    @classmethod
    def from_record(cls, rec: replies.PlanActionView) -> "PlanAction":
        return cls(id=strawberry.ID(rec.id), referral_id=strawberry.ID(rec.referral_id) if rec.referral_id else None,
                   target_date=rec.target_date, status=rec.status, overdue=rec.overdue, updated_at=rec.updated_at,
                   record=rec)


@strawberry.type(description="One goal of a reintegration plan, in one dimension.")
class PlanGoal:
    id: strawberry.ID
    dimension: ReintegrationDimension
    actions: list[PlanAction]
    record: strawberry.Private[replies.PlanGoalView]

    @strawberry.field(description=f"The goal: {FREE_TEXT_RULE}")
    def description(self) -> str | None:
        return _free_text(self.record.description, self.record.text_restricted)

    @classmethod
    def from_record(cls, rec: replies.PlanGoalView) -> "PlanGoal":
        return cls(id=strawberry.ID(rec.id), dimension=rec.dimension,
                   actions=[PlanAction.from_record(a) for a in rec.actions], record=rec)


@strawberry.type(description="A case's reintegration plan as last saved.")
class ReintegrationPlan:
    saved_at: dt.datetime
    saved_by_org_id: str
    goals: list[PlanGoal]

    @classmethod
    def from_record(cls, rec: replies.PlanView) -> "ReintegrationPlan":
        return cls(saved_at=rec.saved_at, saved_by_org_id=rec.saved_by_org_id,
                   goals=[PlanGoal.from_record(g) for g in rec.goals])


@strawberry.type(description="One hand-over of a case's follow-up (the first: its owner, at registration).")
class CaseAssignment:
    from_org_id: str | None
    to_org_id: str
    reason_code: str
    legal_basis: LegalBasis | None = strawberry.field(description="None: the owner manages its own case.")
    assigned_at: dt.datetime
    assigned_by_org_id: str

    @strawberry.field
    async def to_organisation(self, info: Info[Context, None]) -> Organisation | None:
        return await Organisation.find(info.context, self.to_org_id)

    @classmethod
    def from_record(cls, rec: replies.AssignmentView) -> "CaseAssignment":
        return cls(from_org_id=rec.from_org_id, to_org_id=rec.to_org_id, reason_code=rec.reason_code,
                   legal_basis=rec.legal_basis, assigned_at=rec.assigned_at,
                   assigned_by_org_id=rec.assigned_by_org_id)


@strawberry.type(description="One answer of a survey: the indicator and the chosen option's code (DECLINED: the "
                             "person chose not to answer).")
class SurveyAnswer:
    indicator: str
    dimension: ReintegrationDimension
    option: str

    @classmethod
    def from_record(cls, rec: replies.SurveyAnswerView) -> "SurveyAnswer":
        return cls(indicator=rec.indicator, dimension=rec.dimension, option=rec.option)


@strawberry.type(description="One administration of a survey instrument (the Reintegration Sustainability Survey): "
                             "the scores in [0, 1] and their bands as computed when it was recorded, with the "
                             "instrument version used; a later version changes none of them. Null score: too few "
                             "answers in that dimension.")
class Survey:
    id: strawberry.ID
    taken_on: dt.date
    instrument_id: str
    instrument_version: int
    instrument_digest: str = strawberry.field(description="Fingerprint of the instrument version's content.")
    economic: float | None
    social: float | None
    psychosocial: float | None
    composite: float | None
    economic_band: str | None
    social_band: str | None
    psychosocial_band: str | None
    composite_band: str | None
    answers: list[SurveyAnswer] = strawberry.field(description="The economic and social answers.")
    recorded_by_org_id: str
    recorded_at: dt.datetime
    record: strawberry.Private[replies.SurveyView]

    @strawberry.field(description="The psychosocial answers (distress, safety…): health data, so they need "
                                  "sensitive:health, for every case alike; null with RESTRICTED otherwise.")
    def psychosocial_answers(self) -> list[SurveyAnswer] | None:
        if self.record.psychosocial_answers is None:
            raise restricted("sensitive:health")
        return [SurveyAnswer.from_record(a) for a in self.record.psychosocial_answers]

    @classmethod
    def from_record(cls, rec: replies.SurveyView) -> "Survey":
        return cls(id=strawberry.ID(rec.id), taken_on=rec.taken_on, instrument_id=rec.instrument_id,
                   instrument_version=rec.instrument_version, instrument_digest=rec.instrument_digest,
                   economic=rec.economic, social=rec.social, psychosocial=rec.psychosocial, composite=rec.composite,
                   economic_band=rec.economic_band, social_band=rec.social_band,
                   psychosocial_band=rec.psychosocial_band, composite_band=rec.composite_band,
                   answers=[SurveyAnswer.from_record(a) for a in rec.answers],
                   recorded_by_org_id=rec.recorded_by_org_id, recorded_at=rec.recorded_at, record=rec)


@strawberry.type(description="One answer option of an indicator.")
class SurveyOption:
    code: str
    label_fr: str
    label_en: str


@strawberry.type(description="One indicator (question) of a survey instrument, with its options.")
class SurveyIndicator:
    code: str
    dimension: ReintegrationDimension
    question_fr: str
    question_en: str
    options: list[SurveyOption]


@strawberry.type(description="One version of a survey instrument, to render its form: answer every indicator once, "
                             "with an option code or DECLINED.")
class SurveyInstrument:
    id: str
    version: int
    latest_version: int
    digest: str
    title_fr: str
    title_en: str
    indicators: list[SurveyIndicator]

    @classmethod
    def from_record(cls, rec: replies.InstrumentView) -> "SurveyInstrument":
        return cls(id=rec.id, version=rec.version, latest_version=rec.latest_version, digest=rec.digest,
                   title_fr=rec.title_fr, title_en=rec.title_en, indicators=[
                       SurveyIndicator(code=i.code, dimension=i.dimension, question_fr=i.question_fr,
                                       question_en=i.question_en,
                                       options=[SurveyOption(code=o.code, label_fr=o.label_fr, label_en=o.label_en)
                                                for o in i.options])
                       for i in rec.indicators])


def _cells(cells: list[replies.StatisticsCell]) -> list[StatisticsCell]:
    return [StatisticsCell(keys=c.keys, count=c.count) for c in cells]


@strawberry.type(description="Follow-up counts of cases across all organisations, rounded to a multiple of 5; a "
                             "cell is shown only when it holds at least minimumCell cases your organisation neither "
                             "registered nor manages.")
class FollowupStatistics:
    plan_due_days: int = strawberry.field(description="SEGIN_PLAN_DUE_DAYS: a plan is on time within this many days "
                                                      "of arrival.")
    minimum_cell: int
    plans_by_region: list[StatisticsCell] = strawberry.field(
        description="keys: [region code, PLAN_ON_TIME | NO_PLAN_ON_TIME | NOT_YET_DUE] (the first plan's save).")
    plans_by_arrival_month: list[StatisticsCell] = strawberry.field(
        description="keys: [arrival month YYYY-MM, PLAN_ON_TIME | NO_PLAN_ON_TIME | NOT_YET_DUE].")
    composite_by_region: list[StatisticsCell] = strawberry.field(
        description="The latest composite score's band of each surveyed case; keys: [region code, band or NO_SCORE].")
    composite_by_months_since_return: list[StatisticsCell] = strawberry.field(
        description="keys: [months from arrival to the latest survey (0-3, 3-6, 6-12, 12+), band or NO_SCORE].")
    contacts_on_time: list[StatisticsCell] = strawberry.field(
        description="Scheduled contacts whose fate is known, by contact: [M1|M3|M6|M12, ON_TIME | LATE | "
                    "NOT_MADE] (made by the end of their window, after it, or not made).")

    @classmethod
    def from_record(cls, rec: replies.FollowupStatisticsView) -> "FollowupStatistics":
        return cls(plan_due_days=rec.plan_due_days, minimum_cell=rec.minimum_cell,
                   plans_by_region=_cells(rec.plans_by_region),
                   plans_by_arrival_month=_cells(rec.plans_by_arrival_month),
                   composite_by_region=_cells(rec.composite_by_region),
                   composite_by_months_since_return=_cells(rec.composite_by_months_since_return),
                   contacts_on_time=_cells(rec.contacts_on_time))


@strawberry.type(description="A case's follow-up: who manages it, its reintegration plan, its state and hand-overs. "
                             "Its owner and its manager see it (the plan only while they do).")
class FollowupCase:
    case_id: strawberry.ID
    owner_org_id: str
    manager_org_id: str
    status: FollowupStatus
    closure_reason: ClosureReason | None
    arrival_date: dt.date
    destination_region: Region
    plan_due_on: dt.date = strawberry.field(description="The plan is due by this day (SEGIN_PLAN_DUE_DAYS after "
                                                        "arrival).")
    plan_overdue: bool = strawberry.field(description="No plan yet and its due day has passed.")
    plan: ReintegrationPlan | None
    version: int = strawberry.field(description="Send it back with a change: a stale one is refused (CONFLICT).")
    assignments: list[CaseAssignment]
    updated_at: dt.datetime
    schedule_id: str = strawberry.field(description="The follow-up schedule the case follows (kept from its start).")
    schedule_version: int
    schedule: list[ScheduledContact] = strawberry.field(description="Each scheduled contact and where it stands now.")
    contacts: list[Contact] | None = strawberry.field(description="The contacts logged, newest first: the 50 newest "
                                                                  "(the data-subject export holds them all).")
    contact_count: int | None = strawberry.field(description="How many contacts the case holds (at most 200).")
    failed_in_a_row: int = strawberry.field(description="Contacts in a row that did not reach the person.")
    unreachable: bool = strawberry.field(description="failedInARow reached the schedule's threshold.")
    surveys: list[Survey] = strawberry.field(description="Surveys taken, oldest first, with their stored scores.")

    @strawberry.field(description="The organisation managing the case's follow-up.")
    async def manager(self, info: Info[Context, None]) -> Organisation | None:
        return await Organisation.find(info.context, self.manager_org_id)

    @classmethod
    def from_record(cls, rec: replies.FollowupCaseView) -> "FollowupCase":
        return cls(case_id=strawberry.ID(rec.case_id), owner_org_id=rec.owner_org_id,
                   manager_org_id=rec.manager_org_id, status=rec.status, closure_reason=rec.closure_reason,
                   arrival_date=rec.arrival_date, destination_region=region(rec.destination_region),
                   plan_due_on=rec.plan_due_on, plan_overdue=rec.plan_overdue,
                   plan=ReintegrationPlan.from_record(rec.plan) if rec.plan else None, version=rec.version,
                   assignments=[CaseAssignment.from_record(a) for a in rec.assignments], updated_at=rec.updated_at,
                   schedule_id=rec.schedule_id, schedule_version=rec.schedule_version,
                   schedule=[ScheduledContact.from_record(c) for c in rec.schedule],
                   contacts=None if rec.contacts is None else [Contact.from_record(c) for c in rec.contacts],
                   contact_count=rec.contact_count,
                   failed_in_a_row=rec.failed_in_a_row, unreachable=rec.unreachable,
                   surveys=[Survey.from_record(v) for v in rec.surveys])


@strawberry.type(description="A case your organisation manages that has no reintegration plan yet.")
class MissingPlan:
    case_id: strawberry.ID
    arrival_date: dt.date
    destination_region: Region
    plan_due_on: dt.date
    overdue: bool
    managed_since: dt.datetime

    @classmethod
    def from_record(cls, rec: replies.MissingPlanView) -> "MissingPlan":
        return cls(case_id=strawberry.ID(rec.case_id), arrival_date=rec.arrival_date,
                   destination_region=region(rec.destination_region), plan_due_on=rec.plan_due_on,
                   overdue=rec.overdue, managed_since=rec.managed_since)


@strawberry.type
class MissingPlanConnection:
    nodes: list[MissingPlan]
    page_info: PageInfo

    @classmethod
    def from_record(cls, rec: replies.Page[replies.MissingPlanView]) -> "MissingPlanConnection":
        return cls(nodes=[MissingPlan.from_record(n) for n in rec.nodes], page_info=PageInfo.from_record(rec.page_info))


@strawberry.type(description="A case your organisation manages and its next scheduled contact.")
class ContactDue:
    case_id: strawberry.ID
    arrival_date: dt.date
    destination_region: Region
    contact_code: str
    opens_on: dt.date
    due_on: dt.date
    overdue_after: dt.date
    state: ContactState

    @classmethod
    def from_record(cls, rec: replies.ContactDueView) -> "ContactDue":
        return cls(case_id=strawberry.ID(rec.case_id), arrival_date=rec.arrival_date,
                   destination_region=region(rec.destination_region), contact_code=rec.contact_code,
                   opens_on=rec.opens_on, due_on=rec.due_on, overdue_after=rec.overdue_after, state=rec.state)


@strawberry.type
class ContactDueConnection:
    nodes: list[ContactDue]
    page_info: PageInfo

    @classmethod
    def from_record(cls, rec: replies.Page[replies.ContactDueView]) -> "ContactDueConnection":
        return cls(nodes=[ContactDue.from_record(n) for n in rec.nodes], page_info=PageInfo.from_record(rec.page_info))


@strawberry.type(description="A case your organisation manages whose person could not be reached.")
class UnreachableCase:
    case_id: strawberry.ID
    arrival_date: dt.date
    destination_region: Region
    failed_in_a_row: int
    unreachable_since: dt.datetime

    @classmethod
    def from_record(cls, rec: replies.UnreachableCaseView) -> "UnreachableCase":
        return cls(case_id=strawberry.ID(rec.case_id), arrival_date=rec.arrival_date,
                   destination_region=region(rec.destination_region), failed_in_a_row=rec.failed_in_a_row,
                   unreachable_since=rec.unreachable_since)


@strawberry.type
class UnreachableCaseConnection:
    nodes: list[UnreachableCase]
    page_info: PageInfo

    @classmethod
    def from_record(cls, rec: replies.Page[replies.UnreachableCaseView]) -> "UnreachableCaseConnection":
        return cls(nodes=[UnreachableCase.from_record(n) for n in rec.nodes],
                   page_info=PageInfo.from_record(rec.page_info))


# --- the service directory ----------------------------------------------------------------------

DirectoryStatus = strawberry.enum(reference.DirectoryStatus, description="Whether a service takes referrals.")
Weekday = strawberry.enum(reference.Weekday, description="Day of the week (iCalendar code).")


@strawberry.type(description="A place where a service is delivered (HSDS location).")
class DirectoryLocation:
    id: strawberry.ID
    name: str | None
    address: str | None
    city: str | None
    region: Region | None
    latitude: float | None
    longitude: float | None

    @classmethod
    def from_record(cls, rec: replies.DirectoryLocationView) -> "DirectoryLocation":
        return cls(id=strawberry.ID(rec.id), name=rec.name, address=rec.address, city=rec.city,
                   region=region(rec.region) if rec.region else None, latitude=rec.latitude, longitude=rec.longitude)


@strawberry.type(description="Opening hours on some days of the week, Bamako time (UTC).")
class OpeningHours:
    days: list[Weekday]
    opens_at: str
    closes_at: str


@strawberry.type(description="How many more people the service can take (HSDS service_capacity), as last reported.")
class ServiceCapacity:
    available: int | None
    maximum: int | None
    updated_at: dt.datetime | None
    updated_by: str | None = strawberry.field(
        description="Who reported it: shown to the service's own organisation and the platform steward only.")


@strawberry.type(description="A service an organisation offers in the national referral network (HSDS 3 service). "
                              "Services in a sensitive category exist only for tokens holding that category's scope, "
                              "for their own organisation and for the platform steward.")
class DirectoryService:
    id: strawberry.ID
    organization_id: strawberry.ID
    organization_name: str
    name_fr: str
    name_en: str | None
    description_fr: str | None
    description_en: str | None
    category: ServiceCategory
    regions: list[Region] = strawberry.field(description="Service area; empty: national.")
    locations: list[DirectoryLocation]
    minimum_age: int | None
    maximum_age: int | None
    sexes: list[Sex] = strawberry.field(description="Eligible sexes; empty: any.")
    vulnerabilities: list[Vulnerability] = strawberry.field(description="Eligible with one of these; empty: anyone.")
    hours: list[OpeningHours]
    email: str | None
    phone: str | None
    url: str | None
    status: DirectoryStatus
    expected_duration_days: int | None
    capacity: ServiceCapacity | None
    awaiting_approval: bool = strawberry.field(
        description="A sensitive-category service the platform steward has not approved yet: routing and referrals "
                    "do not use it, and only its organisation and the steward see it.")
    version: int = strawberry.field(description="Send it back with an update: a stale version is a CONFLICT.")
    created_at: dt.datetime
    updated_at: dt.datetime

    @strawberry.field(description="The name in French (fr, default) or English (en, when given).")
    def name(self, lang: str = "fr") -> str:
        return (self.name_en or self.name_fr) if lang.lower().startswith("en") else self.name_fr

    @strawberry.field
    async def organization(self, info: Info[Context, None]) -> Organisation | None:
        return await Organisation.find(info.context, str(self.organization_id))

    @classmethod
    def from_record(cls, rec: replies.DirectoryServiceView) -> "DirectoryService":
        capacity = rec.capacity
        return cls(
            id=strawberry.ID(rec.id), organization_id=strawberry.ID(rec.organization_id),
            organization_name=rec.organization_name, name_fr=rec.name_fr, name_en=rec.name_en,
            description_fr=rec.description_fr, description_en=rec.description_en, category=rec.category,
            regions=[region(c) for c in rec.regions], locations=[DirectoryLocation.from_record(p) for p in rec.locations],
            minimum_age=rec.minimum_age, maximum_age=rec.maximum_age, sexes=rec.sexes,
            vulnerabilities=rec.vulnerabilities,
            hours=[OpeningHours(days=h.days, opens_at=h.opens_at, closes_at=h.closes_at) for h in rec.hours],
            email=rec.email, phone=rec.phone, url=rec.url, status=rec.status,
            expected_duration_days=rec.expected_duration_days,
            capacity=ServiceCapacity(available=capacity.available, maximum=capacity.maximum,
                                     updated_at=capacity.updated_at, updated_by=capacity.updated_by)
            if capacity else None,
            awaiting_approval=rec.awaiting_approval, version=rec.version, created_at=rec.created_at,
            updated_at=rec.updated_at,
        )


@strawberry.type
class DirectoryServiceConnection:
    nodes: list[DirectoryService]
    page_info: PageInfo

    @classmethod
    def from_record(cls, rec: replies.Page[replies.DirectoryServiceView]) -> "DirectoryServiceConnection":
        return cls(nodes=[DirectoryService.from_record(s) for s in rec.nodes], page_info=PageInfo.from_record(rec.page_info))


# --- offline capture ------------------------------------------------------------------------------

SubmissionStatus = strawberry.enum(reference.SubmissionStatus, description="What became of a Kobo/ODK submission.")
SyncCommand = strawberry.enum(reference.SyncCommand, description="What an offline client may send in a batch.")
SyncStatus = strawberry.enum(reference.SyncStatus, description="The result of one command of a batch.")


@strawberry.type(description="Why an item was refused: a code, a message, the field at fault; for a CONFLICT, the "
                             "case's current version and the fields changed since the item's base version.")
class ItemError:
    code: str
    message: str
    field: str | None
    current_version: int | None
    changed_fields: list[str] | None

    @classmethod
    def from_record(cls, rec: replies.ItemError) -> "ItemError":
        return cls(code=rec.code, message=rec.message, field=field_path(rec.field),
                   current_version=rec.current_version,
                   changed_fields=[field_path(f) or f for f in rec.changed_fields]
                   if rec.changed_fields is not None else None)


@strawberry.type(description="The result of one command of a batch, in the order sent.")
class SyncItemResult:
    client_id: str
    status: SyncStatus
    case_id: strawberry.ID | None
    version: int | None = strawberry.field(description="The case's version after the item (on a CONFLICT, its "
                                                        "current one).")
    errors: list[ItemError]

    @classmethod
    def from_record(cls, rec: replies.SyncItemResult) -> "SyncItemResult":
        return cls(client_id=rec.client_id, status=rec.status,
                   case_id=strawberry.ID(rec.case_id) if rec.case_id else None, version=rec.version,
                   errors=[ItemError.from_record(e) for e in rec.errors])


@strawberry.type
class SyncResult:
    results: list[SyncItemResult]


@strawberry.type(description="A Kobo/ODK submission received for your organisation.")
class OfflineSubmission:
    id: strawberry.ID
    submission_id: str = strawberry.field(description="meta/instanceID (uuid:…) as Kobo or ODK sent it.")
    source: str
    status: SubmissionStatus
    case_id: strawberry.ID | None
    problems: list[ItemError] = strawberry.field(description="Why it was rejected, by form question.")
    answers: JSON | None = strawberry.field(description="A rejected submission's answers, kept to fix it until it is "
                                                        "fixed or its retention ends (sensitive flags only with their "
                                                        "scope).")
    attempts: int = strawberry.field(description="How many times it was received with this status.")
    received_at: dt.datetime
    last_received_at: dt.datetime

    @classmethod
    def from_record(cls, rec: replies.OfflineSubmissionView) -> "OfflineSubmission":
        return cls(id=strawberry.ID(rec.id), submission_id=rec.submission_id, source=rec.source, status=rec.status,
                   case_id=strawberry.ID(rec.case_id) if rec.case_id else None,
                   problems=[ItemError(code=p.code, message=p.message, field=p.field, current_version=None,
                                       changed_fields=None) for p in rec.problems],
                   answers=rec.answers, attempts=rec.attempts, received_at=rec.received_at,
                   last_received_at=rec.last_received_at)


@strawberry.type
class OfflineSubmissionConnection:
    nodes: list[OfflineSubmission]
    page_info: PageInfo

    @classmethod
    def from_record(cls, rec: replies.Page[replies.OfflineSubmissionView]) -> "OfflineSubmissionConnection":
        return cls(nodes=[OfflineSubmission.from_record(n) for n in rec.nodes],
                   page_info=PageInfo.from_record(rec.page_info))
# --- families (issue 10, item 3; decision record 0023) -------------------------------------------

Relation = strawberry.enum(reference.Relation, description="What one person is to another: CHILD_OF her mother, "
                                                           "whose side reads PARENT_OF.")


def _not_readable() -> GraphQLError:
    return GraphQLError("Restricted: your organisation may not read the linked case; ask its owning organisation.",
                        extensions={"code": "RESTRICTED", "reason": "case_access"})


@strawberry.type(description="Who a linked case is, shown only to an organisation that may read that case.")
class LinkedPerson:
    given_name: str
    family_name: str
    sex: Sex
    date_of_birth: dt.date | None
    estimated_age: int | None
    arrival_point: ArrivalPoint
    arrival_date: dt.date

    @classmethod
    def from_record(cls, rec: replies.LinkedPersonView) -> "LinkedPerson":
        return cls(given_name=rec.given_name, family_name=rec.family_name, sex=rec.sex,
                   date_of_birth=rec.date_of_birth, estimated_age=rec.estimated_age,
                   arrival_point=rec.arrival_point, arrival_date=rec.arrival_date)


@strawberry.type(description="A family link seen from a case: relation is what this case's person is to the linked "
                             "one. Without access to the linked case: its id and owning organisation only.")
class CaseLink:
    id: strawberry.ID
    linked_case_id: strawberry.ID
    relation: Relation
    travelling_together: bool
    created_at: dt.datetime
    record: strawberry.Private[replies.CaseLinkView]

    @strawberry.field(description="The linked case's organisation: the one to ask when tracing a family.")
    async def owner_organisation(self, info: Info[Context, None]) -> Organisation | None:
        return await Organisation.find(info.context, self.record.owner_org_id)

    @strawberry.field(description="Who the linked person is; null (RESTRICTED) when your organisation may not read "
                                  "the linked case.")
    def person(self) -> LinkedPerson | None:
        if self.record.person is None:
            raise _not_readable()
        return LinkedPerson.from_record(self.record.person)

    @classmethod
    def from_record(cls, rec: replies.CaseLinkView) -> "CaseLink":
        return cls(id=strawberry.ID(rec.id), linked_case_id=strawberry.ID(rec.linked_case_id), relation=rec.relation,
                   travelling_together=rec.travelling_together, created_at=rec.created_at, record=rec)


@strawberry.type(description="One case of a family.")
class FamilyMember:
    case_id: strawberry.ID
    record: strawberry.Private[replies.FamilyMemberView]

    @strawberry.field(description="The case's owning organisation.")
    async def owner_organisation(self, info: Info[Context, None]) -> Organisation | None:
        return await Organisation.find(info.context, self.record.owner_org_id)

    @strawberry.field(description="Who the person is; null (RESTRICTED) when your organisation may not read the case.")
    def person(self) -> LinkedPerson | None:
        if self.record.person is None:
            raise _not_readable()
        return LinkedPerson.from_record(self.record.person)


@strawberry.type(description="One link of a family: caseId's person is relation linkedCaseId's.")
class FamilyLink:
    id: strawberry.ID
    case_id: strawberry.ID
    linked_case_id: strawberry.ID
    relation: Relation
    travelling_together: bool


@strawberry.type(description="A case's family: the cases linked to it, link by link (at most 3 links away and 30 "
                             "cases; truncated when more).")
class Family:
    case_id: strawberry.ID
    members: list[FamilyMember]
    links: list[FamilyLink]
    truncated: bool

    @classmethod
    def from_record(cls, rec: replies.FamilyView) -> "Family":
        return cls(case_id=strawberry.ID(rec.case_id),
                   members=[FamilyMember(case_id=strawberry.ID(m.case_id), record=m) for m in rec.members],
                   links=[FamilyLink(id=strawberry.ID(x.id), case_id=strawberry.ID(x.case_id),
                                     linked_case_id=strawberry.ID(x.linked_case_id), relation=x.relation,
                                     travelling_together=x.travelling_together) for x in rec.links],
                   truncated=rec.truncated)


# --- people already known (decision record 0022) ----------------------------------------------------

PossibleDuplicateStatus = strawberry.enum(reference.PossibleDuplicateStatus,
                                          description="Where a possible duplicate recorded for the steward stands.")


@strawberry.type(description="Why a candidate may be the same person: a code, and words for the agent.")
class MatchReason:
    code: str = strawberry.field(description="NAME_SAME, NAME_VARIANT, NAME_TYPO, NAME_ORDER_SWAPPED, "
                                             "SAME_BIRTH_DATE, BIRTH_DATE_CLOSE, AGE_CLOSE, AGE_FAR, SAME_PHONE, "
                                             "SAME_PLACE_OF_ORIGIN, SAME_DESTINATION_REGION, SEX_DIFFERS")
    text: str = strawberry.field(description="e.g. Mahamadou ~ Mohamed")


@strawberry.type(description="A case your organisation may read that may be the same person.")
class MatchCandidate:
    score: float = strawberry.field(description="0..1; candidates are shown from the threshold (0.70) up")
    reasons: list[MatchReason]
    case: Case

    @classmethod
    def from_record(cls, rec: replies.MatchCandidateView) -> "MatchCandidate":
        return cls(score=rec.score, reasons=[MatchReason(code=r.code, text=r.text) for r in rec.reasons],
                   case=Case.from_record(rec.case))


@strawberry.type(description="A merge of one case into another: explicit, audited, undoable (undoMerge).")
class CaseMerge:
    id: strawberry.ID
    survivor_id: strawberry.ID
    merged_id: strawberry.ID
    reason: str
    merged_by_org_id: str
    merged_at: dt.datetime
    undone_at: dt.datetime | None
    undone_by_org_id: str | None

    @classmethod
    def from_record(cls, rec: replies.CaseMergeView) -> "CaseMerge":
        return cls(id=strawberry.ID(rec.id), survivor_id=strawberry.ID(rec.survivor_case_id),
                   merged_id=strawberry.ID(rec.merged_case_id), reason=rec.reason,
                   merged_by_org_id=rec.merged_by_org_id, merged_at=rec.merged_at, undone_at=rec.undone_at,
                   undone_by_org_id=rec.undone_by_org_id)


@strawberry.type(description="For the platform steward: two cases of different organisations that may be one person. "
                              "Ids, organisations, score and reason codes only, never an identity.")
class PossibleDuplicate:
    id: strawberry.ID
    case_id: strawberry.ID = strawberry.field(description="The case registered")
    other_case_id: strawberry.ID = strawberry.field(description="The earlier case its organisation may not read")
    case_owner_org_id: str
    other_owner_org_id: str
    score: float
    reasons: list[str]
    status: PossibleDuplicateStatus
    created_at: dt.datetime
    decided_at: dt.datetime | None

    @classmethod
    def from_record(cls, rec: replies.PossibleDuplicateView) -> "PossibleDuplicate":
        return cls(id=strawberry.ID(rec.id), case_id=strawberry.ID(rec.case_id),
                   other_case_id=strawberry.ID(rec.other_case_id), case_owner_org_id=rec.case_owner_org_id,
                   other_owner_org_id=rec.other_owner_org_id, score=rec.score, reasons=rec.reasons, status=rec.status,
                   created_at=rec.created_at, decided_at=rec.decided_at)


@strawberry.type
class PossibleDuplicateConnection:
    nodes: list[PossibleDuplicate]
    page_info: PageInfo

    @classmethod
    def from_record(cls, rec: replies.Page[replies.PossibleDuplicateView]) -> "PossibleDuplicateConnection":
        return cls(nodes=[PossibleDuplicate.from_record(d) for d in rec.nodes],
                   page_info=PageInfo.from_record(rec.page_info))
