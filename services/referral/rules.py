"""The routing rules file: loaded once at start, validated, refused with its line and reason.

Routing rules are data people change (``rules/routing.yaml``, or the file ``SEGIN_ROUTING_RULES``
names), so a mistake in them must stop the referral service at start, saying where, rather than
route people wrongly. The file is checked in two steps: its shape against ``rules/routing.schema.json``
(JSON Schema 2020-12), then its names against the platform's reference lists (categories,
vulnerabilities, sexes, arrival points, regions) and its own consistency (duplicate rule ids, age
ranges, triggers that contradict each other). Each problem is reported as ``file:line: reason``,
the line found from PyYAML's node marks.
"""

from __future__ import annotations

import os
import re
import sys
from datetime import timedelta
from enum import StrEnum
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

from contracts.reference import (
    ArrivalPoint,
    LegalBasis,
    Priority,
    ServiceCategory,
    Sex,
    Vulnerability,
    regions,
)
from kernel.datafile import DataFileError, Lines, Where, dotted, load_schema, parse, read
from services.referral.domain import RegionCondition, Rule, RuleSet, ServedIn

ENV = "SEGIN_ROUTING_RULES"
_PACKAGE = resources.files("services.referral")
DEFAULT_FILE = Path(str(_PACKAGE.joinpath("rules/routing.yaml")))
SCHEMA_FILE = Path(str(_PACKAGE.joinpath("rules/routing.schema.json")))
_DURATION = re.compile(r"^P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?)?$")

class RulesError(DataFileError):
    """The rules file cannot be used: every problem found, each with its line."""


def configured_file() -> Path:
    return Path(os.environ.get(ENV) or DEFAULT_FILE)


def load_rules(file: Path | str | None = None) -> RuleSet:
    """The rules of ``file`` (default: ``SEGIN_ROUTING_RULES``, else the packaged file), validated."""
    path = Path(file) if file is not None else configured_file()
    return parse_rules(read(path, "rules file", RulesError), path)


def parse_rules(text: str, file: Path | str = "<rules>") -> RuleSet:
    data, lines = parse(text, file, load_schema(SCHEMA_FILE), RulesError, _message)
    return _build(data, lines, file)


def _message(error: Any) -> str:
    if error.validator == "oneOf" and error.absolute_path and error.absolute_path[-1] == "due_in":
        return f"{error.instance!r} is neither an ISO 8601 duration (PT6H, P3D) nor a number of hours"
    if error.validator == "pattern":
        return f"{error.instance!r} does not have the expected form ({error.schema.get('description') or error.validator_value})"
    return error.message


def duration(value: int | str) -> timedelta:
    """Hours, or an ISO 8601 duration of weeks, days, hours and minutes (the schema checked its form)."""
    if isinstance(value, int):
        return timedelta(hours=value)
    match = _DURATION.match(value)
    if not match:
        raise ValueError(f"{value!r} is not an ISO 8601 duration")
    weeks, days, hours, minutes = (int(g or 0) for g in match.groups())
    return timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes)


def _names(enum: type[StrEnum], values: list[str], where: Where, lines: Lines, what: str,
           problems: list[tuple[int, str]]) -> frozenset[Any]:
    known = {e.value for e in enum}
    for i, value in enumerate(values):
        if value not in known:
            problems.append((lines.line((*where, i)), f"{dotted((*where, i))}: {value} is not a known {what}"))
    return frozenset(enum(v) for v in values if v in known)


def _build(data: dict[str, Any], lines: Lines, file: Path | str) -> RuleSet:
    """The rule set, once every name is known and every rule consistent (else RulesError)."""
    problems: list[tuple[int, str]] = []
    points: dict[ArrivalPoint, str] = {}
    for point, region in (data.get("arrival_point_regions") or {}).items():
        where = ("arrival_point_regions", point)
        if point not in {p.value for p in ArrivalPoint}:
            problems.append((lines.key_line(where), f"{dotted(where)}: {point} is not a known arrival point"))
        elif region not in regions():
            problems.append((lines.line(where), f"{dotted(where)}: {region} is not a region code"))
        else:
            points[ArrivalPoint(point)] = region
    built, seen = [], {}
    for i, raw in enumerate(data["rules"]):
        at: Where = ("rules", i)
        if raw["id"] in seen:
            problems.append((lines.line((*at, "id")), f"{dotted((*at, 'id'))}: rule id {raw['id']} is already "
                                                       f"used on line {seen[raw['id']]}"))
        seen.setdefault(raw["id"], lines.line((*at, "id")))
        if raw["category"] not in {c.value for c in ServiceCategory}:
            problems.append((lines.line((*at, "category")),
                             f"{dotted((*at, 'category'))}: {raw['category']} is not a known service category"))
        when, when_at = raw["when"], (*at, "when")
        if when.get("every_arrival") and len(when) > 1:
            problems.append((lines.line(when_at), f"{dotted(when_at)}: every_arrival stands alone"))
        if when.get("children") and when.get("adults"):
            problems.append((lines.line(when_at), f"{dotted(when_at)}: children and adults together mean anyone;"
                                                  " leave both out"))
        age = when.get("age") or {}
        if "min" in age and "max" in age and age["min"] > age["max"]:
            problems.append((lines.line((*when_at, "age")), f"{dotted((*when_at, 'age'))}: min is above max"))
        vulnerabilities = _names(Vulnerability, when.get("vulnerabilities", []), (*when_at, "vulnerabilities"),
                                 lines, "vulnerability", problems)
        sexes = _names(Sex, when.get("sex", []), (*when_at, "sex"), lines, "sex", problems)
        arrival_points = _names(ArrivalPoint, when.get("arrival_points", []), (*when_at, "arrival_points"), lines,
                                "arrival point", problems)
        if raw["category"] not in {c.value for c in ServiceCategory}:
            continue
        built.append(Rule(
            id=raw["id"], category=ServiceCategory(raw["category"]), priority=Priority(raw["priority"]),
            due_in=duration(raw["due_in"]), vulnerabilities=vulnerabilities, min_age=age.get("min"),
            max_age=age.get("max"), sexes=sexes, arrival_points=arrival_points,
            children=True if when.get("children") else (False if when.get("adults") else None),
            every_arrival=bool(when.get("every_arrival")),
            basis_without_consent=LegalBasis(raw["basis_without_consent"]) if "basis_without_consent" in raw else None,
            served_in=ServedIn(raw.get("served_in", ServedIn.DESTINATION.value)),
            when_region=RegionCondition(raw["when_region"]) if "when_region" in raw else None,
        ))
    if problems:
        raise RulesError(file, problems)
    return RuleSet(version=data["version"], rules=tuple(built), arrival_point_regions=MappingProxyType(points))


# --- the rules the running service routes by ------------------------------------------------------

_active: RuleSet | None = None


def install(rules: RuleSet) -> RuleSet:
    """Route by ``rules`` from now on (at start; tests switch versions with it)."""
    global _active
    _active = rules
    return rules


def active() -> RuleSet:
    """The rules in force: those installed at start, else the configured file, loaded once."""
    return _active if _active is not None else install(load_rules())


def load_or_exit() -> RuleSet:
    """At start: install the configured rules, or stop the process with the file, line and reason
    (exit status 2, no stack trace: the operator needs the line, not the loader's frames)."""
    try:
        return install(load_rules())
    except RulesError as exc:
        print(f"referral: refusing to start, the routing rules file is not valid:\n{exc}", file=sys.stderr)
        raise SystemExit(2) from None
