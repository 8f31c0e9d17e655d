"""What to tell whom when a referral is created or changes, or a case's follow-up needs its manager. No I/O."""

from __future__ import annotations

from dataclasses import dataclass, replace

from contracts.events import (
    MERGE_UNDONE,
    CaseAssignedV1,
    CaseClosedV1,
    CaseReopenedV1,
    CaseUnreachableV1,
    NeedUnassignedV1,
    PlanOverdueV1,
    ReferralCreatedV1,
    ReferralDeadlineV1,
    ReferralStatusChangedV1,
    ScheduledContactFacts,
)
from contracts.reference import (
    SENSITIVE_SERVICES,
    ClosureReason,
    DeadlineKind,
    ReferralStatus,
    ServiceCategory,
    UnassignedReason,
)

CATEGORY_WORDS: dict[ServiceCategory, tuple[str, str]] = {
    ServiceCategory.RECEPTION: ("accueil et profilage", "reception and profiling"),
    ServiceCategory.FOOD: ("alimentation", "food"),
    ServiceCategory.SHELTER: ("hébergement temporaire", "temporary shelter"),
    ServiceCategory.NON_FOOD_ITEMS: ("articles non alimentaires", "non-food items"),
    ServiceCategory.HEALTH_CARE: ("soins de santé", "health care"),
    ServiceCategory.ONWARD_TRANSPORT: ("transport vers la destination", "onward transport"),
    ServiceCategory.CASH_ALLOWANCE: ("allocation en espèces", "cash allowance"),
    ServiceCategory.CHILD_PROTECTION: ("protection de l'enfant", "child protection"),
    ServiceCategory.GBV_RESPONSE: ("réponse aux VBG", "GBV response"),
    ServiceCategory.COUNTER_TRAFFICKING: ("lutte contre la traite", "counter-trafficking"),
    ServiceCategory.FAMILY_TRACING: ("recherche familiale", "family tracing"),
    ServiceCategory.LEGAL_AID: ("aide juridique", "legal aid"),
    ServiceCategory.CIVIL_DOCUMENTATION: ("documents d'état civil", "civil documentation"),
    ServiceCategory.INTERNATIONAL_PROTECTION: ("protection internationale", "international protection"),
    ServiceCategory.MHPSS_COUNSELLING: ("soutien psychosocial", "psychosocial support"),
    ServiceCategory.CLINICAL_MENTAL_HEALTH: ("santé mentale clinique", "clinical mental health"),
    ServiceCategory.COMMUNITY_ACTIVITIES: ("activités communautaires", "community activities"),
    ServiceCategory.BUSINESS_START_UP: ("création d'entreprise", "business start-up"),
    ServiceCategory.JOB_PLACEMENT: ("placement et apprentissage", "job placement and apprenticeship"),
    ServiceCategory.VOCATIONAL_TRAINING: ("formation professionnelle", "vocational training"),
    ServiceCategory.FINANCIAL_COUNSELLING: ("conseil financier", "financial counselling"),
    ServiceCategory.CASH_OR_IN_KIND: ("appui en espèces ou en nature", "cash or in-kind support"),
    ServiceCategory.MICROCREDIT: ("microcrédit", "microcredit"),
    ServiceCategory.SAVINGS_GROUPS: ("groupes d'épargne", "savings groups"),
    ServiceCategory.HOUSING: ("logement", "housing"),
    ServiceCategory.EDUCATION: ("éducation et formation", "education and training"),
    ServiceCategory.SOCIAL_PROTECTION: ("protection sociale", "social protection"),
}

PRIORITY_WORDS = {"URGENT": ("urgente", "urgent"), "HIGH": ("prioritaire", "high-priority"), "NORMAL": ("", "")}


@dataclass(frozen=True)
class Notice:
    org_id: str
    kind: str
    title_fr: str
    title_en: str
    # A notice telling the referring organisation about a sensitive service is listed only to its
    # tokens holding this scope: its very existence (and urgency) would reveal the category.
    scope: str | None = None
    # A notice for some of the organisation's people only: listed only to tokens holding this scope
    # too (``SUPERVISORS``: escalations go to the referring organisation's supervisors).
    audience: str | None = None


SUPERVISORS = "referrals:supervise"  # the scope only the supervisor role holds among people's roles


def _words(category: ServiceCategory) -> tuple[str, str]:
    return CATEGORY_WORDS.get(category, (category.value.lower().replace("_", " "),) * 2)


def _owner_notice(org_id: str, kind: str, category: ServiceCategory, title_fr: str, title_en: str) -> Notice:
    """A notice to the referring organisation. About a sensitive service it is shown only to tokens
    with that category's scope, and even then the title does not name it (titles get copied into
    e-mails and screens others see); the referral itself shows the category to those who may."""
    sensitive = SENSITIVE_SERVICES.get(category)
    fr, en = ("un service spécialisé", "a specialised service") if sensitive else _words(category)
    return Notice(org_id, kind, title_fr.format(fr=fr), title_en.format(en=en),
                  scope=sensitive.scope if sensitive else None)


def notices_for_referral(event: ReferralCreatedV1) -> list[Notice]:
    """A live referral alerts its recipient; one awaiting consent alerts the case owner instead. A
    referral someone else re-routed also tells the referring organisation and the case's owner."""
    if event.status == ReferralStatus.AWAITING_CONSENT:
        first = _owner_notice(event.from_org_id, "referral.awaiting_consent", event.service_category,
                              "Consentement requis pour orienter vers : {fr}", "Consent needed to refer for: {en}")
    else:
        first = _received(event.to_org_id, event.service_category, event.priority.value)
    return [first, *_rerouted(event.rerouted_from, event.rerouted_by_org_id, event.from_org_id,
                              [event.from_org_id, event.case_owner_org_id], event.service_category)]


REROUTED_TITLES = ("Référence réorientée vers un autre prestataire : {fr}",
                   "Referral re-routed to another provider: {en}")


def _rerouted(rerouted_from: str | None, by: str | None, referrer: str | None, told: list[str | None],
              category: ServiceCategory) -> list[Notice]:
    """Notices to ``told`` (once each) when a referral was re-routed by anyone but its referrer
    (the coordinating body, or the platform: ``by`` None): they did not move it themselves."""
    if rerouted_from is None or by == referrer:
        return []
    return [_owner_notice(org, "referral.rerouted", category, *REROUTED_TITLES)
            for org in dict.fromkeys(told) if org is not None and org != by]


def _received(org_id: str, category: ServiceCategory, priority: str) -> Notice:
    fr, en = _words(category)
    pfr, pen = PRIORITY_WORDS.get(priority, ("", ""))
    return Notice(org_id, "referral.received",
                  " ".join(filter(None, ["Nouvelle référence", pfr, ":", fr])),
                  " ".join(filter(None, ["New", pen, "referral:", en])))


OWNER_TITLES = {
    ReferralStatus.ACCEPTED: ("Référence acceptée : {fr}", "Referral accepted: {en}"),
    ReferralStatus.REJECTED: ("Référence refusée : {fr}", "Referral rejected: {en}"),
    ReferralStatus.DONE: ("Référence clôturée : {fr}", "Referral completed: {en}"),
}


def notices_for_status_change(event: ReferralStatusChangedV1) -> list[Notice]:
    """Tell the recipient when a referral becomes live or is withdrawn; tell the referring
    organisation when the recipient answers. An unmet need assigned by hand is told as a new
    referral would be: to its recipient when live, to the referring organisation when it waits
    for consent."""
    if event.old_status == ReferralStatus.UNASSIGNED:
        if event.new_status == ReferralStatus.PENDING:
            return [_received(event.to_org_id, event.service_category, event.priority.value)]
        if event.new_status == ReferralStatus.AWAITING_CONSENT:
            return [_owner_notice(event.from_org_id, "referral.awaiting_consent", event.service_category,
                                  "Consentement requis pour orienter vers : {fr}", "Consent needed to refer for: {en}")]
        return []
    if event.new_status == ReferralStatus.PENDING and event.old_status == ReferralStatus.AWAITING_CONSENT:
        return [_received(event.to_org_id, event.service_category, event.priority.value)]
    if event.new_status == ReferralStatus.REVOKED and event.old_status != ReferralStatus.AWAITING_CONSENT:
        fr, en = _words(event.service_category)
        return [Notice(event.to_org_id, "referral.revoked", f"Référence retirée : {fr}", f"Referral withdrawn: {en}")]
    if event.new_status in OWNER_TITLES:
        return [_owner_notice(event.from_org_id, f"referral.{event.new_status.value.lower()}", event.service_category,
                              *OWNER_TITLES[event.new_status])]
    return []


# --- deadlines (evt.referral.referral_deadline.v1) ----------------------------------------------

REMINDER_TITLES = ("Référence en attente de votre réponse (échéance dépassée) : {fr}",
                   "Referral awaiting your answer past its due time: {en}")
ESCALATION_TITLES = ("Référence sans réponse, escaladée ; elle peut être réorientée : {fr}",
                     "Referral unanswered past its grace period, escalated; it can be re-routed: {en}")
OVERDUE_TITLES = ("Résultat en retard pour la référence : {fr}", "Referral outcome overdue: {en}")


def _recipient_notice(org_id: str, kind: str, category: ServiceCategory, title_fr: str, title_en: str) -> Notice:
    """A notice to the recipient, whose own service it is: it may name the category (as ``_received``)."""
    fr, en = _words(category)
    return Notice(org_id, kind, title_fr.format(fr=fr), title_en.format(en=en))


def notices_for_deadline(event: ReferralDeadlineV1, coordinator_org_id: str) -> list[Notice]:
    """A reminder goes to the recipient; an escalation to the referring organisation's supervisors and
    to the coordinating body (to the whole organisation when it is the coordinating body itself); an
    overdue outcome to the recipient and the referring organisation. Notices to anyone but the
    recipient about a sensitive service carry its scope and do not name it."""
    category = event.service_category
    if event.kind == DeadlineKind.REMINDER:
        return [_recipient_notice(event.to_org_id, "referral.reminder", category, *REMINDER_TITLES)]
    if event.kind == DeadlineKind.ESCALATED:
        coordinator = _owner_notice(coordinator_org_id, "referral.escalated", category, *ESCALATION_TITLES)
        if coordinator_org_id == event.from_org_id:
            return [coordinator]
        supervisors = _owner_notice(event.from_org_id, "referral.escalated", category, *ESCALATION_TITLES)
        return [replace(supervisors, audience=SUPERVISORS), coordinator]
    if event.kind == DeadlineKind.OUTCOME_OVERDUE:
        notices = [_recipient_notice(event.to_org_id, "referral.outcome_overdue", category, *OVERDUE_TITLES)]
        if event.from_org_id != event.to_org_id:
            notices.append(_owner_notice(event.from_org_id, "referral.outcome_overdue", category, *OVERDUE_TITLES))
        return notices
    return []


REASON_WORDS: dict[UnassignedReason, tuple[str, str]] = {
    UnassignedReason.NO_PROVIDER_IN_REGION: ("aucun prestataire dans la région", "no provider in the region"),
    UnassignedReason.NO_CAPACITY: ("plus de place disponible", "no place left"),
    UnassignedReason.NOT_ELIGIBLE: ("aucun service n'accepte ce profil", "no service takes this profile"),
}


def notices_for_unassigned(event: NeedUnassignedV1, coordinator_org_id: str) -> list[Notice]:
    """A need no provider fits alerts the registering organisation and the coordinating body (once
    when they are the same), both with the reason; re-routed there by someone else, the referring
    organisation too. About a sensitive service it is shown only to
    their tokens holding that category's scope, and its title does not name the category."""
    rfr, ren = REASON_WORDS[event.reason]
    told = list(dict.fromkeys([event.owner_org_id, coordinator_org_id]))
    unmet = [_owner_notice(org, "referral.unassigned", event.service_category,
                           f"Besoin sans prestataire : {{fr}} ({rfr})", f"Unmet need: {{en}} ({ren})") for org in told]
    # Re-routed to nobody by someone else: a referrer who is not already told of the unmet need is told of the move.
    others = [] if event.from_org_id in told else [event.from_org_id]
    return unmet + _rerouted(event.rerouted_from, event.rerouted_by_org_id, event.from_org_id, others,
                             event.service_category)


# --- follow-up (evt.followup.*): the organisation managing the case is told; titles name no one ----

CONTACT_DUE_TITLES = ("Contact de suivi à faire ({code}, prévu le {due})", "Follow-up contact due ({code}, on {due})")
CONTACT_OVERDUE_TITLES = ("Contact de suivi en retard ({code}, prévu le {due})",
                          "Follow-up contact overdue ({code}, due {due})")
UNREACHABLE_TITLES = ("Personne injoignable après {n} tentatives de suivi",
                      "Person unreachable after {n} follow-up attempts")
PLAN_OVERDUE_TITLES = ("Plan de réintégration en retard (attendu le {due})", "Reintegration plan overdue (due {due})")
ASSIGNED_TITLES = ("Suivi d'un cas confié à votre organisation", "A case's follow-up was handed to your organisation")
MERGED_TITLES = ("Suivi clôturé : enregistrement fusionné avec un autre du même retour",
                 "Follow-up closed: registration merged into another of the same return")
MERGE_UNDONE_TITLES = ("Suivi rouvert : fusion annulée", "Follow-up re-opened: merge undone")


def notice_for_contact(event: ScheduledContactFacts, overdue: bool) -> Notice:
    """A scheduled contact due or overdue: told to the managing organisation (codes and dates only)."""
    fr, en = CONTACT_OVERDUE_TITLES if overdue else CONTACT_DUE_TITLES
    due = event.due_on.isoformat()
    return Notice(event.manager_org_id, "followup.contact_overdue" if overdue else "followup.contact_due",
                  fr.format(code=event.contact_code, due=due), en.format(code=event.contact_code, due=due))


def notice_for_unreachable(event: CaseUnreachableV1) -> Notice:
    fr, en = UNREACHABLE_TITLES
    return Notice(event.manager_org_id, "followup.case_unreachable", fr.format(n=event.failed_in_a_row),
                  en.format(n=event.failed_in_a_row))


def notice_for_plan_overdue(event: PlanOverdueV1) -> Notice:
    fr, en = PLAN_OVERDUE_TITLES
    due = event.plan_due_on.isoformat()
    return Notice(event.manager_org_id, "followup.plan_overdue", fr.format(due=due), en.format(due=due))


def notice_for_closure(event: CaseClosedV1) -> Notice | None:
    """A follow-up closed by a merge of two registrations of one return (decision record 0026): its manager is
    told, since it did not close it. A closure by the manager itself tells nobody."""
    if event.reason != ClosureReason.MERGED:
        return None
    return Notice(event.manager_org_id, "followup.case_merged", *MERGED_TITLES)


def notice_for_reopening(event: CaseReopenedV1) -> Notice | None:
    """The undo of that merge re-opened the follow-up: its manager is told. A re-opening by hand tells nobody."""
    if event.reason_code != MERGE_UNDONE:
        return None
    return Notice(event.manager_org_id, "followup.merge_undone", *MERGE_UNDONE_TITLES)


def notice_for_assignment(event: CaseAssignedV1) -> Notice:
    """A case's follow-up handed over: the new manager is told (also when it goes back to the owner)."""
    return Notice(event.to_org_id, "followup.case_assigned", *ASSIGNED_TITLES)
