"""Notices about unmet needs (services/notifications/domain.py): who is told, in which words, and who may see."""

from __future__ import annotations

from contracts.events import NeedUnassignedV1, ReferralStatusChangedV1
from contracts.reference import LegalBasis, Priority, ReferralStatus, ServiceCategory, UnassignedReason
from services.notifications.domain import notices_for_status_change, notices_for_unassigned


def need(category: ServiceCategory, owner: str = "ame",
         reason: UnassignedReason = UnassignedReason.NO_PROVIDER_IN_REGION) -> NeedUnassignedV1:
    return NeedUnassignedV1(referral_id="r", case_id="c", owner_org_id=owner, service_category=category,
                            priority=Priority.URGENT, reason=reason)


def test_the_registering_organisation_and_the_coordinating_body_are_told_with_the_reason() -> None:
    notices = notices_for_unassigned(need(ServiceCategory.FOOD), "dgme")
    assert [(n.org_id, n.kind, n.scope) for n in notices] == [
        ("ame", "referral.unassigned", None), ("dgme", "referral.unassigned", None)]
    for n in notices:
        assert n.title_fr == "Besoin sans prestataire : alimentation (aucun prestataire dans la région)"
        assert n.title_en == "Unmet need: food (no provider in the region)"


def test_once_when_the_owner_is_the_coordinating_body() -> None:
    assert [n.org_id for n in notices_for_unassigned(need(ServiceCategory.FOOD, owner="dgme"), "dgme")] == ["dgme"]


def test_a_sensitive_need_carries_its_scope_for_both_and_does_not_name_the_category() -> None:
    notices = notices_for_unassigned(need(ServiceCategory.GBV_RESPONSE, reason=UnassignedReason.NO_CAPACITY), "dgme")
    assert [(n.org_id, n.scope) for n in notices] == [("ame", "sensitive:gbv"), ("dgme", "sensitive:gbv")]
    for n in notices:
        assert "VBG" not in n.title_fr and "GBV" not in n.title_en
        assert n.title_en == "Unmet need: a specialised service (no place left)"


def assigned(new: ReferralStatus) -> ReferralStatusChangedV1:
    return ReferralStatusChangedV1(referral_id="r", case_id="c", from_org_id="ame", to_org_id="iom",
                                   service_category=ServiceCategory.FOOD, priority=Priority.HIGH,
                                   legal_basis=LegalBasis.CONSENT if new == ReferralStatus.PENDING else None,
                                   old_status=ReferralStatus.UNASSIGNED, new_status=new, reason_code="ASSIGNED")


def test_a_need_assigned_by_hand_is_told_as_a_new_referral() -> None:
    [received] = notices_for_status_change(assigned(ReferralStatus.PENDING))
    assert (received.org_id, received.kind) == ("iom", "referral.received")
    [waiting] = notices_for_status_change(assigned(ReferralStatus.AWAITING_CONSENT))
    assert (waiting.org_id, waiting.kind) == ("ame", "referral.awaiting_consent")
