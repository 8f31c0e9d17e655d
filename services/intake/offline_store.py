"""Intake's tables for offline capture: case corrections (``case_changes``) and the submissions received
from Kobo/ODK (``offline_submissions``). Migration ``0009_offline.sql``."""

from __future__ import annotations

import uuid
from typing import Any

from psycopg import sql
from psycopg.types.json import Jsonb

from kernel import pagination
from kernel.db import Connection

# The columns a correction may set (``CaseChanges``' identity fields), fixed here: never from input.
CORRECTABLE = ("given_name", "family_name", "sex", "date_of_birth", "estimated_age", "phone_numbers",
               "place_of_origin", "destination_region")


async def lock_case(conn: Connection, case_id: uuid.UUID) -> dict[str, Any] | None:
    """The case with its screening codes, locked until commit: corrections of one case go one after the other."""
    cur = await conn.execute(
        "select c.*, array(select code from intake.vulnerability_flags where case_id = c.id order by code)"
        " as vulnerabilities from intake.cases c where c.id = %s for update of c", (case_id,))
    return await cur.fetchone()


async def fields_changed_since(conn: Connection, case_id: uuid.UUID, version: int) -> list[str]:
    """Every field a correction changed after ``version`` (names, e.g. ``given_name``, ``vulnerabilities.health``)."""
    cur = await conn.execute("select distinct unnest(fields) as field from intake.case_changes"
                             " where case_id = %s and version > %s order by 1", (case_id, version))
    return [row["field"] for row in await cur.fetchall()]


async def correct_case(conn: Connection, case_id: uuid.UUID, values: dict[str, Any], actor: str,
                       fields: list[str]) -> int:
    """Set the corrected columns, raise the case's version by one and record which fields changed; the new version."""
    assert set(values) <= set(CORRECTABLE)
    sets = [sql.SQL("{} = {}").format(sql.Identifier(c), sql.Placeholder(c)) for c in values]
    sets.append(sql.SQL("version = version + 1"))
    cur = await conn.execute(sql.SQL("update intake.cases set {} where id = %(id)s returning version").format(
        sql.SQL(", ").join(sets)), {**values, "id": case_id})
    row = await cur.fetchone()
    assert row is not None
    version = int(row["version"])
    await conn.execute("insert into intake.case_changes (case_id, version, fields, changed_by) values (%s, %s, %s, %s)",
                       (case_id, version, sorted(fields), actor))
    return version


async def replace_flags(conn: Connection, case_id: uuid.UUID, removed: set[str], added: set[str], actor: str) -> None:
    """Screening corrected: flags kept keep who assessed them; new ones are assessed by ``actor`` now."""
    if removed:
        await conn.execute("delete from intake.vulnerability_flags where case_id = %s and code = any(%s)",
                           (case_id, sorted(removed)))
    for code in sorted(added):
        await conn.execute("insert into intake.vulnerability_flags (case_id, code, assessed_by) values (%s, %s, %s)",
                           (case_id, code, actor))


# --- submissions ----------------------------------------------------------------------------------


async def lock_submission(conn: Connection, org_id: str, submission_id: str) -> None:
    """Receipts of one submission are handled one after the other (Kobo may retry while the first is running)."""
    await conn.execute("select pg_advisory_xact_lock(hashtext('intake.offline:' || %s || ':' || %s))",
                       (org_id, submission_id))


async def accepted(conn: Connection, org_id: str, submission_id: str) -> dict[str, Any] | None:
    cur = await conn.execute("select * from intake.offline_submissions where org_id = %s and submission_id = %s"
                             " and status = 'ACCEPTED'", (org_id, submission_id))
    return await cur.fetchone()


async def receive(conn: Connection, org_id: str, submission_id: str, source: str, status: str, actor: str, *,
                  case_id: uuid.UUID | None = None, problems: list[dict[str, Any]] | None = None,
                  answers: dict[str, Any] | None = None) -> dict[str, Any]:
    """Keep one receipt: a first of its status is a new row, a later one counts on it (and a rejection
    keeps its latest problems and answers)."""
    cur = await conn.execute(
        "insert into intake.offline_submissions (id, org_id, submission_id, source, status, case_id, problems,"
        " answers, received_by) values (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " on conflict (org_id, submission_id, status) do update set attempts = intake.offline_submissions.attempts"
        " + 1, last_received_at = now(), problems = excluded.problems, answers = excluded.answers,"
        " case_id = coalesce(excluded.case_id, intake.offline_submissions.case_id) returning *",
        (uuid.uuid4(), org_id, submission_id, source, status, case_id, Jsonb(problems or []),
         Jsonb(answers) if answers is not None else None, actor))
    row = await cur.fetchone()
    assert row is not None
    return row


async def forget_rejected_answers(conn: Connection, org_id: str, submission_id: str) -> None:
    """The submission was registered after all: the answers kept to fix it are no longer needed."""
    await conn.execute("update intake.offline_submissions set answers = null where org_id = %s"
                       " and submission_id = %s and status = 'REJECTED'", (org_id, submission_id))


async def submissions(conn: Connection, org_id: str, status: str | None, first: int, after: str | None
                      ) -> dict[str, Any]:
    query = "select * from intake.offline_submissions where org_id = %s"
    params: list[Any] = [org_id]
    if status:
        query += " and status = %s"
        params.append(status)
    query, params = pagination.keyset_query(query, params, first, after)
    cur = await conn.execute(query, params)  # type: ignore[arg-type]
    return pagination.page(list(await cur.fetchall()), first)


async def forget_old_answers(conn: Connection, days: int) -> int:
    """Rejected submissions' answers older than ``days`` (since last received) are deleted; the receipt stays."""
    cur = await conn.execute("update intake.offline_submissions set answers = null where answers is not null"
                             " and last_received_at < now() - make_interval(days => %s)", (days,))
    return cur.rowcount
