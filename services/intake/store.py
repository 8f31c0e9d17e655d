"""Intake's tables (schema ``intake``)."""

from __future__ import annotations

import uuid
from typing import Any

from contracts.commands import ConsentInput, RecordLegalBasis, RegisterArrival
from contracts.reference import LegalBasis, Purpose, ReferralStatus, StatisticsDimension
from kernel.audit import Trail
from kernel.db import Connection
from services.intake.domain import Basis, Grant

SCHEMA = "intake"
TRAIL = Trail(SCHEMA)  # intake's audit trail: one call per handler
FIRST_SHARING_VERSION = 1  # a new case's sharing version (its consent at registration); the column's default


async def insert_case(conn: Connection, case_id: uuid.UUID, org_id: str, actor: str, arrival: RegisterArrival) -> None:
    await conn.execute(
        "insert into intake.cases (id, owner_org_id, given_name, family_name, sex, date_of_birth, estimated_age,"
        " country_returned_from, arrival_point, arrival_date, destination_region, registered_by, phone_numbers,"
        " place_of_origin) values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (case_id, org_id, arrival.given_name, arrival.family_name, arrival.sex.value, arrival.date_of_birth,
         arrival.estimated_age, arrival.country_returned_from, arrival.arrival_point.value, arrival.arrival_date,
         arrival.destination_region, actor, arrival.phone_numbers, arrival.place_of_origin),
    )
    for code in arrival.vulnerabilities:
        await conn.execute(
            "insert into intake.vulnerability_flags (case_id, code, assessed_by) values (%s, %s, %s)",
            (case_id, code.value, actor),
        )
    await insert_consent(conn, case_id, actor, arrival.consent)


async def insert_consent(conn: Connection, case_id: uuid.UUID, actor: str, consent: ConsentInput) -> uuid.UUID:
    consent_id = uuid.uuid4()
    await conn.execute(
        "insert into intake.consents (id, case_id, legal_basis, given, purposes, recipient_org_ids,"
        " recipient_org_types, language, given_by, guardian_name, recorded_by)"
        " values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (consent_id, case_id, LegalBasis.CONSENT.value, consent.given, [p.value for p in consent.purposes],
         consent.recipient_org_ids,
         [t.value for t in consent.recipient_org_types], consent.language, consent.given_by.value,
         consent.guardian_name, actor),
    )
    return consent_id


async def insert_legal_basis(conn: Connection, actor: str, basis: RecordLegalBasis) -> uuid.UUID:
    basis_id = uuid.uuid4()
    await conn.execute(
        "insert into intake.consents (id, case_id, legal_basis, given, purposes, recipient_org_ids,"
        " recipient_org_types, language, justification, recorded_by)"
        " values (%s, %s, %s, true, %s, %s, %s, '-', %s, %s)",
        (basis_id, uuid.UUID(basis.case_id), basis.legal_basis.value, [p.value for p in basis.purposes],
         basis.recipient_org_ids, [t.value for t in basis.recipient_org_types], basis.justification, actor),
    )
    return basis_id


async def withdraw_consent(conn: Connection, case_id: uuid.UUID, consent_id: uuid.UUID, actor: str) -> bool:
    """Withdraw a consent still in force; False when there is none with that id on the case."""
    cur = await conn.execute(
        "update intake.consents set withdrawn_at = now(), withdrawn_by = %s"
        " where id = %s and case_id = %s and legal_basis = %s and withdrawn_at is null",
        (actor, consent_id, case_id, LegalBasis.CONSENT.value),
    )
    return cur.rowcount == 1


async def next_sharing_version(conn: Connection, case_id: uuid.UUID) -> int:
    """Raise the case's sharing version for a change about to be made, and lock the case until commit:
    concurrent changes of one case are made one after the other, so versions follow their coverage."""
    cur = await conn.execute("update intake.cases set sharing_version = sharing_version + 1 where id = %s"
                             " returning sharing_version", (case_id,))
    row = await cur.fetchone()
    assert row is not None
    return int(row["sharing_version"])


async def sharing_rows(conn: Connection, case_id: uuid.UUID) -> list[dict[str, Any]]:
    cur = await conn.execute(
        "select * from intake.consents where case_id = %s order by recorded_at, id", (case_id,)
    )
    return list(await cur.fetchall())


def to_basis(row: dict[str, Any]) -> Basis:
    return Basis(
        id=str(row["id"]), legal_basis=LegalBasis(row["legal_basis"]), given=row["given"],
        purposes=frozenset(Purpose(p) for p in row["purposes"]), org_ids=frozenset(row["recipient_org_ids"]),
        org_types=frozenset(row["recipient_org_types"]), withdrawn=row["withdrawn_at"] is not None,
    )


async def grants(conn: Connection, case_id: uuid.UUID) -> list[Grant]:
    cur = await conn.execute("select org_id, legal_basis, status from intake.access_grants where case_id = %s",
                             (case_id,))
    return [Grant(r["org_id"], LegalBasis(r["legal_basis"]) if r["legal_basis"] else None, ReferralStatus(r["status"]))
            for r in await cur.fetchall()]


async def upsert_grant(conn: Connection, referral_id: str, case_id: str, org_id: str,
                       legal_basis: LegalBasis | None, status: ReferralStatus, as_of: str) -> None:
    """Apply a referral's state as of its event time; an older event never overwrites a newer one."""
    await conn.execute(
        "insert into intake.access_grants (referral_id, case_id, org_id, legal_basis, status, updated_at)"
        " values (%s, %s, %s, %s, %s, %s) on conflict (referral_id) do update set legal_basis = excluded.legal_basis,"
        " status = excluded.status, updated_at = excluded.updated_at"
        " where intake.access_grants.updated_at <= excluded.updated_at",
        (uuid.UUID(referral_id), uuid.UUID(case_id), org_id, legal_basis.value if legal_basis else None,
         status.value, as_of),
    )


async def manager(conn: Connection, case_id: uuid.UUID) -> str | None:
    """The organisation managing the case's follow-up, as the latest hand-over said (None: never handed over)."""
    cur = await conn.execute("select org_id from intake.management_grants where case_id = %s", (case_id,))
    row = await cur.fetchone()
    return row["org_id"] if row else None


async def set_manager(conn: Connection, case_id: str, org_id: str, legal_basis: LegalBasis | None,
                      version: int) -> None:
    """Apply a hand-over; an older one (lower version) never overwrites a newer one, a redelivery changes nothing."""
    await conn.execute(
        "insert into intake.management_grants (case_id, org_id, legal_basis, version) values (%s, %s, %s, %s)"
        " on conflict (case_id) do update set org_id = excluded.org_id, legal_basis = excluded.legal_basis,"
        " version = excluded.version, updated_at = now() where intake.management_grants.version < excluded.version",
        (uuid.UUID(case_id), org_id, legal_basis.value if legal_basis else None, version),
    )


STATISTICS_COLUMNS: dict[StatisticsDimension, str] = {
    StatisticsDimension.REGION: "c.destination_region",
    StatisticsDimension.ARRIVAL_POINT: "c.arrival_point",
    StatisticsDimension.SEX: "c.sex",
    StatisticsDimension.MONTH: "to_char(c.arrival_date, 'YYYY-MM')",
    StatisticsDimension.AGE_GROUP: "case when coalesce(extract(year from age(c.arrival_date, c.date_of_birth))::int,"
                                   " c.estimated_age) < 18 then 'CHILD' else 'ADULT' end",
    StatisticsDimension.VULNERABILITY: "coalesce(v.code, 'NONE')",
}


async def statistics(conn: Connection, group_by: list[StatisticsDimension], org_id: str
                     ) -> list[tuple[tuple[str, ...], int, int]]:
    """Per combination of the chosen dimensions: distinct people, and how many of them ``org_id``
    registered itself (columns are fixed SQL, not input)."""
    columns = [STATISTICS_COLUMNS[d] for d in group_by]
    join = (" left join intake.vulnerability_flags v on v.case_id = c.id"
            if StatisticsDimension.VULNERABILITY in group_by else "")
    select = ", ".join(f"{col} as k{i}" for i, col in enumerate(columns))
    keys = ", ".join(f"k{i}" for i in range(len(columns)))
    cur = await conn.execute(
        f"select {select}, count(distinct c.id) as n, count(distinct c.id) filter (where c.owner_org_id = %s) as own"  # noqa: S608
        f" from intake.cases c{join} group by {keys} order by {keys}", (org_id,)
    )
    return [(tuple(str(r[f"k{i}"]) for i in range(len(columns))), int(r["n"]), int(r["own"]))
            for r in await cur.fetchall()]


async def screening(conn: Connection, case_id: uuid.UUID) -> list[dict[str, Any]]:
    """Each vulnerability flag with who assessed it and when (the origin of the data)."""
    cur = await conn.execute("select code, severity, assessed_by, assessed_at from intake.vulnerability_flags"
                             " where case_id = %s order by code", (case_id,))
    return list(await cur.fetchall())


async def get_case(conn: Connection, case_id: uuid.UUID) -> dict[str, Any] | None:
    """The case with its screening codes, in one query whether or not it exists."""
    cur = await conn.execute(
        "select c.*, array(select code from intake.vulnerability_flags where case_id = c.id order by code)"
        " as vulnerabilities, array(select m.id from intake.cases m where m.merged_into = c.id order by m.id)"
        " as merged_from from intake.cases c where c.id = %s", (case_id,))
    return await cur.fetchone()


async def exports_since(conn: Connection, org_id: str, *, hours: int) -> int:
    """Data-subject exports made by the organisation in the last ``hours`` (serialised per organisation,
    so concurrent exports cannot both pass a limit)."""
    await conn.execute("select pg_advisory_xact_lock(hashtext('intake.dsar:' || %s))", (org_id,))
    cur = await conn.execute("select count(*) as n from intake.audit_log where org_id = %s and operation = 'dsar.export'"
                             " and at > now() - make_interval(hours => %s)", (org_id, hours))
    row = await cur.fetchone()
    return int(row["n"]) if row else 0
