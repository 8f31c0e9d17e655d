"""The arrival XLSForm is generated from the contracts: pyxform converts it without errors, and the XForm
asks every field of RegisterArrival with every code the contracts accept."""

from __future__ import annotations

import io
import re
from xml.etree import ElementTree

import pytest
from openpyxl import load_workbook
from pyxform import xls2xform

from contracts import xlsform
from contracts.commands import ConsentInput, RegisterArrival
from contracts.reference import ArrivalPoint, GivenBy, OrganisationType, Purpose, Sex, Vulnerability, regions


@pytest.fixture(scope="module")
def xform() -> str:
    warnings: list[str] = []
    result = xls2xform.convert(io.BytesIO(xlsform.workbook_bytes()), warnings=warnings, file_type=".xlsx")
    assert warnings == []
    return result.xform


def test_the_form_converts_with_pyxform_into_a_well_formed_xform(xform: str) -> None:
    root = ElementTree.fromstring(xform)
    assert root.tag.endswith("html")
    assert 'id="segin_arrival"' in xform
    assert "<instanceID/>" in xform  # the submission id every submission carries


def test_every_field_of_the_command_is_asked_or_said_why_not() -> None:
    targets = {q.target for q in xlsform.questions() if q.target}
    wanted = {n for n in RegisterArrival.model_fields if n != "consent"}
    wanted |= {f"consent.{n}" for n in ConsentInput.model_fields}
    assert wanted - targets - set(xlsform.NOT_ASKED) == set(), "a field of the command the form does not ask"


def test_every_question_is_in_the_xform(xform: str) -> None:
    for question in xlsform.questions():
        assert f"<{question.name}" in xform, question.name


@pytest.mark.parametrize("enum", [Sex, ArrivalPoint, Vulnerability, Purpose, OrganisationType, GivenBy])
def test_every_code_of_the_enums_is_a_choice(xform: str, enum: type) -> None:
    names = set(re.findall(r"<name>([^<]+)</name>", xform))
    assert {str(v) for v in enum} <= names


def test_every_region_code_is_a_choice(xform: str) -> None:
    names = set(re.findall(r"<name>([^<]+)</name>", xform))
    assert set(regions()) <= names


def test_labels_are_in_french_and_english(xform: str) -> None:
    assert 'lang="Français (fr)"' in xform and 'lang="English (en)"' in xform
    assert "Enfant non accompagné" in xform and "Unaccompanied child" in xform


def test_constraints_come_from_the_contract(xform: str) -> None:
    assert ". &gt;= 0 and . &lt;= 120" in xform  # estimated_age's ge/le
    assert "today()" in xform  # dates not in the future
    required = {q.name for q in xlsform.questions() if q.required}
    assert {"given_name", "family_name", "sex", "arrival_point", "arrival_date", "destination_region",
            "country_returned_from", "consent_given"} <= required


def test_the_workbook_has_survey_choices_and_settings_sheets() -> None:
    book = load_workbook(io.BytesIO(xlsform.workbook_bytes()))
    assert book.sheetnames == ["survey", "choices", "settings"]
    settings = list(book["settings"].values)
    assert settings[1][list(settings[0]).index("form_id")] == "segin_arrival"


def test_the_version_changes_only_with_the_form() -> None:
    assert xlsform.form_version() == xlsform.form_version()
