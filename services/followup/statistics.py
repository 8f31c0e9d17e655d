"""Follow-up statistics for the coordinating body (``statistics:read``): aggregates only, with
intake's suppression rule (``kernel.statistics``).

Counted per case: whether its first plan was saved within ``SEGIN_PLAN_DUE_DAYS`` of arrival (by
region, by arrival month), and the band of its latest composite score (by region, by months between
arrival and that survey). A cell is shown only when it holds at least ``minimum_cell`` cases the
caller's organisation neither registered nor manages (its own could be decoys), rounded to a multiple
of five. Contacts made on time need the contact log, which is not built yet (``contacts_on_time``).
"""

from __future__ import annotations

from collections.abc import Iterable

from psycopg_pool import AsyncConnectionPool

from contracts.commands import FollowupStatisticsRequest
from contracts.replies import FollowupStatisticsView, StatisticsCell
from kernel.config import plan_due_days
from kernel.statistics import minimum_cell, suppress_small_cells
from kernel.tokens import Principal
from services.followup import domain, store
from services.followup.handlers import Clock, utcnow

DIMENSIONS = 2  # every table crosses two dimensions (e.g. region × band)


def _cells(rows: Iterable[tuple[tuple[str, ...], bool]], minimum: int) -> list[StatisticsCell]:
    counts, own = domain.tally(rows)
    kept, _ = suppress_small_cells(counts, own, minimum)
    return [StatisticsCell(keys=list(keys), count=n) for keys, n in kept]


async def statistics(pool: AsyncConnectionPool, principal: Principal, request: FollowupStatisticsRequest, *,
                     clock: Clock = utcnow) -> FollowupStatisticsView:
    today, due_days, minimum = clock().date(), plan_due_days(), minimum_cell(DIMENSIONS)
    async with pool.connection() as conn:
        plans = await store.plan_rows(conn, principal.org_id)
        scores = await store.latest_composite_rows(conn, principal.org_id)
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
        contacts_on_time=None,  # TODO(contacts): the contact log (issue 9, item 5) fills this in
    )
