"""Referral states (Primero's model) and what a change of consent does to open referrals."""

from __future__ import annotations

from typing import Any

import pytest

from contracts.events import SharingRecipient
from contracts.reference import LegalBasis
from services.referral.domain import TransitionRefused, basis_for, reassess, transition


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
