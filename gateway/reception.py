"""GraphQL for reception of groups (issue 10): arrival groups, manifest uploads, check-in.

The types build themselves from intake's replies (``contracts.replies``); the resolvers are thin as in
``schema.py``: validate, ask intake, shape the answer. ``schema.py`` mounts them on Query and Mutation.
A manifest travels to intake whole, base64-encoded, within NATS's payload limit (docs/decisions/0021).
"""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

import strawberry
from graphql import GraphQLError
from pydantic import ValidationError
from strawberry.file_uploads import Upload
from strawberry.types.nodes import SelectedField

from contracts import commands, reference, replies
from gateway.graphql_context import Context, input_error
from gateway.types import ArrivalPoint, Case, PageInfo, Sex

ArrivalGroupKind = strawberry.enum(reference.ArrivalGroupKind, description="A charter flight or a convoy.")
ArrivalGroupStatus = strawberry.enum(reference.ArrivalGroupStatus)
ExpectedStatus = strawberry.enum(reference.ExpectedStatus, description="Where one person of an arrival group "
                                                                       "stands.")
ManifestField = strawberry.enum(reference.ManifestField, description="What a manifest column holds.")

TOO_LARGE = (f"The manifest is larger than {commands.MAX_MANIFEST_BYTES} bytes; split it "
             f"(at most {commands.MAX_MANIFEST_ROWS} rows per file).")


def validated(model: type[commands.Strict], prefix: str, **data: Any) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise input_error(exc, prefix) from None


def encoded(content: bytes) -> str:
    """The file as intake receives it; refused here when over the bound, before any service is asked."""
    if len(content) > commands.MAX_MANIFEST_BYTES:
        raise GraphQLError(TOO_LARGE, extensions={"code": "BAD_USER_INPUT", "field": "file"})
    if not content:
        raise GraphQLError("The file is empty.", extensions={"code": "BAD_USER_INPUT", "field": "file"})
    return base64.b64encode(content).decode()


# --- types -----------------------------------------------------------------------------------------

@strawberry.type(description="One problem in a manifest: the row as the spreadsheet numbers it (the header is "
                             "row 1; null for the whole file), the column as you named it, the field, and why.")
class ManifestProblem:
    row: int | None
    column: str | None
    field: str | None
    reason: str


@strawberry.type(description="A column of your file and the field it filled.")
class ColumnMapping:
    column: str
    field: ManifestField


@strawberry.type(description="What an upload did. The same file again answers the same and adds nothing; a "
                             "corrected file adds only the rows not already in the group.")
class ManifestResult:
    group_id: strawberry.ID
    sender: str
    file_sha256: str
    rows_read: int
    added: int
    added_rows: list[int]
    already_present_rows: list[int] = strawberry.field(description="Rows already in the group (a re-upload)")
    rejected_rows: list[int]
    problems: list[ManifestProblem]
    warnings: list[ManifestProblem] = strawberry.field(description="Columns not read, and why")
    mapping: list[ColumnMapping]

    @classmethod
    def from_record(cls, rec: replies.ManifestResult) -> "ManifestResult":
        def problem(p: replies.ManifestProblem) -> ManifestProblem:
            return ManifestProblem(row=p.row, column=p.column, field=p.field, reason=p.reason)

        return cls(group_id=strawberry.ID(rec.group_id), sender=rec.sender, file_sha256=rec.file_sha256,
                   rows_read=rec.rows_read, added=rec.added, added_rows=rec.added_rows,
                   already_present_rows=rec.already_present_rows, rejected_rows=rec.rejected_rows,
                   problems=[problem(p) for p in rec.problems], warnings=[problem(p) for p in rec.warnings],
                   mapping=[ColumnMapping(column=c.column, field=c.field) for c in rec.mapping])


@strawberry.type(description="One person of an arrival group, as the manifest (or the check-in) gave them.")
class ExpectedPerson:
    id: strawberry.ID
    group_id: strawberry.ID
    source_row: int | None = strawberry.field(description="The manifest row (null: added on arrival)")
    given_name: str | None = strawberry.field(description="Null once erased: never checked in, past the "
                                                            "manifest's retention (SEGIN_MANIFEST_RETENTION_DAYS)")
    family_name: str | None
    sex: Sex | None
    date_of_birth: dt.date | None
    estimated_age: int | None
    phone_numbers: list[str]
    document_number: str | None
    place_of_origin: str | None
    household_ref: str | None = strawberry.field(description="The manifest's household: one family travelling "
                                                             "together shares it")
    relationship: str | None = strawberry.field(description="As the manifest words it (Mère, Fils…)")
    destination_region: str | None
    status: ExpectedStatus
    added_on_arrival: bool
    case_id: strawberry.ID | None
    checked_in_at: dt.datetime | None
    erased_at: dt.datetime | None = strawberry.field(description="When the identity of someone never checked in "
                                                                 "was erased (the row and the totals stay)")

    @classmethod
    def from_record(cls, rec: replies.ExpectedPersonView) -> "ExpectedPerson":
        return cls(id=strawberry.ID(rec.id), group_id=strawberry.ID(rec.group_id), source_row=rec.source_row,
                   given_name=rec.given_name, family_name=rec.family_name, sex=rec.sex, date_of_birth=rec.date_of_birth,
                   estimated_age=rec.estimated_age, phone_numbers=rec.phone_numbers,
                   document_number=rec.document_number, place_of_origin=rec.place_of_origin,
                   household_ref=rec.household_ref, relationship=rec.relationship,
                   destination_region=rec.destination_region, status=rec.status, added_on_arrival=rec.added_on_arrival,
                   case_id=strawberry.ID(rec.case_id) if rec.case_id else None, checked_in_at=rec.checked_in_at,
                   erased_at=rec.erased_at)


@strawberry.type
class ExpectedPersonConnection:
    nodes: list[ExpectedPerson]
    page_info: PageInfo


@strawberry.type(description="A group's counts.")
class ArrivalGroupTotals:
    expected: int = strawberry.field(description="People on the manifest(s)")
    checked_in: int
    no_show: int
    added_on_arrival: int = strawberry.field(description="Checked in without being on the manifest")
    children: int = strawberry.field(description="Under 18 at the group's arrival, or flagged as a child")
    vulnerable: int = strawberry.field(description="Checked-in cases with at least one vulnerability flag")


@strawberry.type(description="People expected together: a charter flight or a convoy, and its manifest.")
class ArrivalGroup:
    id: strawberry.ID
    kind: ArrivalGroupKind
    reference: str
    arrival_date: dt.date
    arrival_point: ArrivalPoint
    country_returned_from: str
    status: ArrivalGroupStatus
    closed_at: dt.datetime | None
    created_at: dt.datetime
    totals: ArrivalGroupTotals
    people: ExpectedPersonConnection | None = strawberry.field(
        description="A page of its people in manifest order (arrivalGroup only; null in arrivalGroups)")

    @classmethod
    def from_record(cls, rec: replies.ArrivalGroupView) -> "ArrivalGroup":
        people = None
        if rec.people is not None:
            people = ExpectedPersonConnection(nodes=[ExpectedPerson.from_record(p) for p in rec.people.nodes],
                                              page_info=PageInfo.from_record(rec.people.page_info))
        return cls(id=strawberry.ID(rec.id), kind=rec.kind, reference=rec.reference, arrival_date=rec.arrival_date,
                   arrival_point=rec.arrival_point, country_returned_from=rec.country_returned_from, status=rec.status,
                   closed_at=rec.closed_at, created_at=rec.created_at,
                   totals=ArrivalGroupTotals(**rec.totals.model_dump()), people=people)


@strawberry.type
class ArrivalGroupConnection:
    nodes: list[ArrivalGroup]
    page_info: PageInfo


@strawberry.type(description="A check-in: the person's place in the group, and the case registered for them.")
class CheckInResult:
    expected_person: ExpectedPerson
    case: Case


# --- what the resolvers in schema.py call ----------------------------------------------------------

async def create_group(ctx: Context, fields: dict[str, Any], idempotency_key: str) -> replies.ArrivalGroupView:
    request = validated(commands.CreateArrivalGroup, "input", **fields, idempotency_key=idempotency_key)
    return replies.ArrivalGroupView.model_validate(
        await ctx.ask("svc.intake.create_arrival_group", request.model_dump(mode="json")))


async def upload(ctx: Context, group_id: str, sender: str, content: bytes, filename: str | None,
                 mapping: list[dict[str, Any]] | None) -> replies.ManifestResult:
    request = validated(commands.UploadManifest, "", group_id=group_id, sender=sender, content_base64=encoded(content),
                        filename=filename, mapping=mapping)
    return replies.ManifestResult.model_validate(
        await ctx.ask("svc.intake.upload_manifest", request.model_dump(mode="json")))


async def upload_file(ctx: Context, group_id: str, sender: str, file: Upload,
                      mapping: list[Any] | None) -> ManifestResult:
    """A GraphQL multipart upload. The router accepts multipart requests (multipart_uploads_enabled) although
    they are "simple" requests a browser may send cross-site: every call is authenticated by a bearer token in
    the Authorization header, which no cross-site form can add, and no cookie authenticates /graphql, so
    cross-site request forgery does not apply."""
    content = await file.read(commands.MAX_MANIFEST_BYTES + 1)  # type: ignore[attr-defined]
    filename = getattr(file, "filename", None) or None
    pairs = [{"column": m.column, "field": m.field} for m in mapping] if mapping is not None else None
    return ManifestResult.from_record(await upload(ctx, group_id, sender, content,
                                                   filename[:100] if filename else None, pairs))


def candidates_asked(selection: list[Any]) -> int | None:
    """The largest ``first`` of the ``case { matchCandidates }`` a check-in's selection asks for (fragments
    included), or None: intake then answers them from the check-in's own lookup, not a second request."""
    asked: list[int] = []

    def walk(selections: list[Any], parent: str) -> None:
        for node in selections:
            if not isinstance(node, SelectedField):  # a fragment: its fields are the parent's
                walk(node.selections, parent)
            elif parent == "case" and node.name == "matchCandidates":
                first = node.arguments.get("first", 10)  # a literal comes as its text
                if str(first).isdigit() and 1 <= int(first) <= commands.MAX_CANDIDATES:
                    asked.append(int(first))
            else:
                walk(node.selections, node.name)

    walk(selection, "")
    return max(asked) if asked else None


async def check_in(ctx: Context, group_id: str, given: dict[str, Any], idempotency_key: str,
                   expected_person_id: str | None, match_first: int | None) -> CheckInResult:
    """``given``: the check-in input's fields (those left out take the manifest's and the group's values);
    ``match_first``: the candidates the answer's case shows (``candidates_asked``); intake answers them only
    to a token that may read them, and otherwise the case's own ``matchCandidates`` call refuses."""
    fields = {k: v for k, v in given.items() if v is not None}
    request = validated(commands.CheckIn, "", group_id=group_id, idempotency_key=idempotency_key,
                        expected_person_id=expected_person_id, input=fields, match_first=match_first)
    data = await ctx.ask("svc.intake.check_in", request.model_dump(mode="json", exclude_unset=True))
    result = replies.CheckInResult.model_validate(data)
    given_candidates = None
    if match_first is not None and result.match_candidates is not None:
        given_candidates = (match_first, result.match_candidates.candidates)
    case = Case.from_record(result.case)
    case.candidates_given = given_candidates
    return CheckInResult(expected_person=ExpectedPerson.from_record(result.expected_person), case=case)


async def close_group(ctx: Context, group_id: str) -> ArrivalGroup:
    request = validated(commands.ArrivalGroupRef, "", group_id=group_id)
    data = await ctx.ask("svc.intake.close_arrival_group", request.model_dump(mode="json"))
    return ArrivalGroup.from_record(replies.ArrivalGroupView.model_validate(data))


async def group(ctx: Context, group_id: str, first: int, after: str | None, status: Any) -> ArrivalGroup:
    request = validated(commands.ArrivalGroupQuery, "", group_id=group_id, first=first, after=after, status=status)
    data = await ctx.ask("svc.intake.arrival_group", request.model_dump(mode="json"))
    return ArrivalGroup.from_record(replies.ArrivalGroupView.model_validate(data))


async def groups(ctx: Context, first: int, after: str | None) -> ArrivalGroupConnection:
    request = validated(commands.PageRequest, "", first=first, after=after)
    data = await ctx.ask("svc.intake.arrival_groups", request.model_dump(mode="json"))
    page = replies.Page[replies.ArrivalGroupView].model_validate(data)
    return ArrivalGroupConnection(nodes=[ArrivalGroup.from_record(g) for g in page.nodes],
                                  page_info=PageInfo.from_record(page.page_info))
