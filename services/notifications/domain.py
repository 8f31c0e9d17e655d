"""What to tell whom when a referral is created. No I/O."""

from __future__ import annotations

from dataclasses import dataclass

from contracts.events import ReferralCreatedV1
from contracts.reference import ServiceCategory

CATEGORY_WORDS: dict[ServiceCategory, tuple[str, str]] = {
    ServiceCategory.CHILD_PROTECTION: ("protection de l'enfant", "child protection"),
    ServiceCategory.COUNTER_TRAFFICKING: ("lutte contre la traite", "counter-trafficking"),
    ServiceCategory.GBV_RESPONSE: ("réponse aux VBG", "GBV response"),
    ServiceCategory.HEALTH_CARE: ("soins de santé", "health care"),
    ServiceCategory.MHPSS_COUNSELLING: ("soutien psychosocial", "psychosocial support"),
    ServiceCategory.INTERNATIONAL_PROTECTION: ("protection internationale", "international protection"),
}

PRIORITY_WORDS = {"URGENT": ("urgente", "urgent"), "HIGH": ("prioritaire", "high-priority"), "NORMAL": ("", "")}


@dataclass(frozen=True)
class Notice:
    org_id: str
    kind: str
    title_fr: str
    title_en: str


def _words(category: ServiceCategory) -> tuple[str, str]:
    return CATEGORY_WORDS.get(category, (category.value.lower().replace("_", " "),) * 2)


def notices_for_referral(event: ReferralCreatedV1) -> list[Notice]:
    """A live referral alerts its recipient; one awaiting consent alerts the case owner instead."""
    fr, en = _words(event.service_category)
    pfr, pen = PRIORITY_WORDS.get(event.priority.value, ("", ""))
    if event.status == "AWAITING_CONSENT":
        return [Notice(event.from_org_id, "referral.awaiting_consent",
                       f"Consentement requis pour orienter vers : {fr}",
                       f"Consent needed to refer for: {en}")]
    return [Notice(event.to_org_id, "referral.received",
                   " ".join(filter(None, ["Nouvelle référence", pfr, ":", fr])),
                   " ".join(filter(None, ["New", pen, "referral:", en])))]
