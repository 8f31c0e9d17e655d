"""Follow-up's survey and statistics rules, pure: which instrument version a survey uses, when it may
be taken, every answer problem named by its indicator and field, plans on time, months since return,
counting for suppression; and a bad instrument file stopping the service at start with its line."""

from __future__ import annotations

import shutil
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
from pydantic import ValidationError

from contracts.commands import RecordSurvey, SurveyAnswerInput
from contracts.reference import FollowupStatus
from kernel.errors import SeginError, from_dict
from kernel.statistics import suppress_small_cells
from services.followup import domain, instrument
from services.followup.domain import Refused

REGISTRY = instrument.load_instruments()
V1 = REGISTRY[("RSS", 1)]
ARRIVED = date(2026, 11, 1)
CASE = domain.FollowupCase(case_id="c1", owner_org_id="dgme", manager_org_id="iom", status=FollowupStatus.OPEN,
                           version=1, arrival_date=ARRIVED)


def full(**changes: str) -> list[SurveyAnswerInput]:
    chosen = {i.code: i.options[0].code for i in V1.indicators} | changes
    return [SurveyAnswerInput(indicator=k, option=v) for k, v in chosen.items()]


def refused(call: object) -> Refused:
    with pytest.raises(Refused) as caught:
        call()  # type: ignore[operator]
    return caught.value


def test_a_survey_uses_the_version_asked_for_or_the_latest_and_names_the_field_of_an_unknown_one() -> None:
    assert domain.resolve_instrument(REGISTRY, "RSS", None).version == 2
    assert domain.resolve_instrument(REGISTRY, "RSS", 1) is V1
    assert refused(lambda: domain.resolve_instrument(REGISTRY, "RSS", 7)).field == "instrument_version"
    assert refused(lambda: domain.resolve_instrument(REGISTRY, "WHO5", None)).field == "instrument_id"
    assert refused(lambda: domain.resolve_instrument(REGISTRY, "WHO5", 1)).field == "instrument_id"


def test_a_survey_is_taken_between_arrival_and_today_on_an_open_follow_up() -> None:
    domain.check_survey(CASE, ARRIVED, date(2026, 12, 1))
    assert refused(lambda: domain.check_survey(CASE, date(2026, 12, 2), date(2026, 12, 1))).field == "taken_on"
    assert refused(lambda: domain.check_survey(CASE, date(2026, 10, 31), date(2026, 12, 1))).field == "taken_on"
    closed = replace(CASE, status=FollowupStatus.CLOSED)
    assert refused(lambda: domain.check_survey(closed, ARRIVED, date(2026, 12, 1))).code == "CASE_CLOSED"


def test_every_answer_problem_is_named_by_its_indicator_and_field() -> None:
    answers = full(ECO_DEBT="SOMETIMES")[1:] + [SurveyAnswerInput(indicator="ECO_DEBT", option="NO_DEBT"),
                                               SurveyAnswerInput(indicator="XYZ", option="YES")]
    error = refused(lambda: domain.survey_answers(V1, answers))
    assert error.code == "BAD_USER_INPUT"
    assert [(p["indicator"], p["field"]) for p in error.problems] == [
        ("ECO_DEBT", "answers.14.indicator"),  # answered twice
        ("XYZ", "answers.15.indicator"),       # not an indicator of version 1
        ("ECO_INCOME_SOURCE", "answers"),      # left out
        ("ECO_DEBT", "answers.1.option")]      # not an option
    assert error.field == "answers.14.indicator" and "ECO_INCOME_SOURCE: not answered" in error.message
    assert domain.survey_answers(V1, full(PSY_SAFETY=instrument.DECLINED))["PSY_SAFETY"] == "DECLINED"


def test_answers_are_codes_so_no_free_text_can_be_stored_or_echoed() -> None:
    with pytest.raises(ValidationError):
        SurveyAnswerInput(indicator="ECO_DEBT", option="Il doit 50 000 F à son oncle Moussa")
    with pytest.raises(ValidationError):
        RecordSurvey(idempotency_key="k-0000001", case_id="c", taken_on=ARRIVED, answers=[])


def test_several_problems_travel_from_a_service_to_the_gateway() -> None:
    error = SeginError("2 problems", field="answers.1.option", code="BAD_USER_INPUT",
                       problems=[{"field": "answers.1.option", "indicator": "ECO_DEBT", "message": "ECO_DEBT: x"}])
    again = from_dict(error.to_dict())
    assert (again.code, again.field, again.problems) == ("BAD_USER_INPUT", "answers.1.option", error.problems)
    assert "problems" not in SeginError("one").to_dict()


def test_a_plan_is_on_time_when_first_saved_by_its_due_day() -> None:
    due = date(2026, 12, 1)  # 30 days after arrival
    assert domain.plan_timeliness(ARRIVED, due, date(2027, 1, 1), 30) == domain.PLAN_ON_TIME
    assert domain.plan_timeliness(ARRIVED, date(2026, 12, 2), date(2027, 1, 1), 30) == domain.NO_PLAN_ON_TIME
    assert domain.plan_timeliness(ARRIVED, None, due, 30) == domain.NOT_YET_DUE
    assert domain.plan_timeliness(ARRIVED, None, date(2026, 12, 2), 30) == domain.NO_PLAN_ON_TIME


@pytest.mark.parametrize("taken_on,bucket", [
    (date(2026, 11, 1), "0-3"), (date(2027, 1, 31), "0-3"), (date(2027, 2, 1), "3-6"), (date(2027, 4, 30), "3-6"),
    (date(2027, 5, 1), "6-12"), (date(2027, 10, 31), "6-12"), (date(2027, 11, 1), "12+"), (date(2030, 1, 1), "12+")])
def test_months_since_return_are_bucketed_with_the_lower_bound_included(taken_on: date, bucket: str) -> None:
    assert domain.months_since_return(ARRIVED, taken_on) == bucket


def test_cells_count_cases_and_the_callers_own_for_suppression() -> None:
    rows = [(("07", "LOW"), False)] * 4 + [(("07", "LOW"), True), (("00", "LOW"), False)]
    counts, own = domain.tally(rows)
    assert counts == [(("00", "LOW"), 1), (("07", "LOW"), 5)] and own == {("00", "LOW"): 0, ("07", "LOW"): 1}
    assert suppress_small_cells(counts, own)[0] == []  # four of the five are others': under the threshold
    assert suppress_small_cells(counts)[0] == [(("07", "LOW"), 5)]


def test_a_bad_instrument_file_stops_the_service_at_start_with_its_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copy(instrument.FOLDER / "instrument.schema.json", tmp_path)
    text = (instrument.FOLDER / "rss-1.yaml").read_text(encoding="utf-8")
    (tmp_path / "rss-1.yaml").write_text(text.replace("weight: 1/5", "weight: 1/4", 1), encoding="utf-8")
    monkeypatch.setenv(instrument.ENV, str(tmp_path))
    try:
        with pytest.raises(SystemExit) as stopped:
            instrument.load_or_exit()
        assert stopped.value.code == 2
        err = capsys.readouterr().err
        assert "refusing to start" in err and f"{tmp_path / 'rss-1.yaml'}:" in err and "add up to 21/20" in err
        monkeypatch.delenv(instrument.ENV)
        assert set(instrument.load_or_exit()) == {("RSS", 1), ("RSS", 2)}
    finally:
        instrument.install(REGISTRY)
