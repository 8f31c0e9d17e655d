"""Routing with its I/O: a new arrival's needs to directory services by the rules in force, and a
referral re-routed to the next provider. Each step writes its rows and their events in the caller's
transaction (outbox), so a need is never routed without being announced, nor announced without
being stored. The decisions themselves are ``domain``'s (pure)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from contracts.channels import NEED_UNASSIGNED, REFERRAL_CREATED, REFERRAL_STATUS_CHANGED
from contracts.events import ArrivalRegisteredV1, NeedUnassignedV1, ReferralCreatedV1, ReferralStatusChangedV1
from contracts.reference import LegalBasis, Priority, ReferralStatus, ServiceCategory, UnassignedReason
from kernel.db import Connection
from kernel.outbox import add_event
from services.referral import domain, family_store, store
from services.referral.domain import Person, RuleSet

REROUTABLE = frozenset({ReferralStatus.PENDING, ReferralStatus.REJECTED})  # and any escalated open referral


async def route_arrival(conn: Connection, arrival: ArrivalRegisteredV1, now: datetime, rules: RuleSet
                        ) -> list[dict[str, Any]]:
    """Make the referrals a new arrival's needs call for (``route_case``)."""
    return await route_case(conn, arrival.case_id, Person.from_arrival(arrival), now, rules)


async def route_case(conn: Connection, case_id: str, person: Person, now: datetime, rules: RuleSet,
                     referred: Collection[ServiceCategory] = (),
                     exclude: Mapping[ServiceCategory, Collection[str]] | None = None) -> list[dict[str, Any]]:
    """Make the referrals a case's needs call for (``domain.plan_referrals``), each announced:
    REFERRAL_CREATED for a referral to a provider, NEED_UNASSIGNED for a need no provider fits.
    Reads only the services of the needed categories covering the needed regions. Returns the rows
    written: none for a need routed already (a redelivered event) or in ``referred`` (categories the
    case has a referral for, whoever made it). ``exclude``: per category, organisations not to refer to
    (those a need moved by a correction went to already)."""
    needs = [n for n in domain.needs_of(person, rules) if n.category not in referred]
    if not needs:
        return []
    regions = sorted({r for r in (rules.region_served(n, person) for n in needs) if r is not None})
    providers = await store.providers(conn, sorted({n.category for n in needs}), regions)
    family = await family_store.family_services(conn, case_id, person.owner_org_id)  # one provider, where allowed
    plans = domain.plan_referrals(person, providers, now, rules, family, needs, exclude)
    inserted = await store.insert_referrals(conn, case_id, person.owner_org_id, plans)
    await family_store.record_reasons(conn, inserted)
    rows = [_planned_row(referral_id, case_id, person.owner_org_id, plan) for referral_id, plan in inserted]
    async with conn.pipeline():  # the outbox writes need no answer: one round trip for all of them
        for row in rows:
            await (announce_unassigned(conn, row) if row["to_org_id"] is None else announce_created(conn, row))
    return rows


def _planned_row(referral_id: Any, case_id: str, owner_org_id: str, plan: domain.PlannedReferral) -> dict[str, Any]:
    """The columns the announcements need, as inserted (no second read of the row)."""
    return {"id": referral_id, "case_id": case_id, "case_owner_org_id": owner_org_id,
            "from_org_id": owner_org_id, "to_org_id": plan.to_org_id, "service_category": plan.category.value,
            "priority": plan.priority.value, "legal_basis": plan.legal_basis.value if plan.legal_basis else None,
            "status": plan.status.value, "due_at": plan.due_at, "reason_code": plan.reason_code,
            "rule_id": plan.rule_id, "rerouted_from": None,
            "unassigned_reason": plan.unassigned_reason.value if plan.unassigned_reason else None}


async def announce_created(conn: Connection, row: dict[str, Any], rerouted_by: str | None = None) -> None:
    """A new referral; a re-routed one also names the referral it replaces and who moved it."""
    await add_event(conn, store.SCHEMA, REFERRAL_CREATED, ReferralCreatedV1(
        referral_id=str(row["id"]), case_id=str(row["case_id"]), from_org_id=row["from_org_id"],
        to_org_id=row["to_org_id"], service_category=ServiceCategory(row["service_category"]),
        priority=Priority(row["priority"]), legal_basis=_basis(row), status=ReferralStatus(row["status"]),
        due_at=row["due_at"], reason_code=row["reason_code"], case_owner_org_id=row["case_owner_org_id"],
        rerouted_from=_rerouted_from(row), rerouted_by_org_id=rerouted_by if _rerouted_from(row) else None,
    ), subject=str(row["id"]))


async def announce_unassigned(conn: Connection, row: dict[str, Any], rerouted_by: str | None = None) -> None:
    """Tell the registering organisation and the coordinating body (through notifications): ids and codes
    only; a need re-routed to nobody also names who referred it and who re-routed it."""
    rerouted_from = _rerouted_from(row)
    await add_event(conn, store.SCHEMA, NEED_UNASSIGNED, NeedUnassignedV1(
        referral_id=str(row["id"]), case_id=str(row["case_id"]), owner_org_id=row["case_owner_org_id"],
        service_category=ServiceCategory(row["service_category"]), priority=Priority(row["priority"]),
        reason=UnassignedReason(row["unassigned_reason"]), rule_id=row.get("rule_id"), rerouted_from=rerouted_from,
        from_org_id=row["from_org_id"] if rerouted_from else None,
        rerouted_by_org_id=rerouted_by if rerouted_from else None,
    ), subject=str(row["id"]))


def _rerouted_from(row: dict[str, Any]) -> str | None:
    return str(row["rerouted_from"]) if row.get("rerouted_from") else None


async def announce_status(conn: Connection, row: dict[str, Any], old_status: ReferralStatus) -> None:
    await add_event(conn, store.SCHEMA, REFERRAL_STATUS_CHANGED, ReferralStatusChangedV1(
        referral_id=str(row["id"]), case_id=str(row["case_id"]), from_org_id=row["from_org_id"],
        to_org_id=row["to_org_id"], service_category=ServiceCategory(row["service_category"]),
        priority=Priority(row["priority"]), legal_basis=_basis(row), old_status=old_status,
        new_status=ReferralStatus(row["status"]), reason_code=row["status_reason"],
    ), subject=str(row["id"]))


def _basis(row: dict[str, Any]) -> LegalBasis | None:
    return LegalBasis(row["legal_basis"]) if row["legal_basis"] else None


def reroutable(row: dict[str, Any]) -> bool:
    """PENDING, REJECTED, or escalated while still waiting for an answer; not already re-routed."""
    escalated = row.get("escalated_at") is not None and row["status"] in (ReferralStatus.PENDING,
                                                                           ReferralStatus.AWAITING_CONSENT)
    return row.get("rerouted_to") is None and (row["status"] in REROUTABLE or escalated)


async def reroute_referral(conn: Connection, row: dict[str, Any], now: datetime, actor: str,
                           reason: str | None = None, *, by_org: str | None = None) -> dict[str, Any]:
    """Send the need of ``row`` (locked by the caller, ``reroutable``) on to the next provider in
    ``domain.tie_order``, leaving out every organisation the need was already referred to and the
    case's owner. The new referral (origin REROUTE, ``rerouted_from``) takes the need's priority,
    region, rule and rules version, and a fresh deadline; when no provider is left it is UNASSIGNED
    with its reason (same notices as routing). The old referral keeps its history: an open one is
    REVOKED with reason REROUTED, a rejected one stays REJECTED; both point to the new one
    (``rerouted_to``). ``actor`` is the token subject (a person, or ``service:referral`` when the
    deadline scan escalates) and ``by_org`` its organisation (none: the platform), announced with the
    new referral so that the referring organisation and the case owner are told when someone else
    moved it. A referral no rule made (a person's) is served in the destination
    region. ``reason`` (a code: NO_ANSWER, ESCALATED…) is kept as the new referral's status_reason.
    Returns the new referral's row."""
    case = await store.get_case(conn, row["case_id"])
    person = store.person_of(case) if case else None
    category = ServiceCategory(row["service_category"])
    made_by_rule = row.get("rules_version") is not None
    region = row["need_region"] if made_by_rule else (person.destination_region if person else None)
    due_in = row.get("due_in") or (row["due_at"] - row["created_at"])
    without_consent = LegalBasis(row["basis_without_consent"]) if row.get("basis_without_consent") else None
    exclude = await store.tried_orgs(conn, row["id"]) | {row["case_owner_org_id"]}
    providers = await store.providers(conn, [category], [region] if region else [])
    family = await family_store.family_services(conn, row["case_id"], row["case_owner_org_id"])
    provider, provider_reason = domain.choose_for_family(providers, category, region, person, exclude,
                                                         family.get(category, set()), without_consent)
    common = dict(category=category, priority=Priority(row["priority"]), due_at=now + due_in,
                  reason_code=row["reason_code"], rule_id=row["rule_id"], rules_version=row["rules_version"],
                  need_region=region, basis_without_consent=without_consent, due_in=due_in)
    if provider is None:
        plan = domain.PlannedReferral(
            to_org_id=None, legal_basis=None, status=ReferralStatus.UNASSIGNED,
            unassigned_reason=domain.unassigned_reason(providers, category, region, person, exclude),
            **common)  # type: ignore[arg-type]
    else:
        basis, status = domain.consent_basis(list(person.recipients) if person else [], provider.org_id,
                                             provider.org_type, without_consent)
        plan = domain.PlannedReferral(to_org_id=provider.org_id, service_id=provider.service_id, legal_basis=basis,
                                      status=status, provider_reason=provider_reason,
                                      **common)  # type: ignore[arg-type]
    old_status = ReferralStatus(row["status"])
    if old_status != ReferralStatus.REJECTED:
        closed = await store.set_status(conn, row["id"], ReferralStatus.REVOKED, row["legal_basis"], "REROUTED")
        await announce_status(conn, closed, old_status)
    new = await store.insert_reroute(conn, row, plan, actor, reason)
    if plan.provider_reason is not None:
        await family_store.record_reasons(conn, [(new["id"], plan)])
        new = {**new, "provider_reason": plan.provider_reason.value}
    await (announce_unassigned(conn, new, by_org) if plan.to_org_id is None else announce_created(conn, new, by_org))
    return new
