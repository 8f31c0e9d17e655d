"""Who may read a case, and what of it: the rules intake applies on its own data."""

from __future__ import annotations

from contracts.reference import LegalBasis, Purpose, SensitiveCategory
from kernel.statistics import MIN_CELL, MIN_CELL_NARROW, minimum_cell, suppress_small_cells
from services.intake.domain import (
    Basis,
    Grant,
    case_access,
    coverage,
    split_vulnerabilities,
    visible_categories,
)

OWNER, UNICEF, IOM = "dgme", "unicef", "iom"


def consent(*orgs: str, given: bool = True, withdrawn: bool = False, types: tuple[str, ...] = (),
            purposes: tuple[Purpose, ...] = (Purpose.REFERRAL,), basis: LegalBasis = LegalBasis.CONSENT) -> Basis:
    return Basis(id="b", legal_basis=basis, given=given, purposes=frozenset(purposes), org_ids=frozenset(orgs),
                 org_types=frozenset(types), withdrawn=withdrawn)


def grant(org: str, status: str = "PENDING", basis: LegalBasis | None = LegalBasis.CONSENT) -> Grant:
    return Grant(org_id=org, legal_basis=basis, status=status)


def test_owner_always_reads_its_case() -> None:
    assert case_access(OWNER, OWNER, "STATE", [], []).allowed


def test_other_organisation_without_referral_is_refused_even_with_consent() -> None:
    assert not case_access(OWNER, UNICEF, "INTERNATIONAL", [], [consent(UNICEF)]).allowed


def test_open_referral_and_consent_allow_for_referral_purpose() -> None:
    access = case_access(OWNER, UNICEF, "INTERNATIONAL", [grant(UNICEF)], [consent(UNICEF)])
    assert access.allowed and access.purpose == "REFERRAL" and access.legal_basis == LegalBasis.CONSENT


def test_open_referral_without_covering_consent_is_refused() -> None:
    assert not case_access(OWNER, UNICEF, None, [grant(UNICEF)], [consent(IOM)]).allowed
    assert not case_access(OWNER, UNICEF, None, [grant(UNICEF)], [consent(UNICEF, given=False)]).allowed


def test_withdrawn_consent_ends_access_at_once() -> None:
    assert not case_access(OWNER, UNICEF, None, [grant(UNICEF)], [consent(UNICEF, withdrawn=True)]).allowed


def test_consent_for_another_purpose_does_not_cover_referral() -> None:
    bases = [consent(UNICEF, purposes=(Purpose.FOLLOW_UP,))]
    assert not case_access(OWNER, UNICEF, None, [grant(UNICEF)], bases).allowed


def test_consent_to_an_organisation_type_covers_its_members() -> None:
    bases = [consent(types=("INTERNATIONAL",))]
    assert case_access(OWNER, UNICEF, "INTERNATIONAL", [grant(UNICEF)], bases).allowed
    assert not case_access(OWNER, UNICEF, "NGO", [grant(UNICEF)], bases).allowed


def test_closed_referrals_give_no_access() -> None:
    for status in ("REJECTED", "DONE", "REVOKED", "AWAITING_CONSENT"):
        assert not case_access(OWNER, UNICEF, None, [grant(UNICEF, status)], [consent(UNICEF)]).allowed
    assert case_access(OWNER, UNICEF, None, [grant(UNICEF, "ACCEPTED")], [consent(UNICEF)]).allowed


def test_vital_interest_referral_needs_no_consent() -> None:
    access = case_access(OWNER, UNICEF, None, [grant(UNICEF, basis=LegalBasis.VITAL_INTEREST)], [])
    assert access.allowed and access.legal_basis == LegalBasis.VITAL_INTEREST


def test_recorded_legal_obligation_covers_recipient() -> None:
    bases = [consent(UNICEF, basis=LegalBasis.LEGAL_OBLIGATION)]
    access = case_access(OWNER, UNICEF, None, [grant(UNICEF, basis=None)], bases)
    assert access.allowed and access.legal_basis == LegalBasis.LEGAL_OBLIGATION


def test_sensitive_flags_hidden_without_scope_and_restricted_even_when_absent() -> None:
    codes = ["ELDERLY", "GBV_SURVIVOR", "MEDICAL_NEEDS"]
    view = split_vulnerabilities(codes, visible_categories(frozenset({"sensitive:health"})))
    assert view["vulnerabilities"] == ["ELDERLY", "MEDICAL_NEEDS"]
    assert view["sensitive"] == {"health": ["MEDICAL_NEEDS"], "gbv": None, "trafficking": None,
                                 "child_protection": None}
    # A case with no sensitive flag answers exactly the same for restricted categories.
    plain = split_vulnerabilities(["ELDERLY"], visible_categories(frozenset()))
    assert plain["sensitive"] == {c.value: None for c in SensitiveCategory}


def test_coverage_lists_recipients_per_purpose_consent_first() -> None:
    bases = [consent(UNICEF, "csref-gao"), consent(IOM, withdrawn=True),
             consent(UNICEF, basis=LegalBasis.VITAL_INTEREST), consent(IOM, given=False)]
    referral = next(c for c in coverage(bases) if c.purpose == Purpose.REFERRAL)
    assert [(r.org_id, r.legal_basis) for r in referral.recipients] == [
        ("csref-gao", LegalBasis.CONSENT), (UNICEF, LegalBasis.CONSENT)]


def test_statistics_never_show_a_cell_under_the_minimum() -> None:
    rows = [(("07",), MIN_CELL), (("00",), MIN_CELL - 1), (("01",), 1), (("02",), 40)]
    kept, suppressed = suppress_small_cells(rows)
    assert kept == [(("07",), MIN_CELL), (("02",), 40)] and suppressed == 2


def test_statistics_counts_are_rounded_so_differences_do_not_single_out_a_person() -> None:
    kept, _ = suppress_small_cells([(("a",), 6), (("b",), 7), (("c",), 8), (("d",), 12), (("e",), 13)])
    assert [n for _, n in kept] == [5, 5, 10, 10, 15]
    assert all(n % 5 == 0 for _, n in kept)


def test_the_callers_own_records_never_make_a_cell_appear() -> None:
    """Four decoys and one real person: the cell stays suppressed for the decoys' owner."""
    rows = [(("2025-02", "TRAFFICKING_VICTIM"), 5), (("2025-03", "TRAFFICKING_VICTIM"), 9)]
    own = {("2025-02", "TRAFFICKING_VICTIM"): 4, ("2025-03", "TRAFFICKING_VICTIM"): 4}
    kept, suppressed = suppress_small_cells(rows, own)
    assert kept == [(("2025-03", "TRAFFICKING_VICTIM"), 10)] and suppressed == 1
    # Without own records the same rows are all shown (nothing to subtract).
    assert len(suppress_small_cells(rows)[0]) == 2


def test_the_callers_own_records_cannot_move_the_rounding_to_show_one_more_person() -> None:
    """Five real people and two decoys (seven) showed 5; a sixth real person (eight) showed 10."""
    cell = ("2025-02", "TRAFFICKING_VICTIM")
    for decoys in range(12):
        shown = [suppress_small_cells([(cell, real + decoys)], {cell: decoys})[0] for real in (5, 6, 7)]
        assert shown[0] == shown[1] == shown[2], (decoys, shown)


def test_narrow_cells_need_a_higher_floor() -> None:
    assert minimum_cell(1) == minimum_cell(2) == MIN_CELL and minimum_cell(3) == MIN_CELL_NARROW == 10
    kept, suppressed = suppress_small_cells([(("a", "b", "c"), 9), (("a", "b", "d"), 10)], minimum=10)
    assert kept == [(("a", "b", "d"), 10)] and suppressed == 1
