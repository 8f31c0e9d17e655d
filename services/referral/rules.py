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

import json
import os
import re
import sys
from datetime import timedelta
from enum import StrEnum
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml
from jsonschema import Draft202012Validator

from contracts.reference import (
    ArrivalPoint,
    LegalBasis,
    Priority,
    ServiceCategory,
    Sex,
    Vulnerability,
    regions,
)
from services.referral.domain import RegionCondition, Rule, RuleSet, ServedIn

ENV = "SEGIN_ROUTING_RULES"
_PACKAGE = resources.files("services.referral")
DEFAULT_FILE = Path(str(_PACKAGE.joinpath("rules/routing.yaml")))
SCHEMA_FILE = Path(str(_PACKAGE.joinpath("rules/routing.schema.json")))
_DURATION = re.compile(r"^P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?)?$")

Path_ = tuple[str | int, ...]


class RulesError(Exception):
    """The rules file cannot be used: every problem found, each with its line."""

    def __init__(self, file: Path | str, problems: list[tuple[int, str]]) -> None:
        self.file, self.problems = str(file), sorted(problems)
        super().__init__("\n".join(f"{self.file}:{line}: {reason}" for line, reason in self.problems))

    @property
    def line(self) -> int:
        return self.problems[0][0]

    @property
    def reason(self) -> str:
        return self.problems[0][1]


def configured_file() -> Path:
    return Path(os.environ.get(ENV) or DEFAULT_FILE)


def load_rules(file: Path | str | None = None) -> RuleSet:
    """The rules of ``file`` (default: ``SEGIN_ROUTING_RULES``, else the packaged file), validated."""
    path = Path(file) if file is not None else configured_file()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RulesError(path, [(0, f"cannot read the rules file ({exc.strerror or type(exc).__name__})")]) from None
    return parse_rules(text, path)


def parse_rules(text: str, file: Path | str = "<rules>") -> RuleSet:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise RulesError(file, [((mark.line + 1) if mark else 0, f"not valid YAML: {exc.problem}")]) from None
    except yaml.YAMLError as exc:
        raise RulesError(file, [(0, f"not valid YAML: {exc}")]) from None
    if root is None:
        raise RulesError(file, [(1, "the file is empty")])
    lines = _Lines(root)
    problems = lines.duplicate_keys()
    if problems:
        raise RulesError(file, problems)
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    for error in Draft202012Validator(schema).iter_errors(data):
        where = tuple(error.absolute_path)
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            allowed = set(error.schema.get("properties", {}))
            extra = sorted(k for k in error.instance if k not in allowed)
            where = (*where, extra[0]) if extra else where
            problems.append((lines.key_line(where), f"{_dotted(where)}: unknown field"))
            continue
        problems.append((lines.line(where), f"{_dotted(where)}: {_message(error)}"))
    if problems:
        raise RulesError(file, problems)
    return _build(data, lines, file)


def _message(error: Any) -> str:
    if error.validator == "oneOf" and error.absolute_path and error.absolute_path[-1] == "due_in":
        return f"{error.instance!r} is neither an ISO 8601 duration (PT6H, P3D) nor a number of hours"
    if error.validator == "pattern":
        return f"{error.instance!r} does not have the expected form ({error.schema.get('description') or error.validator_value})"
    return error.message


def _dotted(where: Path_) -> str:
    out = ""
    for part in where:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(file)"


class _Lines:
    """Line numbers (1-based) of the nodes of the composed YAML document, by data path."""

    def __init__(self, root: yaml.Node) -> None:
        self.root = root

    def _walk(self, where: Path_) -> tuple[yaml.Node, yaml.Node | None]:
        node, key_node = self.root, None
        for part in where:
            if isinstance(node, yaml.MappingNode):
                found = next(((k, v) for k, v in node.value if k.value == part), None)
                if found is None:
                    break
                key_node, node = found
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
                key_node, node = None, node.value[part]
            else:
                break
        return node, key_node

    def line(self, where: Path_) -> int:
        return self._walk(where)[0].start_mark.line + 1

    def key_line(self, where: Path_) -> int:
        node, key = self._walk(where)
        return (key or node).start_mark.line + 1

    def duplicate_keys(self) -> list[tuple[int, str]]:
        """YAML loaders keep the last of two equal keys silently; a rules file must not."""
        problems, stack = [], [self.root]
        while stack:
            node = stack.pop()
            if isinstance(node, yaml.MappingNode):
                seen: set[str] = set()
                for key, value in node.value:
                    if key.value in seen:
                        problems.append((key.start_mark.line + 1, f"{key.value}: given twice"))
                    seen.add(key.value)
                    stack.append(value)
            elif isinstance(node, yaml.SequenceNode):
                stack.extend(node.value)
        return problems


def duration(value: int | str) -> timedelta:
    """Hours, or an ISO 8601 duration of weeks, days, hours and minutes (the schema checked its form)."""
    if isinstance(value, int):
        return timedelta(hours=value)
    match = _DURATION.match(value)
    if not match:
        raise ValueError(f"{value!r} is not an ISO 8601 duration")
    weeks, days, hours, minutes = (int(g or 0) for g in match.groups())
    return timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes)


def _names(enum: type[StrEnum], values: list[str], where: Path_, lines: _Lines, what: str,
           problems: list[tuple[int, str]]) -> frozenset[Any]:
    known = {e.value for e in enum}
    for i, value in enumerate(values):
        if value not in known:
            problems.append((lines.line((*where, i)), f"{_dotted((*where, i))}: {value} is not a known {what}"))
    return frozenset(enum(v) for v in values if v in known)


def _build(data: dict[str, Any], lines: _Lines, file: Path | str) -> RuleSet:
    """The rule set, once every name is known and every rule consistent (else RulesError)."""
    problems: list[tuple[int, str]] = []
    points: dict[ArrivalPoint, str] = {}
    for point, region in (data.get("arrival_point_regions") or {}).items():
        where = ("arrival_point_regions", point)
        if point not in {p.value for p in ArrivalPoint}:
            problems.append((lines.key_line(where), f"{_dotted(where)}: {point} is not a known arrival point"))
        elif region not in regions():
            problems.append((lines.line(where), f"{_dotted(where)}: {region} is not a region code"))
        else:
            points[ArrivalPoint(point)] = region
    built, seen = [], {}
    for i, raw in enumerate(data["rules"]):
        at: Path_ = ("rules", i)
        if raw["id"] in seen:
            problems.append((lines.line((*at, "id")), f"{_dotted((*at, 'id'))}: rule id {raw['id']} is already "
                                                       f"used on line {seen[raw['id']]}"))
        seen.setdefault(raw["id"], lines.line((*at, "id")))
        if raw["category"] not in {c.value for c in ServiceCategory}:
            problems.append((lines.line((*at, "category")),
                             f"{_dotted((*at, 'category'))}: {raw['category']} is not a known service category"))
        when, when_at = raw["when"], (*at, "when")
        if when.get("every_arrival") and len(when) > 1:
            problems.append((lines.line(when_at), f"{_dotted(when_at)}: every_arrival stands alone"))
        if when.get("children") and when.get("adults"):
            problems.append((lines.line(when_at), f"{_dotted(when_at)}: children and adults together mean anyone;"
                                                  " leave both out"))
        age = when.get("age") or {}
        if "min" in age and "max" in age and age["min"] > age["max"]:
            problems.append((lines.line((*when_at, "age")), f"{_dotted((*when_at, 'age'))}: min is above max"))
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
