"""Families (issue 10, item 3; decision record 0023): links between cases made at registration or later,
the rule that a child travelling with a parent or guardian is neither unaccompanied nor separated, and
what a caller sees of linked cases.

Each linked case stays under its own access rules (``domain.case_access``, as ``get_case``): a caller
that may read the linked case sees who it is (``LinkedPersonView``); one that may not sees only the
link itself (relation, travelling together), the linked case's id and its owning organisation, the
organisation to ask when tracing a separated child's family. Never its name, age, flags or sharing.
"""

from __future__ import annotations

import uuid
from typing import Any

from psycopg_pool import AsyncConnectionPool

from contracts.channels import CASES_LINKED, CASES_UNLINKED
from contracts.commands import CaseRef, LinkCases, RegisterArrival, UnlinkCases
from contracts.events import CasesLinkedV1, CasesUnlinkedV1
from contracts.reference import Relation, SensitiveCategory, Vulnerability
from contracts.replies import (
    CaseLinkView,
    CaseView,
    FamilyLinkView,
    FamilyMemberView,
    FamilyView,
    LinkedPersonView,
)
from kernel.audit import AuditPurpose
from kernel.db import Connection
from kernel.errors import BadInput, Conflict, Forbidden, NotFound, SeginError, parse_id
from kernel.outbox import add_event
from kernel.tokens import Principal
from services.intake import domain, households, links_store, matches, store, views

FAMILY_CATEGORIES = ["family"]
NOT_SHARED = "No such case, or it is not shared with your organisation."


async def _access(conn: Connection, principal: Principal, case: dict[str, Any] | None, case_id: uuid.UUID
                  ) -> domain.Access:
    """``get_case``'s rule, with the same statements whether the case exists or not."""
    rows = await store.sharing_rows(conn, case_id)
    grants = await store.grants(conn, case_id)
    manager = await store.manager(conn, case_id)
    if case is None:
        return domain.Access(False)
    return domain.case_access(case["owner_org_id"], principal.org_id, principal.org_type, grants,
                              [store.to_basis(r) for r in rows], manager)


def _person(row: dict[str, Any]) -> LinkedPersonView:
    return LinkedPersonView(given_name=row["given_name"], family_name=row["family_name"], sex=row["sex"],
                            date_of_birth=row["date_of_birth"], estimated_age=row["estimated_age"],
                            arrival_point=row["arrival_point"], arrival_date=row["arrival_date"])


def _shows_child_flags(principal: Principal) -> bool:
    return SensitiveCategory.CHILD_PROTECTION.scope in principal.scopes


def _check_child_scope(principal: Principal, links: list[households.Link], field: str) -> None:
    """A link that makes a registered person the child or ward of someone travelling with them is checked
    against that person's child-protection flags. A token that may not see those flags is refused such a
    link whatever the flags say (decided on the request alone, before anything is read), so that neither
    the refusal nor its absence tells it that a child is flagged unaccompanied or separated."""
    if _shows_child_flags(principal):
        return
    if any(link.travelling_together and link.relation in households.CARED_FOR_BY for link in links):
        raise Forbidden(f"Linking a child to a parent or guardian travelling with them needs the "
                        f"'{SensitiveCategory.CHILD_PROTECTION.scope}' scope: the child's protection flags are "
                        "checked against the link.", field=field, code="INSUFFICIENT_SCOPE")


def _flag_name(conflict: households.Conflict, principal: Principal) -> str:
    """The linked case's flag by name only for a token that may see child-protection flags."""
    return conflict.flag.value if _shows_child_flags(principal) else "a child-protection flag"


async def _announce(conn: Connection, link: dict[str, Any], channel: Any = CASES_LINKED) -> None:
    model = CasesLinkedV1 if channel is CASES_LINKED else CasesUnlinkedV1
    await add_event(conn, store.SCHEMA, channel, model(
        link_id=str(link["id"]), case_id=str(link["case_id"]), linked_case_id=str(link["linked_case_id"]),
        relation=Relation(link["relation"]), travelling_together=link["travelling_together"]),
        subject=str(link["case_id"]))


# --- at registration (and check-in): one call from ``handlers._create_case`` ---------------------

async def create_links(conn: Connection, principal: Principal, case_id: uuid.UUID, arrival: RegisterArrival) -> None:
    """Write the arrival's links with its case, in its transaction, or refuse the whole registration:
    BAD_USER_INPUT on ``arrival.vulnerabilities`` when a flag contradicts a link (naming the link),
    NOT_FOUND on ``arrival.links.N.caseId`` for a case the registrant may not read, BAD_USER_INPUT on
    ``arrival.links.N`` when the linked case's own flags contradict the link. Announced before the
    arrival itself, so that routing the new case already knows its family."""
    if not arrival.links:
        return
    given = [households.Link(link.relation, link.travelling_together, position)
             for position, link in enumerate(arrival.links)]
    conflicts = households.flag_conflicts(arrival.vulnerabilities, given)
    if conflicts:
        problems = [{"field": "arrival.vulnerabilities", "message": c.message()} for c in conflicts]
        problems += [{"field": f"arrival.links.{c.link.position}", "message": c.message()} for c in conflicts]
        raise BadInput(conflicts[0].message(), field="arrival.vulnerabilities", problems=problems)
    linked_ids: list[uuid.UUID] = []
    for position, link in enumerate(arrival.links):
        field = f"arrival.links.{position}.case_id"
        _check_child_scope(principal, [households.Link(households.inverse(link.relation), link.travelling_together)],
                           f"arrival.links.{position}")
        linked_id = parse_id(link.case_id, field, not_found=NOT_SHARED)
        if linked_id in linked_ids:  # the same id spelt otherwise ("link each case at most once" compares text)
            raise BadInput("link each case at most once", field=field)
        await links_store.hold(conn, [linked_id])
        linked = await store.get_case(conn, linked_id)
        if not (await _access(conn, principal, linked, linked_id)).allowed:
            raise NotFound(NOT_SHARED, field=field)
        assert linked is not None
        inverse = households.Link(households.inverse(link.relation), link.travelling_together, position)
        for conflict in households.flag_conflicts(linked["vulnerabilities"], [inverse]):
            raise BadInput(f"The linked case's {_flag_name(conflict, principal)} contradicts link {position} "
                           f"({link.relation.value}, travelling together): a child travelling with a parent or "
                           "guardian is neither unaccompanied nor separated.", field=f"arrival.links.{position}")
        row = await links_store.insert(conn, case_id, linked_id, link.relation, link.travelling_together,
                                       principal.subject, principal.org_id)
        assert row is not None  # a new case has no link yet
        await _announce(conn, row)
        linked_ids.append(linked_id)
    await store.TRAIL.allowed(conn, principal, "case.link", [case_id, *linked_ids], FAMILY_CATEGORIES,
                              AuditPurpose.CASE_MANAGEMENT)


# --- a correction of the screening (offline capture's updateCase): one call from ``offline`` ---------

async def check_flags(conn: Connection, case_id: uuid.UUID, vulnerabilities: list[Vulnerability]) -> None:
    """A case's corrected flags checked against its links: BAD_USER_INPUT on ``vulnerabilities`` naming the
    link when a flag says "without parents or caregiver" while a link says the person travels with one."""
    rows = await links_store.of_case(conn, case_id)
    for row in rows:
        seen = households.Link(households.seen_from(str(case_id), str(row["case_id"]), Relation(row["relation"])),
                               row["travelling_together"])
        for conflict in households.flag_conflicts(vulnerabilities, [seen]):
            raise BadInput(f"{conflict.flag.value} contradicts the link to case {row['other_id']} "
                           f"({seen.relation.value}, travelling together): a child travelling with a parent or "
                           "guardian is neither unaccompanied nor separated; remove the flag or the link.",
                           field="vulnerabilities")


# --- links shown on a case -----------------------------------------------------------------------

async def links_of(conn: Connection, principal: Principal, case_id: uuid.UUID,
                   purpose: AuditPurpose = AuditPurpose.CASE_MANAGEMENT) -> list[CaseLinkView]:
    """The case's links as this caller may see them (the caller may read the case itself). Audited
    when there are any: the links, and who the readable linked cases are."""
    shown, read = [], []
    for row in await links_store.of_case(conn, case_id):
        access = await _access(conn, principal, {"owner_org_id": row["other_owner"]}, row["other_id"])
        if access.allowed:
            read.append(row["other_id"])
        shown.append(CaseLinkView(
            id=str(row["id"]), linked_case_id=str(row["other_id"]),
            relation=households.seen_from(str(case_id), str(row["case_id"]), Relation(row["relation"])),
            travelling_together=row["travelling_together"], owner_org_id=row["other_owner"],
            person=_person(row) if access.allowed else None, created_at=row["created_at"]))
    if shown:
        await store.TRAIL.allowed(conn, principal, "case.links", [case_id, *read],
                                  [*FAMILY_CATEGORIES, *(["identity"] if read else [])], purpose)
    return shown


# --- linking existing cases ----------------------------------------------------------------------

async def _pair(conn: Connection, principal: Principal, case_id: uuid.UUID, linked_id: uuid.UUID
                ) -> tuple[dict[str, Any], domain.Access, SeginError | None]:
    """The first case and the caller's access to it, and the refusal when the caller may not read both
    or owns neither (NOT_FOUND as for an absent case, on the field of the first it may not read)."""
    case = await store.get_case(conn, case_id)
    linked = await store.get_case(conn, linked_id)
    access = await _access(conn, principal, case, case_id)
    linked_access = await _access(conn, principal, linked, linked_id)
    refusal: SeginError | None = None
    if not access.allowed:
        refusal = NotFound(NOT_SHARED, field="caseId")
    elif not linked_access.allowed:
        refusal = NotFound(NOT_SHARED, field="linkedCaseId")
    elif principal.org_id not in (case["owner_org_id"], linked["owner_org_id"]):  # type: ignore[index]
        refusal = Forbidden("Your organisation may link two cases only when it owns one of them.", field="caseId")
    return case, access, refusal  # type: ignore[return-value]


def _purpose(access: domain.Access) -> AuditPurpose:
    return AuditPurpose((access.purpose or domain.OWNER_PURPOSE).lower())


def _ids(request: LinkCases | UnlinkCases) -> tuple[uuid.UUID, uuid.UUID]:
    case_id = parse_id(request.case_id, "caseId", not_found=NOT_SHARED)
    linked_id = parse_id(request.linked_case_id, "linkedCaseId", not_found=NOT_SHARED)
    if case_id == linked_id:
        raise BadInput("A case cannot be linked to itself.", field="linkedCaseId")
    return case_id, linked_id


async def _answer(conn: Connection, principal: Principal, case: dict[str, Any], access: domain.Access) -> CaseView:
    """The case as ``get_case`` shows it, and audited as its read (call it last in the transaction)."""
    owner = case["owner_org_id"] == principal.org_id
    rows = await store.sharing_rows(conn, case["id"]) if owner else None
    visible = domain.visible_categories(principal.scopes)
    links = await links_of(conn, principal, case["id"], _purpose(access))
    await store.TRAIL.allowed(conn, principal, "case.read", [case["id"]],
                              ["identity", "arrival", "vulnerabilities", *(c.value for c in visible),
                               *(["consent"] if owner else [])], _purpose(access),
                              legal_basis=access.legal_basis.value if access.legal_basis else None)
    return views.case_view(case, visible, access, rows, links)


async def link_cases(pool: AsyncConnectionPool, principal: Principal, request: LinkCases) -> CaseView:
    """Link two cases; linking them again the same way changes nothing (no second event). A pair already
    linked otherwise is a CONFLICT (unlink first); a link a flag contradicts is refused on ``relation``."""
    case_id, linked_id = _ids(request)
    link = households.Link(request.relation, request.travelling_together)
    _check_child_scope(principal, [link, households.Link(households.inverse(link.relation), link.travelling_together)],
                       "relation")
    async with pool.connection() as conn, conn.transaction():  # the refusal's audit record commits too
        await links_store.lock_pair(conn, case_id, linked_id)
        await links_store.hold(conn, [case_id, linked_id])
        case, access, refusal = await _pair(conn, principal, case_id, linked_id)
        if refusal is not None:
            await store.TRAIL.denied(conn, principal, "case.link", [case_id, linked_id], FAMILY_CATEGORIES)
        if refusal is None:
            existing = await links_store.find(conn, case_id, linked_id)
            if existing is not None:
                same = (households.seen_from(str(case_id), str(existing["case_id"]), Relation(existing["relation"]))
                        == request.relation and existing["travelling_together"] == request.travelling_together)
                if not same:
                    raise Conflict("These cases are already linked otherwise: unlink them first.",
                                   field="relation", code="ALREADY_LINKED")
            else:
                linked_flags = await links_store.vulnerabilities(conn, linked_id)
                for side, conflict in households.link_conflicts(case["vulnerabilities"], linked_flags, link):
                    whose = "The case's" if side == "case" else "The linked case's"
                    raise BadInput(f"{whose} {_flag_name(conflict, principal)} contradicts this link "
                                   f"({request.relation.value}, travelling together): a child travelling with a "
                                   "parent or guardian is neither unaccompanied nor separated.", field="relation")
                row = await links_store.insert(conn, case_id, linked_id, request.relation,
                                               request.travelling_together, principal.subject, principal.org_id)
                assert row is not None  # the pair is locked: no concurrent link
                await _announce(conn, row)
                await store.TRAIL.allowed(conn, principal, "case.link", [case_id, linked_id], FAMILY_CATEGORIES,
                                          AuditPurpose.CASE_MANAGEMENT)
            answer = await _answer(conn, principal, case, access)
    if refusal is not None:
        raise refusal
    return answer


async def unlink_cases(pool: AsyncConnectionPool, principal: Principal, request: UnlinkCases) -> CaseView:
    """Remove the link between two cases (same access as linking); no link: nothing changes."""
    case_id, linked_id = _ids(request)
    async with pool.connection() as conn, conn.transaction():
        await links_store.lock_pair(conn, case_id, linked_id)
        case, access, refusal = await _pair(conn, principal, case_id, linked_id)
        if refusal is not None:
            await store.TRAIL.denied(conn, principal, "case.unlink", [case_id, linked_id], FAMILY_CATEGORIES)
        if refusal is None:
            existing = await links_store.find(conn, case_id, linked_id)
            if existing is not None and await links_store.delete(conn, existing["id"]):
                await _announce(conn, existing, CASES_UNLINKED)
                await store.TRAIL.allowed(conn, principal, "case.unlink", [case_id, linked_id], FAMILY_CATEGORIES,
                                          AuditPurpose.CASE_MANAGEMENT)
            answer = await _answer(conn, principal, case, access)
    if refusal is not None:
        raise refusal
    return answer


# --- a family, transitively ----------------------------------------------------------------------

async def family(pool: AsyncConnectionPool, principal: Principal, request: CaseRef) -> FamilyView:
    """The cases linked to a case the caller may read, followed link by link (``households.FAMILY_DEPTH``
    links, ``FAMILY_MAX_MEMBERS`` cases), each shown under its own access rules as on ``Case.links``."""
    case_id = parse_id(request.case_id, "caseId", not_found=NOT_SHARED)
    async with pool.connection() as conn, conn.transaction():
        case = await store.get_case(conn, case_id)
        access = await _access(conn, principal, case, case_id)
        allowed = access.allowed
        if not allowed:
            await store.TRAIL.denied(conn, principal, "family.read", [case_id], FAMILY_CATEGORIES)
        else:
            rows = await links_store.around(conn, case_id, households.FAMILY_DEPTH)
            neighbours: dict[str, set[str]] = {}
            for row in rows:
                a, b = str(row["case_id"]), str(row["linked_case_id"])
                neighbours.setdefault(a, set()).add(b)
                neighbours.setdefault(b, set()).add(a)
            # Who the caller may read, for every case the links reach (three queries whatever their number):
            # the walk goes on only from those, and a link between two cases it may not read is not shown.
            people = await links_store.people(conn, [uuid.UUID(i) for i in {str(case_id), *neighbours}])
            access_of, _ = await matches.accesses(conn, principal, [(uuid.UUID(i), r["owner_org_id"])
                                                                    for i, r in people.items()])
            readable = {str(i) for i, a in access_of.items() if a.allowed}
            ids, truncated = households.family_walk(str(case_id), neighbours, expands=readable.__contains__)
            members = [FamilyMemberView(case_id=i, owner_org_id=people[i]["owner_org_id"],
                                        person=_person(people[i]) if i in readable else None) for i in ids]
            read = [i for i in ids if i in readable]
            included = set(ids)
            links = [FamilyLinkView(id=str(r["id"]), case_id=str(r["case_id"]), linked_case_id=str(r["linked_case_id"]),
                                    relation=r["relation"], travelling_together=r["travelling_together"])
                     for r in rows if str(r["case_id"]) in included and str(r["linked_case_id"]) in included
                     and (str(r["case_id"]) in readable or str(r["linked_case_id"]) in readable)]
            await store.TRAIL.allowed(conn, principal, "family.read", ids,
                                      [*FAMILY_CATEGORIES, *(["identity"] if read else [])], _purpose(access))
    if not allowed:
        raise NotFound(NOT_SHARED, field="caseId")
    return FamilyView(case_id=str(case_id), members=members, links=links, truncated=truncated)
