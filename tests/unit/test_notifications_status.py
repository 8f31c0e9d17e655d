"""What each state change of a referral tells whom, and that sensitive categories stay unnamed
in what the referring organisation reads."""

from __future__ import annotations

from contracts.events import ReferralStatusChangedV1
from contracts.reference import LegalBasis, Priority, ServiceCategory
from services.notifications.domain import notices_for_status_change


def change(old: str, new: str, category: ServiceCategory = ServiceCategory.HEALTH_CARE) -> ReferralStatusChangedV1:
    return ReferralStatusChangedV1(referral_id="r", case_id="c", from_org_id="dgme", to_org_id="csref-gao",
                                   service_category=category, priority=Priority.HIGH,
                                   legal_basis=LegalBasis.CONSENT, old_status=old, new_status=new)


def test_referral_becoming_live_alerts_the_recipient() -> None:
    [notice] = notices_for_status_change(change("AWAITING_CONSENT", "PENDING"))
    assert (notice.org_id, notice.kind) == ("csref-gao", "referral.received")
    assert "soins de santé" in notice.title_fr


def test_revocation_tells_the_recipient_its_access_ended() -> None:
    [notice] = notices_for_status_change(change("ACCEPTED", "REVOKED"))
    assert (notice.org_id, notice.kind) == ("csref-gao", "referral.revoked")


def test_revoking_a_referral_that_never_went_live_tells_nobody() -> None:
    assert notices_for_status_change(change("AWAITING_CONSENT", "REVOKED")) == []


def test_answers_go_to_the_referring_organisation_without_naming_sensitive_services() -> None:
    for new, kind in (("ACCEPTED", "referral.accepted"), ("REJECTED", "referral.rejected"), ("DONE", "referral.done")):
        [notice] = notices_for_status_change(change("PENDING" if new != "DONE" else "ACCEPTED", new,
                                                    ServiceCategory.COUNTER_TRAFFICKING))
        assert (notice.org_id, notice.kind) == ("dgme", kind)
        assert "traite" not in notice.title_fr and "trafficking" not in notice.title_en
    [plain] = notices_for_status_change(change("PENDING", "ACCEPTED", ServiceCategory.SHELTER))
    assert "shelter" in plain.title_en


def test_notices_to_the_referring_organisation_about_sensitive_services_need_that_scope() -> None:
    """Their existence and priority would reveal the category to a token without its scope."""
    [sensitive] = notices_for_status_change(change("PENDING", "ACCEPTED", ServiceCategory.COUNTER_TRAFFICKING))
    [plain] = notices_for_status_change(change("PENDING", "ACCEPTED", ServiceCategory.SHELTER))
    [recipient] = notices_for_status_change(change("AWAITING_CONSENT", "PENDING", ServiceCategory.COUNTER_TRAFFICKING))
    assert (sensitive.scope, plain.scope, recipient.scope) == ("sensitive:trafficking", None, None)
