#!/usr/bin/env python3
"""overdueCounts benchmark: one organisation's overdue counts over 300,000 referrals, before and after
the open-referral indexes of migration 0009 (the plan of each, ``EXPLAIN (ANALYZE, BUFFERS)``).

The network: 50 organisations each referring to and receiving from the others, 2,000 directory
services (70 % with an expected duration); 70 % of the referrals closed (DONE, REJECTED, REVOKED),
15 % pending (a third past due), 15 % accepted. Counts are checked equal before and after.

Usage::

    .venv/bin/python bench/overdue_counts.py [--referrals 300000]

Starts its own PostgreSQL (devstack.localstack) in a temporary directory unless ``DATABASE_URL`` is
set (then a fresh database on that server, dropped at the end). Exits 1 when the indexed count takes
50 ms or more, or when the counts differ.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from psycopg.rows import dict_row  # noqa: E402

from _scratch_db import scratch_database  # noqa: E402
from kernel.db import migrate  # noqa: E402
from services.referral import manual_store  # noqa: E402
from services.referral.app import APP  # noqa: E402

INDEX_MIGRATION = "0010_overdue_counts.sql"
ORGS = ("org-1", "org-7")  # the registering body (refers 80 % of the cases), and a provider

FILL = """
insert into referral.organizations (id, name, org_type)
    select 'org-' || g, 'Organisation ' || g, 'NGO' from generate_series(1, 50) g;
insert into referral.services (id, organization_id, name_fr, category, regions, expected_duration)
    select gen_random_uuid(), 'org-' || (1 + g %% 50), 'Service ' || g, 'FOOD', '{}',
           case when g %% 10 < 7 then make_interval(days => 7 + g %% 54) end
    from generate_series(1, 2000) g;
create temporary table bench_services as
    select row_number() over () as n, id, organization_id, category from referral.services;
insert into referral.referrals (id, case_id, case_owner_org_id, from_org_id, to_org_id, service_category, priority,
                                legal_basis, status, reason_code, due_at, origin, service_id, accepted_at, created_at)
select gen_random_uuid(), gen_random_uuid(), f.org, f.org, s.organization_id, s.category, 'NORMAL', 'CONSENT',
       case when r.draw < %(closed)s then (array['DONE', 'REJECTED', 'REVOKED'])[1 + r.g %% 3]
            when r.draw < %(closed)s + (1 - %(closed)s) / 2 then 'PENDING' else 'ACCEPTED' end, 'BENCH',
       %(now)s + interval '20 days' * (r.spread - 0.33), 'MANUAL', s.id,
       case when r.draw >= %(closed)s + (1 - %(closed)s) / 2 then %(now)s - interval '60 days' * r.spread end,
       %(now)s - interval '120 days' * r.spread
from (select g, random() as draw, random() as spread, 1 + floor(random() * 2000)::int as service_n,
             case when random() < 0.8 then 1 else 1 + floor(random() * 50)::int end as from_n
      from generate_series(1, %(referrals)s) g) r
join bench_services s on s.n = r.service_n
cross join lateral (select 'org-' || r.from_n as org) f
"""


async def counts(url: str, now: datetime, org: str) -> tuple[dict[str, int], float, str]:
    async with await psycopg.AsyncConnection.connect(url, row_factory=dict_row) as conn:
        found = await manual_store.overdue_counts(conn, org, [], now)  # warm
        started = time.perf_counter()
        for _ in range(5):
            found = await manual_store.overdue_counts(conn, org, [], now)
        took = (time.perf_counter() - started) / 5
        query, params = manual_store.overdue_counts_statement(org, [], now)
        cur = await conn.execute("explain (analyze, buffers) " + query, params)  # type: ignore[arg-type]
        plan = "\n".join(r["QUERY PLAN"] for r in await cur.fetchall())
        started = time.perf_counter()
        await manual_store.overdue_by_organisation(conn, [], now)
        print(f"{org}: by organisation (the coordinator's extra) {(time.perf_counter() - started) * 1000:.1f} ms")
    return found, took, plan


async def run(url: str, referrals: int, closed: float) -> bool:
    without = Path(tempfile.mkdtemp(prefix="segin-migrations-"))
    for path in APP.migrations.glob("*.sql"):
        if path.name != INDEX_MIGRATION:
            shutil.copy(path, without / path.name)
    await migrate(url, APP.schema, without)
    shutil.rmtree(without)
    now = datetime.now(UTC).replace(microsecond=0)
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute("select setseed(0.2026)")
        for statement in filter(str.strip, FILL.split(";")):
            values = {"now": now, "referrals": referrals, "closed": closed}
            used = {k: v for k, v in values.items() if f"%({k})s" in statement}
            await conn.execute(statement, used)  # type: ignore[arg-type]
        await conn.execute("vacuum analyze referral.referrals")
    before = {org: await counts(url, now, org) for org in ORGS}
    await migrate(url, APP.schema, APP.migrations)
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute("vacuum analyze referral.referrals")
    after = {org: await counts(url, now, org) for org in ORGS}
    for org in ORGS:
        print(f"\n===== {referrals} referrals; counts for {org}: {after[org][0]}")
        print(f"\n--- without the indexes: {before[org][1] * 1000:.1f} ms\n{before[org][2]}")
        print(f"\n--- with migration {INDEX_MIGRATION}: {after[org][1] * 1000:.1f} ms\n{after[org][2]}")
    return all(before[o][0] == after[o][0] and after[o][1] < 0.05 for o in ORGS)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--referrals", type=int, default=300_000)
    parser.add_argument("--closed", type=float, default=0.7, help="share of closed referrals (default 0.7)")
    args = parser.parse_args()
    with scratch_database("overdue") as url:
        ok = asyncio.run(run(url, args.referrals, args.closed))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
