#!/usr/bin/env python3
"""Deadline-scan benchmark: the referral service's deadline scan over 100,000 open referrals.

Fills a private PostgreSQL with a directory (50 organisations, 2,000 services, 70 % of them with an
expected duration) and with open referrals in a realistic mix (60 % pending, 40 % accepted; about
1 % due for a mark), plus as many closed ones, then:

* shows the plan of each claiming query of the scan (``EXPLAIN (ANALYZE, BUFFERS)``, in a
  transaction rolled back, so nothing is claimed);
* times one full scan (``services.referral.deadlines.scan_deadlines``: claim, mark, outbox event and
  audit entry, a batch of 500 per transaction), then a second scan with nothing left to fire (the
  cost of every tick in steady state).

Usage::

    .venv/bin/python bench/deadline_scan.py [--referrals 100000] [--closed 100000] [--json]

Without ``DATABASE_URL`` it starts its own PostgreSQL (devstack.localstack) in a temporary
directory and removes it afterwards; with ``DATABASE_URL`` it creates a fresh database on that
server and drops it at the end. It is a benchmark, not a test: it prints figures and plans, and
exits 1 when the full scan takes 1 s or more or fires other counts than the data holds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from psycopg.rows import dict_row  # noqa: E402

from _scratch_db import scratch_database  # noqa: E402
from kernel.db import migrate  # noqa: E402
from services.referral import store  # noqa: E402
from services.referral.app import APP  # noqa: E402
from services.referral.deadlines import DeadlineSettings, escalation_cutoffs, scan_deadlines  # noqa: E402

CATEGORIES = ["RECEPTION", "FOOD", "SHELTER", "HEALTH_CARE", "ONWARD_TRANSPORT", "CASH_ALLOWANCE", "CHILD_PROTECTION",
              "GBV_RESPONSE", "COUNTER_TRAFFICKING", "FAMILY_TRACING", "LEGAL_AID", "MHPSS_COUNSELLING",
              "VOCATIONAL_TRAINING", "BUSINESS_START_UP", "EDUCATION"]

# The mix, all relative to now (grace: URGENT 12 h, HIGH 24 h, NORMAL 72 h):
# pending (60 %): 94 % due in the next 7 days; 3 % past due, reminded, within grace; 2 % reminded and
#   escalated; 0.5 % past due by under 12 h, not reminded (→ reminder); 0.5 % past due by 73–120 h,
#   neither reminded nor escalated (→ reminder + escalation);
# accepted (40 %): 5 % without a service; of the rest 96 % within the service's expected duration,
#   2 % past it and already flagged, 2 % past it and not flagged (→ outcome overdue when the service
#   has a duration: 70 % do).
FILL = """
create temporary table bench_services as
    select row_number() over () as n, id, organization_id, category, expected_duration from referral.services;
create temporary table bench_rows as
    select g, random() as status_draw, random() as mix, random() as spread, random() as priority_draw,
           1 + floor(random() * 2000)::int as service_n
    from generate_series(1, %(open)s) g;
insert into referral.referrals (id, case_id, case_owner_org_id, from_org_id, to_org_id, service_category, priority,
                                legal_basis, status, reason_code, due_at, origin, service_id, accepted_at,
                                reminded_at, escalated_at, overdue_flagged_at, created_at)
select gen_random_uuid(), gen_random_uuid(), 'dgme', 'dgme', s.organization_id, s.category,
       case when r.priority_draw < 0.2 then 'URGENT' when r.priority_draw < 0.5 then 'HIGH' else 'NORMAL' end,
       'CONSENT', case when r.status_draw < 0.6 then 'PENDING' else 'ACCEPTED' end, 'BENCH',
       case when r.status_draw >= 0.6 then %(now)s - interval '20 days' * (1 + r.spread)
            when r.mix < 0.94 then %(now)s + interval '7 days' * r.spread
            when r.mix < 0.97 then %(now)s - interval '11 hours' * r.spread - interval '1 minute'
            when r.mix < 0.99 then %(now)s - interval '10 days' * (1 + r.spread)
            when r.mix < 0.995 then %(now)s - interval '11 hours' * r.spread - interval '1 minute'
            else %(now)s - interval '73 hours' - interval '47 hours' * r.spread end,
       'MANUAL',
       case when r.status_draw < 0.6 or r.mix >= 0.05 then s.id end,
       case when r.status_draw < 0.6 then null
            when r.mix < 0.96 then %(now)s - coalesce(s.expected_duration, interval '30 days') * 0.95 * r.spread
            else %(now)s - coalesce(s.expected_duration, interval '30 days') - interval '1 day' * (1 + r.spread) end,
       case when r.status_draw < 0.6 and r.mix >= 0.94 and r.mix < 0.99 then %(now)s - interval '1 minute' end,
       case when r.status_draw < 0.6 and r.mix >= 0.97 and r.mix < 0.99 then %(now)s - interval '1 minute' end,
       case when r.status_draw >= 0.6 and r.mix >= 0.96 and r.mix < 0.98 then %(now)s - interval '1 minute' end,
       %(now)s - interval '30 days' * r.spread
from bench_rows r join bench_services s on s.n = r.service_n;
insert into referral.referrals (id, case_id, case_owner_org_id, from_org_id, to_org_id, service_category, priority,
                                legal_basis, status, reason_code, due_at, origin, created_at)
select gen_random_uuid(), gen_random_uuid(), 'dgme', 'dgme', 'org-1', 'SHELTER', 'NORMAL', 'CONSENT',
       (array['DONE', 'REJECTED', 'REVOKED'])[1 + g %% 3], 'BENCH', %(now)s - interval '90 days' * random(), 'MANUAL',
       %(now)s - interval '120 days'
from generate_series(1, %(closed)s) g;
"""

EXPECTED = """
select count(*) filter (where r.status = 'PENDING' and r.reminded_at is null and r.due_at <= %(now)s) as "REMINDER",
       count(*) filter (where r.status = 'PENDING' and r.escalated_at is null and r.due_at + case r.priority
                        when 'URGENT' then interval '12 hours' when 'HIGH' then interval '24 hours'
                        else interval '72 hours' end <= %(now)s) as "ESCALATED",
       count(*) filter (where r.status = 'ACCEPTED' and r.overdue_flagged_at is null and r.outcome_code is null
                        and r.accepted_at + s.expected_duration <= %(now)s) as "OUTCOME_OVERDUE",
       count(*) filter (where r.status in ('PENDING', 'ACCEPTED')) as open,
       count(*) as total
from referral.referrals r left join referral.services s on s.id = r.service_id
"""


async def fill(url: str, open_referrals: int, closed: int, now: datetime) -> dict[str, int]:
    async with await psycopg.AsyncConnection.connect(url, row_factory=dict_row) as conn:
        await conn.execute("select setseed(0.2026)")
        await conn.execute("insert into referral.organizations (id, name, org_type)"
                           " select 'org-' || g, 'Organisation ' || g, 'NGO' from generate_series(1, 50) g")
        await conn.execute(
            "insert into referral.services (id, organization_id, name_fr, category, regions, expected_duration)"
            " select gen_random_uuid(), 'org-' || (1 + g %% 50), 'Service ' || g, (%s::text[])[1 + g %% %s],"
            "  array[lpad((1 + g %% 20)::text, 2, '0')],"
            "  case when g %% 10 < 7 then make_interval(days => 7 + g %% 54) end"
            " from generate_series(1, 2000) g", (CATEGORIES, len(CATEGORIES)))
        params = {"open": open_referrals, "closed": closed, "now": now}
        for statement in filter(str.strip, FILL.split(";")):  # one statement per call: parameters are bound
            used = {k: v for k, v in params.items() if f"%({k})s" in statement}
            await conn.execute(statement, used)  # type: ignore[arg-type]
        await conn.commit()
        await conn.set_autocommit(True)
        await conn.execute("vacuum analyze referral.referrals")
        await conn.execute("vacuum analyze referral.services")
        cur = await conn.execute(EXPECTED, {"now": now})  # type: ignore[arg-type]
        row = await cur.fetchone()
        assert row is not None
        return dict(row)


async def plans(url: str, now: datetime, settings: DeadlineSettings) -> dict[str, str]:
    """The plan of each claiming query, executed (ANALYZE) in a transaction that is rolled back."""
    escalation, cutoffs = store.claim_awaiting_escalation(escalation_cutoffs(now, settings.grace))
    queries = {"REMINDER": (store.CLAIM_AWAITING_REMINDER, {}), "ESCALATED": (escalation, cutoffs),
               "OUTCOME_OVERDUE": (store.CLAIM_AWAITING_OUTCOME, {})}
    found = {}
    async with await psycopg.AsyncConnection.connect(url) as conn:
        for kind, (query, extra) in queries.items():
            params = {"now": now, "limit": settings.batch, **extra}
            cur = await conn.execute("explain (analyze, buffers) " + query, params)  # type: ignore[arg-type]
            found[kind] = "\n".join(r[0] for r in await cur.fetchall())
            await conn.rollback()
    return found


async def timed_scan(url: str, now: datetime, settings: DeadlineSettings) -> tuple[float, dict[str, int]]:
    async with await psycopg.AsyncConnection.connect(url, row_factory=dict_row) as conn:
        started = time.perf_counter()
        fired = await scan_deadlines(conn, now, settings)
        return time.perf_counter() - started, fired


async def run(url: str, args: argparse.Namespace) -> dict[str, Any]:
    await migrate(url, APP.schema, APP.migrations)
    now = datetime.now(UTC).replace(microsecond=0)
    started = time.perf_counter()
    data = await fill(url, args.referrals, args.closed, now)
    filled_s = time.perf_counter() - started
    settings = DeadlineSettings()
    explained = await plans(url, now, settings)
    full_s, fired = await timed_scan(url, now, settings)
    idle_s, again = await timed_scan(url, now, settings)
    expected = {k: data[k] for k in fired}
    async with await psycopg.AsyncConnection.connect(url) as conn:
        version = (await (await conn.execute("show server_version")).fetchone())[0]  # type: ignore[index]
    return {"postgresql": version, "open_referrals": data["open"], "all_referrals": data["total"],
            "fill_s": round(filled_s, 2), "expected": expected, "fired": fired, "fired_again": again,
            "full_scan_s": round(full_s, 3), "idle_scan_s": round(idle_s, 4), "plans": explained,
            "ok": fired == expected and not any(again.values()) and full_s < 1.0}


def report(result: dict[str, Any]) -> str:
    lines = [f"PostgreSQL {result['postgresql']}: {result['open_referrals']} open referrals"
             f" ({result['all_referrals']} in all), filled in {result['fill_s']} s"]
    for kind, text in result["plans"].items():
        lines += ["", f"--- claim query: {kind}", text]
    lines += ["", f"due at the scan's now: {result['expected']}",
              f"full scan: {result['full_scan_s']} s, fired {result['fired']}",
              f"next scan (nothing due): {result['idle_scan_s']} s, fired {result['fired_again']}",
              f"result: {'ok' if result['ok'] else 'NOT OK (slow, or counts differ)'}"]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--referrals", type=int, default=100_000, help="open referrals (default 100000)")
    parser.add_argument("--closed", type=int, default=100_000, help="closed referrals besides (default 100000)")
    parser.add_argument("--json", action="store_true", help="JSON on stdout")
    args = parser.parse_args()
    with scratch_database("deadline") as url:
        result = asyncio.run(run(url, args))
    print(json.dumps(result, indent=2, default=str) if args.json else report(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
