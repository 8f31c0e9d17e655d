"""The views people work from: referrals addressed to their organisation, referrals it made, and
how many of each are overdue.

What a list shows, a count counts: a referral to a sensitive service is absent from the outgoing
list (and from its count) for a token without that category's scope, as in ``store.case_referrals``;
the recipient always sees its own incoming work. "Overdue" depends on the time, which every
function takes as ``clock`` (the endpoints use the wall clock; tests move it).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg_pool import AsyncConnectionPool

from contracts.commands import OverdueCountsRequest, ReferralListRequest
from contracts.reference import hidden_services
from contracts.replies import OverdueCounts, OverdueCountsView, Page, ReferralView
from kernel.audit import AuditPurpose
from kernel.clock import Clock, utcnow
from kernel.config import coordinator_org_id
from kernel.db import Connection
from kernel.pagination import page
from kernel.tokens import Principal
from services.referral import manual_store, store
from services.referral.views import audit_categories, referral_view


async def shown(conn: Connection, rows: list[dict[str, Any]], principal: Principal, now: datetime
                ) -> list[ReferralView]:
    """Rows the caller may see, as the caller sees them (note and author per organisation, overdue as of now)."""
    return [referral_view(r, viewer=principal.org_id, now=now) for r in await manual_store.with_durations(conn, rows)]


async def _worklist(incoming: bool, pool: AsyncConnectionPool, principal: Principal, request: ReferralListRequest,
                    clock: Clock) -> Page[ReferralView]:
    now = clock()
    async with pool.connection() as conn, conn.transaction():
        rows = await manual_store.worklist(conn, incoming=incoming, org_id=principal.org_id,
                                           hidden=hidden_services(principal.scopes), request=request, now=now)
        found = page(rows, request.first)
        result = Page[ReferralView](nodes=await shown(conn, found["nodes"], principal, now),
                                    page_info=found["page_info"])
        if result.nodes:
            await store.TRAIL.allowed(conn, principal, f"referral.list_{'incoming' if incoming else 'outgoing'}",
                                      {n.case_id for n in result.nodes}, audit_categories(result.nodes),
                                      AuditPurpose.REFERRAL)
    return result


async def incoming(pool: AsyncConnectionPool, principal: Principal, request: ReferralListRequest, *,
                   clock: Clock = utcnow) -> Page[ReferralView]:
    """Referrals addressed to the caller's organisation, newest first, filtered by status, priority, overdue."""
    return await _worklist(True, pool, principal, request, clock)


async def outgoing(pool: AsyncConnectionPool, principal: Principal, request: ReferralListRequest, *,
                   clock: Clock = utcnow) -> Page[ReferralView]:
    """Referrals the caller's organisation made (by its people or by rules on its cases), with their state."""
    return await _worklist(False, pool, principal, request, clock)


async def overdue_counts(pool: AsyncConnectionPool, principal: Principal, request: OverdueCountsRequest, *,
                         clock: Clock = utcnow, coordinator: str | None = None) -> OverdueCountsView:
    """Counts, not records: no case id leaves (the audit entry names none). The coordinating body also
    gets every organisation's counts, without the categories its token may not see."""
    now, hidden = clock(), hidden_services(principal.scopes)
    async with pool.connection() as conn, conn.transaction():
        own = await manual_store.overdue_counts(conn, principal.org_id, hidden, now)
        others = None
        if principal.org_id == (coordinator or coordinator_org_id()):
            others = [OverdueCounts(**r) for r in await manual_store.overdue_by_organisation(conn, hidden, now)]
        await store.TRAIL.allowed(conn, principal, "referral.overdue_counts", [], ["referral"], AuditPurpose.REFERRAL)
    return OverdueCountsView(org_id=principal.org_id, **own, by_organisation=others)
