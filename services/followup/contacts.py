"""Follow-up contacts: where a case stands against its schedule, kept for the work lists, and the
work lists themselves ("due this week", "overdue", "unreachable") for the managing organisation.

Where a case stands is computed by ``schedule.standing`` from the contacts logged and the day; what
the work lists need of it (the next contact to make, failures in a row, unreachable since when) is
kept on the case row whenever a contact is logged or a scan looks at the case, so that a list is one
index range of the caller's own open cases (decision record 0018), not a computation over them all.
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

from psycopg_pool import AsyncConnectionPool

from contracts.commands import ContactWorkListRequest, PageRequest
from contracts.replies import ContactDueView, Page, UnreachableCaseView
from kernel.audit import AuditPurpose
from kernel.clock import Clock, utcnow
from kernel.db import Connection
from kernel.pagination import date_page, page
from kernel.tokens import Principal
from services.followup import answering, domain, store, views
from services.followup.schedule import Attempt, Schedule, Standing, shipped, standing




def schedule_of(row: dict[str, Any]) -> Schedule:
    """The schedule (id and version) the case follows."""
    return shipped()[(row["schedule_id"], row["schedule_version"])]


def stand(row: dict[str, Any], attempts: list[Attempt], today: date) -> Standing:
    return standing(schedule_of(row), row["arrival_date"], attempts, today)


async def standing_of(conn: Connection, row: dict[str, Any], today: date) -> Standing:
    found = await store.attempts_of(conn, [row["case_id"]])
    return stand(row, found[row["case_id"]], today)


def last_attempt(attempts: list[Attempt]) -> date | None:
    return max((a.on for a in attempts), default=None)


def categories_read(row: dict[str, Any]) -> list[str]:
    """Audit categories of reading a case's contact notes and next steps: the note, and the case's
    sensitive categories (every one when they are not known)."""
    return ["contact_note", *domain.free_text_categories(row["sensitive_categories"])]


# --- work lists -------------------------------------------------------------------------------------


async def followups_due(pool: AsyncConnectionPool, principal: Principal, request: ContactWorkListRequest, *,
                        clock: Clock = utcnow) -> Page[ContactDueView]:
    """Open cases the caller's organisation manages whose next contact is due, or opens within
    ``within_days``; soonest first, no totals."""
    today = clock().date()
    async with pool.connection() as conn, conn.transaction():
        rows = await store.contacts_due(conn, principal.org_id, principal.org_type, today,
                                        today + timedelta(days=request.within_days), request.first, request.after)
        return await _contact_page(conn, principal, rows, request, today, "followup.list_due")


async def followups_overdue(pool: AsyncConnectionPool, principal: Principal, request: PageRequest, *,
                            clock: Clock = utcnow) -> Page[ContactDueView]:
    """Open cases the caller's organisation manages whose next contact is overdue; longest overdue first."""
    today = clock().date()
    async with pool.connection() as conn, conn.transaction():
        rows = await store.contacts_overdue(conn, principal.org_id, principal.org_type, today, request.first,
                                            request.after)
        return await _contact_page(conn, principal, rows, request, today, "followup.list_overdue")


async def _contact_page(conn: Connection, principal: Principal, rows: list[dict[str, Any]], request: PageRequest,
                        today: date, operation: str) -> Page[ContactDueView]:
    found = date_page(rows, request.first)
    result = Page[ContactDueView](nodes=[views.contact_due_view(r, today) for r in found["nodes"]],
                                  page_info=found["page_info"])
    if result.nodes:
        await store.TRAIL.allowed(conn, principal, operation, [n.case_id for n in result.nodes], answering.FOLLOW_UP,
                                  AuditPurpose.FOLLOW_UP)
    return result


async def unreachable_cases(pool: AsyncConnectionPool, principal: Principal, request: PageRequest
                            ) -> Page[UnreachableCaseView]:
    """Open cases the caller's organisation manages whose person could not be reached; latest first."""
    async with pool.connection() as conn, conn.transaction():
        found = page(await store.unreachable(conn, principal.org_id, principal.org_type, request.first, request.after),
                     request.first)
        result = Page[UnreachableCaseView](nodes=[views.unreachable_view(r) for r in found["nodes"]],
                                           page_info=found["page_info"])
        if result.nodes:
            await store.TRAIL.allowed(conn, principal, "followup.list_unreachable",
                                      [uuid.UUID(n.case_id) for n in result.nodes], answering.FOLLOW_UP,
                                      AuditPurpose.FOLLOW_UP)
    return result
