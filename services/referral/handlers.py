"""Referral's event handler and queries."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from psycopg_pool import AsyncConnectionPool

from contracts.channels import REFERRAL_CREATED
from contracts.commands import CaseRef, PageRequest
from contracts.events import ArrivalRegisteredV1, ReferralCreatedV1
from kernel.db import Connection
from kernel.errors import BadInput
from kernel.events import CloudEvent
from kernel.outbox import add_event
from kernel.pagination import page
from kernel.tokens import Principal
from services.referral import domain, store


async def on_arrival_registered(conn: Connection, event: CloudEvent) -> None:
    """Route a new arrival: create the referrals its screening calls for, and announce them."""
    arrival = ArrivalRegisteredV1.model_validate(event.data)
    plans = domain.plan_referrals(arrival, await store.providers(conn), datetime.now(UTC))
    for plan in plans:
        referral_id = await store.insert_referral(conn, arrival.case_id, arrival.owner_org_id, plan)
        if referral_id is None:
            continue
        await add_event(
            conn, store.SCHEMA, REFERRAL_CREATED,
            ReferralCreatedV1(
                referral_id=str(referral_id), case_id=arrival.case_id, from_org_id=arrival.owner_org_id,
                to_org_id=plan.to_org_id, service_category=plan.category, priority=plan.priority,
                legal_basis=plan.legal_basis, status=plan.status, due_at=plan.due_at, reason_code=plan.reason_code,
            ),
            subject=str(referral_id),
        )


def referral_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "case_id": str(row["case_id"]),
        "from_org_id": row["from_org_id"],
        "to_org_id": row["to_org_id"],
        "service_category": row["service_category"],
        "priority": row["priority"],
        "legal_basis": row["legal_basis"],
        "status": row["status"],
        "reason_code": row["reason_code"],
        "due_at": row["due_at"],
        "created_at": row["created_at"],
    }


async def case_referrals(pool: AsyncConnectionPool, principal: Principal, payload: dict[str, Any]) -> list[dict[str, Any]]:
    principal.require("referrals:read")
    try:
        case_id = uuid.UUID(CaseRef.model_validate(payload).case_id)
    except ValueError:
        raise BadInput("Not a case identifier.", field="case_id") from None
    async with pool.connection() as conn:
        rows = await store.case_referrals(conn, case_id, principal.org_id)
    return [referral_view(r) for r in rows]


async def incoming(pool: AsyncConnectionPool, principal: Principal, payload: dict[str, Any]) -> dict[str, Any]:
    principal.require("referrals:read")
    request = PageRequest.model_validate(payload)
    async with pool.connection() as conn:
        rows = await store.incoming(conn, principal.org_id, request.first, request.after)
    result = page(rows, request.first)
    result["nodes"] = [referral_view(r) for r in result["nodes"]]
    return result
