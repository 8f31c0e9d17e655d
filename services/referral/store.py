"""Referral's tables (schema ``referral``)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from psycopg import sql
from psycopg.types.json import Jsonb

from contracts.events import ArrivalRegisteredV1, CaseCorrectedV1, SharingRecipient
from contracts.reference import (
    ArrivalPoint,
    Priority,
    ReferralOrigin,
    ReferralStatus,
    ServiceCategory,
    Sex,
    Vulnerability,
)
from kernel.audit import Trail
from kernel.db import Connection, update_if_newer
from kernel.pagination import keyset_query
from services.referral.domain import Person, PlannedReferral, Provider

SCHEMA = "referral"
TRAIL = Trail(SCHEMA)  # referral's audit trail: one call per handler
_URGENT_FIRST = [p.value for p in Priority]  # the order of the enum: URGENT, HIGH, NORMAL


_PROVIDER_COLUMNS = ("select s.id, s.organization_id, s.category, s.regions, o.org_type, s.minimum_age, s.maximum_age,"
                     " s.sexes, s.vulnerabilities, s.capacity_available, s.capacity_maximum from referral.services s"
                     " join referral.organizations o on o.id = s.organization_id where s.status = 'active' and s.approved")


def _provider(r: dict[str, Any]) -> Provider:
    return Provider(r["organization_id"], ServiceCategory(r["category"]), frozenset(r["regions"]), r["org_type"],
                    str(r["id"]), r["minimum_age"], r["maximum_age"], frozenset(r["sexes"]),
                    frozenset(r["vulnerabilities"]), r["capacity_available"], r["capacity_maximum"])


async def providers(conn: Connection, categories: list[ServiceCategory] | None = None,
                    regions: list[str] | None = None) -> list[Provider]:
    """Active directory services in use (approved), only of ``categories`` and only those covering one of ``regions``
    (or national) when given: routing one arrival reads the few dozen rows it can use, not the
    directory (one indexed query)."""
    query, params = _PROVIDER_COLUMNS, []
    if categories is not None:
        query += " and s.category = any(%s)"
        params.append([c.value for c in categories])
    if regions is not None:
        query += " and (s.regions = '{}' or s.regions && %s::text[])"
        params.append(regions)
    cur = await conn.execute(query, params)
    return [_provider(r) for r in await cur.fetchall()]


async def services_by_id(conn: Connection, service_ids: Iterable[uuid.UUID | str]) -> dict[str, Provider]:
    """The active directory services in use among ``service_ids``, by id (one query)."""
    ids = [uuid.UUID(str(i)) for i in service_ids]
    if not ids:
        return {}
    cur = await conn.execute(_PROVIDER_COLUMNS + " and s.id = any(%s)", (ids,))
    return {str(r["id"]): _provider(r) for r in await cur.fetchall()}


async def directory_service(conn: Connection, service_id: uuid.UUID) -> Provider | None:
    """One active directory service in use (approved, ``directory``), as routing sees it, or None."""
    cur = await conn.execute(_PROVIDER_COLUMNS + " and s.id = %s", (service_id,))
    row = await cur.fetchone()
    return _provider(row) if row else None


_INSERT = (
    "insert into referral.referrals (id, case_id, case_owner_org_id, from_org_id, to_org_id, service_category,"
    " priority, legal_basis, status, reason_code, due_at, service_id, origin, rule_id, rules_version,"
    " unassigned_reason, need_region, basis_without_consent, due_in, rerouted_from, made_by)"
    " values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)


def _values(referral_id: uuid.UUID, case_id: str | uuid.UUID, owner_org_id: str, from_org_id: str,
            plan: PlannedReferral, origin: ReferralOrigin, rerouted_from: uuid.UUID | None,
            made_by: str | None) -> tuple[Any, ...]:
    return (referral_id, case_id, owner_org_id, from_org_id, plan.to_org_id, plan.category.value, plan.priority.value,
            plan.legal_basis.value if plan.legal_basis else None, plan.status.value, plan.reason_code, plan.due_at,
            uuid.UUID(plan.service_id) if plan.service_id else None, origin.value, plan.rule_id, plan.rules_version,
            plan.unassigned_reason.value if plan.unassigned_reason else None, plan.need_region,
            plan.basis_without_consent.value if plan.basis_without_consent else None, plan.due_in, rerouted_from,
            made_by)


# One live referral per need of a case, made by the rules or a re-routing (index referrals_one_per_need).
_ONE_PER_NEED = (" on conflict (case_id, service_category) where origin <> 'MANUAL'"
                 " and status in ('PENDING', 'AWAITING_CONSENT', 'ACCEPTED', 'UNASSIGNED') do nothing")


async def insert_referral(
    conn: Connection, case_id: str, owner_org_id: str, plan: PlannedReferral
) -> uuid.UUID | None:
    """Insert a rule's referral unless this case already has one for that need; the new id, or None."""
    referral_id = uuid.uuid4()
    cur = await conn.execute(
        _INSERT + _ONE_PER_NEED,
        _values(referral_id, case_id, owner_org_id, owner_org_id, plan, ReferralOrigin.RULE, None, None),
    )
    return referral_id if cur.rowcount == 1 else None


async def insert_referrals(conn: Connection, case_id: str, owner_org_id: str, plans: list[PlannedReferral]
                           ) -> list[tuple[uuid.UUID, PlannedReferral]]:
    """Insert a new case's referrals in one statement, except needs it already has (a redelivered
    event); returns the (id, plan) of those inserted."""
    if not plans:
        return []
    ids = [uuid.uuid4() for _ in plans]
    rows = [_values(referral_id, case_id, owner_org_id, owner_org_id, plan, ReferralOrigin.RULE, None, None)
            for referral_id, plan in zip(ids, plans, strict=True)]
    cur = await conn.execute(_INSERT_MANY, [list(column) for column in zip(*rows, strict=True)])
    inserted = {r["id"] for r in await cur.fetchall()}
    return [(referral_id, plan) for referral_id, plan in zip(ids, plans, strict=True) if referral_id in inserted]


# One statement of fixed text for any number of referrals (its plan and conversion are cached).
_TYPES = ("uuid", "uuid", "text", "text", "text", "text", "text", "text", "text", "text", "timestamptz", "uuid",
          "text", "text", "text", "text", "text", "text", "interval", "uuid", "text")
_INSERT_MANY = (_INSERT.split(" values ")[0] + " select * from unnest("
                + ", ".join(f"%s::{t}[]" for t in _TYPES)
                + ")" + _ONE_PER_NEED + " returning id")


async def insert_reroute(conn: Connection, old: dict[str, Any], plan: PlannedReferral, made_by: str,
                         reason: str | None) -> dict[str, Any]:
    """The referral that takes over ``old``'s need (origin REROUTE, ``reason`` as its status_reason),
    and ``old`` pointing to it."""
    referral_id = uuid.uuid4()
    await conn.execute(_INSERT, _values(referral_id, old["case_id"], old["case_owner_org_id"], old["from_org_id"],
                                        plan, ReferralOrigin.REROUTE, old["id"], made_by))
    if reason:
        await conn.execute("update referral.referrals set status_reason = %s where id = %s", (reason, referral_id))
    await conn.execute("update referral.referrals set rerouted_to = %s, updated_at = now() where id = %s",
                       (referral_id, old["id"]))
    row = await get_for_update(conn, referral_id)
    assert row is not None
    return row


async def link_reroutes(conn: Connection, links: list[tuple[uuid.UUID, uuid.UUID]]) -> None:
    """Link each (old, new): the rejected referral points to the one that took its need over (so it is not
    re-routed again), and that one back to it (so a later re-routing does not ask its provider again)."""
    for old, new in links:
        await conn.execute("update referral.referrals set rerouted_to = %s, updated_at = now() where id = %s",
                           (new, old))
        await conn.execute("update referral.referrals set rerouted_from = %s where id = %s"
                           " and rerouted_from is null", (old, new))


async def tried_orgs(conn: Connection, referral_id: uuid.UUID) -> set[str]:
    """The organisations this need was already referred to: the referral and every one it was re-routed from."""
    cur = await conn.execute(
        "with recursive chain (id, to_org_id, rerouted_from) as ("
        " select id, to_org_id, rerouted_from from referral.referrals where id = %s"
        " union all select r.id, r.to_org_id, r.rerouted_from from referral.referrals r"
        " join chain c on r.id = c.rerouted_from)"
        " select distinct to_org_id from chain where to_org_id is not null", (referral_id,))
    return {r["to_org_id"] for r in await cur.fetchall()}


async def unassigned(conn: Connection, org_id: str, every_case: bool, hidden: list[ServiceCategory], first: int,
                     after: str | None) -> list[dict[str, Any]]:
    """Unmet needs, newest first: of the cases ``org_id`` registered or referred, or of every case
    (``every_case``: the coordinating body); none of the ``hidden`` (sensitive) categories."""
    query = "select * from referral.referrals where status = %s and service_category <> all(%s)"
    params: list[Any] = [ReferralStatus.UNASSIGNED.value, [c.value for c in hidden]]
    if not every_case:
        query += " and (case_owner_org_id = %s or from_org_id = %s)"
        params += [org_id, org_id]
    query, params = keyset_query(query, params, first, after)
    cur = await conn.execute(query, params)
    return list(await cur.fetchall())


async def assign(conn: Connection, referral_id: uuid.UUID, provider: Provider, status: ReferralStatus,
                 legal_basis: str | None, due_at: datetime, assigned_by: str, assigned_by_org: str
                 ) -> dict[str, Any]:
    cur = await conn.execute(
        "update referral.referrals set to_org_id = %s, service_id = %s, status = %s, legal_basis = %s,"
        " status_reason = 'ASSIGNED', due_at = %s, assigned_by = %s, assigned_by_org = %s, assigned_at = now(),"
        " updated_at = now() where id = %s returning *",
        (provider.org_id, uuid.UUID(provider.service_id) if provider.service_id else None, status.value, legal_basis,
         due_at, assigned_by, assigned_by_org, referral_id),
    )
    row = await cur.fetchone()
    assert row is not None
    return row


async def case_referrals(conn: Connection, case_ids: list[uuid.UUID], org_id: str,
                         hidden: list[ServiceCategory]) -> list[dict[str, Any]]:
    """The referrals of a case (its ids: merged registrations too) that exist for ``org_id``: the case
    owner's and the referring organisation's, except those to ``hidden`` (sensitive) services; the
    recipient's own once live (a referral awaiting consent does not exist for its would-be recipient)."""
    cur = await conn.execute(
        "select * from referral.referrals where case_id = any(%s)"
        " and (((case_owner_org_id = %s or from_org_id = %s) and service_category <> all(%s))"
        "      or (to_org_id = %s and status <> %s))"
        " order by array_position(%s::text[], priority), created_at, id",
        (case_ids, org_id, org_id, [c.value for c in hidden], org_id, ReferralStatus.AWAITING_CONSENT.value,
         _URGENT_FIRST),
    )
    return list(await cur.fetchall())


async def upsert_directory_service(conn: Connection, org_id: str, name: str, org_type: str, category: str,
                                   regions: list[str]) -> None:
    await conn.execute(
        "insert into referral.organizations (id, name, org_type) values (%s, %s, %s)"
        " on conflict (id) do update set name = excluded.name, org_type = excluded.org_type",
        (org_id, name, org_type),
    )
    await conn.execute(
        "insert into referral.services (id, organization_id, name_fr, category, regions)"
        " select %s, %s, %s, %s, %s where not exists"
        " (select 1 from referral.services where organization_id = %s and category = %s)",
        (uuid.uuid4(), org_id, category, category, regions, org_id, category),
    )


async def org_types(conn: Connection, org_ids: list[str]) -> dict[str, str]:
    """The type of each organisation (as the directory knows it), in one query."""
    cur = await conn.execute(
        "select id, org_type from referral.organizations where id = any(%s)", (org_ids,),
    )
    return {r["id"]: r["org_type"] for r in await cur.fetchall()}


async def referrals_of_case(conn: Connection, case_id: uuid.UUID, *, lock: bool = False) -> list[dict[str, Any]]:
    """Every referral of the case, oldest first (locked when their state is about to change)."""
    return await referrals_of_cases(conn, [case_id], lock=lock)


async def referrals_of_cases(conn: Connection, case_ids: list[uuid.UUID], *, lock: bool = False
                             ) -> list[dict[str, Any]]:
    """Every referral of these cases (a person's registrations), oldest first (locked: see above)."""
    cur = await conn.execute("select * from referral.referrals where case_id = any(%s) order by created_at, id"
                             + (" for update" if lock else ""), (case_ids,))
    return list(await cur.fetchall())


async def get_for_update(conn: Connection, referral_id: uuid.UUID) -> dict[str, Any] | None:
    cur = await conn.execute("select * from referral.referrals where id = %s for update", (referral_id,))
    return await cur.fetchone()


async def set_status(conn: Connection, referral_id: uuid.UUID | str, status: ReferralStatus,
                     legal_basis: str | None, reason: str | None) -> dict[str, Any]:
    cur = await conn.execute(
        "update referral.referrals set status = %s, legal_basis = %s, status_reason = %s, updated_at = now()"
        " where id = %s returning *",
        (status.value, legal_basis, reason, referral_id if isinstance(referral_id, uuid.UUID) else uuid.UUID(referral_id)),
    )
    row = await cur.fetchone()
    assert row is not None
    return row


# --- deadlines: claim the referrals a mark is due for, then set the mark (services/referral/deadlines.py) ---
# Literal states (not parameters) so the planner always matches the partial indexes of 0008_deadlines.sql.
_DEADLINE_FACTS = ("r.id, r.case_id, r.from_org_id, r.to_org_id, r.service_category, r.priority, r.legal_basis,"
                   " r.status, r.due_at, r.accepted_at, r.outcome_code, r.reminded_at, r.escalated_at,"
                   " r.overdue_flagged_at")
CLAIM_AWAITING_REMINDER = (
    f"select {_DEADLINE_FACTS}, null::interval as expected_duration from referral.referrals r"
    f" where r.status = '{ReferralStatus.PENDING.value}' and r.reminded_at is null and r.due_at <= %(now)s"
    " and r.to_org_id is not null order by r.due_at limit %(limit)s for update of r skip locked")
# Per service with a duration, one index range of its accepted referrals (a nested loop: a plain join
# makes the planner hash-join every accepted referral). Rows locked beyond the outer limit stay locked
# until the batch commits, and are the next batch's.
CLAIM_AWAITING_OUTCOME = (
    f"select {_DEADLINE_FACTS}, s.expected_duration from referral.services s cross join lateral"
    " (select * from referral.referrals x where x.service_id = s.id"
    f"  and x.status = '{ReferralStatus.ACCEPTED.value}' and x.overdue_flagged_at is null and x.outcome_code is null"
    "   and x.accepted_at <= %(now)s - s.expected_duration and x.to_org_id is not null"
    "   order by x.accepted_at limit %(limit)s for update skip locked) r"
    " where s.expected_duration is not null order by r.accepted_at limit %(limit)s")


def claim_awaiting_escalation(cutoffs: dict[Priority, datetime]) -> tuple[str, dict[str, Any]]:
    """The query claiming pending referrals past their priority's cutoff (due time + grace <= now),
    one index range per priority, and its parameters (besides ``limit``)."""
    ranges = " or ".join(f"(r.priority = %(p{i})s and r.due_at <= %(c{i})s)" for i in range(len(cutoffs)))
    params: dict[str, Any] = {}
    for i, (priority, cutoff) in enumerate(sorted(cutoffs.items())):
        params |= {f"p{i}": priority.value, f"c{i}": cutoff}
    query = (f"select {_DEADLINE_FACTS}, null::interval as expected_duration from referral.referrals r"
             f" where r.status = '{ReferralStatus.PENDING.value}' and r.escalated_at is null"
             f" and ({ranges or 'false'}) and r.to_org_id is not null"
             " order by r.due_at limit %(limit)s for update of r skip locked")
    return query, params


async def claim(conn: Connection, query: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Lock the rows a deadline query finds; rows another transaction holds are skipped (a concurrent
    scan, or someone accepting the referral right now) and picked up by a later scan if still due."""
    cur = await conn.execute(query, params)  # type: ignore[arg-type]
    return list(await cur.fetchall())


_MARK_COLUMNS = frozenset({"reminded_at", "escalated_at", "overdue_flagged_at"})


async def set_mark(conn: Connection, column: str, referral_ids: list[uuid.UUID], at: datetime) -> int:
    """Set a deadline mark once: a mark already set is never moved."""
    assert column in _MARK_COLUMNS
    cur = await conn.execute(
        sql.SQL("update referral.referrals set {col} = %s where id = any(%s) and {col} is null").format(
            col=sql.Identifier(column)),
        (at, referral_ids))
    return cur.rowcount


async def save_case(conn: Connection, arrival: ArrivalRegisteredV1, recipients: list[SharingRecipient]) -> bool:
    """Remember a new case's routing facts and who it may be shared with for referral (its sharing
    version: the registration's); False when it was known already. A known case keeps its coverage and
    facts: whatever came after is newer."""
    cur = await conn.execute(
        "insert into referral.cases (case_id, owner_org_id, arrival_point, arrival_date, destination_region,"
        " is_child, sex, age_years, vulnerabilities, referral_recipients, sharing_version)"
        " values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) on conflict (case_id) do nothing",
        (arrival.case_id, arrival.owner_org_id, arrival.arrival_point.value, arrival.arrival_date,
         arrival.destination_region, arrival.is_child, arrival.sex.value, arrival.age_years,
         [v.value for v in arrival.vulnerabilities], _recipients_json(recipients), arrival.sharing_version),
    )
    return cur.rowcount == 1


async def set_case_recipients(conn: Connection, case_id: str, recipients: list[SharingRecipient], version: int
                              ) -> bool | None:
    """Apply a sharing change's coverage if newer than the one held (``kernel.db.update_if_newer``)."""
    return await update_if_newer(conn, "referral.cases", ("case_id", case_id),
                                 {"referral_recipients": _recipients_json(recipients)}, version, stamp="updated_at")


def corrected_facts(corrected: CaseCorrectedV1) -> dict[str, Any]:
    """The routing facts a correction gives, as ``referral.cases`` holds them."""
    return {"destination_region": corrected.destination_region, "is_child": corrected.is_child,
            "sex": corrected.sex.value, "age_years": corrected.age_years,
            "vulnerabilities": [v.value for v in corrected.vulnerabilities]}


def same_facts(held: dict[str, Any], facts: dict[str, Any]) -> bool:
    """Whether ``facts`` (``corrected_facts``) are the routing facts ``held`` already (flags in any order)."""
    return all(sorted(held[k]) == sorted(v) if k == "vulnerabilities" else held[k] == v for k, v in facts.items())


async def correct_case(conn: Connection, corrected: CaseCorrectedV1) -> bool | None:
    """Apply a correction's routing facts if newer than those held (the case's version; 1 at registration)."""
    return await update_if_newer(conn, "referral.cases", ("case_id", corrected.case_id), corrected_facts(corrected),
                                 corrected.version, version_column="case_version", stamp="updated_at")


async def get_case(conn: Connection, case_id: uuid.UUID | str, *, lock: bool = False) -> dict[str, Any] | None:
    """The case as the referral service knows it (routing facts, referral recipients), or None; locked until
    commit when its facts are about to change."""
    cur = await conn.execute("select * from referral.cases where case_id = %s" + (" for update" if lock else ""),
                             (case_id,))
    return await cur.fetchone()


def case_recipients(row: dict[str, Any]) -> list[SharingRecipient]:
    return [SharingRecipient.model_validate(r) for r in row["referral_recipients"]]


def _recipients_json(recipients: list[SharingRecipient]) -> Jsonb:
    return Jsonb([r.model_dump(mode="json") for r in recipients])


def person_of(case: dict[str, Any]) -> Person:
    """The routing facts of a stored case, as routing needs them."""
    return Person(case["owner_org_id"], ArrivalPoint(case["arrival_point"]), case["destination_region"],
                  case["is_child"], Sex(case["sex"]), case["age_years"],
                  frozenset(Vulnerability(v) for v in case["vulnerabilities"]), tuple(case_recipients(case)))
