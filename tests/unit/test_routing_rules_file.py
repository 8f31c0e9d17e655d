"""The routing rules file (services/referral/rules.py): the packaged file loads; a bad file is refused
with its file, line and reason; and the referral service refuses to start on it, without a stack trace."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from contracts.reference import ArrivalPoint, LegalBasis, Priority, ServiceCategory, Vulnerability
from services.referral.domain import ServedIn
from services.referral.rules import DEFAULT_FILE, ENV, RulesError, duration, load_rules, parse_rules

GOOD = DEFAULT_FILE.read_text(encoding="utf-8")
ROOT = Path(__file__).resolve().parents[2]


def refused(text: str) -> RulesError:
    with pytest.raises(RulesError) as caught:
        parse_rules(text, "routing.yaml")
    return caught.value


def line_of(text: str, fragment: str, occurrence: int = 1) -> int:
    """The 1-based line of the ``occurrence``-th line holding ``fragment``."""
    hits = [i + 1 for i, line in enumerate(text.splitlines()) if fragment in line]
    return hits[occurrence - 1]


def test_the_packaged_file_loads_with_the_six_protection_rules_and_the_immediate_package() -> None:
    rules = load_rules()
    assert rules.version == "2026-12-01.1"
    by_id = {r.id: r for r in rules.rules}
    child = by_id["UNACCOMPANIED_OR_SEPARATED_CHILD"]
    assert (child.category, child.priority, child.due_in, child.basis_without_consent, child.vulnerabilities) == (
        ServiceCategory.CHILD_PROTECTION, Priority.URGENT, timedelta(hours=24), LegalBasis.VITAL_INTEREST,
        frozenset({Vulnerability.UNACCOMPANIED_CHILD, Vulnerability.SEPARATED_CHILD}))
    assert {"TRAFFICKING_VICTIM", "GBV_SURVIVOR", "MEDICAL_NEEDS", "MENTAL_HEALTH_NEEDS",
            "INTERNATIONAL_PROTECTION"} <= set(by_id)
    package = {r.category for r in rules.rules if r.every_arrival}
    assert package == {ServiceCategory.RECEPTION, ServiceCategory.FOOD, ServiceCategory.SHELTER,
                       ServiceCategory.NON_FOOD_ITEMS, ServiceCategory.ONWARD_TRANSPORT, ServiceCategory.CASH_ALLOWANCE}
    assert all(r.served_in == ServedIn.ARRIVAL_POINT for r in rules.rules if r.every_arrival)
    assert rules.arrival_point_regions[ArrivalPoint.BAMAKO_AIRPORT] == "00"


def test_the_environment_names_another_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = tmp_path / "rules.yaml"
    other.write_text(GOOD.replace('version: "2026-12-01.1"', 'version: "2027-01-15.2"'), encoding="utf-8")
    monkeypatch.setenv(ENV, str(other))
    assert load_rules().version == "2027-01-15.2"


@pytest.mark.parametrize("change,fragment,reason", [
    (("category: FOOD", "category: FOODS"), "category: FOODS", "rules[1].category: FOODS is not a known service category"),
    (("[MENTAL_HEALTH_NEEDS]", "[MENTAL_HEALTH]"), "[MENTAL_HEALTH]",
     "rules[10].when.vulnerabilities[0]: MENTAL_HEALTH is not a known vulnerability"),
    (("due_in: PT12H", "due_in: 12h"), "due_in: 12h", "rules[2].due_in: '12h' is neither an ISO 8601 duration"),
    (("priority: HIGH\n    due_in: PT72H", "priority: HIGHEST\n    due_in: PT72H"), "priority: HIGHEST",
     "rules[9].priority: 'HIGHEST' is not one of"),
    (("    served_in: ARRIVAL_POINT\n  - id: IMMEDIATE_FOOD", "    colour: red\n  - id: IMMEDIATE_FOOD"), "colour: red",
     "rules[0].colour: unknown field"),
    (('version: "2026-12-01.1"', "version: 2026-12-01"), "version: 2026", "version: "),
    (('  GAO: "07"', '  GAO: "77"'), 'GAO: "77"', "arrival_point_regions.GAO: 77 is not a region code"),
    (("basis_without_consent: VITAL_INTEREST", "basis_without_consent: GOOD_INTENTIONS"), "GOOD_INTENTIONS",
     "rules[6].basis_without_consent: 'GOOD_INTENTIONS' is not one of"),
])
def test_a_bad_file_is_refused_naming_the_line_and_the_reason(change: tuple[str, str], fragment: str,
                                                                 reason: str) -> None:
    text = GOOD.replace(*change, 1)
    assert text != GOOD
    error = refused(text)
    assert error.line == line_of(text, fragment), str(error)
    assert error.reason.startswith(reason), str(error)
    assert str(error).startswith(f"routing.yaml:{error.line}: ")


def test_a_duplicate_rule_id_names_both_lines() -> None:
    text = GOOD.replace("  - id: GBV_SURVIVOR", "  - id: TRAFFICKING_VICTIM")
    error = refused(text)
    first, second = line_of(text, "id: TRAFFICKING_VICTIM"), line_of(text, "id: TRAFFICKING_VICTIM", 2)
    assert (error.line, error.reason) == (second, f"rules[8].id: rule id TRAFFICKING_VICTIM is already used on line "
                                                  f"{first}")


def test_a_key_given_twice_is_refused_not_silently_overwritten() -> None:
    text = GOOD.replace("    category: GBV_RESPONSE\n", "    category: GBV_RESPONSE\n    category: HEALTH_CARE\n")
    error = refused(text)
    assert (error.line, error.reason) == (line_of(text, "    category: HEALTH_CARE"), "category: given twice")


def test_a_missing_field_names_the_rule() -> None:
    text = GOOD.replace("    category: CASH_ALLOWANCE\n", "")
    error = refused(text)
    assert error.line == line_of(text, "id: IMMEDIATE_CASH_ALLOWANCE")
    assert error.reason == "rules[5]: 'category' is a required property"


def test_contradictory_triggers_and_an_empty_age_range_are_refused() -> None:
    text = GOOD.replace("when: {vulnerabilities: [GBV_SURVIVOR]}",
                        "when: {vulnerabilities: [GBV_SURVIVOR], children: true, adults: true}")
    assert "children and adults together" in refused(text).reason
    text = GOOD.replace("when: {vulnerabilities: [GBV_SURVIVOR]}", "when: {age: {min: 30, max: 20}}")
    error = refused(text)
    assert (error.line, error.reason) == (line_of(text, "min: 30"), "rules[8].when.age: min is above max")
    text = GOOD.replace("when: {vulnerabilities: [GBV_SURVIVOR]}", "when: {every_arrival: true, sex: [FEMALE]}")
    assert "every_arrival stands alone" in refused(text).reason


def test_not_yaml_and_empty_files_are_refused_with_a_line() -> None:
    assert refused("version: [\n").reason.startswith("not valid YAML")
    assert (refused("").line, refused("").reason) == (1, "the file is empty")
    with pytest.raises(RulesError) as missing:
        load_rules("/nonexistent/routing.yaml")
    assert str(missing.value).startswith("/nonexistent/routing.yaml:0: cannot read the rules file")


def test_durations_in_hours_or_iso_8601() -> None:
    assert duration(36) == timedelta(hours=36)
    assert duration("P1W2DT3H30M") == timedelta(weeks=1, days=2, hours=3, minutes=30)
    assert parse_rules(GOOD.replace("due_in: P7D", "due_in: 168")).rule("MENTAL_HEALTH_NEEDS").due_in == timedelta(
        days=7)


def test_the_referral_service_refuses_to_start_on_a_bad_file_with_the_line_and_no_stack_trace(
        tmp_path: Path) -> None:
    bad = tmp_path / "routing.yaml"
    text = GOOD.replace("category: FOOD", "category: FOODS", 1)
    bad.write_text(text, encoding="utf-8")
    env = {**os.environ, ENV: str(bad), "NATS_URL": "nats://127.0.0.1:1", "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/x"}
    done = subprocess.run([sys.executable, "-m", "services.referral"], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert f"{bad}:{line_of(text, 'category: FOODS')}: rules[1].category: FOODS is not a known service category" in (
        done.stderr)
    assert "Traceback" not in done.stderr
