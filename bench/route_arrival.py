#!/usr/bin/env python3
"""Routing benchmark: route one arrival against a directory of 2,000 services in 20 regions.

Measures the referral service's handler path for one ``arrival_registered`` event, inside the
service (no NATS, no gateway): in one transaction, as the event consumer runs it, ``save_case``,
reading the directory services the needs can use, planning by the rules file, inserting each
referral with its outbox event, and the audit entry. Reports p50/p95/p99/max over N arrivals, and
the same for the directory read and the pure planning alone.

The directory is synthetic and deterministic (``--seed``): every category of the platform, in
every region, plus a few national services; a quarter state their capacity (some full), some
have age or sex restrictions. Arrivals are a mix of arrival points, destinations and
vulnerabilities, with or without consent.

Usage::

    .venv/bin/python bench/route_arrival.py [--services 2000] [--arrivals 500] [--database-url URL]

Without ``--database-url`` it starts a private PostgreSQL in a temporary directory and removes it.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from contracts.channels import ARRIVAL_REGISTERED, event_source  # noqa: E402
from contracts.events import ArrivalRegisteredV1  # noqa: E402
from contracts.reference import ArrivalPoint, ServiceCategory, Sex, Vulnerability, regions  # noqa: E402
from kernel.db import migrate, open_pool  # noqa: E402
from kernel.events import new_event  # noqa: E402
from services.referral import domain, handlers, rules, store  # noqa: E402
from services.referral.app import APP  # noqa: E402

REGIONS = sorted(regions())[:20]


async def seed_directory(pool: Any, count: int, rng: random.Random) -> None:
    categories = list(ServiceCategory)
    orgs = [f"org-{i:03d}" for i in range(count // 10)]
    async with pool.connection() as conn, conn.transaction():
        for org in orgs:
            await conn.execute("insert into referral.organizations (id, name, org_type) values (%s, %s, %s)",
                               (org, org, rng.choice(["NGO", "STATE", "INTERNATIONAL", "SERVICE_PROVIDER"])))
        rows = []
        for i in range(count):
            national = i % 40 == 0
            capacity = rng.choice([None, None, None, 0, rng.randint(1, 50)])
            rows.append((uuid.uuid4(), rng.choice(orgs), f"service {i}", categories[i % len(categories)],
                         [] if national else [REGIONS[(i // len(categories)) % len(REGIONS)]],
                         18 if i % 17 == 0 else None, ["FEMALE"] if i % 23 == 0 else [], capacity,
                         None if capacity is None else 50))
        async with conn.cursor() as cur:
            await cur.executemany(
                "insert into referral.services (id, organization_id, name_fr, category, regions, minimum_age, sexes,"
                " capacity_available, capacity_maximum) values (%s, %s, %s, %s, %s, %s, %s, %s, %s)", rows)
        await conn.execute("analyze referral.services")


def arrival(rng: random.Random) -> ArrivalRegisteredV1:
    vulnerabilities = rng.sample(list(Vulnerability), rng.choice([0, 0, 1, 1, 2, 3]))
    child = Vulnerability.UNACCOMPANIED_CHILD in vulnerabilities or rng.random() < 0.1
    consent = rng.random() < 0.7
    return ArrivalRegisteredV1(
        case_id=str(uuid.uuid4()), owner_org_id="dgme", arrival_point=rng.choice(list(ArrivalPoint)),
        arrival_date=date(2026, 12, 2), destination_region=rng.choice(REGIONS), is_child=child,
        vulnerabilities=vulnerabilities, consent_given=consent,
        consent_recipient_org_ids=[f"org-{rng.randrange(200):03d}" for _ in range(3)] if consent else [],
        sex=rng.choice([Sex.FEMALE, Sex.MALE]), age_years=rng.randint(8, 60))


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return (f"p50 {at(0.50):.2f} ms  p95 {at(0.95):.2f} ms  p99 {at(0.99):.2f} ms  max {ordered[-1] * 1000:.2f} ms"
            f"  (mean {statistics.fmean(ordered) * 1000:.2f} ms, n={len(ordered)})")


async def run(url: str, services: int, arrivals: int, seed: int) -> None:
    rng = random.Random(seed)
    await migrate(url, APP.schema, APP.migrations)
    pool = await open_pool(url, min_size=1, max_size=2)
    try:
        await seed_directory(pool, services, rng)
        ruleset = rules.install(rules.load_rules())
        events = [arrival(rng) for _ in range(arrivals + 50)]
        handler_times, read_times, plan_times, made = [], [], [], 0
        for i, event in enumerate(events):
            envelope = new_event(ARRIVAL_REGISTERED.event_type, event_source("intake"), event, event.case_id)
            async with pool.connection() as conn:
                started = time.perf_counter()
                async with conn.transaction():
                    await handlers.on_arrival_registered(conn, envelope)
                elapsed = time.perf_counter() - started
                person = domain.Person.from_arrival(event)
                needs = domain.needs_of(person, ruleset)
                regions_ = sorted({r for r in (ruleset.region_served(n, person) for n in needs) if r})
                started = time.perf_counter()
                providers = await store.providers(conn, sorted({n.category for n in needs}), regions_)
                read = time.perf_counter() - started
                started = time.perf_counter()
                plans = domain.plan_referrals(person, providers, datetime.now(UTC), ruleset)
                planned = time.perf_counter() - started
            if i >= 50:  # the first 50 warm the connection, caches and plans
                handler_times.append(elapsed)
                read_times.append(read)
                plan_times.append(planned)
                made += len(plans)
        print(f"directory: {services} services in {len(REGIONS)} regions; rules {ruleset.version}; "
              f"{arrivals} arrivals, {made / arrivals:.1f} referrals each on average")
        print(f"route one arrival (handler, one transaction, commit included): {percentiles(handler_times)}")
        print(f"  of which the directory read:                                 {percentiles(read_times)}")
        print(f"  of which planning (pure):                                    {percentiles(plan_times)}")
    finally:
        await pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--services", type=int, default=2000)
    parser.add_argument("--arrivals", type=int, default=500)
    parser.add_argument("--seed", type=int, default=20261201)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    if args.database_url:
        asyncio.run(run(args.database_url, args.services, args.arrivals, args.seed))
        return
    from devstack.localstack import PostgresServer

    data = Path(tempfile.mkdtemp(prefix="segin-bench-routing-"))
    data.chmod(0o755)
    server = PostgresServer(data / "postgres")
    server.start()
    try:
        asyncio.run(run(server.url, args.services, args.arrivals, args.seed))
    finally:
        server.stop()
        shutil.rmtree(data, ignore_errors=True)
        if server.data_dir != server.requested_dir:
            shutil.rmtree(server.data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
