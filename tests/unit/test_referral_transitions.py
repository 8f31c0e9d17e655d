"""Referral states (Primero's model) and what a change of consent does to open referrals."""

from __future__ import annotations

from typing import Any

import pytest

from contracts.events import SharingRecipient
from contracts.reference import ArrivalPoint, LegalBasis, ServiceCategory
from services.referral.domain import (
    Person,
    Provider,
    TransitionRefused,
    basis_for,
    needs_moved,
    reassess,
    referred_categories,
    rejections_moved,
    transition,
)


@pytest.mark.parametrize("action,status,recipient,owner,expected", [
    ("accept", "PENDING", True, False, "ACCEPTED"),
    ("reject", "PENDING", True, False, "REJECTED"),
    ("complete", "ACCEPTED", True, False, "DONE"),
    ("revoke", "PENDING", False, True, "REVOKED"),
    ("revoke", "ACCEPTED", False, True, "REVOKED"),
    ("revoke", "AWAITING_CONSENT", False, True, "REVOKED"),
])
def test_allowed_transitions(action: str, status: str, recipient: bool, owner: bool, expected: str) -> None:
    assert transition(action, status, is_recipient=recipient, is_owner=owner) == expected


@pytest.mark.parametrize("action,status,recipient,owner,code", [
    ("accept", "PENDING", False, True, "FORBIDDEN"),   # the referring organisation cannot accept
    ("revoke", "PENDING", True, False, "FORBIDDEN"),   # the recipient cannot revoke
    ("accept", "DONE", True, False, "INVALID_TRANSITION"),
    ("complete", "PENDING", True, False, "INVALID_TRANSITION"),
    ("accept", "AWAITING_CONSENT", True, False, "INVALID_TRANSITION"),
    ("revoke", "REJECTED", False, True, "INVALID_TRANSITION"),
])
def test_refused_transitions(action: str, status: str, recipient: bool, owner: bool, code: str) -> None:
    with pytest.raises(TransitionRefused) as refused:
        transition(action, status, is_recipient=recipient, is_owner=owner)
    assert refused.value.code == code


def referral(rid: str, org: str, status: str, basis: str | None) -> dict[str, object]:
    return {"id": rid, "to_org_id": org, "status": status, "legal_basis": basis}


def test_basis_prefers_consent_and_matches_types() -> None:
    recipients = [SharingRecipient(org_type="INTERNATIONAL", legal_basis=LegalBasis.PUBLIC_INTEREST),
                  SharingRecipient(org_id="unicef", legal_basis=LegalBasis.CONSENT)]
    assert basis_for(recipients, "unicef", "INTERNATIONAL") == LegalBasis.CONSENT
    assert basis_for(recipients, "iom", "INTERNATIONAL") == LegalBasis.PUBLIC_INTEREST
    assert basis_for(recipients, "ame", "NGO") is None


def test_consent_recorded_makes_waiting_referral_live() -> None:
    [step] = reassess([referral("r1", "csref-gao", "AWAITING_CONSENT", None)],
                      lambda org: LegalBasis.CONSENT if org == "csref-gao" else None)
    assert (step.new_status, step.legal_basis) == ("PENDING", LegalBasis.CONSENT)


def test_consent_withdrawn_revokes_open_consent_referrals_only() -> None:
    referrals = [referral("r1", "csref-gao", "ACCEPTED", "CONSENT"),
                 referral("r2", "unicef", "PENDING", "VITAL_INTEREST"),  # a child's vital interest stays
                 referral("r3", "iom", "DONE", "CONSENT")]  # already closed
    steps = reassess(referrals, lambda org: None)
    assert [(s.referral_id, s.new_status, s.reason) for s in steps] == [("r1", "REVOKED", "CONSENT_WITHDRAWN")]


def test_nothing_changes_when_coverage_is_unchanged() -> None:
    referrals = [referral("r1", "csref-gao", "PENDING", "CONSENT")]
    assert reassess(referrals, lambda org: LegalBasis.CONSENT) == []


def test_consent_for_another_purpose_does_not_make_a_referral_live() -> None:
    """Consent to share for follow-up is not consent to refer: the GBV referral waits."""
    from datetime import UTC, date, datetime

    from contracts.events import ArrivalRegisteredV1
    from contracts.reference import ArrivalPoint, Purpose, ServiceCategory, Vulnerability
    from services.referral.domain import Provider, plan_referrals
    from services.referral.rules import load_rules

    def arrival(purposes: list[Purpose]) -> ArrivalRegisteredV1:
        return ArrivalRegisteredV1(
            case_id="c", owner_org_id="dgme", arrival_point=ArrivalPoint.GAO, arrival_date=date(2026, 11, 1),
            destination_region="07", is_child=False, vulnerabilities=[Vulnerability.GBV_SURVIVOR],
            consent_given=True, consent_recipient_org_ids=["croix-rouge"], consent_purposes=purposes)

    providers = [Provider("croix-rouge", ServiceCategory.GBV_RESPONSE, frozenset(), "NGO")]
    now = datetime.now(UTC)
    rules = load_rules()

    def gbv(purposes: list[Purpose]) -> list[Any]:  # the immediate package's needs are beside the point
        return [p for p in plan_referrals(arrival(purposes), providers, now, rules)
                if p.category == ServiceCategory.GBV_RESPONSE]

    [waiting] = gbv([Purpose.FOLLOW_UP])
    assert (waiting.status, waiting.legal_basis) == ("AWAITING_CONSENT", None)
    [live] = gbv([Purpose.REFERRAL, Purpose.FOLLOW_UP])
    assert (live.status, live.legal_basis) == ("PENDING", LegalBasis.CONSENT)


# --- what a correction withdraws (decision record 0025) -------------------------------------------------


def rule_referral(rid: str, category: str, status: str, service: str | None, region: str | None = "07",
                  **more: object) -> dict[str, object]:
    return {"id": rid, "service_category": category, "status": status, "origin": "RULE", "service_id": service,
            "need_region": region, "legal_basis": "CONSENT" if service else None, **more}


def test_a_correction_withdraws_the_unaccepted_referrals_whose_provider_no_longer_fits() -> None:
    gao = Provider("ct-gao", ServiceCategory.COUNTER_TRAFFICKING, frozenset({"07"}), service_id="s-gao")
    national = Provider("ct-all", ServiceCategory.COUNTER_TRAFFICKING, frozenset(), service_id="s-all")
    children = Provider("cp", ServiceCategory.CHILD_PROTECTION, frozenset(), service_id="s-cp", max_age=17)
    services = {p.service_id or "": p for p in (gao, national, children)}
    adult_in_kayes = Person("dgme", ArrivalPoint.GAO, "01", is_child=False, age_years=19)
    served_in = {ServiceCategory.COUNTER_TRAFFICKING: "01", ServiceCategory.CHILD_PROTECTION: "01"}
    referrals = [
        rule_referral("1", "COUNTER_TRAFFICKING", "PENDING", "s-gao"),  # Gao only: moved
        rule_referral("2", "COUNTER_TRAFFICKING", "AWAITING_CONSENT", "s-all"),  # national: stays
        rule_referral("3", "COUNTER_TRAFFICKING", "ACCEPTED", "s-gao"),  # accepted: the owner decides
        rule_referral("4", "CHILD_PROTECTION", "PENDING", "s-cp"),  # 19 now: a children's service no longer fits
        rule_referral("5", "COUNTER_TRAFFICKING", "UNASSIGNED", None),  # unmet in Gao: Kayes's now
        rule_referral("6", "COUNTER_TRAFFICKING", "UNASSIGNED", None, region="01"),  # unmet where it is: stays
        rule_referral("7", "COUNTER_TRAFFICKING", "PENDING", "s-gone"),  # left the directory, need moved: moved
        rule_referral("7b", "COUNTER_TRAFFICKING", "PENDING", "s-gone", region="01"),  # … need where it was: stays
        {**rule_referral("8", "COUNTER_TRAFFICKING", "PENDING", "s-gao"), "origin": "MANUAL"},  # a person's
        rule_referral("9", "GBV_RESPONSE", "PENDING", "s-gao"),  # a need not kept: needs_withdrawn's
        rule_referral("10", "COUNTER_TRAFFICKING", "REJECTED", "s-gao"),  # said no: rejections_moved's
    ]
    steps = needs_moved(referrals, served_in, services, adult_in_kayes)
    assert [(s.referral_id, s.new_status, s.reason) for s in steps] == [
        ("1", "REVOKED", "NEED_WITHDRAWN"), ("4", "REVOKED", "NEED_WITHDRAWN"), ("5", "REVOKED", "NEED_WITHDRAWN"),
        ("7", "REVOKED", "NEED_WITHDRAWN")]
    rejected = [*referrals, rule_referral("11", "COUNTER_TRAFFICKING", "REJECTED", "s-all"),  # would fit: holds
                rule_referral("12", "COUNTER_TRAFFICKING", "REJECTED", "s-gao", rerouted_to="1")]  # re-routed
    assert [r["id"] for r in rejections_moved([{"rerouted_to": None, **r} for r in rejected], served_in, services,
                                              adult_in_kayes)] == ["10"]


def test_a_need_counts_as_referred_unless_withdrawn_or_re_routed() -> None:
    assert referred_categories([
        rule_referral("1", "FOOD", "REVOKED", "s", status_reason="NEED_WITHDRAWN"),
        rule_referral("2", "SHELTER", "REVOKED", "s", status_reason="REROUTED", rerouted_to="3"),
        rule_referral("3", "SHELTER", "REVOKED", "s", status_reason="NEED_WITHDRAWN"),
        rule_referral("4", "HEALTH_CARE", "REJECTED", "s"),
        rule_referral("5", "CASH_ALLOWANCE", "REVOKED", "s", status_reason="CONSENT_WITHDRAWN"),
    ]) == {"HEALTH_CARE", "CASH_ALLOWANCE"}
