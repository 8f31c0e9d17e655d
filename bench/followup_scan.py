#!/usr/bin/env python3
"""Follow-up benchmark: the contact timers' scan and the work lists over 100,000 cases.

Fills a private PostgreSQL with follow-up cases (50 organisations; one, ``busy``, manages 3,000;
90 % open; returned up to 400 days ago; 80 % with a plan) and a contact for a third of them, then:

* times the first scan (every case is looked at, as after migration 0002: standing computed, next
  contact kept, marks and events for every contact due or overdue), then a scan with nothing left
  (the cost of every tick in steady state), then one a day later (what falls due in a day);
* shows the plan (``EXPLAIN (ANALYZE, BUFFERS)``) of the scan's claim and of the busy organisation's
  work lists, and times each list's first page.

Usage::

    .venv/bin/python bench/followup_scan.py [--cases 100000] [--json]

Without ``DATABASE_URL`` it starts its own PostgreSQL (devstack.localstack) in a temporary directory
and removes it afterwards; with ``DATABASE_URL`` it uses a fresh database on that server and drops it.
A benchmark, not a test: it prints figures and plans, and exits 1 when a steady-state tick takes 1 s
or more, a work list page 100 ms or more, or a scan fires again what it fired.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from psycopg.rows import dict_row  # noqa: E402

from _scratch_db import scratch_database  # noqa: E402
from kernel.db import migrate  # noqa: E402
from services.followup import store  # noqa: E402
from services.followup.app import APP  # noqa: E402
from services.followup.timers import TimerSettings, scan_timers  # noqa: E402

FILL = """
insert into followup.cases (case_id, owner_org_id, manager_org_id, arrival_date, destination_region, status,
                            has_plan, schedule_id, schedule_version, sensitive_categories, followup_recipients)
select gen_random_uuid(), 'org-' || (1 + g %% 50), case when g <= %(busy)s then 'busy' else 'org-' || (1 + g %% 50) end,
       %(today)s::date - (random() * 400)::int, lpad((g %% 20)::text, 2, '0'),
       case when random() < 0.9 then 'OPEN' else 'CLOSED' end, random() < 0.8, 'DEFAULT', 1, '{}',
       case when g <= %(busy)s then '[{"org_id": "busy", "legal_basis": "CONSENT"}]'::jsonb else '[]'::jsonb end
from generate_series(1, %(cases)s) g;
insert into followup.contacts (id, case_id, contact_date, mode, reached, logged_by_org_id)
select gen_random_uuid(), case_id, least(%(today)s::date, arrival_date + 30 + (random() * 10)::int), 'VISIT',
       random() < 0.8, manager_org_id
from followup.cases where random() < 0.33
"""


async def fill(url: str, cases: int, busy: int, today: Any) -> None:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        await conn.execute("select setseed(0.2026)")
        for statement in filter(str.strip, FILL.split(";")):
            params = {k: v for k, v in {"cases": cases, "busy": busy, "today": today}.items() if f"%({k})s" in statement}
            await conn.execute(statement, params)  # type: ignore[arg-type]
        await conn.commit()
        await conn.set_autocommit(True)
        await conn.execute("vacuum analyze followup.cases")
        await conn.execute("vacuum analyze followup.contacts")


async def timed_scan(url: str, now: datetime) -> tuple[float, dict[str, int]]:
    async with await psycopg.AsyncConnection.connect(url, row_factory=dict_row) as conn:
        started = time.perf_counter()
        fired = await scan_timers(conn, now, TimerSettings())
        return time.perf_counter() - started, fired


async def lists(url: str, today: Any) -> tuple[dict[str, str], dict[str, float]]:
    """The busy organisation's work lists: each first page's plan and time."""
    queries = {
        "followupsDue": lambda c: store.contacts_due(c, "busy", None, today, today + timedelta(days=7), 20, None),
        "followupsOverdue": lambda c: store.contacts_overdue(c, "busy", None, today, 20, None),
        "unreachableCases": lambda c: store.unreachable(c, "busy", None, 20, None),
    }
    plans, times = {}, {}
    async with await psycopg.AsyncConnection.connect(url, row_factory=dict_row) as conn:
        for name, query in queries.items():
            recorded: list[tuple[Any, Any]] = []

            class Recorder:
                async def execute(self, q: Any, p: Any = None) -> Any:
                    recorded.append((q, p))
                    return await conn.execute(q, p)

            started = time.perf_counter()
            await query(Recorder())
            times[name] = round((time.perf_counter() - started) * 1000, 2)
            q, p = recorded[0]
            cur = await conn.execute("explain (analyze, buffers) " + q, p)
            plans[name] = "\n".join(r["QUERY PLAN"] for r in await cur.fetchall())
        claim = await conn.execute("explain (analyze, buffers) select * from followup.cases where status = 'OPEN'"
                                   " and next_check_on <= %s order by next_check_on limit 500", (today,))
        plans["scan claim"] = "\n".join(r["QUERY PLAN"] for r in await claim.fetchall())
    return plans, times


async def run(url: str, args: argparse.Namespace) -> dict[str, Any]:
    await migrate(url, APP.schema, APP.migrations)
    now = datetime.now(UTC).replace(microsecond=0)
    started = time.perf_counter()
    await fill(url, args.cases, 3000, now.date())
    filled_s = time.perf_counter() - started
    first_s, first = await timed_scan(url, now)
    idle_s, again = await timed_scan(url, now)
    day_s, next_day = await timed_scan(url, now + timedelta(days=1))
    plans, times = await lists(url, now.date())
    async with await psycopg.AsyncConnection.connect(url) as conn:
        version = (await (await conn.execute("show server_version")).fetchone())[0]  # type: ignore[index]
    return {"postgresql": version, "cases": args.cases, "fill_s": round(filled_s, 2),
            "first_scan_s": round(first_s, 2), "first_scan_fired": first, "idle_scan_s": round(idle_s, 4),
            "idle_scan_fired": again, "next_day_scan_s": round(day_s, 3), "next_day_fired": next_day,
            "list_first_page_ms": times, "plans": plans,
            "ok": not any(again.values()) and idle_s < 1.0 and all(t < 100 for t in times.values())}


def report(result: dict[str, Any]) -> str:
    lines = [f"PostgreSQL {result['postgresql']}: {result['cases']} follow-up cases, filled in {result['fill_s']} s"]
    for name, text in result["plans"].items():
        lines += ["", f"--- {name}", text]
    lines += ["", f"first scan (every case, as after migration): {result['first_scan_s']} s,"
                  f" fired {result['first_scan_fired']}",
              f"next scan (nothing due): {result['idle_scan_s']} s, fired {result['idle_scan_fired']}",
              f"a day later: {result['next_day_scan_s']} s, fired {result['next_day_fired']}",
              f"work lists, first page (3,000 managed cases): {result['list_first_page_ms']} ms",
              f"result: {'ok' if result['ok'] else 'NOT OK'}"]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=100_000, help="follow-up cases (default 100000)")
    parser.add_argument("--json", action="store_true", help="JSON on stdout")
    args = parser.parse_args()
    with scratch_database("followup") as url:
        result = asyncio.run(run(url, args))
    print(json.dumps(result, indent=2, default=str) if args.json else report(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
