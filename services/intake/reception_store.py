"""Intake's tables for reception of groups: arrival groups, expected people, manifest uploads, senders'
column mappings (migration ``0006_arrival_groups.sql``)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from psycopg.types.json import Jsonb

from contracts.commands import CreateArrivalGroup, RegisterArrival
from contracts.reference import ArrivalGroupStatus, ExpectedStatus
from kernel import pagination
from kernel.db import Connection
from kernel.errors import BadInput
from services.intake.manifests import ExpectedRow


async def insert_group(conn: Connection, group_id: uuid.UUID, org_id: str, actor: str,
                       group: CreateArrivalGroup) -> None:
    await conn.execute(
        "insert into intake.arrival_groups (id, owner_org_id, kind, reference, arrival_date, arrival_point,"
        " country_returned_from, created_by) values (%s, %s, %s, %s, %s, %s, %s, %s)",
        (group_id, org_id, group.kind.value, group.reference, group.arrival_date, group.arrival_point.value,
         group.country_returned_from, actor))


async def get_group(conn: Connection, group_id: uuid.UUID, *, lock: bool = False) -> dict[str, Any] | None:
    """The group; ``lock``: held until commit (uploads, check-ins and closing of one group one at a time)."""
    cur = await conn.execute("select * from intake.arrival_groups where id = %s" + (" for update" if lock else ""),
                             (group_id,))
    return await cur.fetchone()


async def groups_page(conn: Connection, org_id: str, first: int, after: str | None) -> dict[str, Any]:
    query, params = pagination.keyset_query("select * from intake.arrival_groups where owner_org_id = %s",
                                            [org_id], first, after)
    cur = await conn.execute(query, params)  # type: ignore[arg-type]
    return pagination.page(list(await cur.fetchall()), first)


async def close_group(conn: Connection, group_id: uuid.UUID) -> list[uuid.UUID]:
    """Close the group; the people never checked in become no-shows (their ids returned)."""
    await conn.execute("update intake.arrival_groups set status = %s, closed_at = now() where id = %s",
                       (ArrivalGroupStatus.CLOSED.value, group_id))
    cur = await conn.execute("update intake.expected_people set status = %s where group_id = %s and status = %s"
                             " returning id", (ExpectedStatus.NO_SHOW.value, group_id, ExpectedStatus.EXPECTED.value))
    return [r["id"] for r in await cur.fetchall()]


# --- manifests -------------------------------------------------------------------------------------

async def upload_result(conn: Connection, group_id: uuid.UUID, file_sha256: str) -> dict[str, Any] | None:
    cur = await conn.execute("select result from intake.manifest_uploads where group_id = %s and file_sha256 = %s",
                             (group_id, file_sha256))
    row = await cur.fetchone()
    return dict(row["result"]) if row else None


async def save_upload(conn: Connection, group_id: uuid.UUID, file_sha256: str, sender: str, actor: str,
                      result: dict[str, Any]) -> None:
    await conn.execute(
        "insert into intake.manifest_uploads (id, group_id, file_sha256, sender, result, uploaded_by)"
        " values (%s, %s, %s, %s, %s, %s)", (uuid.uuid4(), group_id, file_sha256, sender, Jsonb(result), actor))


async def saved_mapping(conn: Connection, org_id: str, sender: str) -> list[dict[str, str]] | None:
    cur = await conn.execute("select mapping from intake.manifest_mappings where owner_org_id = %s and sender = %s",
                             (org_id, sender))
    row = await cur.fetchone()
    return list(row["mapping"]) if row else None


async def save_mapping(conn: Connection, org_id: str, sender: str, mapping: list[dict[str, str]], actor: str) -> None:
    await conn.execute(
        "insert into intake.manifest_mappings (owner_org_id, sender, mapping, updated_by) values (%s, %s, %s, %s)"
        " on conflict (owner_org_id, sender) do update set mapping = excluded.mapping,"
        " updated_by = excluded.updated_by, updated_at = now()", (org_id, sender, Jsonb(mapping), actor))


async def known_fingerprints(conn: Connection, group_id: uuid.UUID) -> set[str]:
    cur = await conn.execute("select fingerprint from intake.expected_people where group_id = %s"
                             " and fingerprint is not null", (group_id,))
    return {r["fingerprint"] for r in await cur.fetchall()}


async def insert_expected(conn: Connection, group_id: uuid.UUID, rows: list[tuple[int, ExpectedRow, str]]
                          ) -> list[uuid.UUID]:
    """One expected person per row, in the file's order (one statement for the whole list)."""
    ids = [uuid.uuid4() for _ in rows]
    if not rows:
        return ids
    async with conn.cursor() as cur:
        await cur.executemany(
            "insert into intake.expected_people (id, group_id, fingerprint, source_row, given_name, family_name, sex,"
            " date_of_birth, estimated_age, phone_numbers, document_number, place_of_origin, household_ref,"
            " relationship, destination_region) values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [(pid, group_id, fp, number, r.given_name, r.family_name, r.sex.value, r.date_of_birth, r.estimated_age,
              r.phone_numbers, r.document_number, r.place_of_origin, r.household_ref, r.relationship,
              r.destination_region) for pid, (number, r, fp) in zip(ids, rows, strict=True)])
    return ids


# --- people ------------------------------------------------------------------------------------------

async def get_person(conn: Connection, group_id: uuid.UUID, person_id: uuid.UUID, *, lock: bool = False
                     ) -> dict[str, Any] | None:
    cur = await conn.execute("select * from intake.expected_people where id = %s and group_id = %s"
                             + (" for update" if lock else ""), (person_id, group_id))
    return await cur.fetchone()


async def entry_of_case(conn: Connection, case_id: uuid.UUID) -> dict[str, Any] | None:
    """The group member a case was checked in as, if any (for the data-subject export)."""
    cur = await conn.execute("select * from intake.expected_people where case_id = %s", (case_id,))
    return await cur.fetchone()


async def mark_checked_in(conn: Connection, person_id: uuid.UUID, case_id: uuid.UUID) -> dict[str, Any]:
    cur = await conn.execute("update intake.expected_people set status = %s, case_id = %s, checked_in_at = now()"
                             " where id = %s returning *", (ExpectedStatus.CHECKED_IN.value, case_id, person_id))
    row = await cur.fetchone()
    assert row is not None
    return row


async def insert_walk_in(conn: Connection, group_id: uuid.UUID, case_id: uuid.UUID, arrival: RegisterArrival
                         ) -> dict[str, Any]:
    """Someone not on the list, checked in with the group: added on arrival."""
    cur = await conn.execute(
        "insert into intake.expected_people (id, group_id, given_name, family_name, sex, date_of_birth,"
        " estimated_age, phone_numbers, place_of_origin, destination_region, status, added_on_arrival, case_id,"
        " checked_in_at) values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, true, %s, now()) returning *",
        (uuid.uuid4(), group_id, arrival.given_name, arrival.family_name, arrival.sex.value, arrival.date_of_birth,
         arrival.estimated_age, arrival.phone_numbers, arrival.place_of_origin, arrival.destination_region,
         ExpectedStatus.CHECKED_IN.value, case_id))
    row = await cur.fetchone()
    assert row is not None
    return row


async def people_page(conn: Connection, group_id: uuid.UUID, status: ExpectedStatus | None, first: int,
                      after: str | None) -> dict[str, Any]:
    """A page of the group's people in manifest order (those added on arrival after), after the cursor."""
    query, params = "select * from intake.expected_people where group_id = %s", [group_id]
    if status is not None:
        query, params = query + " and status = %s", [*params, status.value]
    if after:
        (seq,) = pagination.decode(after, 1)
        if not isinstance(seq, int):
            raise BadInput(pagination.INVALID_CURSOR, field="after")
        query, params = query + " and seq > %s", [*params, seq]
    cur = await conn.execute(query + " order by seq limit %s", [*params, first + 1])  # type: ignore[arg-type]
    rows = list(await cur.fetchall())
    nodes = rows[:first]
    end = pagination.encode([nodes[-1]["seq"]]) if nodes else None
    return {"nodes": nodes, "page_info": {"has_next_page": len(rows) > first, "end_cursor": end}}


async def totals_rows(conn: Connection, group_id: uuid.UUID) -> list[dict[str, Any]]:
    """What the totals are counted from: each person's status and age, the case's when checked in (corrected
    at check-in), and how many vulnerability flags the case has."""
    cur = await conn.execute(
        "select p.status, p.added_on_arrival,"
        " case when c.id is null then p.date_of_birth else c.date_of_birth end as date_of_birth,"
        " case when c.id is null then p.estimated_age else c.estimated_age end as estimated_age,"
        " array(select code from intake.vulnerability_flags v where v.case_id = p.case_id) as vulnerabilities"
        " from intake.expected_people p left join intake.cases c on c.id = p.case_id where p.group_id = %s",
        (group_id,))
    return list(await cur.fetchall())


async def erase_unarrived(conn: Connection, days: int, today: date) -> int:
    """Erase the identity of people never checked in whose group arrived more than ``days`` before ``today``
    (migration 0010): how many rows were erased. Their age at arrival is kept, so the totals stay."""
    cur = await conn.execute(
        "update intake.expected_people p set given_name = null, family_name = null, phone_numbers = '{}',"
        " document_number = null, place_of_origin = null, household_ref = null, relationship = null,"
        " estimated_age = coalesce(p.estimated_age, extract(year from age(g.arrival_date, p.date_of_birth))::int),"
        " date_of_birth = null, fingerprint = null, erased_at = now()"
        " from intake.arrival_groups g where g.id = p.group_id and p.case_id is null and p.erased_at is null"
        " and g.arrival_date < %s::date - %s::int", (today, days))
    return cur.rowcount
