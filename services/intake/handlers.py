"""Intake's commands and queries: one function each, given the pool and the caller."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from psycopg_pool import AsyncConnectionPool

from contracts.channels import ARRIVAL_REGISTERED
from contracts.commands import CaseRef, RegisterArrivalRequest
from contracts.events import ArrivalRegisteredV1
from kernel.db import idempotent
from kernel.errors import BadInput, NotFound
from kernel.outbox import add_event
from kernel.tokens import Principal
from services.intake import domain, store


def case_view(case: dict[str, Any]) -> dict[str, Any]:
    consent = case.get("consent") or {}
    return {
        "id": str(case["id"]),
        "owner_org_id": case["owner_org_id"],
        "given_name": case["given_name"],
        "family_name": case["family_name"],
        "sex": case["sex"],
        "date_of_birth": case["date_of_birth"],
        "estimated_age": case["estimated_age"],
        "country_returned_from": case["country_returned_from"],
        "arrival_point": case["arrival_point"],
        "arrival_date": case["arrival_date"],
        "destination_region": case["destination_region"],
        "vulnerabilities": case["vulnerabilities"],
        "consent": {
            "given": bool(consent.get("given")),
            "recipient_org_ids": list(consent.get("recipient_org_ids") or []),
            "language": consent.get("language"),
        },
        "created_at": case["created_at"],
    }


async def register_arrival(pool: AsyncConnectionPool, principal: Principal, payload: dict[str, Any]) -> dict[str, Any]:
    principal.require("cases:write")
    request = RegisterArrivalRequest.model_validate(payload)
    arrival = request.arrival
    today = datetime.now(UTC).date()

    async def create() -> dict[str, Any]:
        case_id = uuid.uuid4()
        await store.insert_case(conn, case_id, principal.org_id, principal.subject, arrival)
        await add_event(
            conn,
            store.SCHEMA,
            ARRIVAL_REGISTERED,
            ArrivalRegisteredV1(
                case_id=str(case_id),
                owner_org_id=principal.org_id,
                arrival_point=arrival.arrival_point,
                arrival_date=arrival.arrival_date,
                destination_region=arrival.destination_region,
                is_child=domain.is_child(arrival, today),
                vulnerabilities=list(arrival.vulnerabilities),
                consent_given=arrival.consent.given,
                consent_recipient_org_ids=arrival.consent.recipient_org_ids,
            ),
            subject=str(case_id),
        )
        return {"case_id": str(case_id)}

    async with pool.connection() as conn, conn.transaction():
        result = await idempotent(
            conn, store.SCHEMA, org_id=principal.org_id, operation="register_arrival", key=request.idempotency_key,
            request=arrival.model_dump(mode="json"), produce=create,
        )
        case = await store.get_case(conn, uuid.UUID(result["case_id"]))
    assert case is not None
    return case_view(case)


def _case_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise BadInput("Not a case identifier.", field="case_id") from None


async def get_case(pool: AsyncConnectionPool, principal: Principal, payload: dict[str, Any]) -> dict[str, Any]:
    principal.require("cases:read")
    case_id = _case_id(CaseRef.model_validate(payload).case_id)
    async with pool.connection() as conn:
        case = await store.get_case(conn, case_id)
    # Same answer for "absent" and "not yours": existence of a case is itself personal data.
    if case is None or case["owner_org_id"] != principal.org_id:
        raise NotFound("No such case, or it is not shared with your organisation.", field="id")
    return case_view(case)
