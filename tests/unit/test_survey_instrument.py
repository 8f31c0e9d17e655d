"""The Reintegration Sustainability Survey instrument (services/followup/instrument.py): the shipped
versions load; scores stay in [0, 1] and match a hand computation; a corrected version scores anew
while the old version's scores stay; a bad file is refused with its file, line and reason; bad
answers are reported per indicator."""

from __future__ import annotations

import random
import shutil
import tomllib
from fractions import Fraction
from pathlib import Path

import pytest

from services.followup.instrument import (
    COMPOSITE,
    DECLINED,
    FOLDER,
    AnswersError,
    Dimension,
    Instrument,
    InstrumentError,
    Problem,
    administer,
    load_instrument,
    load_instruments,
    parse_instrument,
    score,
    validate_answers,
)
from tests.survey_answers import RSS_VISIT as VISIT  # one follow-up visit, scored by hand below

ROOT = Path(__file__).resolve().parents[2]
V1_TEXT = (FOLDER / "rss-1.yaml").read_text(encoding="utf-8")
INSTRUMENTS = load_instruments()
V1, V2 = INSTRUMENTS[("RSS", 1)], INSTRUMENTS[("RSS", 2)]


def best(instrument: Instrument) -> dict[str, str]:
    return {i.code: max(i.options, key=lambda o: o.score).code for i in instrument.indicators}


def worst(instrument: Instrument) -> dict[str, str]:
    return {i.code: min(i.options, key=lambda o: o.score).code for i in instrument.indicators}


def refused(text: str) -> InstrumentError:
    with pytest.raises(InstrumentError) as caught:
        parse_instrument(text, "rss-1.yaml")
    return caught.value


def line_of(text: str, fragment: str, occurrence: int = 1) -> int:
    """The 1-based line of the ``occurrence``-th line holding ``fragment``."""
    return [n for n, line in enumerate(text.splitlines(), 1) if fragment in line][occurrence - 1]


# --- the shipped files --------------------------------------------------------------------------------

def test_the_shipped_versions_load_with_fifteen_indicators_in_three_dimensions() -> None:
    assert set(INSTRUMENTS) == {("RSS", 1), ("RSS", 2)}
    assert INSTRUMENTS.latest("RSS") is V2
    for instrument in (V1, V2):
        assert len(instrument.indicators) == 15
        assert {d: len(instrument.of(d)) for d in Dimension} == {d: 5 for d in Dimension}
        assert sum(instrument.composite_weights.values()) == 1
        assert sum(instrument.composite_weight(i.code) for i in instrument.indicators) == 1
        assert set(instrument.cut_offs) == {*Dimension, COMPOSITE}
        assert instrument.title.fr and instrument.title.en
    assert V1.composite_weight("ECO_DEBT") == Fraction(1, 15)
    assert V1.digest != V2.digest and load_instruments()[("RSS", 1)].digest == V1.digest
    with pytest.raises(KeyError):
        INSTRUMENTS.latest("NO_SUCH_SURVEY")


def test_the_instrument_files_ship_with_the_package() -> None:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    shipped = data["tool"]["setuptools"]["package-data"]["*"]
    assert {"instruments/*.yaml", "instruments/*.json"} <= set(shipped)
    assert FOLDER.parent == ROOT / "services" / "followup"


def test_every_indicator_flags_whether_it_is_verified_and_the_code_does_not_read_the_flag() -> None:
    for name in ("rss-1.yaml", "rss-2.yaml"):
        text = (FOLDER / name).read_text(encoding="utf-8")
        flags = [line for line in text.splitlines() if line.strip() == "unverified: true"]
        assert len(flags) == 15 + 3 + 4  # indicators, dimensions, cut-offs
        flipped = parse_instrument(text.replace("unverified: true", "unverified: false"), name)
        assert score(flipped, VISIT) == score(load_instrument(FOLDER / name), VISIT)


# --- scoring --------------------------------------------------------------------------------------

def test_scores_stay_between_0_and_1_whatever_the_answers() -> None:
    rng = random.Random(9)
    for instrument in (V1, V2):
        for _ in range(300):
            answers = {i.code: rng.choice([*(o.code for o in i.options), DECLINED]) for i in instrument.indicators}
            scores = score(instrument, answers)
            for value in (scores.economic, scores.social, scores.psychosocial, scores.composite):
                assert value is None or 0 <= value <= 1


def test_all_best_answers_give_1_and_all_worst_give_0() -> None:
    for instrument in (V1, V2):
        top, bottom = score(instrument, best(instrument)), score(instrument, worst(instrument))
        assert (top.economic, top.social, top.psychosocial, top.composite) == (1.0, 1.0, 1.0, 1.0)
        assert (bottom.economic, bottom.social, bottom.psychosocial, bottom.composite) == (0.0, 0.0, 0.0, 0.0)
        assert set(top.bands.values()) == {"SUSTAINABLE"} and set(bottom.bands.values()) == {"LOW"}


def test_a_visit_scores_as_computed_by_hand_under_version_1() -> None:
    """Economic (1/2 + 1 + 1/2 + 1/2 + 2/3) / 5 = 19/30 = 0.633; social (1 + 1/2 + 0 + 1/2 + 1) / 5 = 0.6;
    psychosocial (1 + 1/2 + 1 + 1/2 + 0) / 5 = 0.6; composite (19/30 + 3/5 + 3/5) / 3 = 11/18 = 0.611."""
    scores = score(V1, VISIT)
    assert (scores.economic, scores.social, scores.psychosocial, scores.composite) == (0.63, 0.6, 0.6, 0.61)
    assert dict(scores.bands) == {"ECONOMIC": "PARTIAL", "SOCIAL": "PARTIAL", "PSYCHOSOCIAL": "PARTIAL",
                                  "COMPOSITE": "PARTIAL"}


def test_the_corrected_version_scores_the_same_answers_anew_and_version_1_is_unchanged() -> None:
    """v2: debt being repaid scores 3/4 and the wish to leave again weighs 3/10 (the others 7/40).
    Economic (1/2 + 1 + 3/4 + 1/2 + 2/3) / 5 = 41/60 = 0.683, now sustainable; social unchanged;
    psychosocial 7/40 * 3 + 3/10 * 0 = 21/40 = 0.525, rounded half-up to 0.53 (a float would give 0.52);
    composite (41/60 + 3/5 + 21/40) / 3 = 217/360 = 0.603."""
    stored = administer(V1, VISIT)
    corrected = score(V2, VISIT)
    assert (corrected.economic, corrected.social, corrected.psychosocial, corrected.composite) == (
        0.68, 0.6, 0.53, 0.6)
    assert corrected.band("ECONOMIC") == "SUSTAINABLE"
    reloaded = load_instruments()
    assert (stored.instrument_id, stored.version, stored.digest) == ("RSS", 1, reloaded[("RSS", 1)].digest)
    assert score(reloaded[("RSS", stored.version)], stored.answers) == stored.scores == score(V1, VISIT)
    assert stored.scores.economic == 0.63 and stored.scores.band("ECONOMIC") == "PARTIAL"


def test_a_dimension_needs_the_minimum_share_of_answers_else_it_and_the_composite_have_no_score() -> None:
    """min_answered_share 0.6: 3 of 5 economic answers give a score over those three (weights
    renormalised); 2 of 5 give none, and no composite."""
    three = {**VISIT, "ECO_INCOME_SOURCE": DECLINED, "ECO_DEBT": DECLINED}
    scores = score(V1, three)
    assert scores.economic == 0.72  # (1 + 1/2 + 2/3) / 3 = 13/18
    assert scores.composite is not None
    two = {**three, "ECO_WORK_ACCESS": DECLINED}
    scores = score(V1, two)
    assert (scores.economic, scores.social, scores.composite) == (None, 0.6, None)
    assert (scores.band("ECONOMIC"), scores.band("SOCIAL"), scores.band(COMPOSITE)) == (None, "PARTIAL", None)


def test_a_score_exactly_on_a_cut_off_is_in_the_upper_band() -> None:
    assert V1.band("COMPOSITE", 0.66) == "SUSTAINABLE"
    assert V1.band("COMPOSITE", 0.65) == "PARTIAL"
    assert V1.band("ECONOMIC", 0.0) == "LOW"
    assert V1.band("ECONOMIC", None) is None


# --- bad answers ----------------------------------------------------------------------------------

def test_bad_answers_name_the_indicator() -> None:
    answers = {**VISIT, "ECO_DEBT": "SOME", "ECO_PETS": "YES"}
    del answers["PSY_SAFETY"]
    problems = validate_answers(V1, answers)
    assert problems == [
        Problem("ECO_PETS", "not an indicator of RSS version 1"),
        Problem("ECO_DEBT", "'SOME' is not an option (NO_DEBT, MANAGEABLE, UNMANAGEABLE or DECLINED)"),
        Problem("PSY_SAFETY", "not answered: give an option or DECLINED"),
    ]
    with pytest.raises(AnswersError) as caught:
        score(V1, answers)
    assert caught.value.problems == problems
    assert validate_answers(V1, VISIT) == []
    assert validate_answers(V1, {i.code: DECLINED for i in V1.indicators}) == []


def test_an_option_of_one_indicator_is_not_an_answer_to_another() -> None:
    assert validate_answers(V1, {**VISIT, "SOC_HOUSING": "YES"}) == [
        Problem("SOC_HOUSING", "'YES' is not an option (ADEQUATE, INADEQUATE, NONE or DECLINED)")]


# --- bad files ------------------------------------------------------------------------------------

@pytest.mark.parametrize("change,fragment,reason", [
    (("    weight: 1/5\n", "    weight: 2/5\n"), "- code: ECONOMIC",
     "dimensions[0]: the weights of the ECONOMIC indicators add up to 6/5, not 1"),
    (("composite_weight: 1/3", "composite_weight: 1/2"), "- code: ECONOMIC",
     "dimensions: the composite weights add up to 7/6, not 1"),
    (("{code: IRREGULAR,", "{code: REGULAR,"), "{code: REGULAR, label: {fr: \"Oui, irr",
     "indicators[0].options[1].code: option code REGULAR is given twice in ECO_INCOME_SOURCE"),
    (("score: 0.5}", "score: 1.5}"), "score: 1.5}",
     "indicators[0].options[1].score: 1.5 is not a number from 0 to 1, or an exact fraction written p/q"),
    (("score: 2/3}", "score: 4/3}"), "score: 4/3}", "indicators[4].options[1].score: 4/3 is above 1"),
    (("{code: NONE, label: {fr: \"Non\", en: \"No\"}, score: 0}", "{code: NONE, label: {fr: \"Non\", en: \"No\"}, "
      "score: 0.25}"), "{code: REGULAR,", "indicators[0].options: the scores of ECO_INCOME_SOURCE go from 1/4 to 1;"),
    (("{code: NONE,", "{code: DECLINED,"), "{code: DECLINED,", "indicators[0].options[2].code: 'DECLINED' is reserved"),
    (("    dimension: ECONOMIC\n    weight: 1/5\n", "    dimension: ECONOMIC\n    colour: red\n    weight: 1/5\n"),
     "colour: red", "indicators[0].colour: unknown field"),
    (("  - code: ECO_WORK_ACCESS", "  - code: ECO_INCOME_SOURCE"), "- code: ECO_INCOME_SOURCE",
     "indicators[1].code: indicator code ECO_INCOME_SOURCE is already used on line"),
    (("- {code: SUSTAINABLE, label: {fr: \"Durable\", en: \"Sustainable\"}, from: 0.66}",
      "- {code: SUSTAINABLE, label: {fr: \"Durable\", en: \"Sustainable\"}, from: 0.3}"), "from: 0.3}",
     "cut_offs.COMPOSITE.bands[2].from: must be above the previous band's"),
    (("version: 1\n", "version: one\n"), "version: one", "version: 'one' is not of type 'integer'"),
])
def test_a_bad_file_is_refused_naming_the_line_and_the_reason(change: tuple[str, str], fragment: str,
                                                                 reason: str) -> None:
    text = V1_TEXT.replace(*change, 1)
    assert text != V1_TEXT
    error = refused(text)
    occurrence = 2 if fragment == "- code: ECO_INCOME_SOURCE" else 1
    assert error.line == line_of(text, fragment, occurrence), str(error)
    assert error.reason.startswith(reason), str(error)
    assert str(error).startswith(f"rss-1.yaml:{error.line}: ")


def test_a_dimension_without_indicators_and_a_missing_field_are_refused() -> None:
    text = V1_TEXT.replace("dimension: SOCIAL", "dimension: ECONOMIC")
    reasons = refused(text).problems
    assert (line_of(text, "- code: SOCIAL"), "dimensions[1]: SOCIAL has no indicators") in reasons
    text = V1_TEXT.replace("    weight: 1/5\n", "", 1)
    error = refused(text)
    assert (error.line, error.reason) == (line_of(text, "- code: ECO_INCOME_SOURCE"),
                                          "indicators[0]: 'weight' is a required property")


def test_a_key_given_twice_and_files_that_are_not_yaml_are_refused() -> None:
    text = V1_TEXT.replace("version: 1\n", "version: 1\nversion: 2\n")
    assert (refused(text).line, refused(text).reason) == (line_of(text, "version: 2"), "version: given twice")
    assert refused("id: [\n").reason.startswith("not valid YAML")
    assert (refused("").line, refused("").reason) == (1, "the file is empty")
    with pytest.raises(InstrumentError) as missing:
        load_instrument("/nonexistent/rss-9.yaml")
    assert str(missing.value).startswith("/nonexistent/rss-9.yaml:0: cannot read the file")


def test_a_folder_is_refused_when_a_file_is_bad_or_its_name_does_not_match_its_version(tmp_path: Path) -> None:
    shutil.copy(FOLDER / "rss-1.yaml", tmp_path / "rss-1.yaml")
    assert set(load_instruments(tmp_path)) == {("RSS", 1)}
    (tmp_path / "rss-2.yaml").write_text(V1_TEXT.replace("score: 0.5}", "score: 0.75}", 1), encoding="utf-8")
    with pytest.raises(InstrumentError) as caught:
        load_instruments(tmp_path)  # a copy made for a correction that kept version: 1
    assert str(caught.value) == (f"{tmp_path / 'rss-2.yaml'}:{line_of(V1_TEXT, 'version: 1')}: version: the file of "
                                 "RSS version 1 must be named rss-1.yaml")
    (tmp_path / "rss-2.yaml").write_text(V1_TEXT.replace("version: 1\n", "version: 2\n").replace(
        "composite_weight: 1/3", "composite_weight: 0.3", 1), encoding="utf-8")
    with pytest.raises(InstrumentError) as caught:
        load_instruments(tmp_path)
    assert str(caught.value).startswith(f"{tmp_path / 'rss-2.yaml'}:{line_of(V1_TEXT, '- code: ECONOMIC')}: "
                                        "dimensions: the composite weights add up to 29/30, not 1")
