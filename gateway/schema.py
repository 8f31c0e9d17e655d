"""The public GraphQL schema. Resolvers are thin: validate, ask a service over NATS, shape the answer.

Access decisions are not taken here: each service decides on its own data with the caller's
token. The gateway only refuses what it can tell is malformed (bad input, unknown organisations).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import strawberry
from graphql import GraphQLError
from pydantic import TypeAdapter, ValidationError
from strawberry.extensions import MaskErrors
from strawberry.file_uploads import Upload
from strawberry.types import Info

from contracts import commands, reference, replies
from kernel.errors import SeginError
from gateway import reception
from gateway.documents import DocumentCache, Documents
from gateway.graphql_context import Context, as_graphql_error, input_error
from gateway.graphql_guard import RequestGuard, SeginSchema
from gateway.limits import FOLLOWUP_STATISTICS_COST, OVERDUE_COUNTS_COST, SAVE_PLAN_COST, SYNC_COST, GraphQLLimits
from gateway.types import (
    ArrivalPoint,
    AssignmentReason,
    AuditConnection,
    AuditEntry,
    AuditedService,
    Case,
    CaseMerge,
    ClosureReason,
    ContactDueConnection,
    ContactMode,
    DirectoryService,
    DirectoryServiceConnection,
    DirectoryStatus,
    FOLLOWUP_LIST,
    Family,
    FollowupCase,
    FollowupStatistics,
    GivenBy,
    LegalBasis,
    MatchCandidate,
    Me,
    MissingPlanConnection,
    NOTIFICATION_EXPORTS,
    Notification,
    NotificationConnection,
    OfflineSubmissionConnection,
    Organisation,
    OrganisationType,
    OverdueSummary,
    PlanActionStatus,
    PossibleDuplicate,
    PossibleDuplicateConnection,
    PossibleDuplicateStatus,
    Priority,
    Purpose,
    REFERRAL_LIST,
    Referral,
    ReferralConnection,
    ReferralStatus,
    Region,
    ReintegrationDimension,
    Relation,
    ReopenReason,
    ServiceCategory,
    Sex,
    SharingResult,
    Statistics,
    StatisticsDimension,
    SubjectAccessExport,
    SubmissionStatus,
    Survey,
    SurveyInstrument,
    SyncCommand,
    SyncItemResult,
    SyncResult,
    UnreachableCaseConnection,
    Vulnerability,
    Weekday,
)

__all__ = ["Context", "schema"]


@strawberry.input(description="Consent as the person (or a child's guardian) gave it.")
class ConsentInput:
    given: bool
    recipient_org_ids: list[str] = strawberry.field(default_factory=list,
                                                    description="Organisations the person agreed to share with")
    recipient_org_types: list[OrganisationType] = strawberry.field(
        default_factory=list, description="Or every organisation of these types")
    purposes: list[Purpose] = strawberry.field(default_factory=lambda: [reference.Purpose.REFERRAL])
    language: str = "fr"
    given_by: GivenBy = reference.GivenBy.PERSON
    guardian_name: str | None = None


@strawberry.input(description="A family link from the person being registered to an existing case: relation is what "
                               "this person is to the other (CHILD_OF her mother's case).")
class CaseLinkInput:
    case_id: strawberry.ID = strawberry.field(description="An existing case your organisation may read")
    relation: Relation
    travelling_together: bool = strawberry.field(description="True when they arrive together")


@strawberry.input(description="One person received at an arrival point.")
class ArrivalInput:
    given_name: str
    family_name: str
    sex: Sex
    country_returned_from: str = strawberry.field(description="ISO 3166-1 alpha-2 code, e.g. LY")
    arrival_point: ArrivalPoint
    arrival_date: dt.date
    destination_region: str = strawberry.field(description="National (CT) region code, e.g. 07 for Gao")
    consent: ConsentInput
    date_of_birth: dt.date | None = None
    estimated_age: int | None = None
    vulnerabilities: list[Vulnerability] = strawberry.field(default_factory=list)
    phone_numbers: list[str] = strawberry.field(
        default_factory=list, description="Stored in E.164; a number without +country code is taken as Malian")
    place_of_origin: str | None = strawberry.field(default=None, description="Village, commune or cercle of origin")
    links: list[CaseLinkInput] = strawberry.field(
        default_factory=list, description="Family links to existing cases; a child travelling with a parent or "
                                          "guardian cannot be flagged UNACCOMPANIED_CHILD or SEPARATED_CHILD")


@strawberry.input(description="A basis other than consent for sharing a case.")
class LegalBasisInput:
    legal_basis: LegalBasis
    purposes: list[Purpose]
    justification: str
    recipient_org_ids: list[str] = strawberry.field(default_factory=list)
    recipient_org_types: list[OrganisationType] = strawberry.field(default_factory=list)


@strawberry.input(description="A person to look up before registering them (people already known).")
class MatchPersonInput:
    given_name: str
    family_name: str
    sex: Sex | None = None
    date_of_birth: dt.date | None = None
    estimated_age: int | None = None
    arrival_date: dt.date | None = strawberry.field(default=None, description="When the age was estimated; "
                                                                              "default today")
    phone_numbers: list[str] = strawberry.field(default_factory=list)
    place_of_origin: str | None = None
    destination_region: str | None = strawberry.field(default=None, description="National (CT) region code")


@strawberry.input(description="A place where the service is delivered; coordinates (WGS 84) both or neither.")
class DirectoryLocationInput:
    name: str | None = None
    address: str | None = None
    city: str | None = None
    region: str | None = strawberry.field(default=None, description="CT region code, e.g. 00 for Bamako")
    latitude: float | None = None
    longitude: float | None = None


@strawberry.input(description="Opening hours on some days, Bamako time, HH:MM.")
class OpeningHoursInput:
    days: list[Weekday]
    opens_at: str
    closes_at: str


@strawberry.input(description="How many more people the service can take now, of how many at most.")
class CapacityInput:
    available: int
    maximum: int | None = None


@strawberry.input(description="One directory service, whole. Give id and the version you read to update it; "
                               "without id a new service is created for your organisation (organizationId: "
                               "another organisation's, for the platform steward).")
class DirectoryServiceInput:
    name_fr: str
    category: ServiceCategory
    id: strawberry.ID | None = None
    version: int | None = None
    organization_id: str | None = None
    name_en: str | None = None
    description_fr: str | None = None
    description_en: str | None = None
    regions: list[str] = strawberry.field(default_factory=list, description="Service area; empty: national")
    locations: list[DirectoryLocationInput] = strawberry.field(default_factory=list)
    minimum_age: int | None = None
    maximum_age: int | None = None
    sexes: list[Sex] = strawberry.field(default_factory=list)
    vulnerabilities: list[Vulnerability] = strawberry.field(default_factory=list)
    hours: list[OpeningHoursInput] = strawberry.field(default_factory=list)
    email: str | None = None
    phone: str | None = None
    url: str | None = None
    status: DirectoryStatus = reference.DirectoryStatus.ACTIVE
    expected_duration_days: int | None = None
    capacity: CapacityInput | None = None


@strawberry.input(description="Directory filters, all optional, combined.")
class DirectoryFilter:
    category: ServiceCategory | None = None
    region: str | None = strawberry.field(default=None, description="Covering this region: there, or national")
    vulnerability: Vulnerability | None = strawberry.field(default=None, description="Eligible with this")
    open_capacity_only: bool = strawberry.field(
        default=False, description="Leave out services known to be full (unknown capacity counts as open)")
    organization_id: str | None = None
    include_inactive: bool = False
    awaiting_approval: bool | None = strawberry.field(
        default=None, description="Only services awaiting the steward's approval (true), or only those in use (false)")


@strawberry.input(description="A case worker's referral of a case your organisation may read to a directory service.")
class ReferCaseInput:
    case_id: strawberry.ID
    service_id: strawberry.ID = strawberry.field(description="A service of the directory (active).")
    reason_code: str = strawberry.field(description="Why (a code, e.g. LIVELIHOOD_SUPPORT).")
    priority: Priority
    idempotency_key: str = strawberry.field(description="Retrying with the same key never refers twice.")
    note: str | None = strawberry.field(default=None, description=(
        "For the recipient (at most 2,000 characters): seen by the referring and receiving organisations only, "
        "never sent in events."))
    due_at: dt.datetime | None = strawberry.field(default=None, description="By when the recipient should act.")
    due_in_hours: int | None = strawberry.field(default=None, description="Or within this many hours; default by "
                                                                           "priority (24 h, 72 h, 7 days).")


@strawberry.input(description="What came of a referral.")
class ReferralOutcomeInput:
    service_delivered: bool
    outcome_code: str = strawberry.field(description="A code, e.g. SERVICE_PROVIDED, PERSON_NOT_REACHED.")
    delivered_on: dt.date | None = strawberry.field(default=None, description="Required when delivered; not in the "
                                                                               "future nor before the referral.")


@strawberry.input(description="One action of a plan goal. Give the id of an action of the plan you read to keep it; "
                               "leave it out for a new action.")
class PlanActionInput:
    description: str | None = strawberry.field(
        default=None, description="What will be done (at most 500 characters); seen by the case's owner and manager "
                                  "only (on a sensitive case, with its sensitive:* scopes), never sent in events. "
                                  "Required for a new action; left out, the action (id) keeps its saved text.")
    target_date: dt.date
    status: PlanActionStatus = reference.PlanActionStatus.PLANNED
    referral_id: strawberry.ID | None = strawberry.field(default=None, description="The referral it rests on, if any.")
    id: strawberry.ID | None = None


@strawberry.input(description="One goal of a reintegration plan, in one dimension, with its actions.")
class PlanGoalInput:
    dimension: ReintegrationDimension
    description: str | None = strawberry.field(
        default=None, description="The goal (at most 500 characters). Required for a new goal; left out, the goal "
                                  "(id) keeps its saved text.")
    actions: list[PlanActionInput] = strawberry.field(default_factory=list)
    id: strawberry.ID | None = strawberry.field(default=None, description="A goal of the plan you read, to keep it "
                                                                          "(and its text); leave it out for a new goal.")


@strawberry.input(description="One answer: an indicator's code and the chosen option's code, or DECLINED when the "
                               "person chose not to answer.")
class SurveyAnswerInput:
    indicator: str
    option: str


@strawberry.input(description="One administration of a survey instrument. Every indicator of that version is "
                               "answered once; see surveyInstrument for the form.")
class SurveyInput:
    taken_on: dt.date = strawberry.field(description="The day it was taken: not before arrival, not in the future.")
    answers: list[SurveyAnswerInput]
    instrument_id: str = "RSS"
    instrument_version: int | None = strawberry.field(default=None, description="Default: the latest version.")


@strawberry.input(description="One follow-up contact with the person.")
class ContactInput:
    date: dt.date = strawberry.field(description="When it was made: not in the future, not before arrival.")
    mode: ContactMode
    reached: bool = strawberry.field(description="Whether it reached the person (failed attempts in a row make the "
                                                 "person unreachable).")
    next_step: str | None = strawberry.field(default=None, description="What comes next (at most 500 characters); "
                                                                       "never sent in events.")
    note: str | None = strawberry.field(default=None, description="What was heard (at most 2,000 characters): "
                                                                  "personal data, shown to the case's owner and "
                                                                  "manager only, behind the sensitive scopes of the "
                                                                  "case's categories; never in events, logs or "
                                                                  "audit records.")


@strawberry.input(description="A group of people expected together: a charter flight or a convoy.")
class ArrivalGroupInput:
    kind: reception.ArrivalGroupKind
    reference: str = strawberry.field(description="Flight number or convoy label")
    arrival_date: dt.date
    arrival_point: ArrivalPoint
    country_returned_from: str = strawberry.field(description="ISO 3166-1 alpha-2 code, e.g. LY")


@strawberry.input(description="What one column of a manifest holds (its header as written in the file).")
class ColumnMappingInput:
    column: str
    field: reception.ManifestField


@strawberry.input(description="What the agent confirms or corrects at check-in: every field given overrides the "
                               "manifest row and the group (arrival point, date, country). Consent is always asked.")
class CheckInInput:
    consent: ConsentInput
    given_name: str | None = None
    family_name: str | None = None
    sex: Sex | None = None
    date_of_birth: dt.date | None = None
    estimated_age: int | None = None
    country_returned_from: str | None = None
    arrival_point: ArrivalPoint | None = None
    arrival_date: dt.date | None = None
    destination_region: str | None = strawberry.field(default=None, description="National (CT) region code; "
                                                                                "required unless the manifest gave it")
    vulnerabilities: list[Vulnerability] = strawberry.field(default_factory=list)
    phone_numbers: list[str] | None = None
    place_of_origin: str | None = None
    links: list[CaseLinkInput] = strawberry.field(
        default_factory=list, description="Family links to cases already registered (a child CHILD_OF her mother's, "
                                          "checked in before her)")


def _list_args(first: int, after: str | None, status: Any, priority: Any, overdue_only: bool) -> dict[str, Any]:
    return {**_page_args(first, after), "status": status.value if status else None,
            "priority": priority.value if priority else None, "overdue_only": overdue_only}


DSAR_MAX_PAGES = 50  # 5,000 entries per service; beyond that, use `segin audit search --case`


_IDENTIFIER: TypeAdapter[str] = TypeAdapter(commands.Identifier)
_CURSOR: TypeAdapter[str] = TypeAdapter(commands.Cursor)


def _checked(adapter: TypeAdapter[str], value: Any, field: str) -> str:
    """An id or cursor argument, bounded and printable before it goes anywhere: the error names the argument."""
    if value is None:
        return value
    try:
        return adapter.validate_python(str(value))
    except ValidationError as exc:
        raise input_error(exc, field) from None


def _id(value: Any, field: str = "id") -> str:
    return _checked(_IDENTIFIER, value, field)


def _page_args(first: int, after: str | None) -> dict[str, Any]:
    return {"first": first, "after": _checked(_CURSOR, after, "after")}


async def _known_organisations(ctx: Context, org_ids: list[str], field: str) -> None:
    if [o for o in org_ids if await ctx.registry.organisation(o) is None]:
        raise GraphQLError(f"{field}: unknown organisation", extensions={"code": "BAD_USER_INPUT", "field": field})


def _validated(model: type[commands.Strict], prefix: str, **data: Any) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise input_error(exc, prefix) from None


def _under_input(exc: GraphQLError, arguments: dict[str, str]) -> None:
    """Point a service's field names at the GraphQL input (``answers.3.option`` → ``input.answers.3.option``),
    leaving the mutation's own arguments as they are."""
    def moved(field: Any) -> Any:
        if not field or field in arguments.values():
            return field
        return f"input.{field}"

    if exc.extensions:
        exc.extensions["field"] = moved(exc.extensions.get("field"))
        for problem in exc.extensions.get("problems") or []:
            problem["field"] = moved(problem.get("field"))


def _arrival_as_input(exc: GraphQLError) -> None:
    """``arrival.links.0.caseId`` → ``input.links.0.caseId``: the service's request names the arrival ``arrival``."""
    def moved(field: Any) -> Any:
        return f"input.{field.removeprefix('arrival.')}" if isinstance(field, str) and field.startswith("arrival.") \
            else field

    if exc.extensions:
        exc.extensions["field"] = moved(exc.extensions.get("field"))
        for problem in exc.extensions.get("problems") or []:
            problem["field"] = moved(problem.get("field"))


@strawberry.type
class Query:
    @strawberry.field(description="Who the token belongs to.")
    async def me(self, info: Info[Context, None]) -> Me:
        p = info.context.principal
        return Me(subject=p.subject, client_id=p.client_id, scopes=sorted(p.scopes),
                  organisation=await Organisation.find(info.context, p.org_id))

    @strawberry.field(description="One case, if your organisation may see it.")
    async def case(self, info: Info[Context, None], id: strawberry.ID) -> Case:
        return Case.from_record(replies.CaseView.model_validate(
            await info.context.ask("svc.intake.get_case", {"case_id": _id(id)})))

    @strawberry.field(description="A case's family, to trace a separated child's relatives: the cases linked to it, "
                                  "link by link, each under its own access rules (a case your organisation may not "
                                  "read shows its id and owning organisation only).")
    async def family(self, info: Info[Context, None], case_id: strawberry.ID) -> Family:
        return Family.from_record(replies.FamilyView.model_validate(
            await info.context.ask("svc.intake.family", {"case_id": _id(case_id, "caseId")})))

    @strawberry.field(description="Referrals addressed to your organisation, newest first; filter by status, "
                                  "priority, overdue.")
    async def incoming_referrals(self, info: Info[Context, None], first: int = 20, after: str | None = None,
                                 status: ReferralStatus | None = None, priority: Priority | None = None,
                                 overdue_only: bool = False) -> ReferralConnection:
        data = await info.context.ask("svc.referral.incoming",
                                      _list_args(first, after, status, priority, overdue_only))
        return ReferralConnection.from_record(replies.Page[replies.ReferralView].model_validate(data))

    @strawberry.field(description="Referrals your organisation made (by its people or by rules on its cases), newest "
                                  "first; filter by status, priority, overdue.")
    async def outgoing_referrals(self, info: Info[Context, None], first: int = 20, after: str | None = None,
                                 status: ReferralStatus | None = None, priority: Priority | None = None,
                                 overdue_only: bool = False) -> ReferralConnection:
        data = await info.context.ask("svc.referral.outgoing",
                                      _list_args(first, after, status, priority, overdue_only))
        return ReferralConnection.from_record(replies.Page[replies.ReferralView].model_validate(data))

    @strawberry.field(description="How many referrals are overdue for your organisation (and, for the coordinating "
                                  "body, per organisation).")
    async def overdue_counts(self, info: Info[Context, None]) -> OverdueSummary:
        data = await info.context.ask("svc.referral.overdue_counts", {}, cost=OVERDUE_COUNTS_COST)
        return OverdueSummary.from_view(replies.OverdueCountsView.model_validate(data))

    @strawberry.field(description="Unmet needs (referrals UNASSIGNED: no directory service fitted) of cases your "
                                  "organisation registered, newest first; the coordinating body sees every case's.")
    async def unassigned_needs(self, info: Info[Context, None], first: int = 20, after: str | None = None
                               ) -> ReferralConnection:
        data = await info.context.ask("svc.referral.unassigned", _page_args(first, after))
        return ReferralConnection.from_record(replies.Page[replies.ReferralView].model_validate(data))

    @strawberry.field(description="Your organisation's notifications, newest first.")
    async def notifications(self, info: Info[Context, None], first: int = 20, after: str | None = None,
                            unread_only: bool = False) -> NotificationConnection:
        data = await info.context.ask("svc.notifications.list", {**_page_args(first, after), "unread_only": unread_only})
        return NotificationConnection.from_record(replies.Page[replies.NotificationView].model_validate(data))

    @strawberry.field(description="Counts of people across all organisations (statistics:read); small cells suppressed.")
    async def statistics(self, info: Info[Context, None], group_by: list[StatisticsDimension]) -> Statistics:
        data = await info.context.ask("svc.intake.statistics", {"group_by": [d.value for d in group_by]})
        return Statistics.from_record(replies.StatisticsView.model_validate(data))

    @strawberry.field(description="Platform steward (audit:read): one service's audit trail, newest first.")
    async def audit_trail(self, info: Info[Context, None], service: AuditedService, case_id: strawberry.ID | None = None,
                          org_id: str | None = None, first: int = 50, after: str | None = None) -> AuditConnection:
        payload = {"case_id": _id(case_id, "caseId") if case_id else None,
                   "org_id": _id(org_id, "orgId") if org_id else None, **_page_args(first, after)}
        data = await info.context.ask(f"svc.{service.value}.audit_search", payload)
        return AuditConnection.from_record(replies.Page[replies.AuditEntryView].model_validate(data))

    @strawberry.field(description="Platform steward (audit:read): everything recorded about one person, and who "
                                  "accessed it, for a data-subject access request. The export itself is audited.")
    async def subject_access_request(self, info: Info[Context, None], case_id: strawberry.ID) -> SubjectAccessExport:
        ctx, ref = info.context, {"case_id": _id(case_id, "caseId")}
        # Validated as the services' reply models say, then handed on as the JSON they are.
        case = replies.CaseExport.model_validate(await ctx.ask("svc.intake.subject_access", ref))
        referrals = REFERRAL_LIST.validate_python(await ctx.ask("svc.referral.subject_access", ref))
        notifications = NOTIFICATION_EXPORTS.validate_python(await ctx.ask("svc.notifications.subject_access", ref))
        followup = FOLLOWUP_LIST.validate_python(await ctx.ask("svc.followup.subject_access", ref))
        log, complete = [], True
        for service in AuditedService:
            after = None
            for _ in range(DSAR_MAX_PAGES):
                if ctx.calls_left() < len(AuditedService):  # keep one call for each service's first page
                    complete = False
                    break
                found = replies.Page[replies.AuditEntryView].model_validate(
                    await ctx.ask(f"svc.{service.value}.audit_search", {**ref, "first": 100, "after": after}))
                log += [AuditEntry.from_record(e) for e in found.nodes]
                after = found.page_info.end_cursor
                if not found.page_info.has_next_page:
                    break
            else:
                complete = False
        log.sort(key=lambda e: e.at)
        return SubjectAccessExport(case=case.model_dump(mode="json"),
                                   referrals=REFERRAL_LIST.dump_python(referrals, mode="json"),
                                   notifications=NOTIFICATION_EXPORTS.dump_python(notifications, mode="json"),
                                   followup=FOLLOWUP_LIST.dump_python(followup, mode="json"),
                                   access_log=log, access_log_complete=complete)

    @strawberry.field(description="A case's follow-up (followup:read): its manager, reintegration plan (overdue "
                                  "flags as of now), state and hand-overs; for its owner and its manager.")
    async def followup_case(self, info: Info[Context, None], case_id: strawberry.ID) -> FollowupCase:
        data = await info.context.ask("svc.followup.get_case", {"case_id": _id(case_id, "caseId")})
        return FollowupCase.from_record(replies.FollowupCaseView.model_validate(data))

    @strawberry.field(description="One version of a survey instrument (default: the latest), to render its form "
                                  "(any follow-up scope).")
    async def survey_instrument(self, info: Info[Context, None], id: str = "RSS",
                                version: int | None = None) -> SurveyInstrument:
        request = _validated(commands.InstrumentRef, "", id=id, version=version)
        data = await info.context.ask("svc.followup.instrument", request.model_dump(mode="json"))
        return SurveyInstrument.from_record(replies.InstrumentView.model_validate(data))

    @strawberry.field(description="Follow-up counts across all organisations (statistics:read): plans saved on time, "
                                  "latest composite scores; small cells suppressed as for statistics.")
    async def followup_statistics(self, info: Info[Context, None]) -> FollowupStatistics:
        data = await info.context.ask("svc.followup.statistics", {}, cost=FOLLOWUP_STATISTICS_COST)
        return FollowupStatistics.from_record(replies.FollowupStatisticsView.model_validate(data))

    @strawberry.field(description="Cases your organisation manages that have no reintegration plan yet, with the day "
                                  "it is due and whether that day has passed; newest hand-over first, no totals.")
    async def plans_missing(self, info: Info[Context, None], first: int = 20, after: str | None = None
                            ) -> MissingPlanConnection:
        data = await info.context.ask("svc.followup.plans_missing", _page_args(first, after))
        return MissingPlanConnection.from_record(replies.Page[replies.MissingPlanView].model_validate(data))

    @strawberry.field(description="Cases your organisation manages whose next scheduled contact is due, or opens "
                                  "within withinDays days; soonest first, no totals.")
    async def followups_due(self, info: Info[Context, None], first: int = 20, after: str | None = None,
                            within_days: int = 7) -> ContactDueConnection:
        request = _validated(commands.ContactWorkListRequest, "", **_page_args(first, after), within_days=within_days)
        data = await info.context.ask("svc.followup.followups_due", request.model_dump(mode="json"))
        return ContactDueConnection.from_record(replies.Page[replies.ContactDueView].model_validate(data))

    @strawberry.field(description="Cases your organisation manages whose next scheduled contact is overdue; longest "
                                  "overdue first, no totals.")
    async def followups_overdue(self, info: Info[Context, None], first: int = 20, after: str | None = None
                                ) -> ContactDueConnection:
        data = await info.context.ask("svc.followup.followups_overdue", _page_args(first, after))
        return ContactDueConnection.from_record(replies.Page[replies.ContactDueView].model_validate(data))

    @strawberry.field(description="Cases your organisation manages whose person could not be reached (the "
                                  "schedule's number of failed contacts in a row); latest first, no totals.")
    async def unreachable_cases(self, info: Info[Context, None], first: int = 20, after: str | None = None
                                ) -> UnreachableCaseConnection:
        data = await info.context.ask("svc.followup.unreachable_cases", _page_args(first, after))
        return UnreachableCaseConnection.from_record(replies.Page[replies.UnreachableCaseView].model_validate(data))

    @strawberry.field(description="Organisations taking part in Segin.")
    async def organisations(self, info: Info[Context, None]) -> list[Organisation]:
        """The whole directory needs directory:read; organisations named in your own data resolve without it."""
        try:
            info.context.principal.require("directory:read")
        except SeginError as exc:
            raise as_graphql_error(exc) from None
        return [Organisation.from_record(r) for r in await info.context.registry.all()]

    @strawberry.field(description="Services of the national referral network (directory:read), newest first.")
    async def directory_services(self, info: Info[Context, None], filter: DirectoryFilter | None = None,
                                 first: int = 20, after: str | None = None) -> DirectoryServiceConnection:
        query = _validated(commands.DirectoryQuery, "filter", **(strawberry.asdict(filter) if filter else {}),
                           **_page_args(first, after))
        data = await info.context.ask("svc.referral.directory_services", query.model_dump(mode="json"))
        return DirectoryServiceConnection.from_record(replies.Page[replies.DirectoryServiceView].model_validate(data))

    @strawberry.field(description="One directory service (directory:read).")
    async def directory_service(self, info: Info[Context, None], id: strawberry.ID) -> DirectoryService:
        data = await info.context.ask("svc.referral.directory_service", {"id": _id(id)})
        return DirectoryService.from_record(replies.DirectoryServiceView.model_validate(data))

    @strawberry.field(description="Regions of Mali (national CT codes, 2023 reform).")
    def regions(self) -> list[Region]:
        return [Region(code=c, name=n) for c, n in reference.regions().items()]

    @strawberry.field(description="Cases your organisation may read that may be this person (before registering "
                                  "them), best first, with score and reasons. Cases it may not read are never "
                                  "shown, counted or hinted at.")
    async def match_candidates(self, info: Info[Context, None], input: MatchPersonInput, first: int = 10
                               ) -> list[MatchCandidate]:
        person = _validated(commands.MatchPerson, "input", **strawberry.asdict(input))
        request = _validated(commands.MatchCandidatesRequest, "", person=person, first=first)
        data = await info.context.ask("svc.intake.match_candidates", request.model_dump(mode="json"))
        return [MatchCandidate.from_record(c) for c in replies.MatchCandidatesView.model_validate(data).candidates]

    @strawberry.field(description="Platform steward (identity:reconcile): possible duplicates between organisations, "
                                  "newest first — ids, organisations, score and reason codes, never an identity.")
    async def possible_duplicates(self, info: Info[Context, None], first: int = 20, after: str | None = None,
                                  status: PossibleDuplicateStatus | None = None) -> PossibleDuplicateConnection:
        data = await info.context.ask("svc.intake.possible_duplicates",
                                      {**_page_args(first, after), "status": status.value if status else None})
        return PossibleDuplicateConnection.from_record(
            replies.Page[replies.PossibleDuplicateView].model_validate(data))

    @strawberry.field(description="One of your organisation's arrival groups, with its totals and a page of its "
                                  "people (manifest order), optionally of one status.")
    async def arrival_group(self, info: Info[Context, None], id: strawberry.ID, first: int = 50,
                            after: str | None = None,
                            status: reception.ExpectedStatus | None = None) -> reception.ArrivalGroup:
        return await reception.group(info.context, _id(id), first, _checked(_CURSOR, after, "after"), status)

    @strawberry.field(description="Your organisation's arrival groups, newest first, with their totals.")
    async def arrival_groups(self, info: Info[Context, None], first: int = 20, after: str | None = None
                             ) -> reception.ArrivalGroupConnection:
        return await reception.groups(info.context, first, _checked(_CURSOR, after, "after"))

    @strawberry.field(description="Kobo/ODK submissions received for your organisation (cases:write), newest first: "
                                  "ACCEPTED, DUPLICATE (sent again), REJECTED (with the reasons and the answers "
                                  "kept to fix them).")
    async def offline_submissions(self, info: Info[Context, None], status: SubmissionStatus | None = None,
                                  first: int = 20, after: str | None = None) -> OfflineSubmissionConnection:
        request = _validated(commands.OfflineSubmissionsRequest, "", status=status, **_page_args(first, after))
        data = await info.context.ask("svc.intake.offline_submissions", request.model_dump(mode="json"))
        return OfflineSubmissionConnection.from_record(
            replies.Page[replies.OfflineSubmissionView].model_validate(data))


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Register one arrival. Retrying with the same idempotencyKey never registers twice.")
    async def register_arrival(self, info: Info[Context, None], input: ArrivalInput, idempotency_key: str) -> Case:
        # The input's fields are the command's: a field added to both needs no mapping here.
        arrival = _validated(commands.RegisterArrival, "input", **strawberry.asdict(input))
        request = _validated(commands.RegisterArrivalRequest, "", idempotency_key=idempotency_key, arrival=arrival)
        await _known_organisations(info.context, arrival.consent.recipient_org_ids, "input.consent.recipientOrgIds")
        try:
            data = await info.context.ask("svc.intake.register_arrival", request.model_dump(mode="json"))
        except GraphQLError as exc:  # the service names the arrival's fields (a family link): here the input's
            _arrival_as_input(exc)
            raise
        return Case.from_record(replies.CaseView.model_validate(data))

    @strawberry.mutation(description="Record a consent (or refusal) for a case your organisation owns.")
    async def record_consent(self, info: Info[Context, None], case_id: strawberry.ID,
                             consent: ConsentInput) -> SharingResult:
        request = _validated(commands.RecordConsent, "", case_id=str(case_id), consent=strawberry.asdict(consent))
        await _known_organisations(info.context, request.consent.recipient_org_ids, "consent.recipientOrgIds")
        data = await info.context.ask("svc.intake.record_consent", request.model_dump(mode="json"))
        return SharingResult.from_record(replies.SharingResult.model_validate(data))

    @strawberry.mutation(description="Withdraw a consent: the access it allowed ends at once.")
    async def withdraw_consent(self, info: Info[Context, None], case_id: strawberry.ID,
                               consent_id: strawberry.ID) -> SharingResult:
        data = await info.context.ask("svc.intake.withdraw_consent",
                                      {"case_id": _id(case_id, "caseId"), "consent_id": _id(consent_id, "consentId")})
        return SharingResult.from_record(replies.SharingResult.model_validate(data))

    @strawberry.mutation(description="Record a legal basis other than consent (vital interest, legal obligation…).")
    async def record_legal_basis(self, info: Info[Context, None], case_id: strawberry.ID,
                                 input: LegalBasisInput) -> SharingResult:
        request = _validated(commands.RecordLegalBasis, "input", case_id=_id(case_id, "caseId"),
                             **strawberry.asdict(input))
        await _known_organisations(info.context, request.recipient_org_ids, "input.recipientOrgIds")
        data = await info.context.ask("svc.intake.record_legal_basis", request.model_dump(mode="json"))
        return SharingResult.from_record(replies.SharingResult.model_validate(data))

    @strawberry.mutation(description="Accept a referral addressed to your organisation.")
    async def accept_referral(self, info: Info[Context, None], id: strawberry.ID) -> Referral:
        data = await info.context.ask("svc.referral.accept", {"referral_id": _id(id)})
        return Referral.from_record(replies.ReferralView.model_validate(data))

    @strawberry.mutation(description="Reject a referral addressed to your organisation, with a reason code.")
    async def reject_referral(self, info: Info[Context, None], id: strawberry.ID, reason: str) -> Referral:
        request = _validated(commands.ReferralAction, "", referral_id=_id(id), reason=reason)
        data = await info.context.ask("svc.referral.reject", request.model_dump())
        return Referral.from_record(replies.ReferralView.model_validate(data))

    @strawberry.mutation(description="Mark an accepted referral as done, with what came of it (the outcome is "
                                     "optional for earlier clients; the referring organisation sees it).")
    async def complete_referral(self, info: Info[Context, None], id: strawberry.ID,
                                outcome: ReferralOutcomeInput | None = None) -> Referral:
        request = _validated(commands.CompleteReferral, "", referral_id=_id(id),
                             outcome=strawberry.asdict(outcome) if outcome else None)
        data = await info.context.ask("svc.referral.complete", request.model_dump(mode="json", exclude_none=True))
        return Referral.from_record(replies.ReferralView.model_validate(data))

    @strawberry.mutation(description="Refer a case your organisation may read to a service of the directory. Without "
                                     "consent (or another basis) covering the recipient, it waits (AWAITING_CONSENT) "
                                     "and goes live when consent is recorded.")
    async def refer_case(self, info: Info[Context, None], input: ReferCaseInput) -> Referral:
        request = _validated(commands.ReferCase, "input", **strawberry.asdict(input))
        try:
            data = await info.context.ask("svc.referral.refer", request.model_dump(mode="json"))
        except GraphQLError as exc:  # the service names its request's fields: here they are the input's
            if exc.extensions and exc.extensions.get("field"):
                exc.extensions["field"] = f"input.{exc.extensions['field']}"
            raise
        return Referral.from_record(replies.ReferralView.model_validate(data))

    @strawberry.mutation(description="Revoke a referral your organisation made: the recipient's access ends.")
    async def revoke_referral(self, info: Info[Context, None], id: strawberry.ID) -> Referral:
        data = await info.context.ask("svc.referral.revoke", {"referral_id": _id(id)})
        return Referral.from_record(replies.ReferralView.model_validate(data))

    @strawberry.mutation(description="Create or update one of your organisation's directory services "
                                     "(directory:write; the platform steward, with directory:manage, any).")
    async def save_directory_service(self, info: Info[Context, None], input: DirectoryServiceInput) -> DirectoryService:
        fields = strawberry.asdict(input)
        owner = fields["organization_id"] or info.context.principal.org_id
        await _known_organisations(info.context, [owner], "input.organizationId")
        record = await info.context.registry.organisation(owner)
        assert record is not None
        # The directory shows the organisation as the registry names it, not as a client spells it.
        request = _validated(commands.SaveDirectoryService, "input", **fields, organization_name=record.name,
                             organization_type=record.type)
        data = await info.context.ask("svc.referral.directory_save", request.model_dump(mode="json"))
        return DirectoryService.from_record(replies.DirectoryServiceView.model_validate(data))

    @strawberry.mutation(description="Report a service's capacity (directory:write): available places, and the "
                                     "maximum; send the version you read.")
    async def update_service_capacity(self, info: Info[Context, None], service_id: strawberry.ID, version: int,
                                      available: int, maximum: int | None = None) -> DirectoryService:
        request = _validated(commands.SetServiceCapacity, "", service_id=_id(service_id, "serviceId"),
                             version=version, available=available, maximum=maximum)
        data = await info.context.ask("svc.referral.directory_set_capacity", request.model_dump(mode="json"))
        return DirectoryService.from_record(replies.DirectoryServiceView.model_validate(data))

    @strawberry.mutation(description="Approve a sensitive-category service (child protection, counter-trafficking, "
                                     "GBV, health) as of the version you reviewed, so routing and referrals may use "
                                     "it (the platform steward, directory:manage).")
    async def approve_directory_service(self, info: Info[Context, None], id: strawberry.ID,
                                        version: int) -> DirectoryService:
        request = _validated(commands.ApproveDirectoryService, "", id=_id(id), version=version)
        data = await info.context.ask("svc.referral.directory_approve", request.model_dump(mode="json"))
        return DirectoryService.from_record(replies.DirectoryServiceView.model_validate(data))

    @strawberry.mutation(description="Assign an unmet need to a directory service (the case's organisation or the "
                                     "coordinating body). Live if the case's sharing covers the recipient (or a "
                                     "child's vital interest), else it waits for consent.")
    async def assign_need(self, info: Info[Context, None], id: strawberry.ID, service_id: strawberry.ID) -> Referral:
        data = await info.context.ask("svc.referral.assign",
                                      {"referral_id": _id(id), "service_id": _id(service_id, "serviceId")})
        return Referral.from_record(replies.ReferralView.model_validate(data))

    @strawberry.mutation(description="Send a pending, rejected or escalated referral on to the next eligible provider "
                                     "(the referring organisation or the coordinating body); answers with the new "
                                     "referral, UNASSIGNED when no provider is left.")
    async def reroute_referral(self, info: Info[Context, None], id: strawberry.ID,
                               reason: str | None = None) -> Referral:
        request = _validated(commands.RerouteReferral, "", referral_id=_id(id), reason=reason)
        data = await info.context.ask("svc.referral.reroute", request.model_dump())
        return Referral.from_record(replies.ReferralView.model_validate(data))

    @strawberry.mutation(description="Hand a case's follow-up to another organisation (its current manager, or the "
                                     "platform steward with followup:manage). The person's consent, or another "
                                     "recorded legal basis, must cover that organisation for FOLLOW_UP; it may then "
                                     "read the case, and the previous manager keeps only what another basis allows.")
    async def assign_case_management(self, info: Info[Context, None], case_id: strawberry.ID,
                                     organization_id: strawberry.ID,
                                     reason: AssignmentReason) -> FollowupCase:
        org_id = _id(organization_id, "organizationId")
        await _known_organisations(info.context, [org_id], "organizationId")
        record = await info.context.registry.organisation(org_id)
        assert record is not None
        # The organisation's type as the registry knows it, so consent given to a type of organisation counts.
        request = _validated(commands.AssignCaseManagement, "", case_id=_id(case_id, "caseId"),
                             organization_id=org_id, organization_type=record.type, reason=reason)
        data = await info.context.ask("svc.followup.assign", request.model_dump(mode="json"))
        return FollowupCase.from_record(replies.FollowupCaseView.model_validate(data))

    @strawberry.mutation(description="Save a case's whole reintegration plan (the managing organisation), as of the "
                                     "version you read. Retrying with the same idempotencyKey never saves twice.")
    async def save_plan(self, info: Info[Context, None], case_id: strawberry.ID, version: int,
                        goals: list[PlanGoalInput], idempotency_key: str) -> FollowupCase:
        request = _validated(commands.SavePlan, "", case_id=_id(case_id, "caseId"), version=version,
                             goals=[strawberry.asdict(g) for g in goals], idempotency_key=idempotency_key)
        data = await info.context.ask("svc.followup.save_plan", request.model_dump(mode="json"), cost=SAVE_PLAN_COST)
        return FollowupCase.from_record(replies.FollowupCaseView.model_validate(data))

    @strawberry.mutation(description="Move one action of a case's plan to another state (the managing organisation), "
                                     "as of the version you read.")
    async def update_plan_action(self, info: Info[Context, None], case_id: strawberry.ID, action_id: strawberry.ID,
                                 version: int, status: PlanActionStatus) -> FollowupCase:
        request = _validated(commands.UpdatePlanAction, "", case_id=_id(case_id, "caseId"),
                             action_id=_id(action_id, "actionId"), version=version, status=status)
        data = await info.context.ask("svc.followup.update_action", request.model_dump(mode="json"))
        return FollowupCase.from_record(replies.FollowupCaseView.model_validate(data))

    @strawberry.mutation(description="Close a case's follow-up with its reason (the managing organisation); its open "
                                     "plan actions are cancelled.")
    async def close_case(self, info: Info[Context, None], case_id: strawberry.ID, reason: ClosureReason,
                         version: int) -> FollowupCase:
        request = _validated(commands.CloseCase, "", case_id=_id(case_id, "caseId"), reason=reason, version=version)
        data = await info.context.ask("svc.followup.close", request.model_dump(mode="json"))
        return FollowupCase.from_record(replies.FollowupCaseView.model_validate(data))

    @strawberry.mutation(description="Re-open a closed follow-up, with its reason (the managing organisation).")
    async def reopen_case(self, info: Info[Context, None], case_id: strawberry.ID, reason: ReopenReason,
                          version: int) -> FollowupCase:
        request = _validated(commands.ReopenCase, "", case_id=_id(case_id, "caseId"), reason=reason, version=version)
        data = await info.context.ask("svc.followup.reopen", request.model_dump(mode="json"))
        return FollowupCase.from_record(replies.FollowupCaseView.model_validate(data))

    @strawberry.mutation(description="Record a survey (the Reintegration Sustainability Survey) for a case whose "
                                     "follow-up your organisation manages. The answers are checked against that "
                                     "instrument version: every problem is named (extensions.problems, by indicator) "
                                     "and nothing is stored. Retrying with the same idempotencyKey never records "
                                     "twice.")
    async def record_survey(self, info: Info[Context, None], case_id: strawberry.ID, input: SurveyInput,
                            idempotency_key: str) -> Survey:
        fields = strawberry.asdict(input)
        request = _validated(commands.RecordSurvey, "input", case_id=_id(case_id, "caseId"),
                             idempotency_key=idempotency_key, **fields)
        try:
            data = await info.context.ask("svc.followup.record_survey", request.model_dump(mode="json"))
        except GraphQLError as exc:  # the service names the command's fields: here they are the input's
            _under_input(exc, {"case_id": "caseId", "idempotency_key": "idempotencyKey"})
            raise
        return Survey.from_record(replies.SurveyView.model_validate(data))

    @strawberry.mutation(description="Log a follow-up contact with the person (the managing organisation). Retrying "
                                     "with the same idempotencyKey never logs twice.")
    async def log_contact(self, info: Info[Context, None], case_id: strawberry.ID, input: ContactInput,
                          idempotency_key: str) -> FollowupCase:
        request = _validated(commands.LogContact, "", case_id=_id(case_id, "caseId"), input=strawberry.asdict(input),
                             idempotency_key=idempotency_key)
        data = await info.context.ask("svc.followup.log_contact", request.model_dump(mode="json"))
        return FollowupCase.from_record(replies.FollowupCaseView.model_validate(data))

    @strawberry.mutation(description="Link two cases as family (your organisation may read both and owns one): "
                                     "relation is what caseId's person is to linkedCaseId's. Linking again the same "
                                     "way changes nothing. A child travelling with a parent or guardian cannot be "
                                     "flagged unaccompanied or separated.")
    async def link_cases(self, info: Info[Context, None], case_id: strawberry.ID, linked_case_id: strawberry.ID,
                         relation: Relation, travelling_together: bool) -> Case:
        request = _validated(commands.LinkCases, "", case_id=_id(case_id, "caseId"),
                             linked_case_id=_id(linked_case_id, "linkedCaseId"), relation=relation,
                             travelling_together=travelling_together)
        data = await info.context.ask("svc.intake.link_cases", request.model_dump(mode="json"))
        return Case.from_record(replies.CaseView.model_validate(data))

    @strawberry.mutation(description="Remove the family link between two cases (same access as linkCases); no link: "
                                     "nothing changes.")
    async def unlink_cases(self, info: Info[Context, None], case_id: strawberry.ID,
                           linked_case_id: strawberry.ID) -> Case:
        request = {"case_id": _id(case_id, "caseId"), "linked_case_id": _id(linked_case_id, "linkedCaseId")}
        data = await info.context.ask("svc.intake.unlink_cases", request)
        return Case.from_record(replies.CaseView.model_validate(data))

    @strawberry.mutation(description="Mark one of your organisation's notifications as read.")
    async def mark_notification_read(self, info: Info[Context, None], id: strawberry.ID) -> Notification:
        data = await info.context.ask("svc.notifications.mark_read", {"notification_id": _id(id)})
        return Notification.from_record(replies.NotificationView.model_validate(data))

    @strawberry.mutation(description="Merge a case into another of the same person (never automatic): your "
                                     "organisation owns the merged case and may read the survivor, or the platform "
                                     "steward (identity:reconcile). Nothing is deleted: the merged id answers the "
                                     "survivor (redirectedFrom), and undoMerge restores both.")
    async def merge_cases(self, info: Info[Context, None], survivor_id: strawberry.ID, merged_id: strawberry.ID,
                          reason: str) -> CaseMerge:
        request = _validated(commands.MergeCases, "", survivor_case_id=_id(survivor_id, "survivorId"),
                             merged_case_id=_id(merged_id, "mergedId"), reason=reason)
        data = await info.context.ask("svc.intake.merge_cases", request.model_dump(mode="json"))
        return CaseMerge.from_record(replies.CaseMergeView.model_validate(data))

    @strawberry.mutation(description="Undo a merge: both cases stand on their own again (whoever could merge them).")
    async def undo_merge(self, info: Info[Context, None], merge_id: strawberry.ID) -> CaseMerge:
        data = await info.context.ask("svc.intake.undo_merge", {"merge_id": _id(merge_id, "mergeId")})
        return CaseMerge.from_record(replies.CaseMergeView.model_validate(data))

    @strawberry.mutation(description="Platform steward (identity:reconcile): mark a possible duplicate DISMISSED "
                                     "(two people) or RESOLVED (one; merged or the owners told).")
    async def decide_possible_duplicate(self, info: Info[Context, None], id: strawberry.ID,
                                        status: PossibleDuplicateStatus) -> PossibleDuplicate:
        request = _validated(commands.DecidePossibleDuplicate, "", id=_id(id), status=status)
        data = await info.context.ask("svc.intake.decide_possible_duplicate", request.model_dump(mode="json"))
        return PossibleDuplicate.from_record(replies.PossibleDuplicateView.model_validate(data))

    # Reception of groups (issue 10): the types and the calls to intake are in gateway/reception.py.
    @strawberry.mutation(description="Create an expected-arrival group (a charter flight or a convoy) for your "
                                     "organisation. Retrying with the same idempotencyKey never creates two.")
    async def create_arrival_group(self, info: Info[Context, None], input: ArrivalGroupInput,
                                   idempotency_key: str) -> reception.ArrivalGroup:
        record = await reception.create_group(info.context, strawberry.asdict(input), idempotency_key)
        return reception.ArrivalGroup.from_record(record)

    @strawberry.mutation(description="Upload a group's passenger list (a GraphQL multipart request; CSV in UTF-8 with "
                                     "',' or ';', or XLSX, first sheet; see docs/manifests.md). Valid rows are kept "
                                     "and every problem is named by row, column and reason. A mapping given is saved "
                                     "for the sender and used again when the sender's next file comes without one. "
                                     "The same file again changes nothing.")
    async def upload_manifest(self, info: Info[Context, None], group_id: strawberry.ID, sender: str, file: Upload,
                              mapping: list[ColumnMappingInput] | None = None) -> reception.ManifestResult:
        return await reception.upload_file(info.context, _id(group_id, "groupId"), sender, file, mapping)

    @strawberry.mutation(description="Check one person of a group in (expectedPersonId), or someone not on the list "
                                     "(without it): registers their case exactly as registerArrival does, with the "
                                     "manifest row and the group as defaults. Retrying with the same idempotencyKey "
                                     "never registers twice; the same person under another key is a CONFLICT.")
    async def check_in(self, info: Info[Context, None], group_id: strawberry.ID, input: CheckInInput,
                       idempotency_key: str, expected_person_id: strawberry.ID | None = None
                       ) -> reception.CheckInResult:
        person = _id(expected_person_id, "expectedPersonId") if expected_person_id else None
        return await reception.check_in(info.context, _id(group_id, "groupId"), strawberry.asdict(input),
                                        idempotency_key, person, reception.candidates_asked(info.selected_fields))

    @strawberry.mutation(description="Close a group: whoever was not checked in becomes NO_SHOW (and stays listed).")
    async def close_arrival_group(self, info: Info[Context, None], id: strawberry.ID) -> reception.ArrivalGroup:
        return await reception.close_group(info.context, _id(id))

    @strawberry.mutation(description="Correct a case your organisation owns (identity, screening) as of the version "
                                     "you read: only the fields given change, checked as registerArrival checks them. "
                                     "A stale version is a CONFLICT (extensions: currentVersion, changedFields) and "
                                     "nothing is written. Retrying with the same idempotencyKey never applies twice.")
    async def update_case(self, info: Info[Context, None], case_id: strawberry.ID, version: int,
                          input: CaseChangesInput, idempotency_key: str | None = None) -> Case:
        request = _validated(commands.UpdateCase, "", case_id=_id(case_id, "caseId"), version=version,
                             changes=_validated(commands.CaseChanges, "input", **_given(input)),
                             idempotency_key=idempotency_key)
        try:
            data = await info.context.ask("svc.intake.update_case", request.model_dump(
                mode="json", exclude_unset=True))
        except GraphQLError as exc:
            _under_input(exc, {"case_id": "caseId", "version": "version", "idempotency_key": "idempotencyKey"})
            raise
        return Case.from_record(replies.CaseView.model_validate(data))

    @strawberry.mutation(description="Apply commands captured offline (at most 100), in order, each on its own: "
                                     "REGISTER_ARRIVAL (clientId is its idempotency key) and UPDATE_CASE (caseId, "
                                     "baseVersion, changes). One result per item: APPLIED, ALREADY_APPLIED (a "
                                     "replay), CONFLICT (the case changed since baseVersion: nothing written) or "
                                     "REJECTED (with the errors); a bad item never stops the others.")
    async def sync_offline(self, info: Info[Context, None], items: list[SyncItemInput]) -> SyncResult:
        return SyncResult(results=await _sync(info.context, items))


# --- offline capture ------------------------------------------------------------------------------

@strawberry.input(description="Corrections to a case: only the fields given change; null clears an optional one "
                               "(dateOfBirth, estimatedAge, placeOfOrigin). vulnerabilities replaces the flags of "
                               "the categories you may see (the others are kept).")
class CaseChangesInput:
    given_name: str | None = strawberry.UNSET
    family_name: str | None = strawberry.UNSET
    sex: Sex | None = strawberry.UNSET
    date_of_birth: dt.date | None = strawberry.UNSET
    estimated_age: int | None = strawberry.UNSET
    phone_numbers: list[str] | None = strawberry.UNSET
    place_of_origin: str | None = strawberry.UNSET
    destination_region: str | None = strawberry.UNSET
    vulnerabilities: list[Vulnerability] | None = strawberry.UNSET


@strawberry.input(description="One command captured offline. clientId: a UUID the client made for it (its "
                               "idempotency key). REGISTER_ARRIVAL takes arrival; UPDATE_CASE caseId, baseVersion "
                               "(the case's version the edit started from) and changes.")
class SyncItemInput:
    client_id: str
    command: SyncCommand
    arrival: ArrivalInput | None = None
    case_id: strawberry.ID | None = None
    base_version: int | None = None
    changes: CaseChangesInput | None = None


def _given(changes: CaseChangesInput) -> dict[str, Any]:
    """The fields a client sent (UNSET left out, null kept: it clears)."""
    return {k: v for k, v in vars(changes).items() if v is not strawberry.UNSET}


def _sync_payload(item: SyncItemInput) -> dict[str, Any]:
    return {"client_id": item.client_id, "command": item.command.value,
            "arrival": strawberry.asdict(item.arrival) if item.arrival else None,
            "case_id": str(item.case_id) if item.case_id is not None else None, "base_version": item.base_version,
            "changes": _given(item.changes) if item.changes else None}


async def _sync(ctx: Context, items: list[SyncItemInput]) -> list[SyncItemResult]:
    """Items naming an unknown recipient organisation are REJECTED here (the registry is the gateway's);
    the others go to intake in one request, and the results come back in the order sent."""
    if len(items) > commands.SYNC_MAX_ITEMS:
        raise GraphQLError(f"items: at most {commands.SYNC_MAX_ITEMS} commands in a batch",
                           extensions={"code": "BAD_USER_INPUT", "field": "items"})
    local: dict[int, SyncItemResult] = {}
    sent: list[tuple[int, dict[str, Any]]] = []
    for index, item in enumerate(items):
        named = item.arrival.consent.recipient_org_ids if item.arrival else []
        if [o for o in named if await ctx.registry.organisation(o) is None]:
            local[index] = SyncItemResult.from_record(replies.SyncItemResult(
                client_id=item.client_id, status=reference.SyncStatus.REJECTED, errors=[replies.ItemError(
                    code="BAD_USER_INPUT", message="unknown organisation", field="arrival.consent.recipient_org_ids")]))
        else:
            sent.append((index, _sync_payload(item)))
    if sent:
        data = await ctx.ask("svc.intake.sync", {"items": [p for _, p in sent]}, cost=SYNC_COST)
        for (index, _), result in zip(sent, replies.SyncResult.model_validate(data).results, strict=True):
            local[index] = SyncItemResult.from_record(result)
    return [local[i] for i in range(len(items))]


def _mask(error: GraphQLError) -> bool:
    """Hide unexpected exceptions (stack details) from clients; keep our deliberate errors."""
    original = error.original_error
    return original is not None and not isinstance(original, GraphQLError)


LIMITS = GraphQLLimits.from_env()
DOCUMENTS = Documents(LIMITS.document_cache)  # parsed and validated once per process (gateway/documents.py)
schema = SeginSchema(query=Query, mutation=Mutation,
                     extensions=[lambda: DocumentCache(DOCUMENTS), lambda: RequestGuard(LIMITS),
                                 lambda: MaskErrors(should_mask_error=_mask)])
