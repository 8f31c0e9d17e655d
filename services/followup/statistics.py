"""Follow-up statistics for the coordinating body (``statistics:read``): aggregates only, with
intake's suppression rule (``kernel.statistics``).

Counted per case: whether its first plan was saved within ``SEGIN_PLAN_DUE_DAYS`` of arrival (by
region, by arrival month), and the band of its latest composite score (by region, by months between
arrival and that survey). A cell is shown only when it holds at least ``minimum_cell`` cases the
caller's organisation neither registered nor manages (its own could be decoys), rounded to a multiple
of five. Contacts made on time: each scheduled contact whose fate is known (made by its overdue date,
made late, or not made), by contact (M1, M3…), from each case's standing against its own schedule.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from psycopg_pool import AsyncConnectionPool

from contracts.commands import FollowupStatisticsRequest
from contracts.reference import FollowupStatus
from contracts.replies import FollowupStatisticsView, StatisticsCell
from kernel.clock import Clock, utcnow
from kernel.config import plan_due_days
from kernel.statistics import minimum_cell, suppress_small_cells
from kernel.tokens import Principal
from services.followup import contacts, domain, store
from services.followup.schedule import Attempt

DIMENSIONS = 2  # every table crosses two dimensions (e.g. region × band)


def _cells(rows: Iterable[tuple[tuple[str, ...], bool]], minimum: int) -> list[StatisticsCell]:
    counts, own = domain.tally(rows)
    kept, _ = suppress_small_cells(counts, own, minimum)
    return [StatisticsCell(keys=list(keys), count=n) for keys, n in kept]


def _contacts(row: dict[str, Any], today: date) -> list[tuple[str, str]]:
    attempts = [Attempt(on, reached) for on, reached in zip(row["contact_dates"], row["reached"], strict=True)]
    return domain.contact_timeliness(contacts.stand(row, attempts, today), row["status"] == FollowupStatus.OPEN)


async def statistics(pool: AsyncConnectionPool, principal: Principal, request: FollowupStatisticsRequest, *,
                     clock: Clock = utcnow) -> FollowupStatisticsView:
    today, due_days, minimum = clock().date(), plan_due_days(), minimum_cell(DIMENSIONS)
    async with pool.connection() as conn:
        plans = await store.plan_rows(conn, principal.org_id)
        scores = await store.latest_composite_rows(conn, principal.org_id)
        contact_rows = await store.contact_rows(conn, principal.org_id)
    timeliness = [(r, domain.plan_timeliness(r["arrival_date"], r["first_plan_on"], today, due_days)) for r in plans]
    bands = [(r, r["composite_band"] or domain.NO_SCORE) for r in scores]
    return FollowupStatisticsView(
        plan_due_days=due_days, minimum_cell=minimum,
        plans_by_region=_cells((((r["destination_region"], t), r["own"]) for r, t in timeliness), minimum),
        plans_by_arrival_month=_cells(
            (((r["arrival_date"].strftime("%Y-%m"), t), r["own"]) for r, t in timeliness), minimum),
        composite_by_region=_cells((((r["destination_region"], b), r["own"]) for r, b in bands), minimum),
        composite_by_months_since_return=_cells(
            (((domain.months_since_return(r["arrival_date"], r["taken_on"]), b), r["own"]) for r, b in bands),
            minimum),
        contacts_on_time=_cells((((code, outcome), r["own"]) for r in contact_rows
                                 for code, outcome in _contacts(r, today)), minimum),
    )
