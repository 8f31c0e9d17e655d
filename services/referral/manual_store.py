"""SQL for referrals people make, outcomes, and the work lists (incoming, outgoing, overdue counts).

Kept apart from ``store.py`` so the parts of the referral network can grow side by side; the
schema is the same (``referral``). A referral's ``expected_duration`` comes from its directory
service, so every read here goes through ``_REFERRALS`` (referrals with their service's duration).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from contracts.commands import ReferralListRequest, ReferralOutcome
from contracts.reference import Priority, ReferralOrigin, ReferralStatus, ServiceCategory
from kernel.db import Connection
from kernel.pagination import keyset_query

PENDING, ACCEPTED = ReferralStatus.PENDING.value, ReferralStatus.ACCEPTED.value
AWAITING = ReferralStatus.AWAITING_CONSENT.value
_OPEN_OR_WAITING = [PENDING, ACCEPTED, AWAITING]

# One derived table, so the keyset cursor's (created_at, id) names one table's columns.
_REFERRALS = ("(select r.*, s.expected_duration from referral.referrals r"
              " left join referral.services s on s.id = r.service_id) w")
# manual_domain.is_overdue in SQL, one arm per state (one parameter each: the clock), and both.
OVERDUE_PENDING = f"(w.status = '{PENDING}' and w.due_at < %s)"
OVERDUE_ACCEPTED = f"(w.status = '{ACCEPTED}' and w.outcome_code is null and w.accepted_at + w.expected_duration < %s)"
OVERDUE = f"({OVERDUE_PENDING} or {OVERDUE_ACCEPTED})"


async def directory_service(conn: Connection, service_id: uuid.UUID) -> dict[str, Any] | None:
    """A service of the directory with its organisation's type (consent may name a type)."""
    cur = await conn.execute(
        "select s.id, s.organization_id, s.category, s.status, s.approved, o.org_type from referral.services s"
        " join referral.organizations o on o.id = s.organization_id where s.id = %s", (service_id,))
    return await cur.fetchone()


async def open_bases_held(conn: Connection, case_id: uuid.UUID, org_id: str) -> list[str | None]:
    """The legal bases of the open referrals ``org_id`` holds for the case (its access to it)."""
    cur = await conn.execute(
        "select legal_basis from referral.referrals where case_id = %s and to_org_id = %s and status = any(%s)",
        (case_id, org_id, [PENDING, ACCEPTED]))
    return [r["legal_basis"] for r in await cur.fetchall()]


async def lock_case(conn: Connection, case_id: uuid.UUID) -> None:
    """Serialise referrals of one case, so two people cannot both make "the first" referral to a service."""
    await conn.execute("select 1 from referral.cases where case_id = %s for update", (case_id,))


async def has_open_referral_to(conn: Connection, case_id: uuid.UUID, service: dict[str, Any], org_id: str,
                               hidden: list[ServiceCategory]) -> bool:
    """An open or waiting referral of the case to this service (or, for referrals made before services
    had ids, to its organisation for its category) that exists for ``org_id``: the rule of
    ``store.case_referrals`` and ``handlers.visible``, so a DUPLICATE answer reveals no other referral."""
    cur = await conn.execute(
        "select exists (select 1 from referral.referrals where case_id = %s and status = any(%s)"
        " and (service_id = %s or (service_id is null and to_org_id = %s and service_category = %s))"
        " and (((case_owner_org_id = %s or from_org_id = %s) and service_category <> all(%s))"
        "      or (to_org_id = %s and status <> %s))) as found",
        (case_id, _OPEN_OR_WAITING, service["id"], service["organization_id"], service["category"],
         org_id, org_id, [c.value for c in hidden], org_id, AWAITING))
    row = await cur.fetchone()
    return bool(row and row["found"])


async def insert_manual(conn: Connection, *, case_id: uuid.UUID, case_owner_org_id: str, from_org_id: str,
                        service: dict[str, Any], priority: Priority, legal_basis: str | None, status: ReferralStatus,
                        reason_code: str, due_at: datetime, made_by: str, note: str | None) -> dict[str, Any]:
    cur = await conn.execute(
        "insert into referral.referrals (id, case_id, case_owner_org_id, from_org_id, to_org_id, service_id,"
        " service_category, priority, legal_basis, status, reason_code, due_at, origin, made_by, note)"
        " values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) returning *",
        (uuid.uuid4(), case_id, case_owner_org_id, from_org_id, service["organization_id"], service["id"],
         service["category"], priority.value, legal_basis, status.value, reason_code, due_at,
         ReferralOrigin.MANUAL.value, made_by, note))
    row = await cur.fetchone()
    assert row is not None
    return row


async def get_with_duration(conn: Connection, referral_id: uuid.UUID | str) -> dict[str, Any] | None:
    cur = await conn.execute(f"select * from {_REFERRALS} where w.id = %s", (referral_id,))
    return await cur.fetchone()


async def with_durations(conn: Connection, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows read with ``select *`` from referrals, with their service's expected duration added."""
    ids = sorted({r["service_id"] for r in rows if r.get("service_id") and "expected_duration" not in r})
    durations: dict[Any, Any] = {}
    if ids:
        cur = await conn.execute("select id, expected_duration from referral.services where id = any(%s)", (ids,))
        durations = {r["id"]: r["expected_duration"] for r in await cur.fetchall()}
    return [r if "expected_duration" in r else {**r, "expected_duration": durations.get(r.get("service_id"))}
            for r in rows]


async def record_accepted(conn: Connection, referral_id: uuid.UUID, at: datetime) -> dict[str, Any]:
    cur = await conn.execute("update referral.referrals set accepted_at = %s where id = %s returning *",
                             (at, referral_id))
    row = await cur.fetchone()
    assert row is not None
    return row


async def record_outcome(conn: Connection, referral_id: uuid.UUID, outcome: ReferralOutcome) -> dict[str, Any]:
    cur = await conn.execute(
        "update referral.referrals set outcome_code = %s, outcome_delivered = %s, outcome_date = %s"
        " where id = %s returning *",
        (outcome.outcome_code, outcome.service_delivered, outcome.delivered_on, referral_id))
    row = await cur.fetchone()
    assert row is not None
    return row


async def worklist(conn: Connection, *, incoming: bool, org_id: str, hidden: list[ServiceCategory],
                   request: ReferralListRequest, now: datetime) -> list[dict[str, Any]]:
    """One page (plus one row) of the referrals addressed to ``org_id`` (incoming: every category, its
    own work, never one awaiting consent) or made by it (outgoing: not to ``hidden`` categories)."""
    if incoming:
        query, params = f"select * from {_REFERRALS} where w.to_org_id = %s and w.status <> %s", [org_id, AWAITING]
    else:
        query = f"select * from {_REFERRALS} where w.from_org_id = %s and w.service_category <> all(%s)"
        params = [org_id, [c.value for c in hidden]]
    if request.status is not None:
        query, params = query + " and w.status = %s", [*params, request.status.value]
    if request.priority is not None:
        query, params = query + " and w.priority = %s", [*params, request.priority.value]
    if request.overdue_only:
        query, params = query + f" and {OVERDUE}", [*params, now, now]
    query, params = keyset_query(query, params, request.first, request.after)
    cur = await conn.execute(query, params)
    return list(await cur.fetchall())


def overdue_counts_statement(org_id: str, hidden: list[ServiceCategory], now: datetime
                             ) -> tuple[str, tuple[Any, ...]]:
    """The statement of ``overdue_counts`` and its parameters (``bench/overdue_counts.py`` explains it).

    One count per overdue arm and side, each an equality on the organisation and the state, so each
    reads a range of one of the open-referral indexes of migration 0009 (not every referral the
    organisation ever made or received)."""
    shown = [c.value for c in hidden]

    def count(side: str, arm: str, *extra: str) -> str:
        return f"(select count(*) from {_REFERRALS} where w.{side} = %s and {arm}{''.join(extra)})"

    not_hidden = " and w.service_category <> all(%s)"
    return (
        f"select {count('to_org_id', OVERDUE_PENDING)} as incoming_not_accepted,"
        f" {count('to_org_id', OVERDUE_ACCEPTED)} as accepted_without_outcome,"
        f" {count('from_org_id', OVERDUE_PENDING, not_hidden)} + {count('from_org_id', OVERDUE_ACCEPTED, not_hidden)}"
        " as outgoing_overdue",
        (org_id, now, org_id, now, org_id, now, shown, org_id, now, shown))


async def overdue_counts(conn: Connection, org_id: str, hidden: list[ServiceCategory], now: datetime
                         ) -> dict[str, int]:
    """The caller's organisation's overdue work, counted exactly as its lists show it."""
    cur = await conn.execute(*overdue_counts_statement(org_id, hidden, now))
    row = await cur.fetchone()
    assert row is not None
    return {k: int(v) for k, v in row.items()}


async def overdue_by_organisation(conn: Connection, hidden: list[ServiceCategory], now: datetime
                                  ) -> list[dict[str, Any]]:
    """For the coordinating body: per organisation, its overdue work as recipient and as referrer,
    leaving out the categories the coordinator's token may not see."""
    cur = await conn.execute(
        "select org_id, sum(incoming_not_accepted)::int as incoming_not_accepted,"
        " sum(accepted_without_outcome)::int as accepted_without_outcome,"
        " sum(outgoing_overdue)::int as outgoing_overdue from ("
        f"  select w.to_org_id as org_id, (w.status = '{PENDING}')::int as incoming_not_accepted,"
        f"   (w.status = '{ACCEPTED}')::int as accepted_without_outcome, 0 as outgoing_overdue"
        f"  from {_REFERRALS} where w.to_org_id is not null and w.service_category <> all(%s) and {OVERDUE}"
        "  union all"
        "  select w.from_org_id, 0, 0, 1"
        f"  from {_REFERRALS} where w.service_category <> all(%s) and {OVERDUE}"
        ") o group by org_id order by org_id",
        ([c.value for c in hidden], now, now, [c.value for c in hidden], now, now))
    return list(await cur.fetchall())
