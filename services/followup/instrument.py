"""The Reintegration Sustainability Survey as a versioned instrument: data files, validated and scored.

The RSS (IOM, MEASURE project, Samuel Hall 2017) has 15 indicators in three dimensions and four
scores in [0, 1], but its exact wording, answer scores, weights and cut-offs are not confirmed for
Segin. So they are data, ``instruments/<id>-<version>.yaml``: checked against
``instrument.schema.json`` and for consistency (weights adding up to 1, unique codes, every dimension
with indicators, bands in order), refused with ``file:line: reason`` like the routing rules. A
correction is a new file with the next version, and an assessment keeps the version and digest it
was scored with: no past score moves. The files' ``unverified`` flags are for people; never read here.

Scoring rule (Segin's, not IOM's): an indicator scores its chosen option's score; a dimension scores
the weighted mean of its answered indicators (weights renormalised over them), or None when less than
``min_answered_share`` of its indicators are answered; the composite is the composite-weighted sum of
the dimension scores, None when any is None. Exact fractions until the end, then rounded half-up to
two decimals; the band is read from the rounded score, so a shown score and its band always agree.
Every indicator needs an answer, an option code or ``DECLINED`` (the person chose not to answer): an
indicator left out is an interviewer's omission, reported as a problem rather than scored as missing.
Pure: no I/O except reading the instrument files (once, at start: ``load_or_exit``).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

from kernel.datafile import DataFileError, Lines, Versions, Where, dotted, load_schema, load_versions, parse, read

FOLDER = Path(str(resources.files("services.followup").joinpath("instruments")))
SCHEMA_FILE = FOLDER / "instrument.schema.json"
DECLINED = "DECLINED"
COMPOSITE = "COMPOSITE"


class Dimension(StrEnum):
    ECONOMIC = "ECONOMIC"
    SOCIAL = "SOCIAL"
    PSYCHOSOCIAL = "PSYCHOSOCIAL"


# --- the instrument ---------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Text:
    fr: str
    en: str


@dataclass(frozen=True, slots=True)
class Option:
    code: str
    label: Text
    score: Fraction


@dataclass(frozen=True, slots=True)
class Indicator:
    code: str
    dimension: Dimension
    question: Text
    options: tuple[Option, ...]
    weight: Fraction  # within its dimension

    def option(self, code: str) -> Option | None:
        return next((o for o in self.options if o.code == code), None)


@dataclass(frozen=True, slots=True)
class Band:
    code: str
    label: Text
    lower: Fraction  # the band starts here (inclusive)


@dataclass(frozen=True)
class Instrument:
    """One version of the survey. ``digest`` fingerprints its content (not its comments or layout),
    so a stored assessment can tell if the file of its version was edited after the fact."""

    id: str
    version: int
    title: Text
    indicators: tuple[Indicator, ...]
    composite_weights: Mapping[Dimension, Fraction]
    cut_offs: Mapping[str, tuple[Band, ...]]  # ECONOMIC, SOCIAL, PSYCHOSOCIAL, COMPOSITE
    min_answered_share: Fraction
    digest: str

    def indicator(self, code: str) -> Indicator | None:
        return next((i for i in self.indicators if i.code == code), None)

    def of(self, dimension: Dimension) -> tuple[Indicator, ...]:
        return tuple(i for i in self.indicators if i.dimension == dimension)

    def composite_weight(self, code: str) -> Fraction:
        """An indicator's weight in the composite: its weight times its dimension's."""
        indicator = self.indicator(code)
        if indicator is None:
            raise KeyError(code)
        return indicator.weight * self.composite_weights[indicator.dimension]

    def band(self, score: str, value: float | None) -> str | None:
        """The code of the last band of ``score`` whose start ``value`` reaches (None for no value)."""
        if value is None:
            return None
        reached = [b for b in self.cut_offs[score] if Fraction(str(value)) >= b.lower]
        return reached[-1].code


class InstrumentError(DataFileError):
    """An instrument file cannot be used: every problem found, each with its line."""


# --- loading ----------------------------------------------------------------------------------------

Registry = Versions[Instrument]  # every version of every instrument: old versions stay, to read old scores


def load_instruments(folder: Path | str = FOLDER) -> Registry:
    """Every ``<id>-<version>.yaml`` of ``folder``, validated; the first bad file raises InstrumentError."""
    return Versions(load_versions(folder, load_instrument, InstrumentError))


def load_instrument(file: Path | str) -> Instrument:
    path = Path(file)
    return parse_instrument(read(path, "file", InstrumentError), path)


def parse_instrument(text: str, file: Path | str = "<instrument>") -> Instrument:
    data, lines = parse(text, file, load_schema(SCHEMA_FILE), InstrumentError, _message)
    return _build(data, lines, file)


def _message(error: Any) -> str:
    if error.validator == "oneOf":
        return f"{error.instance!r} is not {error.schema.get('description', 'valid').lower()}"
    if error.validator == "not":
        return f"{error.instance!r} is reserved"
    return error.message


def _build(data: dict[str, Any], lines: Lines, file: Path | str) -> Instrument:
    """The instrument, once its codes are unique and its weights and bands consistent (else InstrumentError)."""
    problems: list[tuple[int, str]] = []

    def bad(where: Where, reason: str) -> None:
        problems.append((lines.line(where), f"{dotted(where)}: {reason}"))

    def share(where: Where, value: int | float | str, positive: bool = False) -> Fraction:
        exact = Fraction(value) if isinstance(value, (int, str)) else Fraction(repr(value))
        if exact > 1:
            bad(where, f"{value} is above 1")
        if positive and exact == 0:
            bad(where, "must be above 0")
        return exact

    dimensions: dict[Dimension, Fraction] = {}
    for i, raw in enumerate(data["dimensions"]):
        if Dimension(raw["code"]) in dimensions:
            bad(("dimensions", i, "code"), f"{raw['code']} is given twice")
        dimensions[Dimension(raw["code"])] = share(("dimensions", i, "composite_weight"), raw["composite_weight"], True)
    for dimension in Dimension:
        if dimension not in dimensions:
            bad(("dimensions",), f"{dimension} is missing: every score needs its dimension")
    if dimensions and sum(dimensions.values()) != 1:
        bad(("dimensions",), f"the composite weights add up to {_show(sum(dimensions.values()))}, not 1")

    indicators: list[Indicator] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(data["indicators"]):
        at: Where = ("indicators", i)
        if raw["code"] in seen:
            bad((*at, "code"), f"indicator code {raw['code']} is already used on line {seen[raw['code']]}")
        seen.setdefault(raw["code"], lines.line((*at, "code")))
        options, codes = [], set()
        for j, opt in enumerate(raw["options"]):
            if opt["code"] in codes:
                bad((*at, "options", j, "code"), f"option code {opt['code']} is given twice in {raw['code']}")
            codes.add(opt["code"])
            options.append(Option(opt["code"], Text(**opt["label"]), share((*at, "options", j, "score"), opt["score"])))
        scores = {o.score for o in options}
        if max(scores) <= 1 and (min(scores) != 0 or max(scores) != 1):  # above 1: reported already
            bad((*at, "options"), f"the scores of {raw['code']} go from {_show(min(scores))} to {_show(max(scores))};"
                                  " the worst answer must score 0 and the best 1")
        indicators.append(Indicator(raw["code"], Dimension(raw["dimension"]), Text(**raw["question"]),
                                    tuple(options), share((*at, "weight"), raw["weight"], True)))
    for dimension in (d for d in Dimension if d in dimensions):
        total = sum((x.weight for x in indicators if x.dimension == dimension), Fraction(0))
        where = ("dimensions", [r["code"] for r in data["dimensions"]].index(dimension))
        if total == 0:
            bad(where, f"{dimension} has no indicators")
        elif total != 1:
            bad(where, f"the weights of the {dimension} indicators add up to {_show(total)}, not 1")

    cut_offs: dict[str, tuple[Band, ...]] = {}
    for score, raw in data["cut_offs"].items():
        bands = tuple(Band(b["code"], Text(**b["label"]), share(("cut_offs", score, "bands", j, "from"), b["from"]))
                      for j, b in enumerate(raw["bands"]))
        if bands[0].lower != 0:
            bad(("cut_offs", score, "bands", 0, "from"), "the first band must start at 0")
        for j in range(1, len(bands)):
            if bands[j].lower <= bands[j - 1].lower:
                bad(("cut_offs", score, "bands", j, "from"), "must be above the previous band's")
        if len({b.code for b in bands}) != len(bands):
            bad(("cut_offs", score, "bands"), "a band code is given twice")
        cut_offs[score] = bands

    min_share = share(("scoring", "min_answered_share"), data["scoring"]["min_answered_share"], True)
    if problems:
        raise InstrumentError(file, problems)
    canonical = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return Instrument(
        id=data["id"], version=data["version"], title=Text(**data["title"]), indicators=tuple(indicators),
        composite_weights=MappingProxyType(dimensions), cut_offs=MappingProxyType(cut_offs),
        min_answered_share=min_share, digest=hashlib.sha256(canonical.encode()).hexdigest(),
    )


def _show(value: Fraction) -> str:
    return str(value) if value.denominator != 1 else str(value.numerator)


# --- administering ----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Problem:
    """Why a set of answers cannot be scored, for one indicator (codes only: no free text)."""

    indicator: str
    reason: str


class AnswersError(ValueError):
    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{p.indicator}: {p.reason}" for p in problems))


@dataclass(frozen=True)
class Scores:
    """The four scores in [0, 1] (None: too few answers), and the band each falls in."""

    economic: float | None
    social: float | None
    psychosocial: float | None
    composite: float | None
    bands: Mapping[str, str | None]  # ECONOMIC, SOCIAL, PSYCHOSOCIAL, COMPOSITE -> band code

    def band(self, score: str) -> str | None:
        return self.bands[score]


@dataclass(frozen=True)
class Assessment:
    """What is stored for one administration: the answers, their scores and the version scored with."""

    instrument_id: str
    version: int
    digest: str
    answers: Mapping[str, str]
    scores: Scores


def validate_answers(instrument: Instrument, answers: Mapping[str, str]) -> list[Problem]:
    """Unknown indicators, unknown options and indicators left out, in the instrument's order."""
    problems = [Problem(str(code)[:60], f"not an indicator of {instrument.id} version {instrument.version}")
                for code in answers if instrument.indicator(code) is None]
    for indicator in instrument.indicators:
        if indicator.code not in answers:
            problems.append(Problem(indicator.code, f"not answered: give an option or {DECLINED}"))
            continue
        answer = answers[indicator.code]
        if answer != DECLINED and (not isinstance(answer, str) or indicator.option(answer) is None):
            expected = ", ".join(o.code for o in indicator.options)
            problems.append(Problem(indicator.code, f"{str(answer)[:60]!r} is not an option ({expected} or "
                                                    f"{DECLINED})"))
    return problems


def score(instrument: Instrument, answers: Mapping[str, str]) -> Scores:
    """The four scores of ``answers`` under ``instrument`` (AnswersError when they do not validate)."""
    problems = validate_answers(instrument, answers)
    if problems:
        raise AnswersError(problems)
    exact: dict[Dimension, Fraction | None] = {}
    for dimension in Dimension:
        indicators = instrument.of(dimension)
        answered = [(i.weight, option.score) for i in indicators
                    if (option := i.option(answers[i.code])) is not None]
        if Fraction(len(answered), len(indicators)) < instrument.min_answered_share:
            exact[dimension] = None
        else:
            exact[dimension] = sum(w * s for w, s in answered) / sum(w for w, _ in answered)
    composite: Fraction | None = None
    if all(s is not None for s in exact.values()):
        composite = sum((instrument.composite_weights[d] * s for d, s in exact.items() if s is not None), Fraction(0))
    values = {d.value: _round(exact[d]) for d in Dimension} | {COMPOSITE: _round(composite)}
    return Scores(economic=values["ECONOMIC"], social=values["SOCIAL"], psychosocial=values["PSYCHOSOCIAL"],
                  composite=values[COMPOSITE],
                  bands=MappingProxyType({k: instrument.band(k, v) for k, v in values.items()}))


def administer(instrument: Instrument, answers: Mapping[str, str]) -> Assessment:
    """The record to store: the answers as given, their scores, and the instrument version and digest."""
    return Assessment(instrument.id, instrument.version, instrument.digest, MappingProxyType(dict(answers)),
                      score(instrument, answers))


def _round(value: Fraction | None) -> float | None:
    """Half-up to two decimals, from the exact value (float rounding would move 0.125 the wrong way)."""
    if value is None:
        return None
    return math.floor(value * 100 + Fraction(1, 2)) / 100


# --- the instruments the running service uses -------------------------------------------------------

ENV = "SEGIN_SURVEY_INSTRUMENTS"
_active: Registry | None = None


def configured_folder() -> Path:
    return Path(os.environ.get(ENV) or FOLDER)


def install(registry: Registry) -> Registry:
    """Use ``registry`` from now on (at start; tests install their own)."""
    global _active
    _active = registry
    return registry


def active() -> Registry:
    """The instruments in force: those installed at start, else the configured folder, loaded once."""
    return _active if _active is not None else install(load_instruments(configured_folder()))


def load_or_exit() -> Registry:
    """At start: install the configured instruments, or stop the process with the file, line and reason
    (exit status 2, no stack trace), as the referral service does for its routing rules."""
    try:
        return install(load_instruments(configured_folder()))
    except InstrumentError as exc:
        print(f"followup: refusing to start, a survey instrument file is not valid:\n{exc}", file=sys.stderr)
        raise SystemExit(2) from None
