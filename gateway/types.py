"""GraphQL output types, built from the services' replies."""

from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from contracts import reference
from gateway.graphql_context import Context, restricted
from gateway.store import OrganisationRecord

Vulnerability = strawberry.enum(reference.Vulnerability, description="IOM DoMV vulnerability category")
Sex = strawberry.enum(reference.Sex)
ArrivalPoint = strawberry.enum(reference.ArrivalPoint)
ServiceCategory = strawberry.enum(reference.ServiceCategory)
Priority = strawberry.enum(reference.Priority)
LegalBasis = strawberry.enum(reference.LegalBasis)
OrganisationType = strawberry.enum(reference.OrganisationType)
Purpose = strawberry.enum(reference.Purpose)
GivenBy = strawberry.enum(reference.GivenBy)
StatisticsDimension = strawberry.enum(reference.StatisticsDimension, description="What statistics can be grouped by.")


def _dt(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


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
    def from_data(cls, d: dict[str, Any]) -> "SharingBasis":
        return cls(
            id=d["id"], legal_basis=reference.LegalBasis(d["legal_basis"]), given=d["given"],
            purposes=[reference.Purpose(p) for p in d["purposes"]], recipient_org_ids=d["recipient_org_ids"],
            recipient_org_types=[reference.OrganisationType(t) for t in d["recipient_org_types"]],
            language=d["language"], given_by=reference.GivenBy(d["given_by"]) if d["given_by"] else None,
            guardian_name=d["guardian_name"], justification=d["justification"],
            recorded_at=dt.datetime.fromisoformat(d["recorded_at"]), withdrawn_at=_dt(d["withdrawn_at"]),
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
    status: str
    service_category: ServiceCategory
    reason_code: str = strawberry.field(description="The screening reason (a code).")
    legal_basis: LegalBasis | None = strawberry.field(
        description="Consent, or another basis (a child's vital interest); null while awaiting consent.")
    priority: Priority
    due_at: dt.datetime = strawberry.field(description="When the recipient should act.")
    status_reason: str | None = strawberry.field(description="Why the referral left the open states (a code).")
    created_at: dt.datetime
    updated_at: dt.datetime
    data: strawberry.Private[dict[str, Any]]

    @strawberry.field
    async def from_organisation(self, info: Info[Context, None]) -> Organisation | None:
        return await Organisation.find(info.context, self.data["from_org_id"])

    @strawberry.field
    async def to_organisation(self, info: Info[Context, None]) -> Organisation | None:
        return await Organisation.find(info.context, self.data["to_org_id"])

    @classmethod
    def from_data(cls, d: dict[str, Any]) -> "Referral":
        return cls(
            id=d["id"], case_id=d["case_id"], status=d["status"],
            service_category=reference.ServiceCategory(d["service_category"]), reason_code=d["reason_code"],
            legal_basis=reference.LegalBasis(d["legal_basis"]) if d["legal_basis"] else None,
            priority=reference.Priority(d["priority"]), due_at=dt.datetime.fromisoformat(d["due_at"]),
            status_reason=d["status_reason"], created_at=dt.datetime.fromisoformat(d["created_at"]),
            updated_at=dt.datetime.fromisoformat(d["updated_at"]), data=d,
        )


@strawberry.type
class ReferralConnection:
    nodes: list[Referral]
    page_info: PageInfo


def _category(name: str, scope: str, description: str) -> Any:
    def resolve(self: "Case") -> list[Vulnerability] | None:  # type: ignore[valid-type]
        codes = self.data["sensitive"][name]
        if codes is None:
            raise restricted(scope)
        return [reference.Vulnerability(c) for c in codes]

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
    vulnerabilities: list[Vulnerability] = strawberry.field(
        description="Every screening flag you may see: sensitive ones only with their category's scope.")
    access: CaseAccess
    created_at: dt.datetime
    data: strawberry.Private[dict[str, Any]]

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
        if self.data["sharing"] is None:
            raise restricted("ownership of the case")
        return [SharingBasis.from_data(s) for s in self.data["sharing"]]

    @strawberry.field
    async def owner_organisation(self, info: Info[Context, None]) -> Organisation | None:
        return await Organisation.find(info.context, self.data["owner_org_id"])

    @strawberry.field(description="Referrals of this case that your organisation may see (needs referrals:read).")
    async def referrals(self, info: Info[Context, None]) -> list[Referral] | None:
        rows = await info.context.ask("svc.referral.case_referrals", {"case_id": str(self.id)})
        return [Referral.from_data(r) for r in rows]

    @classmethod
    def from_data(cls, d: dict[str, Any]) -> "Case":
        dob = d.get("date_of_birth")
        access = d["access"]
        return cls(
            id=d["id"], given_name=d["given_name"], family_name=d["family_name"], sex=reference.Sex(d["sex"]),
            date_of_birth=dt.date.fromisoformat(dob) if dob else None, estimated_age=d.get("estimated_age"),
            country_returned_from=d["country_returned_from"], arrival_point=reference.ArrivalPoint(d["arrival_point"]),
            arrival_date=dt.date.fromisoformat(d["arrival_date"]), destination_region=region(d["destination_region"]),
            vulnerabilities=[reference.Vulnerability(v) for v in d["vulnerabilities"]],
            access=CaseAccess(purpose=access["purpose"],
                              legal_basis=reference.LegalBasis(access["legal_basis"]) if access["legal_basis"] else None),
            created_at=dt.datetime.fromisoformat(d["created_at"]), data=d,
        )


@strawberry.type
class SharingResult:
    case_id: strawberry.ID
    sharing: list[SharingBasis]

    @classmethod
    def from_data(cls, d: dict[str, Any]) -> "SharingResult":
        return cls(case_id=d["case_id"], sharing=[SharingBasis.from_data(s) for s in d["sharing"]])


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
    def from_data(cls, d: dict[str, Any]) -> "Notification":
        return cls(
            id=d["id"], kind=d["kind"], priority=reference.Priority(d["priority"]), title_fr=d["title_fr"],
            title_en=d["title_en"], referral_id=d["referral_id"], case_id=d["case_id"],
            created_at=dt.datetime.fromisoformat(d["created_at"]), read_at=_dt(d.get("read_at")),
        )


@strawberry.type
class NotificationConnection:
    nodes: list[Notification]
    page_info: PageInfo


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


@strawberry.enum(description="Services keeping an audit trail (one hash chain each).")
class AuditedService(Enum):
    INTAKE = "intake"
    REFERRAL = "referral"
    NOTIFICATIONS = "notifications"


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
    def from_data(cls, d: dict[str, Any]) -> "AuditEntry":
        return cls(seq=d["seq"], at=dt.datetime.fromisoformat(d["at"]), actor=d["actor"], org_id=d["org_id"],
                   client_id=d["client_id"], operation=d["operation"], case_ids=d["case_ids"],
                   field_categories=d["field_categories"], purpose=d["purpose"], legal_basis=d["legal_basis"],
                   outcome=d["outcome"], trace_id=d["trace_id"], hash=d["hash"])


@strawberry.type
class AuditConnection:
    nodes: list[AuditEntry]
    page_info: PageInfo


@strawberry.type(description="Everything recorded about one person and who accessed it (data-subject access).")
class SubjectAccessExport:
    case: JSON
    referrals: JSON
    notifications: JSON
    access_log: list[AuditEntry]
    access_log_complete: bool
