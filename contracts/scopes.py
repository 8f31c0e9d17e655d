"""The OAuth 2.0 scope catalogue, in words an organisation's data-protection officer can check."""

from __future__ import annotations

SCOPES: dict[str, dict[str, str]] = {
    "cases:write": {
        "en": "Register arrivals and record screening and consent for cases your organisation owns.",
        "fr": "Enregistrer des arrivées, le dépistage et le consentement pour les dossiers de votre organisation.",
    },
    "cases:read": {
        "en": "Read cases your organisation owns.",
        "fr": "Lire les dossiers de votre organisation.",
    },
    "referrals:read": {
        "en": "Read referrals sent or received by your organisation.",
        "fr": "Lire les références envoyées ou reçues par votre organisation.",
    },
    "referrals:write": {
        "en": "Accept, reject, or close referrals addressed to your organisation.",
        "fr": "Accepter, refuser ou clôturer les références adressées à votre organisation.",
    },
    "notifications:read": {
        "en": "Read your organisation's in-app notifications and mark them read.",
        "fr": "Lire les notifications de votre organisation et les marquer comme lues.",
    },
    "directory:read": {
        "en": "Read the shared directory of organisations and services.",
        "fr": "Consulter l'annuaire partagé des organisations et des services.",
    },
}

ALL_SCOPES = frozenset(SCOPES)
