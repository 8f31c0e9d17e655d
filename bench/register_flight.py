#!/usr/bin/env python3
"""Charter-flight benchmark: register N arrivals through the public GraphQL API, C clients at once.

What it measures (a benchmark, not a test; it still says when the platform misbehaves):

* the registration requests (``registerArrival`` over HTTP, as organisation ``dgme``): wall time,
  throughput, latency percentiles and errors;
* the asynchronous chain behind them (intake outbox → referral routing → notifications): the
  notifications each organisation must end up with are computed in advance from the routing rules,
  and after the last registration the script polls every organisation's ``notifications`` until all
  of them are visible. "Time until last notification" runs from the first request sent to the poll
  that saw the last expected notification (poll resolution: ``--poll-interval``);
* afterwards it checks, per case, the referrals the owner sees against the expected ones (recipient,
  category, state, priority, legal basis, rule, reason when unassigned; rules version and origin), the
  referrals each recipient sees in ``incomingReferrals``, and the notifications per case and per
  referral for duplicates, strays and omissions.

What a flight must produce is restated here, not imported: the script reads the same two data files
the platform runs with — the routing rules (``services/referral/rules/routing.yaml``, or
``$SEGIN_ROUTING_RULES``) and the directory it was seeded from (``deploy/demo/organisations.json``) —
and applies them as decision record 0014 states, in its own code (``Routing``): one need per category
(most urgent, then shortest deadline, then first in the file); the immediate reception package at the
arrival point, shelter and onward transport only away from the destination; a provider of the category
covering the region that takes the person (age, sex, required vulnerability) and has room, a named
region before a national service, stated capacity first, most places first, then organisation and
service id; never the owner, who serves a need in house when it has a fitting service; an unmet need
UNASSIGNED with the first check no service passed (region, eligibility, capacity); consent or the rule's
basis without consent, else AWAITING_CONSENT. The package is restated in full rather than checked only
structurally because its rules and the demo directory are small and fixed data: exact expectations catch
a wrong provider, state or basis, which a structural check (one referral per category, each announced
once) would let through. A referral service that disagrees with decision record 0014 fails the run;
so does a rules or directory file other than the one named here (pass ``--rules``/``--directory``).
Notices expected: a live referral to its recipient (``referral.received``), a waiting one to the owner
(``referral.awaiting_consent``), an unmet need to the owner and the coordinating body once each
(``referral.unassigned``; one notice when they are the same, as ``dgme`` is by default).

With its own platform it also reports the CPU seconds each process tree used (gateway, services,
PostgreSQL, NATS, the benchmark itself), how long the platform took to stop and whether any part of
it had to be killed, and the warnings and errors in its logs.

Usage::

    .venv/bin/python bench/register_flight.py --arrivals 300 --concurrency 10 [--json]
    .venv/bin/python bench/register_flight.py --url http://127.0.0.1:8000 --secrets .data/demo-clients.json

Without ``--url`` it starts its own platform (PostgreSQL, NATS, services, gateway) in a temporary
directory and removes it at the end (``--keep-data`` keeps it, with its ``logs/``).
Exit status: 0 when every arrival was registered and exactly the expected referrals and
notifications appeared in time, 1 otherwise, 2 when the platform could not be reached.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import datetime as dt
import json
import math
import os
import random
import re
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

REGIONS_CSV = ROOT / "contracts" / "mali-regions.csv"
RULES_FILE = ROOT / "services" / "referral" / "rules" / "routing.yaml"  # data, read as data
DIRECTORY_FILE = ROOT / "deploy" / "demo" / "organisations.json"  # the directory the platform is seeded with
OWNER = "dgme"  # registers the flight
ARRIVAL_POINT = "BAMAKO_AIRPORT"
PAGE = 100  # the API's maximum page size
ADULT_AGE = 18
CHILD_FLAGS = frozenset({"UNACCOMPANIED_CHILD", "SEPARATED_CHILD"})  # make a child whatever the age
URGENCY = ("URGENT", "HIGH", "NORMAL")

RECEIVED, AWAITING, UNASSIGNED = "referral.received", "referral.awaiting_consent", "referral.unassigned"


# --- the routing rules, restated independently of the services' code --------------------------
# Only the two data files are shared with the referral service (the rules file and the directory it
# is seeded from); how they are applied is written out again below from decision record 0014, so a
# change in services/referral/domain.py that breaks the documented behaviour shows up here.
def parse_duration(value: int | str) -> dt.timedelta:
    """``due_in``: a number of hours or an ISO 8601 duration (PnW, PnD, TnH, TnM)."""
    if isinstance(value, int):
        return dt.timedelta(hours=value)
    match = re.fullmatch(r"P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?)?", value)
    if not match:
        raise ValueError(f"{RULES_FILE.name}: cannot read due_in {value!r}")
    weeks, days, hours, minutes = (int(x or 0) for x in match.groups())
    return dt.timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes)


@dataclass(frozen=True)
class Rule:
    id: str
    category: str
    priority: str
    due_in: dt.timedelta
    when: dict[str, Any]
    at_arrival_point: bool  # served_in ARRIVAL_POINT (else DESTINATION)
    away_only: bool  # when_region AWAY_FROM_DESTINATION
    basis_without_consent: str | None


@dataclass(frozen=True)
class Service:
    org: str
    org_type: str
    id: str
    category: str
    regions: frozenset[str]  # empty: national
    min_age: int | None
    max_age: int | None
    sexes: frozenset[str]
    vulnerabilities: frozenset[str]
    available: int | None  # None: capacity not stated


@dataclass(frozen=True)
class Person:
    arrival_point: str
    destination: str
    age: int
    sex: str
    vulnerabilities: frozenset[str]
    consented_orgs: frozenset[str]
    consented_types: frozenset[str]

    @property
    def is_child(self) -> bool:
        return self.age < ADULT_AGE or bool(CHILD_FLAGS & self.vulnerabilities)


@dataclass(frozen=True)
class Planned:
    """One referral a case must have. ``to_org`` None: an unmet need (UNASSIGNED)."""

    to_org: str | None
    category: str
    status: str  # PENDING, AWAITING_CONSENT or UNASSIGNED
    priority: str
    legal_basis: str | None
    rule_id: str
    unassigned_reason: str | None = None

    @property
    def row(self) -> tuple[Any, ...]:
        """As the owner's ``case.referrals`` must show it."""
        return (self.to_org, self.category, self.status, self.priority, self.legal_basis, self.rule_id,
                self.unassigned_reason)


def notices(owner: str, coordinator: str, to_org: str | None, status: str) -> list[tuple[str, str]]:
    """(organisation notified, kind) for a new referral: a live one to its recipient, a waiting one to
    the owner, an unmet need to the owner and the coordinating body (once when they are the same)."""
    if status == "UNASSIGNED":
        return [(org, UNASSIGNED) for org in dict.fromkeys([owner, coordinator])]
    if status == "AWAITING_CONSENT":
        return [(owner, AWAITING)]
    return [(str(to_org), RECEIVED)]


class Routing:
    """The rules file and the directory, applied as decision record 0014 states them."""

    def __init__(self, rules_file: Path, directory_file: Path, owner: str, coordinator: str) -> None:
        data = yaml.safe_load(rules_file.read_text(encoding="utf-8"))
        self.version: str = data["version"]
        self.arrival_regions: dict[str, str] = dict(data.get("arrival_point_regions") or {})
        self.rules = [Rule(r["id"], r["category"], r["priority"], parse_duration(r["due_in"]), r["when"],
                           r.get("served_in", "DESTINATION") == "ARRIVAL_POINT",
                           r.get("when_region") == "AWAY_FROM_DESTINATION", r.get("basis_without_consent"))
                      for r in data["rules"]]
        directory = json.loads(directory_file.read_text(encoding="utf-8"))
        self.services = [
            Service(o["id"], o["type"], s["id"], s["category"], frozenset(s.get("regions") or ()),
                    s.get("minimum_age"), s.get("maximum_age"), frozenset(s.get("sexes") or ()),
                    frozenset(s.get("vulnerabilities") or ()), (s.get("capacity") or {}).get("available"))
            for o in directory["organisations"] for s in o.get("services", [])
            if str(s.get("status", "active")).lower() == "active"]
        self.owner, self.coordinator = owner, coordinator

    def applies(self, rule: Rule, p: Person) -> bool:
        when = rule.when
        if when.get("vulnerabilities") and not set(when["vulnerabilities"]) & p.vulnerabilities:
            return False
        age = when.get("age") or {}
        if ("min" in age and p.age < age["min"]) or ("max" in age and p.age > age["max"]):
            return False
        if when.get("sex") and p.sex not in when["sex"]:
            return False
        if when.get("arrival_points") and p.arrival_point not in when["arrival_points"]:
            return False
        if (when.get("children") and not p.is_child) or (when.get("adults") and p.is_child):
            return False
        return not (rule.away_only and self.arrival_regions.get(p.arrival_point) == p.destination)

    def needs(self, p: Person) -> list[Rule]:
        """One rule per category: the most urgent, then the shortest deadline, then the first in the file."""
        best: dict[str, tuple[tuple[int, dt.timedelta, int], Rule]] = {}
        for position, rule in enumerate(self.rules):
            key = (URGENCY.index(rule.priority), rule.due_in, position)
            if self.applies(rule, p) and (rule.category not in best or key < best[rule.category][0]):
                best[rule.category] = (key, rule)
        return [rule for _, rule in sorted(best.values(), key=lambda kv: kv[0])]

    @staticmethod
    def takes(s: Service, p: Person) -> bool:
        """Eligibility; every arrival of this flight states an age (the platform's rule for an unknown
        age, the person's side of 18, is not needed here)."""
        if (s.min_age is not None and p.age < s.min_age) or (s.max_age is not None and p.age > s.max_age):
            return False
        if s.sexes and p.sex != "UNKNOWN" and p.sex not in s.sexes:
            return False
        return not s.vulnerabilities or bool(s.vulnerabilities & p.vulnerabilities)

    def plan(self, p: Person) -> list[Planned]:
        out = []
        for rule in self.needs(p):
            region = self.arrival_regions.get(p.arrival_point) if rule.at_arrival_point else p.destination
            covering = [s for s in self.services if s.category == rule.category
                        and (not s.regions or (region is not None and region in s.regions))]
            if any(s.org == self.owner and self.takes(s, p) for s in covering):
                continue  # the owner serves it in house
            covering = [s for s in covering if s.org != self.owner]
            eligible = [s for s in covering if self.takes(s, p)]
            fitting = sorted((s for s in eligible if s.available is None or s.available > 0), key=lambda s: (
                0 if region in s.regions else 1, 0 if s.available is not None else 1, -(s.available or 0), s.org, s.id))
            if not fitting:
                reason = "NO_PROVIDER_IN_REGION" if not covering else "NOT_ELIGIBLE" if not eligible else "NO_CAPACITY"
                out.append(Planned(None, rule.category, "UNASSIGNED", rule.priority, None, rule.id, reason))
                continue
            chosen = fitting[0]
            consented = chosen.org in p.consented_orgs or chosen.org_type in p.consented_types
            basis = "CONSENT" if consented else rule.basis_without_consent
            out.append(Planned(chosen.org, rule.category, "PENDING" if basis else "AWAITING_CONSENT", rule.priority,
                               basis, rule.id))
        return out

    def person(self, arrival: dict[str, Any], age: int) -> Person:
        consent = arrival["consent"]
        given = consent["given"] and "REFERRAL" in consent.get("purposes", ["REFERRAL"])
        return Person(arrival["arrivalPoint"], arrival["destinationRegion"], age, arrival["sex"],
                      frozenset(arrival["vulnerabilities"]),
                      frozenset(consent["recipientOrgIds"]) if given else frozenset(),
                      frozenset(consent.get("recipientOrgTypes", [])) if given else frozenset())

    def expected_notices(self, planned: list[Planned]) -> list[tuple[str, str]]:
        return [n for x in planned for n in notices(self.owner, self.coordinator, x.to_org, x.status)]

    def readers(self) -> set[str]:
        """Every organisation a flight can notify or refer to."""
        return {s.org for s in self.services} | {self.owner, self.coordinator}


# --- the passengers --------------------------------------------------------------------------
GIVEN_M = ["Moussa", "Mamadou", "Oumar", "Seydou", "Bakary", "Issa", "Adama", "Boubacar", "Souleymane", "Modibo",
           "Drissa", "Yacouba", "Lassina", "Sékou", "Ibrahim", "Amadou", "Hamidou", "Cheick", "Alou", "Mahamane"]
GIVEN_F = ["Aminata", "Fatoumata", "Mariam", "Kadiatou", "Awa", "Oumou", "Hawa", "Djénéba", "Assétou", "Rokia"]
FAMILY = ["Coulibaly", "Traoré", "Diarra", "Keïta", "Koné", "Sidibé", "Diallo", "Touré", "Maïga", "Cissé",
          "Sangaré", "Doumbia", "Camara", "Sissoko", "Dembélé", "Kanté", "Konaté", "Bagayoko", "Haïdara", "Ag Ahmed"]
# Where returnees from a Libyan charter go, roughly: Kayes, Bamako and the south-west first, the north less.
REGION_WEIGHTS = {"00": 16, "01": 14, "02": 9, "03": 8, "04": 8, "05": 5, "06": 3, "07": 6, "08": 1, "09": 1,
                  "10": 2, "11": 5, "12": 4, "13": 3, "14": 2, "15": 4, "16": 3, "17": 3, "18": 2, "19": 1}


def region_codes() -> list[str]:
    with REGIONS_CSV.open(encoding="utf-8") as f:
        return [row["ct_code"] for row in csv.DictReader(f)]


def age_of(arrival: dict[str, Any], today: dt.date) -> int:
    """Age in whole years on ``today``, from the date of birth when given, else the estimate."""
    if "dateOfBirth" not in arrival:
        return int(arrival["estimatedAge"])
    born = dt.date.fromisoformat(arrival["dateOfBirth"])
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def make_flight(n: int, seed: int, today: dt.date, routing: Routing) -> list[dict[str, Any]]:
    """N arrivals with a realistic mix of vulnerabilities, destinations and consent (deterministic).
    Consent names the organisations the person's referrals would go to (package and protection)."""
    rng = random.Random(seed)
    codes = region_codes()
    weights = [REGION_WEIGHTS.get(c, 2) for c in codes]
    flight = []
    for _ in range(n):
        female = rng.random() < 0.2
        vulns: set[str] = set()
        child = rng.random() < 0.10
        if child:
            vulns.add(rng.choice(["UNACCOMPANIED_CHILD", "UNACCOMPANIED_CHILD", "SEPARATED_CHILD"]))
            age = rng.randint(13, 17)
        else:
            age = rng.randint(18, 52)
        if rng.random() < 0.15:
            vulns.add("PREGNANT" if female and not child and rng.random() < 0.4 else "MEDICAL_NEEDS")
        if rng.random() < 0.06:
            vulns.add("TRAFFICKING_VICTIM")
        if female and rng.random() < 0.20:
            vulns.add("GBV_SURVIVOR")
        if rng.random() < 0.08:
            vulns.add("MENTAL_HEALTH_NEEDS")
        if rng.random() < 0.02:
            vulns.add("INTERNATIONAL_PROTECTION")
        if rng.random() < 0.12:
            vulns.add(rng.choice(["VIOLENCE_IN_TRANSIT", "EX_DETAINEE", "DISABILITY"]))  # no routing rule
        region = rng.choices(codes, weights)[0]
        sex = "FEMALE" if female else "MALE"
        unconsented = Person(ARRIVAL_POINT, region, age, sex, frozenset(vulns), frozenset(), frozenset())
        relevant = sorted({x.to_org for x in routing.plan(unconsented) if x.to_org})
        draw = rng.random()
        if draw < 0.80:  # consents to every organisation that can help
            consent = {"given": True, "recipientOrgIds": relevant}
        elif draw < 0.90 and relevant:  # consents, but not to one of them
            left_out = rng.choice(relevant)
            consent = {"given": True, "recipientOrgIds": [o for o in relevant if o != left_out]}
        elif draw < 0.95:  # consents, names nobody yet
            consent = {"given": True, "recipientOrgIds": []}
        else:  # refuses
            consent = {"given": False, "recipientOrgIds": []}
        arrival: dict[str, Any] = {
            "givenName": rng.choice(GIVEN_F if female else GIVEN_M),
            "familyName": rng.choice(FAMILY),
            "sex": sex,
            "countryReturnedFrom": "LY",
            "arrivalPoint": ARRIVAL_POINT,
            "arrivalDate": today.isoformat(),
            "destinationRegion": region,
            "vulnerabilities": sorted(vulns),
            "consent": consent,
        }
        if rng.random() < 0.3:  # papers with a date of birth; otherwise an estimate at screening
            # Between 1 and 360 days before the birthday ``age`` years ago: exactly ``age`` today.
            leap_day = (today.month, today.day) == (2, 29)
            birthday = today.replace(year=today.year - age, day=28 if leap_day else today.day)
            arrival["dateOfBirth"] = (birthday - dt.timedelta(days=rng.randint(1, 360))).isoformat()
        else:
            arrival["estimatedAge"] = age
        flight.append(arrival)
    return flight


# --- GraphQL -----------------------------------------------------------------------------------
REGISTER = """
mutation Register($input: ArrivalInput!, $key: String!) {
  registerArrival(input: $input, idempotencyKey: $key) { id createdAt vulnerabilities destinationRegion { code } }
}
"""
NOTIFICATIONS = """
query Notifications($first: Int!, $after: String) {
  notifications(first: $first, after: $after) {
    nodes { id kind priority referralId caseId createdAt }
    pageInfo { hasNextPage endCursor }
  }
}
"""
INCOMING = """
query Incoming($first: Int!, $after: String) {
  incomingReferrals(first: $first, after: $after) {
    nodes { id caseId serviceCategory status createdAt }
    pageInfo { hasNextPage endCursor }
  }
}
"""
CASE_REFERRALS = """
query CaseReferrals($id: ID!) {
  case(id: $id) {
    id
    referrals {
      id status serviceCategory priority legalBasis toOrganisation { id } ruleId rulesVersion origin unassignedReason
    }
  }
}
"""
# The fields compared with ``Planned.row``, in its order ("to": the recipient's id, None when unassigned).
REFERRAL_FIELDS = ("to", "serviceCategory", "status", "priority", "legalBasis", "ruleId", "unassignedReason")


class ApiError(Exception):
    def __init__(self, kind: str, detail: str = "", retryable: bool = True) -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind, self.detail, self.retryable = kind, detail, retryable


class Tokens:
    """Client-credentials tokens from the demo clients file; one fresh token per call to ``new``."""

    def __init__(self, base_url: str, secrets: dict[str, dict[str, str]]) -> None:
        self.base_url, self.secrets = base_url, secrets

    async def new(self, http: httpx.AsyncClient, org: str) -> str:
        client = self.secrets[org]
        response = await http.post(f"{self.base_url}/oauth/token", data={"grant_type": "client_credentials"},
                                   auth=(client["client_id"], client["client_secret"]))
        if response.status_code != 200:
            raise ApiError("token refused", f"{org}: HTTP {response.status_code} {response.text[:200]}", False)
        return str(response.json()["access_token"])


class Client:
    """One API client: its own HTTP connection and its own token (renewed once on a 401)."""

    def __init__(self, base_url: str, tokens: Tokens, org: str) -> None:
        self.http = httpx.AsyncClient(timeout=httpx.Timeout(30.0), limits=httpx.Limits(max_connections=4))
        self.url, self.tokens, self.org, self.token = f"{base_url}/graphql", tokens, org, ""

    async def open(self) -> "Client":
        for attempt in range(1, 4):  # the token endpoint can be slow on a loaded machine
            try:
                self.token = await self.tokens.new(self.http, self.org)
                return self
            except httpx.HTTPError as exc:
                if attempt == 3:
                    raise ApiError("token request failed", f"{self.org}: {type(exc).__name__}", False) from None
                await asyncio.sleep(0.5 * attempt)
        raise AssertionError("unreachable")

    async def close(self) -> None:
        await self.http.aclose()

    async def read(self, query: str, variables: dict[str, Any], tries: int = 4) -> dict[str, Any]:
        """A query (safe to repeat): transient failures are retried with a short back-off."""
        for attempt in range(1, tries + 1):
            try:
                return await self.gql(query, variables)
            except ApiError as exc:
                if not exc.retryable or attempt == tries:
                    raise
                print(f"  {self.org}: {exc}; retrying", file=sys.stderr)
                await asyncio.sleep(0.5 * attempt)
        raise AssertionError("unreachable")

    async def gql(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        for attempt in (1, 2):
            try:
                response = await self.http.post(self.url, json={"query": query, "variables": variables},
                                                headers={"Authorization": f"Bearer {self.token}"})
            except httpx.TimeoutException as exc:
                raise ApiError("client timeout", type(exc).__name__) from None
            except httpx.HTTPError as exc:
                raise ApiError("transport error", type(exc).__name__) from None
            if response.status_code == 401 and attempt == 1:
                self.token = await self.tokens.new(self.http, self.org)
                continue
            try:
                body = response.json()
            except ValueError:
                body = None
            if not isinstance(body, dict) or (response.status_code != 200 and not body.get("errors")):
                raise ApiError(f"HTTP {response.status_code}", response.text[:300], response.status_code >= 500)
            if body.get("errors"):
                error = body["errors"][0]
                code = (error.get("extensions") or {}).get("code", "NO_CODE")
                raise ApiError(code, error.get("message", ""), code in {"UNAVAILABLE", "INTERNAL", "NO_CODE"})
            return dict(body["data"])
        raise ApiError("HTTP 401", "token refused twice", False)


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def parse_time(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


# --- the run -------------------------------------------------------------------------------------
@dataclass
class Registration:
    index: int
    case_id: str | None = None
    created_at: str | None = None
    attempts: int = 0
    error: str | None = None


@dataclass
class Run:
    n: int
    c: int
    seed: int
    flight: list[dict[str, Any]]
    plans: list[list[Planned]]
    routing: Routing
    registrations: list[Registration] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    attempt_errors: Counter[str] = field(default_factory=Counter)
    echo_mismatches: int = 0
    t_first: float = 0.0
    t_last_response: float = 0.0
    t_all_notified: float | None = None
    polls: int = 0
    cpu_s: dict[str, float] = field(default_factory=dict)
    cpu_window_s: float = 0.0


async def scan(client: Client, query: str, field_name: str, stop_at: str | None, deadline: float,
               ) -> list[dict[str, Any]]:
    """Every node newer than ``stop_at`` (the newest id seen before the run), newest first."""
    nodes: list[dict[str, Any]] = []
    after = None
    for _ in range(10_000):  # bounded; 1 million rows is far beyond any run of this script
        if time.monotonic() > deadline:
            raise ApiError("deadline", f"scanning {field_name} of {client.org}", False)
        data = (await client.read(query, {"first": PAGE, "after": after}))[field_name]
        for node in data["nodes"]:
            if node["id"] == stop_at:
                return nodes
            nodes.append(node)
        if not data["pageInfo"]["hasNextPage"]:
            return nodes
        after = data["pageInfo"]["endCursor"]
    return nodes


async def newest_id(client: Client, query: str, field_name: str) -> str | None:
    nodes = (await client.read(query, {"first": 1, "after": None}))[field_name]["nodes"]
    return nodes[0]["id"] if nodes else None


async def register_all(run: Run, base_url: str, tokens: Tokens, deadline: float, retries: int) -> None:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(run.n):
        queue.put_nowait(i)
    run.registrations = [Registration(i) for i in range(run.n)]
    batch = uuid.uuid4().hex[:12]
    clients = await asyncio.gather(*(Client(base_url, tokens, OWNER).open() for _ in range(run.c)))
    started = asyncio.Event()

    async def worker(client: Client) -> None:
        while time.monotonic() < deadline:
            try:
                i = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            reg, arrival = run.registrations[i], run.flight[i]
            variables = {"input": arrival, "key": f"bench-{batch}-{i:05d}"}  # same key on every retry
            while True:
                reg.attempts += 1
                if not started.is_set():
                    run.t_first = time.monotonic()
                    started.set()
                t0 = time.monotonic()
                try:
                    data = await client.gql(REGISTER, variables)
                except ApiError as exc:
                    run.latencies_ms.append((time.monotonic() - t0) * 1000)
                    run.attempt_errors[exc.kind] += 1
                    reg.error = str(exc)[:300]
                    if exc.retryable and reg.attempts <= retries and time.monotonic() < deadline:
                        await asyncio.sleep(0.5 * reg.attempts)
                        continue
                    break
                run.latencies_ms.append((time.monotonic() - t0) * 1000)
                case = data["registerArrival"]
                reg.case_id, reg.created_at, reg.error = case["id"], case["createdAt"], None
                if (sorted(case["vulnerabilities"]) != arrival["vulnerabilities"]
                        or case["destinationRegion"]["code"] != arrival["destinationRegion"]):
                    run.echo_mismatches += 1
                break
            run.t_last_response = time.monotonic()

    try:
        await asyncio.gather(*(worker(c) for c in clients))
    finally:
        await asyncio.gather(*(c.close() for c in clients))


async def wait_for_notifications(run: Run, readers: dict[str, Client], markers: dict[str, str | None],
                                 expected: Counter[tuple[str, str]], our_cases: set[str], deadline: float,
                                 interval: float) -> None:
    """Poll every organisation that should be notified until all expected notifications exist."""
    orgs = sorted({org for org, _ in expected})
    while time.monotonic() < deadline:
        run.polls += 1
        try:
            scans = await asyncio.gather(
                *(scan(readers[o], NOTIFICATIONS, "notifications", markers[o], deadline) for o in orgs))
        except ApiError as exc:
            if exc.kind == "deadline":
                return
            print(f"  poll error ({exc}); polling again", file=sys.stderr)
            await asyncio.sleep(interval)
            continue
        seen: Counter[tuple[str, str]] = Counter()
        for org, nodes in zip(orgs, scans, strict=True):
            for node in {n["referralId"]: n for n in nodes if n["caseId"] in our_cases}.values():
                seen[(org, node["kind"])] += 1
        if all(seen[key] >= count for key, count in expected.items()):
            run.t_all_notified = time.monotonic()
            return
        await asyncio.sleep(interval)


async def bench(args: argparse.Namespace, base_url: str, secrets: dict[str, dict[str, str]],
                cpu: Callable[[], dict[str, float]] | None = None) -> dict[str, Any]:
    """``cpu``: the CPU seconds each part of the platform has used (``Platform.cpu_seconds``), when known."""
    today = dt.datetime.now(dt.UTC).date()
    routing = Routing(args.rules, args.directory, OWNER, args.coordinator)
    flight = make_flight(args.arrivals, args.seed, today, routing)
    run = Run(args.arrivals, args.concurrency, args.seed, flight,
              [routing.plan(routing.person(a, age_of(a, today))) for a in flight], routing)
    tokens = Tokens(base_url, secrets)
    # The owner, the coordinating body and every organisation of the directory; the others (statistics
    # only, the steward) can be neither referred to nor notified by a flight.
    missing_clients = sorted(routing.readers() - set(secrets))
    if missing_clients:
        raise ApiError("no client", f"{', '.join(missing_clients)} missing from the clients file", False)
    orgs = sorted(routing.readers())
    overall = time.monotonic() + args.timeout

    # One reader per organisation; the newest notification/referral each can see before the run
    # bounds later scans, so a platform that already holds data is not scanned in full each poll.
    readers = dict(zip(orgs, await asyncio.gather(*(Client(base_url, tokens, o).open() for o in orgs)), strict=True))
    try:
        note_markers = dict(zip(orgs, await asyncio.gather(
            *(newest_id(readers[o], NOTIFICATIONS, "notifications") for o in orgs)), strict=True))
        ref_markers = dict(zip(orgs, await asyncio.gather(
            *(newest_id(readers[o], INCOMING, "incomingReferrals") for o in orgs)), strict=True))

        print(f"registering {run.n} arrivals with {run.c} concurrent clients…", file=sys.stderr)
        cpu_before = cpu() if cpu else {}
        client_cpu, cpu_t0 = time.process_time(), time.monotonic()
        await register_all(run, base_url, tokens, overall, args.retries)
        registered = [r for r in run.registrations if r.case_id]
        our_cases = {r.case_id for r in registered if r.case_id}
        # Expectations only for arrivals the platform accepted (a failed one has no case).
        expected_notes: Counter[tuple[str, str]] = Counter(
            n for r in registered for n in routing.expected_notices(run.plans[r.index]))
        print(f"registered {len(registered)}/{run.n}; waiting for {sum(expected_notes.values())} notifications…",
              file=sys.stderr)
        await wait_for_notifications(run, readers, note_markers, expected_notes, our_cases, overall,
                                     args.poll_interval)
        # CPU spent from the first registration to the last notification, per process tree.
        if cpu:
            after = cpu()
            run.cpu_s = {name: round(after[name] - cpu_before.get(name, 0.0), 2) for name in after}
        run.cpu_s["bench client"] = round(time.process_time() - client_cpu, 2)
        run.cpu_window_s = round(time.monotonic() - cpu_t0, 2)

        # Verification, after a short settle so late duplicates show up too. Not timed.
        await asyncio.sleep(args.settle)
        check_deadline = max(overall, time.monotonic() + 60)
        verification = await verify(run, readers, note_markers, ref_markers, registered, check_deadline, base_url,
                                    tokens)
    finally:
        await asyncio.gather(*(c.close() for c in readers.values()))
    return report(run, expected_notes, verification)


async def verify(run: Run, readers: dict[str, Client], note_markers: dict[str, str | None],
                 ref_markers: dict[str, str | None], registered: list[Registration], deadline: float,
                 base_url: str, tokens: Tokens) -> dict[str, Any]:
    orgs = sorted(readers)
    case_index = {r.case_id: r.index for r in registered}
    created = {r.case_id: parse_time(r.created_at) for r in registered if r.created_at}

    # Notifications: per (case, org, kind), compared with the plan.
    notes = dict(zip(orgs, await asyncio.gather(
        *(scan(readers[o], NOTIFICATIONS, "notifications", note_markers[o], deadline) for o in orgs)), strict=True))
    routing = run.routing
    expected_per: Counter[tuple[str, str, str]] = Counter(
        (str(r.case_id), *n) for r in registered for n in routing.expected_notices(run.plans[r.index]))
    seen_per: Counter[tuple[str, str, str]] = Counter()
    per_referral: Counter[tuple[str, str, str]] = Counter()
    lags_ms: list[float] = []
    seen_by_org: Counter[str] = Counter()
    for org, nodes in notes.items():
        for n in nodes:
            if n["caseId"] not in case_index:
                continue
            seen_by_org[org] += 1
            seen_per[(n["caseId"], org, n["kind"])] += 1
            per_referral[(n["referralId"], org, n["kind"])] += 1
            lags_ms.append((parse_time(n["createdAt"]) - created[n["caseId"]]).total_seconds() * 1000)
    missing = expected_per - seen_per
    extra = seen_per - expected_per
    duplicates = {k: v for k, v in per_referral.items() if v > 1}

    # Referrals as the case owner sees them, one query per case, C at a time.
    owner_clients = await asyncio.gather(*(Client(base_url, tokens, OWNER).open() for _ in range(run.c)))
    referrals: dict[str, list[dict[str, Any]]] = {}
    queue: asyncio.Queue[str] = asyncio.Queue()
    for case_id in case_index:
        queue.put_nowait(case_id)
    ref_errors: Counter[str] = Counter()

    async def fetch(client: Client) -> None:
        while time.monotonic() < deadline:
            try:
                case_id = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            try:
                referrals[case_id] = (await client.read(CASE_REFERRALS, {"id": case_id}))["case"]["referrals"]
            except ApiError as exc:
                ref_errors[exc.kind] += 1

    try:
        await asyncio.gather(*(fetch(c) for c in owner_clients))
    finally:
        await asyncio.gather(*(c.close() for c in owner_clients))
    ref_mismatch_cases: list[dict[str, Any]] = []
    by_status: Counter[str] = Counter()
    by_category: Counter[tuple[str, str]] = Counter()
    other_version = 0
    # Each referral the owner sees must be told exactly as its state says (per referral id, so a
    # notice for one referral cannot stand in for another's of the same case).
    expected_per_referral: Counter[tuple[str, str, str]] = Counter()
    for case_id, rows in referrals.items():
        got = sorted((tuple((r["toOrganisation"] or {}).get("id") if c == "to" else r[c] for c in REFERRAL_FIELDS)
                      for r in rows), key=repr)
        want = sorted((p.row for p in run.plans[case_index[case_id]]), key=repr)
        by_status.update(r["status"] for r in rows)
        by_category.update((r["serviceCategory"], r["status"]) for r in rows)
        other_version += sum(1 for r in rows if r["rulesVersion"] != routing.version or r["origin"] != "RULE")
        if got != want:
            ref_mismatch_cases.append({"case": case_id, "expected": want, "seen": got})
        for r in rows:
            to_org = (r["toOrganisation"] or {}).get("id")
            expected_per_referral.update(
                (r["id"], *n) for n in notices(OWNER, routing.coordinator, to_org, r["status"]))
    seen_per_referral = Counter({k: 1 for k in per_referral})
    referral_notes_missing = expected_per_referral - seen_per_referral
    referral_notes_stray = seen_per_referral - expected_per_referral

    # Referrals as each recipient sees them.
    incoming = dict(zip(orgs, await asyncio.gather(
        *(scan(readers[o], INCOMING, "incomingReferrals", ref_markers[o], deadline) for o in orgs)), strict=True))
    incoming_by_org = Counter({o: sum(1 for r in rows if r["caseId"] in case_index) for o, rows in incoming.items()})
    incoming_by_org = +incoming_by_org
    expected_incoming = Counter(p.to_org for r in registered for p in run.plans[r.index] if p.status == "PENDING")

    return {
        "notifications_seen_by_org": dict(sorted(seen_by_org.items())),
        "notifications_missing": sum(missing.values()),
        "notifications_unexpected": sum(extra.values()),
        "notifications_duplicated": sum(v - 1 for v in duplicates.values()),
        "missing_examples": [list(k) for k in list(missing)[:5]],
        "unexpected_examples": [list(k) for k in list(extra)[:5]],
        "pipeline_lag_ms": {"p50": percentile(lags_ms, 50), "p95": percentile(lags_ms, 95),
                            "max": max(lags_ms) if lags_ms else None},
        "referrals_expected": sum(len(run.plans[r.index]) for r in registered),
        "referrals_seen_by_owner": sum(len(v) for v in referrals.values()),
        "referrals_by_status": dict(sorted(by_status.items())),
        "referrals_by_category": {f"{c} {s}": n for (c, s), n in sorted(by_category.items())},
        "referrals_of_other_rules_version": other_version,
        "rules_version": routing.version,
        "referral_notices_missing": sum(referral_notes_missing.values()),
        "referral_notices_stray": sum(referral_notes_stray.values()),
        "referral_notice_examples": [list(k) for k in [*referral_notes_missing, *referral_notes_stray][:5]],
        "cases_checked": len(referrals),
        "case_query_errors": dict(ref_errors),
        "referral_mismatch_cases": len(ref_mismatch_cases),
        "referral_mismatch_examples": ref_mismatch_cases[:3],
        "incoming_expected_by_org": dict(sorted(expected_incoming.items())),
        "incoming_seen_by_org": dict(sorted(incoming_by_org.items())),
    }


def report(run: Run, expected_notes: Counter[tuple[str, str]], v: dict[str, Any]) -> dict[str, Any]:
    ok = [r for r in run.registrations if r.case_id]
    failed = [r for r in run.registrations if not r.case_id and r.attempts]
    not_attempted = sum(1 for r in run.registrations if not r.attempts)  # the overall timeout came first
    wall = max(run.t_last_response - run.t_first, 1e-9)
    lat = run.latencies_ms
    expected_by_org: Counter[str] = Counter()
    for (org, _kind), count in expected_notes.items():
        expected_by_org[org] += count
    vulns = Counter(x for a in run.flight for x in a["vulnerabilities"])
    problems = [text for bad, text in (
        (failed, f"{len(failed)} registrations failed"),
        (not_attempted, f"{not_attempted} arrivals not attempted before the timeout"),
        (run.t_all_notified is None and not failed and not not_attempted,
         "the expected notifications were not all visible before the timeout"),
        (v["notifications_missing"], f"{v['notifications_missing']} notifications missing"),
        (v["notifications_unexpected"], f"{v['notifications_unexpected']} unexpected notifications"),
        (v["notifications_duplicated"], f"{v['notifications_duplicated']} duplicated notifications"),
        (v["referral_mismatch_cases"], f"{v['referral_mismatch_cases']} cases with other referrals than planned"),
        (v["referrals_of_other_rules_version"],
         f"{v['referrals_of_other_rules_version']} referrals not made by rules version {v['rules_version']}"),
        (v["referral_notices_missing"], f"{v['referral_notices_missing']} referrals not announced as their state says"),
        (v["referral_notices_stray"], f"{v['referral_notices_stray']} notices for no such referral or of another kind"),
        (v["cases_checked"] != len(ok), f"{len(ok) - v['cases_checked']} cases could not be checked"),
        (v["incoming_seen_by_org"] != v["incoming_expected_by_org"], "incomingReferrals differ from the plan"),
        (run.echo_mismatches, f"{run.echo_mismatches} registrations echoed other data than sent"),
    ) if bad]
    return {
        "arrivals": run.n,
        "concurrency": run.c,
        "seed": run.seed,
        "registered": len(ok),
        "failed": len(failed),
        "not_attempted": not_attempted,
        "errors": sum(run.attempt_errors.values()),
        "error_kinds": dict(run.attempt_errors),
        "failure_examples": [r.error for r in failed[:3]],
        "requests": len(lat),
        "echo_mismatches": run.echo_mismatches,
        "wall_time_s": round(wall, 3),
        "throughput_per_s": round(len(ok) / wall, 2),
        "latency_ms": {k: (round(x, 1) if x is not None else None) for k, x in (
            ("p50", percentile(lat, 50)), ("p95", percentile(lat, 95)), ("p99", percentile(lat, 99)),
            ("max", max(lat) if lat else None), ("mean", sum(lat) / len(lat) if lat else None))},
        "time_until_last_notification_s": (round(run.t_all_notified - run.t_first, 3)
                                           if run.t_all_notified is not None else None),
        "notification_drain_after_last_registration_s": (round(run.t_all_notified - run.t_last_response, 3)
                                                         if run.t_all_notified is not None else None),
        "polls": run.polls,
        "cpu_seconds": run.cpu_s,
        "cpu_window_s": run.cpu_window_s,
        "vulnerability_mix": dict(sorted(vulns.items())),
        "arrivals_without_vulnerability": sum(1 for a in run.flight if not a["vulnerabilities"]),
        "notifications_expected_by_org": dict(sorted(expected_by_org.items())),
        "notifications_expected": sum(expected_by_org.values()),
        **v,
        "problems": problems,
        "complete": not problems,
    }


def fmt_ms(x: float | None) -> str:
    return "-" if x is None else f"{x:.0f}"


def print_human(r: dict[str, Any], out: Any) -> None:
    lat, lag = r["latency_ms"], r["pipeline_lag_ms"]
    tl = r["time_until_last_notification_s"]
    lines = [
        f"Segin charter-flight benchmark (seed {r['seed']}, {r['started_at']}, {r['machine']})",
        f"  revision                      {r['revision']}",
        f"  load average (1/5/15 min)     before {r['load_average_before']}, after {r['load_average_after']}",
        f"  arrivals (N)                  {r['arrivals']}",
        f"  concurrency (C)               {r['concurrency']}",
        f"  registered                    {r['registered']} ok, {r['failed']} failed"
        + (f", {r['not_attempted']} not attempted (timeout)" if r["not_attempted"] else ""),
        f"  errors                        {r['errors']} of {r['requests']} requests {r['error_kinds'] or ''}".rstrip(),
        f"  wall time                     {r['wall_time_s']:.2f} s (first request sent → last response)",
        f"  throughput                    {r['throughput_per_s']:.1f} arrivals/s",
        f"  latency p50/p95/p99/max       {fmt_ms(lat['p50'])} / {fmt_ms(lat['p95'])} / {fmt_ms(lat['p99'])} / "
        f"{fmt_ms(lat['max'])} ms (mean {fmt_ms(lat['mean'])})",
        "  time until last notification  " + (
            "n/a (nothing registered)" if not r["registered"] else
            f"{tl:.2f} s ({r['notification_drain_after_last_registration_s']:.2f} s after the last registration,"
            f" {r['polls']} polls)" if tl is not None else f"NOT REACHED within the timeout ({r['polls']} polls)"),
        f"  case → notification lag       p50 {fmt_ms(lag['p50'])} / p95 {fmt_ms(lag['p95'])} / "
        f"max {fmt_ms(lag['max'])} ms (server timestamps)",
        f"  referrals                     expected {r['referrals_expected']}, seen by owner "
        f"{r['referrals_seen_by_owner']} {r['referrals_by_status']}; cases checked {r['cases_checked']}, "
        f"mismatching {r['referral_mismatch_cases']}",
        f"    by category and state       {r['referrals_by_category']}",
        f"    rules version               {r['rules_version']} ({r['referrals_of_other_rules_version']} of another"
        f" version or origin)",
        f"  incoming referrals (live)     expected {r['incoming_expected_by_org']}",
        f"                                seen     {r['incoming_seen_by_org']}",
        f"  notifications                 expected {r['notifications_expected']}, seen "
        f"{sum(r['notifications_seen_by_org'].values())}; missing {r['notifications_missing']}, "
        f"unexpected {r['notifications_unexpected']}, duplicated {r['notifications_duplicated']}",
        f"    expected by org             {r['notifications_expected_by_org']}",
        f"    seen by org                 {r['notifications_seen_by_org']}",
        f"    per referral                {r['referral_notices_missing']} referrals not announced as their state says,"
        f" {r['referral_notices_stray']} stray notices",
        f"  CPU seconds used              {r['cpu_seconds']}",
        f"                                total {sum(r['cpu_seconds'].values()):.1f} s in a {r['cpu_window_s']:.1f} s"
        f" window (client tokens → last notification), {os.cpu_count()} CPUs",
        f"  vulnerability mix             {r['vulnerability_mix']}; none: {r['arrivals_without_vulnerability']}",
    ]
    if r["failure_examples"]:
        lines.append(f"  failures, e.g.                {r['failure_examples']}")
    if r["missing_examples"] or r["unexpected_examples"]:
        lines.append(f"  missing e.g. {r['missing_examples']}; unexpected e.g. {r['unexpected_examples']}")
    if r["referral_notice_examples"]:
        lines.append(f"  referral notices e.g.         {r['referral_notice_examples']}")
    if r["referral_mismatch_examples"]:
        lines.append(f"  referral mismatches e.g.      {r['referral_mismatch_examples']}")
    if "platform_stop_s" in r:
        killed = r["killed_on_stop"]
        lines.append(f"  platform stop                 {r['platform_stop_s']:.1f} s; exit codes {r['stop_exit_codes']}"
                     + (f" — {', '.join(killed)} ignored SIGTERM for 15 s and were SIGKILLed" if killed else ""))
    if r.get("log_summary"):
        lines.append(f"  platform logs ({r.get('log_dir')}):")
        for entry in r["log_summary"]:
            lines.append(f"    {entry['count']:>5} × {entry['file']} {entry['level']}: {entry['message']}"
                         f" {entry.get('detail') or ''}".rstrip())
    lines.append(f"  result                        {'OK' if r['complete'] else '; '.join(r['problems'])}")
    print("\n".join(lines), file=out, flush=True)


def summarise_logs(log_dir: Path) -> list[dict[str, Any]]:
    """Warnings, errors and tracebacks in the platform's logs, counted by message."""
    counts: Counter[tuple[str, str, str, str]] = Counter()
    for path in sorted(log_dir.glob("*.log")):
        for line in path.read_text(errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                if "Traceback" in line or "Error" in line:
                    counts[(path.name, "RAW", line.strip()[:160], "")] += 1
                continue
            if not isinstance(entry, dict) or entry.get("level") not in {"WARNING", "ERROR", "CRITICAL"}:
                continue
            detail = {k: entry[k] for k in ("consumer", "subject", "error", "schema") if k in entry}
            message = (str(entry.get("message", "")).splitlines() or [""])[0][:160]
            counts[(path.name, entry["level"], message,
                    json.dumps(detail, sort_keys=True) if detail else "")] += 1
    return [{"file": f, "level": lvl, "message": m, "detail": d, "count": c}
            for (f, lvl, m, d), c in counts.most_common(15)]


def load() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def revision() -> str:
    """The commit measured, and whether the platform's files differed from it (bench/ aside)."""
    import subprocess

    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              timeout=10).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                                capture_output=True, text=True, timeout=10).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    dirty = [line[3:] for line in status if not line[3:].startswith("bench/")]
    return f"{head or 'unknown'}{' + uncommitted changes in ' + ', '.join(dirty) if dirty else ''}"


def machine() -> str:
    import platform as host

    return f"{host.node()}, {os.cpu_count()} CPUs, {host.system()} {host.release()}, Python {host.python_version()}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arrivals", "-n", type=int, default=300, help="arrivals to register (default 300)")
    parser.add_argument("--concurrency", "-c", type=int, default=10, help="concurrent API clients (default 10)")
    parser.add_argument("--url", help="base URL of an already running platform (default: start one)")
    parser.add_argument("--secrets", type=Path,
                        help="its demo-clients.json (default with --url: $SEGIN_DATA_DIR or .data)/demo-clients.json")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout (summary on stderr)")
    parser.add_argument("--seed", type=int, default=20261129, help="random seed of the passenger list")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="overall budget in seconds from the first API call (default 300); every"
                             " loop stops by itself when it is spent")
    parser.add_argument("--poll-interval", type=float, default=0.2, help="seconds between notification polls")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds to wait before the final check")
    parser.add_argument("--retries", type=int, default=2,
                        help="retries of a failed registration, same idempotency key (default 2)")
    parser.add_argument("--rules", type=Path,
                        default=Path(os.environ.get("SEGIN_ROUTING_RULES") or RULES_FILE),
                        help="the routing rules file the platform runs with (default: $SEGIN_ROUTING_RULES, else"
                             " the packaged one)")
    parser.add_argument("--directory", type=Path, default=DIRECTORY_FILE,
                        help="the directory file the platform was seeded with (default: the demo one)")
    parser.add_argument("--coordinator", default=os.environ.get("SEGIN_COORDINATOR_ORG") or "dgme",
                        help="the coordinating body told of unmet needs (default: $SEGIN_COORDINATOR_ORG, else dgme)")
    parser.add_argument("--keep-data", action="store_true", help="keep the temporary platform's data dir and logs")
    parser.add_argument("--logs", type=Path, help="with --url: the platform's logs dir, to summarise its warnings")
    args = parser.parse_args(argv)
    if args.arrivals < 1 or args.concurrency < 1:
        parser.error("--arrivals and --concurrency must be at least 1")
    args.concurrency = min(args.concurrency, args.arrivals)

    platform = None
    data_dir: Path | None = None
    log_dir: Path | None = args.logs
    started_at = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    try:
        if args.url:
            base_url = args.url.rstrip("/").removesuffix("/graphql")
            secrets_file = args.secrets or Path(os.environ.get("SEGIN_DATA_DIR", ".data")) / "demo-clients.json"
        else:
            from devstack.platform import scratch

            platform = scratch()
            data_dir = platform.data_dir
            print(f"starting a platform in {data_dir}…", file=sys.stderr)
            t0 = time.monotonic()
            try:
                platform.start()
            except Exception as exc:  # e.g. not ready in time on a loaded machine
                print(f"the platform did not start: {exc}", file=sys.stderr)
                for path in sorted(platform.log_dir.glob("*.log")):
                    text = path.read_text(errors="replace")
                    if "Traceback" in text or '"ERROR"' in text:
                        print(f"--- end of {path.name}:", *text.splitlines()[-15:], sep="\n", file=sys.stderr)
                return 2
            print(f"platform ready in {time.monotonic() - t0:.1f} s at {platform.base_url}", file=sys.stderr)
            base_url, secrets_file, log_dir = platform.base_url, platform.secrets_file, platform.log_dir
        try:
            secrets = json.loads(Path(secrets_file).read_text())
        except (OSError, ValueError) as exc:
            print(f"cannot read the demo clients file {secrets_file}: {exc}", file=sys.stderr)
            return 2
        if OWNER not in secrets:
            print(f"{secrets_file} has no client for '{OWNER}'", file=sys.stderr)
            return 2
        load_before = load()
        try:
            result = asyncio.run(bench(args, base_url, secrets, platform.cpu_seconds if platform else None))
        except (ApiError, httpx.HTTPError) as exc:
            print(f"benchmark aborted: {exc}", file=sys.stderr)
            return 2
        result = {"started_at": started_at, "machine": machine(), "revision": revision(), "url": base_url,
                  "own_platform": platform is not None, "load_average_before": load_before,
                  "load_average_after": load(), **result}
        if platform is not None:
            # Stopped here rather than at exit, so that how it stops is part of the report.
            procs = dict(platform.processes)
            t0 = time.monotonic()
            platform.stop()
            result["platform_stop_s"] = round(time.monotonic() - t0, 1)
            result["stop_exit_codes"] = {name: proc.returncode for name, proc in procs.items()}
            result["killed_on_stop"] = sorted(name for name, code in result["stop_exit_codes"].items()
                                              if code == -9)
        if log_dir and log_dir.is_dir():
            result["log_dir"] = str(log_dir)
            result["log_summary"] = summarise_logs(log_dir)
        if args.json:
            print(json.dumps(result, indent=2, ensure_ascii=False))
            print_human(result, sys.stderr)
        else:
            print_human(result, sys.stdout)
        return 0 if result["complete"] else 1
    finally:
        if platform is not None and not args.keep_data:
            from devstack.platform import discard

            discard(platform)
        elif platform is not None:
            platform.stop()
            print(f"kept {data_dir} (logs in {data_dir}/logs)", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
