"""Intake's tables (schema ``intake``)."""

from __future__ import annotations

import uuid
from typing import Any

from contracts.commands import RegisterArrival
from kernel.db import Connection

SCHEMA = "intake"


async def insert_case(conn: Connection, case_id: uuid.UUID, org_id: str, actor: str, arrival: RegisterArrival) -> None:
    await conn.execute(
        "insert into intake.cases (id, owner_org_id, given_name, family_name, sex, date_of_birth, estimated_age,"
        " country_returned_from, arrival_point, arrival_date, destination_region, registered_by)"
        " values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (case_id, org_id, arrival.given_name, arrival.family_name, arrival.sex.value, arrival.date_of_birth,
         arrival.estimated_age, arrival.country_returned_from, arrival.arrival_point.value, arrival.arrival_date,
         arrival.destination_region, actor),
    )
    for code in arrival.vulnerabilities:
        await conn.execute(
            "insert into intake.vulnerability_flags (case_id, code, assessed_by) values (%s, %s, %s)",
            (case_id, code.value, actor),
        )
    await conn.execute(
        "insert into intake.consents (id, case_id, given, recipient_org_ids, language, recorded_by)"
        " values (%s, %s, %s, %s, %s, %s)",
        (uuid.uuid4(), case_id, arrival.consent.given, arrival.consent.recipient_org_ids, arrival.consent.language,
         actor),
    )


async def get_case(conn: Connection, case_id: uuid.UUID) -> dict[str, Any] | None:
    cur = await conn.execute("select * from intake.cases where id = %s", (case_id,))
    case = await cur.fetchone()
    if case is None:
        return None
    cur = await conn.execute("select code from intake.vulnerability_flags where case_id = %s order by code", (case_id,))
    case["vulnerabilities"] = [row["code"] for row in await cur.fetchall()]
    cur = await conn.execute(
        "select given, recipient_org_ids, language, recorded_at from intake.consents"
        " where case_id = %s and withdrawn_at is null order by recorded_at desc limit 1",
        (case_id,),
    )
    case["consent"] = await cur.fetchone()
    return case
