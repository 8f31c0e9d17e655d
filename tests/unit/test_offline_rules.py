"""Corrections' pure rules: which flags survive a screening correction, which changed fields a caller is told."""

from __future__ import annotations

from contracts.reference import SensitiveCategory
from services.intake.offline import screening_after, stale, visible_fields

NONE: frozenset[SensitiveCategory] = frozenset()
GBV = frozenset({SensitiveCategory.GBV})


def test_without_a_screening_correction_every_flag_stays() -> None:
    assert screening_after({"GBV_SURVIVOR", "ELDERLY"}, None, NONE) == {"GBV_SURVIVOR", "ELDERLY"}


def test_a_screening_correction_replaces_the_flags_the_caller_may_see() -> None:
    assert screening_after({"ELDERLY", "EX_DETAINEE"}, ["SINGLE_PARENT"], NONE) == {"SINGLE_PARENT"}


def test_flags_of_categories_the_caller_may_not_see_are_kept() -> None:
    assert screening_after({"GBV_SURVIVOR", "ELDERLY"}, [], NONE) == {"GBV_SURVIVOR"}
    assert screening_after({"GBV_SURVIVOR", "ELDERLY"}, [], GBV) == set()


def test_a_caller_may_add_a_flag_it_may_not_read_as_at_registration() -> None:
    assert screening_after(set(), ["TRAFFICKING_VICTIM"], NONE) == {"TRAFFICKING_VICTIM"}


def test_changed_sensitive_categories_are_named_only_with_their_scope() -> None:
    fields = ["given_name", "vulnerabilities.gbv"]
    assert visible_fields(fields, NONE) == ["given_name"]
    assert visible_fields(fields, GBV) == ["given_name", "vulnerabilities"]
    assert visible_fields(["vulnerabilities", "vulnerabilities.health"], NONE) == ["vulnerabilities"]


def test_a_conflict_carries_the_current_version_and_changed_fields_never_values() -> None:
    error = stale(2, 4, ["family_name"])
    assert (error.code, error.field) == ("CONFLICT", "version")
    assert error.to_dict()["details"] == {"current_version": 4, "changed_fields": ["family_name"]}
