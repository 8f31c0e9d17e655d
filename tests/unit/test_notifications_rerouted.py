"""A referral re-routed by someone other than the referring organisation (the coordinating body, or
the platform) is told to the referring organisation and the case owner; a re-routing they made
themselves tells nobody but the new recipient."""

from __future__ import annotations

from contracts.events import NeedUnassignedV1, ReferralCreatedV1
from contracts.reference import LegalBasis, Priority, ReferralStatus, ServiceCategory, UnassignedReason
from services.notifications.domain import notices_for_referral, notices_for_unassigned


def moved(by: str | None, category: ServiceCategory = ServiceCategory.FOOD, owner: str = "ame",
          referrer: str = "iom") -> ReferralCreatedV1:
    return ReferralCreatedV1(referral_id="new", case_id="c", from_org_id=referrer, to_org_id="food-b",
                             service_category=category, priority=Priority.HIGH, legal_basis=LegalBasis.CONSENT,
                             status=ReferralStatus.PENDING, due_at="2026-12-02T00:00:00Z", reason_code="NO_ANSWER",
                             case_owner_org_id=owner, rerouted_from="old", rerouted_by_org_id=by)


def test_rerouted_by_the_coordinating_body_tells_the_recipient_the_referrer_and_the_owner() -> None:
    notices = notices_for_referral(moved("dgme"))
    assert [(n.org_id, n.kind) for n in notices] == [
        ("food-b", "referral.received"), ("iom", "referral.rerouted"), ("ame", "referral.rerouted")]
    assert notices[1].title_en == "Referral re-routed to another provider: food"


def test_once_when_the_referrer_owns_the_case_and_not_at_all_when_it_rerouted_itself() -> None:
    assert [n.org_id for n in notices_for_referral(moved("dgme", referrer="ame"))] == ["food-b", "ame"]
    assert [n.kind for n in notices_for_referral(moved("iom"))] == ["referral.received"]
    assert [n.org_id for n in notices_for_referral(moved("ame", referrer="ame"))] == ["food-b"]
    assert [n.org_id for n in notices_for_referral(moved(None))][1:] == ["iom", "ame"]  # the platform re-routed


def test_a_sensitive_rerouting_carries_its_scope_and_does_not_name_the_category() -> None:
    _, referrer, owner = notices_for_referral(moved("dgme", ServiceCategory.GBV_RESPONSE))
    for notice in (referrer, owner):
        assert notice.scope == "sensitive:gbv" and "VBG" not in notice.title_fr and "GBV" not in notice.title_en


def test_rerouted_to_nobody_tells_a_referrer_who_is_not_the_owner_too() -> None:
    need = NeedUnassignedV1(referral_id="new", case_id="c", owner_org_id="ame", service_category=ServiceCategory.FOOD,
                            priority=Priority.HIGH, reason=UnassignedReason.NO_CAPACITY, rerouted_from="old",
                            from_org_id="iom", rerouted_by_org_id="dgme")
    assert [(n.org_id, n.kind) for n in notices_for_unassigned(need, "dgme")] == [
        ("ame", "referral.unassigned"), ("dgme", "referral.unassigned"), ("iom", "referral.rerouted")]
    itself = need.model_copy(update={"rerouted_by_org_id": "iom"})
    assert [n.org_id for n in notices_for_unassigned(itself, "dgme")] == ["ame", "dgme"]
