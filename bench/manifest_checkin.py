#!/usr/bin/env python3
"""Manifest and check-in benchmark: a charter flight's passenger list, then its people checked in.

What it measures, through the public API only (as organisation ``dgme``):

* **the manifest**: a generated N-row CSV (realistic Malian names, families travelling together, a few
  rows with problems) uploaded by a GraphQL multipart request (``uploadManifest``) into a group made by
  ``createArrivalGroup``; "end to end" runs from sending ``createArrivalGroup`` to the answer of an
  ``arrivalGroup`` read that shows every valid row stored (target: under 2 s for 300 rows). The upload
  alone and a re-upload of the same file (which must add nothing) are timed too;
* **check-in**: every expected person checked in (``checkIn``, each with its own idempotency key) by C
  agents at once, each agent with its own HTTP connection and token, each answered with the person's
  match candidates (``case { matchCandidates }``): latency p50, p95 and max per check-in (target: p95
  under 150 ms), throughput and errors. Afterwards the group's totals must say
  that everyone valid was checked in. ``--pace S``: each agent pauses between 0 and 2·S seconds after
  an answer, as a desk does while it interviews the next person (``make bench-reception`` runs S = 1,
  then back to back, S = 0, which measures the platform's saturation: see bench/README.md);
* **a baseline**: as many ``registerArrival`` calls by as many agents right after, on the same platform,
  so the check-in figures can be read against registration's on the same machine at the same moment.

Usage::

    .venv/bin/python bench/manifest_checkin.py [--rows 300] [--concurrency 10] [--pace 0] [--json]
    .venv/bin/python bench/manifest_checkin.py --url http://127.0.0.1:8000 --secrets .data/demo-clients.json

Without ``--url`` it starts its own platform (PostgreSQL, NATS, services, gateway) in a temporary
directory and removes it at the end. Exit status: 0 when every step succeeded and the totals are right
(targets met or not: the figures say), 1 otherwise, 2 when the platform could not be reached.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

OWNER = "dgme"
FAMILY = ("Keïta", "Traoré", "Coulibaly", "Diarra", "Diallo", "Sissoko", "Camara", "Konaté", "Touré", "Dembélé",
          "Sangaré", "Cissé", "Maïga", "Sidibé", "Doumbia", "Kanté", "Bagayoko", "Samaké", "Sylla", "Ballo")
MEN = ("Moussa", "Mamadou", "Mahamadou", "Oumar", "Issa", "Bakary", "Seydou", "Adama", "Souleymane", "Boubacar",
       "Ibrahim", "Modibo", "Amadou", "Lassina", "Drissa", "Yacouba")
WOMEN = ("Awa", "Aminata", "Fatoumata", "Mariam", "Kadiatou", "Oumou", "Assétou", "Rokia", "Djeneba", "Sira",
         "Hawa", "Nana", "Fanta", "Salimata", "Bintou", "Korotoumou")
PLACES = ("Kayes", "Nioro du Sahel", "Yélimané", "Diéma", "Kita", "Ségou", "Sikasso", "Gao", "Mopti", "Bamako")
HEADER = ("Nom;Prénom(s);Sexe;Date de naissance;Âge;Téléphone;N° passeport;Lieu d'origine;Ménage/Famille;"
          "Lien de parenté")

GROUP = """mutation($key: String!, $date: Date!) { createArrivalGroup(idempotencyKey: $key, input: {kind: FLIGHT,
  reference: "UJ3214", arrivalDate: $date, arrivalPoint: BAMAKO_AIRPORT, countryReturnedFrom: "LY"}) { id } }"""
UPLOAD = """mutation($group: ID!, $file: Upload!) { uploadManifest(groupId: $group, sender: "OIM Libye", file: $file)
  { rowsRead added rejectedRows alreadyPresentRows problems { row column reason } } }"""
READ = """query($group: ID!, $after: String) { arrivalGroup(id: $group, first: 100, after: $after) {
  totals { expected checkedIn noShow addedOnArrival children vulnerable }
  people { nodes { id status } pageInfo { hasNextPage endCursor } } } }"""
REGISTER = """mutation($key: String!, $input: ArrivalInput!) { registerArrival(idempotencyKey: $key, input: $input) {
  id givenName familyName arrivalPoint vulnerabilities } }"""
CHECK_IN = """mutation($group: ID!, $person: ID!, $key: String!, $input: CheckInInput!) {
  checkIn(groupId: $group, expectedPersonId: $person, idempotencyKey: $key, input: $input) {
    expectedPerson { status } case { id givenName familyName arrivalPoint vulnerabilities
    matchCandidates { score reasons { code } case { id } } } } }"""


def manifest(rows: int, rng: random.Random, arrival: dt.date) -> tuple[bytes, int]:
    """``rows`` passengers in households of 1 to 4 (a parent and children); every 100th row lacks a
    given name (a problem the upload must name). Returns the CSV and how many rows are valid."""
    lines, valid, household = [HEADER], 0, 0
    while len(lines) - 1 < rows:
        household += 1
        family = rng.choice(FAMILY)
        place = rng.choice(PLACES)
        size = rng.choice((1, 1, 1, 2, 3, 4))
        for member in range(size):
            if len(lines) - 1 >= rows:
                break
            sex = rng.choice("MF") if member else "F" if size > 1 else rng.choice("MF")
            given = rng.choice(MEN if sex == "M" else WOMEN)
            if member == 0:
                born = arrival - dt.timedelta(days=rng.randint(19 * 365, 45 * 365))
                dob, age, link = born.strftime("%d/%m/%Y"), "", "Chef de ménage" if size > 1 else ""
            else:
                # distinct ages: two children of one household never read as one row twice
                dob, age, link = "", str(4 * member - 3 + rng.randint(0, 3)), rng.choice(("Fils", "Fille"))
            phone = f"7{rng.randint(0, 9)} {rng.randint(10, 99)} {rng.randint(10, 99)} {rng.randint(10, 99)}"
            passport = f"AA{rng.randint(1000000, 9999999)}" if member == 0 else ""
            number = len(lines) + 1
            if number % 100 == 0:
                given = ""  # a row with a problem
            else:
                valid += 1
            ref = f"M{household:03d}" if size > 1 else ""
            lines.append(";".join((family, given, sex, dob, age, phone if member == 0 else "", passport, place, ref,
                                   link)))
    return ("\ufeff" + "\r\n".join(lines) + "\r\n").encode(), valid


async def token(http: httpx.AsyncClient, base_url: str, secrets: dict[str, dict[str, str]]) -> str:
    client = secrets[OWNER]
    response = await http.post(f"{base_url}/oauth/token", data={"grant_type": "client_credentials"},
                               auth=(client["client_id"], client["client_secret"]))
    response.raise_for_status()
    return str(response.json()["access_token"])


async def gql(http: httpx.AsyncClient, url: str, bearer: str, query: str, variables: dict[str, Any]
              ) -> dict[str, Any]:
    response = await http.post(url, json={"query": query, "variables": variables},
                               headers={"Authorization": f"Bearer {bearer}"})
    body = response.json()
    if body.get("errors"):
        raise RuntimeError(f"{body['errors'][0].get('extensions', {}).get('code')}: {body['errors'][0]['message']}")
    return dict(body["data"])


async def upload(http: httpx.AsyncClient, url: str, bearer: str, group: str, content: bytes) -> dict[str, Any]:
    response = await http.post(url, headers={"Authorization": f"Bearer {bearer}"},
                               data={"operations": json.dumps({"query": UPLOAD,
                                                               "variables": {"group": group, "file": None}}),
                                     "map": json.dumps({"0": ["variables.file"]})},
                               files={"0": ("manifeste.csv", content, "text/csv")})
    body = response.json()
    if body.get("errors"):
        raise RuntimeError(f"upload refused: {body['errors'][0]['message']}")
    return dict(body["data"]["uploadManifest"])


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


async def bench(args: argparse.Namespace, base_url: str, secrets: dict[str, dict[str, str]],
                cpu: Callable[[], dict[str, float]] | None = None) -> dict[str, Any]:
    """``cpu``: the CPU seconds each part of the platform has used (``Platform.cpu_seconds``), when known."""
    url = f"{base_url}/graphql"
    rng = random.Random(args.seed)
    arrival = dt.date.today() - dt.timedelta(days=1)
    content, valid = manifest(args.rows, rng, arrival)
    result: dict[str, Any] = {"rows": args.rows, "valid_rows": valid, "file_bytes": len(content),
                              "concurrency": args.concurrency, "pace_s": args.pace}
    async with httpx.AsyncClient(timeout=60) as http:
        bearer = await token(http, base_url, secrets)
        await gql(http, url, bearer, "{ me { subject } }", {})  # warm the connection and the token cache
        t0 = time.perf_counter()
        group = (await gql(http, url, bearer, GROUP, {"key": str(uuid.uuid4()), "date": arrival.isoformat()})
                 )["createArrivalGroup"]["id"]
        t1 = time.perf_counter()
        uploaded = await upload(http, url, bearer, group, content)
        t2 = time.perf_counter()
        read = (await gql(http, url, bearer, READ, {"group": group}))["arrivalGroup"]
        t3 = time.perf_counter()
        assert uploaded["added"] == valid and read["totals"]["expected"] == valid, (uploaded, read["totals"])
        result["manifest"] = {"end_to_end_s": round(t3 - t0, 3), "upload_s": round(t2 - t1, 3),
                              "added": uploaded["added"], "rejected_rows": uploaded["rejectedRows"],
                              "problems": len(uploaded["problems"])}
        t4 = time.perf_counter()
        again = await upload(http, url, bearer, group, content)
        result["manifest"]["reupload_s"] = round(time.perf_counter() - t4, 3)
        assert again == uploaded, "a re-upload of the same file must answer the same"

        people, after = [], None
        while True:
            page = (await gql(http, url, bearer, READ, {"group": group, "after": after}))["arrivalGroup"]["people"]
            people += [p["id"] for p in page["nodes"]]
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]

    queue: asyncio.Queue[str] = asyncio.Queue()
    for person in people:
        queue.put_nowait(person)
    latencies: list[float] = []
    errors: list[str] = []

    # Each agent signs in before the flight lands (a client-secret check is deliberately slow: argon2),
    # so the timed part is check-ins only.
    async with httpx.AsyncClient(timeout=60) as http:
        tokens = [await token(http, base_url, secrets) for _ in range(args.concurrency)]

    async def agent(mine: str, pauses: random.Random) -> None:
        async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=1)) as own:
            await gql(own, url, mine, "{ me { subject } }", {})
            if args.pace:  # desks do not start in step: each its own moment within the first pause
                await asyncio.sleep(pauses.uniform(0, args.pace))
            while not queue.empty():
                person = queue.get_nowait()
                vulnerabilities = ["MEDICAL_NEEDS"] if rng.random() < 0.1 else []
                variables = {"group": group, "person": person, "key": str(uuid.uuid4()), "input": {
                    "consent": {"given": True, "recipientOrgIds": ["unicef"]}, "destinationRegion": "01",
                    "vulnerabilities": vulnerabilities}}
                start = time.perf_counter()
                try:
                    await gql(own, url, mine, CHECK_IN, variables)
                    latencies.append((time.perf_counter() - start) * 1000)
                except (RuntimeError, httpx.HTTPError) as exc:
                    errors.append(str(exc)[:200])
                if args.pace:  # the next person steps up: anywhere from at once to twice the mean pause
                    await asyncio.sleep(pauses.uniform(0, 2 * args.pace))

    cpu_before = cpu() if cpu else {}
    t5 = time.perf_counter()
    await asyncio.gather(*(agent(mine, random.Random(args.seed + n)) for n, mine in enumerate(tokens)))
    wall = time.perf_counter() - t5
    if cpu and latencies:
        # What each check-in cost each part, the work it set off included (referrals, notifications…): the
        # window runs until the platform is idle again.
        await settle(cpu)
        after = cpu()
        result["cpu_ms_per_check_in"] = {name: round((after[name] - cpu_before.get(name, 0.0)) * 1000 / len(latencies),
                                                     1) for name in after}
    result["register_arrival_baseline"] = await baseline(args, base_url, secrets, arrival) if args.baseline else None
    async with httpx.AsyncClient(timeout=60) as http:
        bearer = await token(http, base_url, secrets)
        totals = (await gql(http, url, bearer, READ, {"group": group}))["arrivalGroup"]["totals"]
    result["check_in"] = {
        "count": len(latencies), "errors": len(errors), "first_errors": errors[:3], "wall_s": round(wall, 2),
        "per_second": round(len(latencies) / wall, 1) if wall else None,
        "p50_ms": round(statistics.median(latencies), 1) if latencies else None,
        "p95_ms": round(percentile(latencies, 95), 1) if latencies else None,
        "max_ms": round(max(latencies), 1) if latencies else None}
    result["totals_after"] = totals
    result["complete"] = not errors and totals["checkedIn"] == valid
    result["targets"] = {"manifest_under_2s": result["manifest"]["end_to_end_s"] < 2.0,
                         "check_in_p95_under_150ms": bool(latencies) and percentile(latencies, 95) < 150}
    return result


async def settle(cpu: Callable[[], dict[str, float]], quiet_s: float = 1.0, bound_s: float = 60.0) -> None:
    """Wait until the platform has used almost no CPU for ``quiet_s`` (its queues drained), at most ``bound_s``."""
    deadline = time.monotonic() + bound_s
    last = sum(cpu().values())
    while time.monotonic() < deadline:
        await asyncio.sleep(quiet_s)
        now = sum(cpu().values())
        if now - last < 0.05 * quiet_s:
            return
        last = now


async def baseline(args: argparse.Namespace, base_url: str, secrets: dict[str, dict[str, str]], arrival: dt.date
                   ) -> dict[str, Any]:
    """The same number of registerArrival calls by as many agents, on the same platform right after: what a
    check-in's latency compares with on this machine at this moment."""
    url, latencies, errors = f"{base_url}/graphql", [], []
    remaining = [args.baseline]

    async def agent() -> None:
        async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=1)) as own:
            mine = await token(own, base_url, secrets)
            await gql(own, url, mine, "{ me { subject } }", {})
            while remaining[0] > 0:
                remaining[0] -= 1
                variables = {"key": str(uuid.uuid4()), "input": {
                    "givenName": "Awa", "familyName": "Keïta", "sex": "FEMALE", "estimatedAge": 30,
                    "countryReturnedFrom": "LY", "arrivalPoint": "BAMAKO_AIRPORT", "arrivalDate": arrival.isoformat(),
                    "destinationRegion": "01", "consent": {"given": True, "recipientOrgIds": ["unicef"]}}}
                start = time.perf_counter()
                try:
                    await gql(own, url, mine, REGISTER, variables)
                    latencies.append((time.perf_counter() - start) * 1000)
                except (RuntimeError, httpx.HTTPError) as exc:
                    errors.append(str(exc)[:200])

    await asyncio.gather(*(agent() for _ in range(args.concurrency)))
    return {"count": len(latencies), "errors": len(errors),
            "p50_ms": round(statistics.median(latencies), 1) if latencies else None,
            "p95_ms": round(percentile(latencies, 95), 1) if latencies else None,
            "max_ms": round(max(latencies), 1) if latencies else None}


def print_human(result: dict[str, Any], out: Any) -> None:
    m, c = result["manifest"], result["check_in"]
    print(f"manifest: {result['rows']} rows ({result['file_bytes']} bytes, {result['valid_rows']} valid): end to end "
          f"{m['end_to_end_s']:.3f} s (upload {m['upload_s']:.3f} s, re-upload {m['reupload_s']:.3f} s); "
          f"{m['added']} stored, rows with problems {m['rejected_rows']}", file=out)
    pace = (f", each pausing {result['pace_s']} s on average between check-ins" if result.get("pace_s")
            else " back to back")
    print(f"check-in: {c['count']} by {result['concurrency']} agents{pace} in {c['wall_s']} s ({c['per_second']}/s); "
          f"p50 {c['p50_ms']} ms, p95 {c['p95_ms']} ms, max {c['max_ms']} ms; errors {c['errors']}", file=out)
    if result.get("register_arrival_baseline"):
        b = result["register_arrival_baseline"]
        print(f"baseline registerArrival right after, same agents: {b['count']} calls, p50 {b['p50_ms']} ms, "
              f"p95 {b['p95_ms']} ms, max {b['max_ms']} ms; errors {b['errors']}", file=out)
    if result.get("cpu_ms_per_check_in"):
        parts = sorted(result["cpu_ms_per_check_in"].items(), key=lambda kv: -kv[1])
        print(f"CPU per check-in, the work it set off included: {sum(v for _, v in parts):.0f} ms ("
              + ", ".join(f"{name} {ms:.0f}" for name, ms in parts) + ")", file=out)
    print(f"totals after: {result['totals_after']}", file=out)
    print(f"targets, check-in{pace}: {result['targets']}; {os.cpu_count()} CPUs", file=out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", "-n", type=int, default=300)
    parser.add_argument("--concurrency", "-c", type=int, default=10)
    parser.add_argument("--url", help="base URL of an already running platform (default: start one)")
    parser.add_argument("--secrets", type=Path, help="its demo-clients.json (with --url)")
    parser.add_argument("--seed", type=int, default=20261202)
    parser.add_argument("--pace", type=float, default=0.0,
                        help="mean seconds each agent waits after an answer before its next check-in, drawn evenly "
                             "from 0 to twice that, the agents out of step (default 0: back to back, the platform's "
                             "saturation; a desk interviewing people paces itself)")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.add_argument("--baseline", type=int, default=300,
                        help="registerArrival calls timed afterwards for comparison (0: none; default 300)")
    args = parser.parse_args(argv)
    platform = None
    try:
        if args.url:
            base_url = args.url.rstrip("/").removesuffix("/graphql")
            secrets_file = args.secrets or Path(os.environ.get("SEGIN_DATA_DIR", ".data")) / "demo-clients.json"
        else:
            from devstack.platform import scratch

            platform = scratch()
            print(f"starting a platform in {platform.data_dir}…", file=sys.stderr)
            t0 = time.monotonic()
            try:
                platform.start()
            except Exception as exc:
                print(f"the platform did not start: {exc}", file=sys.stderr)
                return 2
            print(f"platform ready in {time.monotonic() - t0:.1f} s at {platform.base_url}", file=sys.stderr)
            base_url, secrets_file = platform.base_url, platform.secrets_file
        secrets = json.loads(Path(secrets_file).read_text())
        try:
            result = asyncio.run(bench(args, base_url, secrets, platform.cpu_seconds if platform else None))
        except (httpx.HTTPError, RuntimeError, AssertionError) as exc:
            print(f"benchmark failed: {exc}", file=sys.stderr)
            return 1
        if args.json:
            print(json.dumps(result, indent=2, ensure_ascii=False))
            print_human(result, sys.stderr)
        else:
            print_human(result, sys.stdout)
        return 0 if result["complete"] else 1
    finally:
        if platform is not None:
            from devstack.platform import discard

            discard(platform)


if __name__ == "__main__":
    sys.exit(main())
