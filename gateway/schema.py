"""The public GraphQL schema. Resolvers are thin: validate, ask a service over NATS, shape the answer."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import strawberry
from graphql import GraphQLError
from nats.aio.client import Client as Nats
from pydantic import ValidationError
from strawberry.extensions import MaskErrors
from strawberry.fastapi import BaseContext
from strawberry.types import Info

from contracts import commands, reference
from gateway.registry import Registry
from kernel import rpc
from kernel.errors import SeginError, field_problems
from kernel.tokens import Principal

Vulnerability = strawberry.enum(reference.Vulnerability, description="IOM DoMV vulnerability category")
Sex = strawberry.enum(reference.Sex)
ArrivalPoint = strawberry.enum(reference.ArrivalPoint)
ServiceCategory = strawberry.enum(reference.ServiceCategory)
Priority = strawberry.enum(reference.Priority)
LegalBasis = strawberry.enum(reference.LegalBasis)
OrganisationType = strawberry.enum(reference.OrganisationType)


@dataclass
class Context(BaseContext):
    principal: Principal
    nats: Nats
    registry: Registry
    timeout: float

    async def ask(self, subject: str, payload: dict[str, Any]) -> Any:
        try:
            return await rpc.call(self.nats, subject, payload, self.principal.token, timeout=self.timeout)
        except SeginError as exc:
            raise as_graphql_error(exc) from None


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def as_graphql_error(exc: SeginError, prefix: str = "") -> GraphQLError:
    field = exc.field and ".".join([p for p in [prefix, *map(_camel, exc.field.split("."))] if p])
    return GraphQLError(exc.message, extensions={"code": exc.code, "field": field})


def input_error(error: ValidationError, prefix: str) -> GraphQLError:
    """One error naming the first bad field, with every problem listed in ``extensions.problems``."""
    problems = [
        {"field": ".".join(filter(None, [prefix, *map(_camel, p.field.split("."))])) if p.field != "input"
         else prefix,
         "message": p.message}
        for p in field_problems(error)
    ]
    first = problems[0]
    return GraphQLError(f"{first['field']}: {first['message']}",
                        extensions={"code": "BAD_USER_INPUT", "field": first["field"], "problems": problems})


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


@strawberry.type
class Consent:
    given: bool
    recipient_org_ids: list[str]
    language: str | None


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class Referral:
    id: strawberry.ID
    case_id: strawberry.ID
    service_category: ServiceCategory
    priority: Priority
    status: str
    legal_basis: LegalBasis | None
    reason_code: str
    due_at: dt.datetime
    created_at: dt.datetime
    from_org_id: strawberry.Private[str]
    to_org_id: strawberry.Private[str]

    @strawberry.field
    async def from_organisation(self, info: Info[Context, None]) -> Organisation | None:
        return await info.context.registry.organisation(self.from_org_id)

    @strawberry.field
    async def to_organisation(self, info: Info[Context, None]) -> Organisation | None:
        return await info.context.registry.organisation(self.to_org_id)

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> "Referral":
        return cls(
            id=data["id"], case_id=data["case_id"], service_category=reference.ServiceCategory(data["service_category"]),
            priority=reference.Priority(data["priority"]), status=data["status"],
            legal_basis=reference.LegalBasis(data["legal_basis"]) if data["legal_basis"] else None,
            reason_code=data["reason_code"], due_at=dt.datetime.fromisoformat(data["due_at"]),
            created_at=dt.datetime.fromisoformat(data["created_at"]), from_org_id=data["from_org_id"],
            to_org_id=data["to_org_id"],
        )


@strawberry.type
class ReferralConnection:
    nodes: list[Referral]
    page_info: PageInfo


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
    vulnerabilities: list[Vulnerability]
    consent: Consent
    created_at: dt.datetime
    owner_org_id: strawberry.Private[str]

    @strawberry.field
    async def owner_organisation(self, info: Info[Context, None]) -> Organisation | None:
        return await info.context.registry.organisation(self.owner_org_id)

    @strawberry.field(description="Referrals of this case that your organisation may see.")
    async def referrals(self, info: Info[Context, None]) -> list[Referral]:
        rows = await info.context.ask("svc.referral.case_referrals", {"case_id": str(self.id)})
        return [Referral.from_data(r) for r in rows]

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> "Case":
        dob = data.get("date_of_birth")
        return cls(
            id=data["id"], given_name=data["given_name"], family_name=data["family_name"],
            sex=reference.Sex(data["sex"]), date_of_birth=dt.date.fromisoformat(dob) if dob else None,
            estimated_age=data.get("estimated_age"), country_returned_from=data["country_returned_from"],
            arrival_point=reference.ArrivalPoint(data["arrival_point"]),
            arrival_date=dt.date.fromisoformat(data["arrival_date"]), destination_region=region(data["destination_region"]),
            vulnerabilities=[reference.Vulnerability(v) for v in data["vulnerabilities"]],
            consent=Consent(given=data["consent"]["given"], recipient_org_ids=data["consent"]["recipient_org_ids"],
                            language=data["consent"]["language"]),
            created_at=dt.datetime.fromisoformat(data["created_at"]), owner_org_id=data["owner_org_id"],
        )


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
    def from_data(cls, data: dict[str, Any]) -> "Notification":
        read_at = data.get("read_at")
        return cls(
            id=data["id"], kind=data["kind"], priority=reference.Priority(data["priority"]),
            title_fr=data["title_fr"], title_en=data["title_en"], referral_id=data["referral_id"],
            case_id=data["case_id"], created_at=dt.datetime.fromisoformat(data["created_at"]),
            read_at=dt.datetime.fromisoformat(read_at) if read_at else None,
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


@strawberry.input
class ConsentInput:
    given: bool
    recipient_org_ids: list[str] = strawberry.field(default_factory=list,
                                                    description="Organisations the person agreed to share with")
    language: str = "fr"


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


def _page_args(first: int, after: str | None) -> dict[str, Any]:
    return {"first": first, "after": after}


@strawberry.type
class Query:
    @strawberry.field(description="Who the token belongs to.")
    async def me(self, info: Info[Context, None]) -> Me:
        p = info.context.principal
        return Me(subject=p.subject, client_id=p.client_id, scopes=sorted(p.scopes),
                  organisation=await info.context.registry.organisation(p.org_id))

    @strawberry.field(description="One case, if your organisation may see it.")
    async def case(self, info: Info[Context, None], id: strawberry.ID) -> Case:
        data = await info.context.ask("svc.intake.get_case", {"case_id": str(id)})
        return Case.from_data(data)

    @strawberry.field(description="Referrals addressed to your organisation, newest first.")
    async def incoming_referrals(self, info: Info[Context, None], first: int = 20, after: str | None = None
                                 ) -> ReferralConnection:
        data = await info.context.ask("svc.referral.incoming", _page_args(first, after))
        return ReferralConnection(nodes=[Referral.from_data(r) for r in data["nodes"]],
                                  page_info=PageInfo(**data["page_info"]))

    @strawberry.field(description="Your organisation's notifications, newest first.")
    async def notifications(self, info: Info[Context, None], first: int = 20, after: str | None = None,
                            unread_only: bool = False) -> NotificationConnection:
        data = await info.context.ask("svc.notifications.list", {**_page_args(first, after), "unread_only": unread_only})
        return NotificationConnection(nodes=[Notification.from_data(n) for n in data["nodes"]],
                                      page_info=PageInfo(**data["page_info"]))

    @strawberry.field(description="Organisations taking part in Segin.")
    async def organisations(self, info: Info[Context, None]) -> list[Organisation]:
        return await info.context.registry.all()

    @strawberry.field(description="Regions of Mali (national CT codes, 2023 reform).")
    def regions(self) -> list[Region]:
        return [Region(code=c, name=n) for c, n in reference.regions().items()]


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Register one arrival. Retrying with the same idempotencyKey never registers twice.")
    async def register_arrival(self, info: Info[Context, None], input: ArrivalInput, idempotency_key: str) -> Case:
        ctx = info.context
        try:
            arrival = commands.RegisterArrival(
                given_name=input.given_name, family_name=input.family_name, sex=input.sex,
                date_of_birth=input.date_of_birth, estimated_age=input.estimated_age,
                country_returned_from=input.country_returned_from, arrival_point=input.arrival_point,
                arrival_date=input.arrival_date, destination_region=input.destination_region,
                vulnerabilities=list(input.vulnerabilities),
                consent={"given": input.consent.given, "recipient_org_ids": input.consent.recipient_org_ids,
                         "language": input.consent.language},  # a dict, so errors are located under consent
            )
        except ValidationError as exc:
            raise input_error(exc, "input") from None
        try:
            request = commands.RegisterArrivalRequest(idempotency_key=idempotency_key, arrival=arrival)
        except ValidationError as exc:
            raise input_error(exc, "") from None
        unknown = [o for o in arrival.consent.recipient_org_ids if await ctx.registry.organisation(o) is None]
        if unknown:
            raise GraphQLError("input.consent.recipientOrgIds: unknown organisation",
                               extensions={"code": "BAD_USER_INPUT", "field": "input.consent.recipientOrgIds"})
        data = await ctx.ask("svc.intake.register_arrival", request.model_dump(mode="json"))
        return Case.from_data(data)

    @strawberry.mutation(description="Mark one of your organisation's notifications as read.")
    async def mark_notification_read(self, info: Info[Context, None], id: strawberry.ID) -> Notification:
        data = await info.context.ask("svc.notifications.mark_read", {"notification_id": str(id)})
        return Notification.from_data(data)


def _mask(error: GraphQLError) -> bool:
    """Hide unexpected exceptions (stack details) from clients; keep our deliberate errors."""
    original = error.original_error
    return original is not None and not isinstance(original, GraphQLError)


schema = strawberry.Schema(query=Query, mutation=Mutation, extensions=[lambda: MaskErrors(should_mask_error=_mask)])
