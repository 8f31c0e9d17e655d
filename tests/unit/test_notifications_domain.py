"""What the notifications service tells whom (services/notifications/domain.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from contracts.events import ReferralCreatedV1
from contracts.reference import LegalBasis, Priority, ServiceCategory
from services.notifications.domain import Notice, notices_for_referral

CASE_ID = "3f2c1e9a-0000-4000-8000-00000000c0de"
REFERRAL_ID = "9b1d2e3f-0000-4000-8000-0000000000aa"


def referral(
    category: ServiceCategory = ServiceCategory.CHILD_PROTECTION,
    priority: Priority = Priority.URGENT,
    status: str = "PENDING",
    basis: LegalBasis | None = LegalBasis.VITAL_INTEREST,
) -> ReferralCreatedV1:
    return ReferralCreatedV1(
        referral_id=REFERRAL_ID,
        case_id=CASE_ID,
        from_org_id="org-owner",
        to_org_id="org-recipient",
        service_category=category,
        priority=priority,
        legal_basis=basis,
        status=status,
        due_at=datetime(2025, 3, 11, 9, 0, tzinfo=UTC),
        reason_code="UNACCOMPANIED_OR_SEPARATED_CHILD",
    )


def test_live_referral_notifies_the_recipient_in_french_and_english() -> None:
    (notice,) = notices_for_referral(referral())
    assert notice == Notice(
        org_id="org-recipient",
        kind="referral.received",
        title_fr="Nouvelle référence urgente : protection de l'enfant",
        title_en="New urgent referral: child protection",
    )


def test_high_priority_wording() -> None:
    (notice,) = notices_for_referral(referral(ServiceCategory.HEALTH_CARE, Priority.HIGH, basis=LegalBasis.CONSENT))
    assert notice.title_fr == "Nouvelle référence prioritaire : soins de santé"
    assert notice.title_en == "New high-priority referral: health care"


def test_normal_priority_has_no_priority_word_and_no_double_spaces() -> None:
    (notice,) = notices_for_referral(
        referral(ServiceCategory.MHPSS_COUNSELLING, Priority.NORMAL, basis=LegalBasis.CONSENT)
    )
    assert notice.title_fr == "Nouvelle référence : soutien psychosocial"
    assert notice.title_en == "New referral: psychosocial support"
    assert "  " not in notice.title_fr and "  " not in notice.title_en


def test_every_category_has_french_and_english_words() -> None:
    from services.notifications.domain import CATEGORY_WORDS

    assert set(CATEGORY_WORDS) == set(ServiceCategory)
    assert all(fr and en for fr, en in CATEGORY_WORDS.values())


def test_legal_aid_title() -> None:
    (notice,) = notices_for_referral(referral(ServiceCategory.LEGAL_AID, Priority.NORMAL, basis=LegalBasis.CONSENT))
    assert notice.title_en == "New referral: legal aid"
    assert notice.title_fr == "Nouvelle référence : aide juridique"


def test_awaiting_consent_notifies_the_owner_not_the_recipient() -> None:
    notices = notices_for_referral(
        referral(ServiceCategory.GBV_RESPONSE, Priority.URGENT, status="AWAITING_CONSENT", basis=None)
    )
    assert len(notices) == 1
    (notice,) = notices
    assert notice.org_id == "org-owner"
    assert notice.kind == "referral.awaiting_consent"
    # The owner's staff may not all hold sensitive:gbv: the category is not named to them.
    assert notice.title_fr == "Consentement requis pour orienter vers : un service spécialisé"
    assert notice.title_en == "Consent needed to refer for: a specialised service"
    assert all(n.org_id != "org-recipient" for n in notices)


@pytest.mark.parametrize("status", ["PENDING", "AWAITING_CONSENT"])
@pytest.mark.parametrize("category", list(ServiceCategory))
def test_titles_carry_no_case_data(status: str, category: ServiceCategory) -> None:
    event = referral(category, Priority.URGENT, status=status, basis=None if status == "AWAITING_CONSENT" else
                     LegalBasis.CONSENT)
    for notice in notices_for_referral(event):
        for title in (notice.title_fr, notice.title_en):
            assert title
            for value in (CASE_ID, REFERRAL_ID, "org-owner", "org-recipient", event.reason_code, "2025"):
                assert value not in title
