"""The OAuth 2.0 scope catalogue, in words an organisation's data-protection officer can check.

A token holds at most its organisation's scope ceiling (set by the platform steward) and, for a
person, what their role allows (``ROLE_SCOPES``). Sensitive-category scopes only ever add
detail to records the organisation may already see: they never widen which records it sees.
"""

from __future__ import annotations

SCOPES: dict[str, dict[str, str]] = {
    "cases:write": {
        "en": "Register arrivals and record screening for cases your organisation owns.",
        "fr": "Enregistrer des arrivées et le dépistage pour les dossiers de votre organisation.",
    },
    "cases:read": {
        "en": "Read cases your organisation owns, and cases shared with it through an open referral the "
              "person's consent (or another recorded legal basis) covers. Sensitive categories stay hidden.",
        "fr": "Lire les dossiers de votre organisation et ceux partagés avec elle par une référence ouverte couverte "
              "par le consentement de la personne (ou une autre base légale enregistrée). Les catégories sensibles "
              "restent masquées.",
    },
    "consent:write": {
        "en": "Record or withdraw a person's consent for cases your organisation owns.",
        "fr": "Enregistrer ou retirer le consentement d'une personne pour les dossiers de votre organisation.",
    },
    "referrals:read": {
        "en": "Read referrals sent or received by your organisation.",
        "fr": "Lire les références envoyées ou reçues par votre organisation.",
    },
    "referrals:write": {
        "en": "Accept, reject, or close referrals addressed to your organisation (with their outcome), and refer "
              "cases your organisation may read to a service of the directory.",
        "fr": "Accepter, refuser ou clôturer les références adressées à votre organisation (avec leur résultat), et "
              "orienter les dossiers que votre organisation peut lire vers un service de l'annuaire.",
    },
    "referrals:supervise": {
        "en": "Supervisors: be told when your organisation's referrals go unanswered past their grace period "
              "(escalations), and see those notices.",
        "fr": "Superviseurs : être averti lorsque les références de votre organisation restent sans réponse au-delà "
              "du délai de grâce (escalades), et voir ces notifications.",
    },
    "followup:read": {
        "en": "Read the follow-up of cases your organisation owns or manages: who manages it, the reintegration "
              "plan, its state, its surveys, and work lists of plans still missing.",
        "fr": "Lire le suivi des dossiers que votre organisation détient ou gère : qui le gère, le plan de "
              "réintégration, son état, ses enquêtes, et les listes de plans manquants.",
    },
    "followup:write": {
        "en": "For cases your organisation manages: save the reintegration plan and its actions, record a "
              "reintegration sustainability survey, close or re-open the follow-up, and hand it to another organisation the person's consent (or another recorded "
              "legal basis) covers.",
        "fr": "Pour les dossiers que votre organisation gère : enregistrer le plan de réintégration et ses actions, "
              "enregistrer une enquête sur la durabilité de la réintégration, clôturer ou rouvrir le suivi, et le confier à une autre organisation couverte par le consentement "
              "de la personne (ou une autre base légale enregistrée).",
    },
    "followup:manage": {
        "en": "Platform steward: hand any case's follow-up to another organisation a legal basis covers (with "
              "followup:write), without reading the case.",
        "fr": "Gestionnaire de la plateforme : confier le suivi de tout dossier à une autre organisation couverte "
              "par une base légale (avec followup:write), sans lire le dossier.",
    },
    "notifications:read": {
        "en": "Read your organisation's in-app notifications and mark them read.",
        "fr": "Lire les notifications de votre organisation et les marquer comme lues.",
    },
    "directory:read": {
        "en": "Read the shared directory of organisations and services.",
        "fr": "Consulter l'annuaire partagé des organisations et des services.",
    },
    "directory:write": {
        "en": "Keep your organisation's own services in the shared directory up to date (description, area, "
              "eligibility, hours, contact, capacity). Never another organisation's.",
        "fr": "Tenir à jour les services de votre organisation dans l'annuaire partagé (description, zone, "
              "éligibilité, horaires, contact, capacité). Jamais ceux d'une autre organisation.",
    },
    "directory:manage": {
        "en": "Platform steward: maintain any organisation's services in the shared directory (with directory:write).",
        "fr": "Gestionnaire de la plateforme : tenir à jour les services de toute organisation dans l'annuaire "
              "partagé (avec directory:write).",
    },
    "sensitive:health": {
        "en": "See health details (medical, mental-health needs, disability, pregnancy, a survey's psychosocial "
              "answers) of cases you may read.",
        "fr": "Voir les informations de santé (besoins médicaux, santé mentale, handicap, grossesse, réponses "
              "psychosociales d'une enquête) des dossiers que vous pouvez lire.",
    },
    "sensitive:gbv": {
        "en": "See gender-based-violence details of cases you may read.",
        "fr": "Voir les informations sur les violences basées sur le genre des dossiers que vous pouvez lire.",
    },
    "sensitive:trafficking": {
        "en": "See trafficking details of cases you may read.",
        "fr": "Voir les informations relatives à la traite des dossiers que vous pouvez lire.",
    },
    "sensitive:child_protection": {
        "en": "See child-protection details (unaccompanied or separated child) of cases you may read.",
        "fr": "Voir les informations de protection de l'enfant (enfant non accompagné ou séparé) des dossiers "
              "que vous pouvez lire.",
    },
    "statistics:read": {
        "en": "See aggregate counts only, never a record; cells under 5 people are suppressed.",
        "fr": "Voir uniquement des effectifs agrégés, jamais un dossier ; les cellules de moins de 5 personnes "
              "sont masquées.",
    },
    "audit:read": {
        "en": "Platform steward: search the audit trail and export what is recorded about one person.",
        "fr": "Gestionnaire de la plateforme : consulter la piste d'audit et exporter ce qui est enregistré sur une "
              "personne.",
    },
    "identity:reconcile": {
        "en": "Platform steward: see possible duplicates between organisations (case ids, organisations, score and "
              "reason codes, never an identity), mark them dismissed or resolved, and merge or un-merge two cases.",
        "fr": "Gestionnaire de la plateforme : voir les doublons possibles entre organisations (identifiants de "
              "dossiers, organisations, score et codes de raison, jamais une identité), les marquer écartés ou "
              "résolus, et fusionner ou défusionner deux dossiers.",
    },
    "openid": {
        "en": "Sign a person in (OpenID Connect): an id_token naming the person and their organisation.",
        "fr": "Connecter une personne (OpenID Connect) : un id_token nommant la personne et son organisation.",
    },
}

ALL_SCOPES = frozenset(SCOPES)

SENSITIVE_SCOPES = frozenset(s for s in SCOPES if s.startswith("sensitive:"))

# What each role of a person may hold, before the organisation's ceiling is applied.
ROLE_SCOPES: dict[str, frozenset[str]] = {
    "case_worker": frozenset({"openid", "cases:read", "cases:write", "consent:write", "referrals:read",
                              "referrals:write", "notifications:read", "directory:read", "followup:read",
                              "followup:write"}),
    "supervisor": frozenset({"openid", "cases:read", "cases:write", "consent:write", "referrals:read",
                             "referrals:write", "notifications:read", "directory:read", "statistics:read",
                             "followup:read", "followup:write",
                             "referrals:supervise", *SENSITIVE_SCOPES,
                             # who runs a service day to day reports its capacity (own organisation only)
                             "directory:write"}),
    "org_admin": frozenset({"openid", "referrals:read", "notifications:read", "directory:read", "statistics:read",
                            "directory:write"}),
    "platform_steward": frozenset({"openid", "directory:read", "statistics:read", "audit:read", "directory:write",
                                   "directory:manage", "followup:write", "followup:manage",
                                   "identity:reconcile"}),
}
