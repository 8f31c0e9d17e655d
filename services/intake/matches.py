"""People already known: candidates among the cases the caller may read, and the steward's record of
those it may not (decision record 0022).

Whoever asks, the same statements run: the block of cases sharing a key with the person, then the
access facts of every candidate above the threshold, whoever holds it. Only then is what the caller
may not read set aside — nothing in the answer, its errors or its statements tells that such a case
exists. At registration, such a case is recorded as a possible duplicate for the platform steward.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from psycopg_pool import AsyncConnectionPool

from contracts.commands import MatchCandidatesRequest, MatchPerson, RegisterArrival
from contracts.replies import MatchCandidatesView, MatchCandidateView, MatchReasonView
from kernel.audit import AuditPurpose
from kernel.db import Connection
from kernel.errors import NotFound, parse_id
from kernel.tokens import Principal
from services.intake import domain, match_store, matching, store, views

CANDIDATES_SCOPE = "cases:read"  # candidates are reads of other cases (the scope of match_candidates)
MAX_ABOVE = 50  # candidates above the threshold whose access is decided (the best ones)
MATCH_CATEGORIES = ["identity", "arrival", "vulnerabilities"]
# At most this many possible duplicates per registration for the steward (the best ones): a common name
# has many namesakes of the same age among a million people, and the steward's list must stay workable.
STEWARD_ROWS = 5


def person_of_arrival(arrival: RegisterArrival) -> matching.Person:
    return matching.Person(
        given_name=arrival.given_name, family_name=arrival.family_name, sex=arrival.sex.value,
        date_of_birth=arrival.date_of_birth, estimated_age=arrival.estimated_age, seen_on=arrival.arrival_date,
        phone_numbers=tuple(arrival.phone_numbers), place_of_origin=arrival.place_of_origin,
        destination_region=arrival.destination_region)


def person_of_row(row: dict[str, Any]) -> matching.Person:
    return matching.Person(
        given_name=row["given_name"], family_name=row["family_name"], sex=row["sex"],
        date_of_birth=row["date_of_birth"], estimated_age=row["estimated_age"], seen_on=row["arrival_date"],
        phone_numbers=tuple(row["phone_numbers"] or ()), place_of_origin=row["place_of_origin"],
        destination_region=row["destination_region"])


def person_of_request(person: MatchPerson, today: date) -> matching.Person:
    return matching.Person(
        given_name=person.given_name, family_name=person.family_name, sex=person.sex.value if person.sex else None,
        date_of_birth=person.date_of_birth, estimated_age=person.estimated_age, seen_on=person.arrival_date or today,
        phone_numbers=tuple(person.phone_numbers), place_of_origin=person.place_of_origin,
        destination_region=person.destination_region)


async def above_threshold(conn: Connection, person: matching.Person, exclude: uuid.UUID | None
                          ) -> list[tuple[matching.Match, dict[str, Any]]]:
    """Every case (any organisation's) scoring at or above the threshold, best first, at most MAX_ABOVE."""
    rows = await match_store.block(conn, matching.lookup_keys(person), exclude)
    scored = [(matching.score(person, person_of_row(r)), r) for r in rows]
    kept = [(m, r) for m, r in scored if m.score >= matching.THRESHOLD]
    kept.sort(key=lambda mr: (-mr[0].score, str(mr[1]["id"])))
    return kept[:MAX_ABOVE]


async def accesses(conn: Connection, principal: Principal, cases: list[tuple[uuid.UUID, str]]
                   ) -> tuple[dict[uuid.UUID, domain.Access], dict[uuid.UUID, list[dict[str, Any]]]]:
    """The caller's access to each (case id, owner) — the rule of ``get_case`` — and each case's sharing rows."""
    grants, bases, managers, rows = await match_store.access_facts(conn, [c for c, _ in cases])
    return {case_id: domain.case_access(owner, principal.org_id, principal.org_type, grants[case_id], bases[case_id],
                                        managers.get(case_id))
            for case_id, owner in cases}, rows


@dataclass(frozen=True)
class Lookup:
    """One match lookup: every case above the threshold (best first) and the caller's access to each."""

    found: list[tuple[matching.Match, dict[str, Any]]]
    allowed: dict[uuid.UUID, domain.Access]


async def lookup(conn: Connection, principal: Principal, person: matching.Person, exclude: uuid.UUID | None = None
                 ) -> Lookup:
    found = await above_threshold(conn, person, exclude)
    allowed, _ = await accesses(conn, principal, [(r["id"], r["owner_org_id"]) for _, r in found])
    return Lookup(found, allowed)


async def on_case_created(conn: Connection, principal: Principal, case_id: uuid.UUID, arrival: RegisterArrival,
                          looked_up: Lookup | None = None) -> None:
    """In the registration's transaction: index the case, and record for the steward every earlier case
    above the threshold the registering organisation may not read (nothing is told to the registrant).
    ``looked_up``: the lookup the caller made for this person just before (a check-in showing candidates)."""
    person = person_of_arrival(arrival)
    looked = looked_up if looked_up is not None else await lookup(conn, principal, person, case_id)
    hidden = [(r["id"], r["owner_org_id"], m.score, m.codes) for m, r in looked.found
              if not looked.allowed[r["id"]].allowed][:STEWARD_ROWS]
    await match_store.record_possible_duplicates(conn, case_id, principal.org_id, hidden)
    await match_store.index_case(conn, case_id, matching.blocking_keys(person))


async def reindex(conn: Connection, case_id: uuid.UUID) -> None:
    """After a change to a case's identity (names, birth, phones), in the same transaction: its keys anew."""
    case = (await match_store.full_cases(conn, [case_id])).get(case_id)
    if case is not None:
        await match_store.replace_keys(conn, case_id, matching.blocking_keys(person_of_row(case)))


def _not_found() -> NotFound:
    return NotFound("No such case, or it is not shared with your organisation.", field="caseId")


async def match_candidates(pool: AsyncConnectionPool, principal: Principal, request: MatchCandidatesRequest
                           ) -> MatchCandidatesView:
    """Ranked candidates the caller may read, for a case it may read or a person not registered yet."""
    visible = domain.visible_categories(principal.scopes)
    async with pool.connection() as conn, conn.transaction():
        subject: uuid.UUID | None = None
        if request.case_id is not None:
            subject = await match_store.redirect(conn, parse_id(request.case_id, "caseId"))
            case = (await match_store.full_cases(conn, [subject])).get(subject)
            access = (await accesses(conn, principal, [(subject, case["owner_org_id"] if case else "")]))[0][subject]
            if case is None or not access.allowed:
                await store.TRAIL.denied(conn, principal, "case.match", [subject])
                found_subject = False
            else:
                found_subject = True
                person = person_of_row(case)
        else:
            assert request.person is not None
            person = person_of_request(request.person, datetime.now(UTC).date())
            found_subject = True
        if found_subject:
            answer = await readable_candidates(conn, principal, await lookup(conn, principal, person, subject),
                                               subject, access if subject else None, request.first, visible)
    if not found_subject:
        raise _not_found()
    return answer


async def readable_candidates(conn: Connection, principal: Principal, looked_up: Lookup, subject: uuid.UUID | None,
                              subject_access: domain.Access | None, first: int, visible: Any
                              ) -> MatchCandidatesView:
    """The first ``first`` candidates of a lookup the caller may read, as it may see them, on the record."""
    found, allowed = looked_up.found, looked_up.allowed
    ids = [r["id"] for _, r in found]
    full = await match_store.full_cases(conn, ids)  # every candidate's row, readable or not: the same statements
    kept = [(m, r) for m, r in found if allowed[r["id"]].allowed][:first]
    by_purpose: dict[tuple[str, str | None], list[uuid.UUID]] = defaultdict(list)
    accesses_shown = [(subject, subject_access)] if subject is not None and subject_access is not None else []
    accesses_shown += [(r["id"], allowed[r["id"]]) for _, r in kept]
    for case_id, a in accesses_shown:
        by_purpose[(a.purpose or domain.OWNER_PURPOSE, a.legal_basis.value if a.legal_basis else None)].append(case_id)
    if not by_purpose:
        by_purpose[(domain.OWNER_PURPOSE, None)] = []  # a lookup by identity is accountable even when empty
    for (purpose, basis), case_ids in sorted(by_purpose.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
        await store.TRAIL.allowed(conn, principal, "case.match", case_ids,
                                  MATCH_CATEGORIES + [c.value for c in visible],
                                  AuditPurpose(purpose.lower()), legal_basis=basis)
    return MatchCandidatesView(threshold=matching.THRESHOLD, candidates=[MatchCandidateView(
        score=m.score, reasons=[MatchReasonView(code=x.code, text=x.text) for x in m.reasons],
        case=views.case_view(full[r["id"]], visible, allowed[r["id"]], None)) for m, r in kept])
