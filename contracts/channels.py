"""Every NATS channel in one place: JetStream event subjects and request/reply subjects.

Event subjects start with ``evt.<producer>.`` (one stream per producer); request subjects
with ``svc.<service>.``, which no stream captures. The producer named in an event subject is the
only service allowed to publish there (NATS permissions) and the only ``source`` consumers trust.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from contracts import commands, events, replies
from contracts.replies import Page


@dataclass(frozen=True)
class EventChannel:
    subject: str
    event_type: str
    stream: str
    payload: type[BaseModel]
    description: str


@dataclass(frozen=True)
class RequestChannel:
    """A request/reply subject: its request model, what it answers in ``data`` (a reply model, or a
    type such as ``list[Model]``), and what it is for."""

    subject: str
    request: type[BaseModel] | None
    description: str
    reply: Any = None


@dataclass(frozen=True)
class StreamSpec:
    name: str
    subjects: list[str]
    description: str


INTAKE_STREAM = StreamSpec("INTAKE_EVENTS", ["evt.intake.>"], "Events published by the intake service")
REFERRAL_STREAM = StreamSpec("REFERRAL_EVENTS", ["evt.referral.>"], "Events published by the referral service")
NOTIFICATIONS_STREAM = StreamSpec(
    "NOTIFICATIONS_EVENTS", ["evt.notifications.>"], "Events published by the notifications service"
)
FOLLOWUP_STREAM = StreamSpec("FOLLOWUP_EVENTS", ["evt.followup.>"], "Events published by the follow-up service")
DEAD_LETTER_STREAM = StreamSpec("DEAD_LETTERS", ["dlq.>"], "Events a consumer gave up on, kept for replay")
STREAMS = [INTAKE_STREAM, REFERRAL_STREAM, NOTIFICATIONS_STREAM, FOLLOWUP_STREAM, DEAD_LETTER_STREAM]
SERVICES = ("intake", "referral", "notifications", "followup")


@dataclass(frozen=True)
class ConsumerChannel:
    """A durable consumer a service holds on another's stream: declared here so that the NATS
    permissions of each service can name exactly the consumers (and dead-letter subjects) it owns."""

    durable: str
    service: str
    stream: str


CONSUMERS = [
    ConsumerChannel("intake-referrals", "intake", REFERRAL_STREAM.name),
    ConsumerChannel("referral-intake", "referral", INTAKE_STREAM.name),
    ConsumerChannel("notifications-referral-events", "notifications", REFERRAL_STREAM.name),
    ConsumerChannel("intake-followup", "intake", FOLLOWUP_STREAM.name),
    ConsumerChannel("followup-intake", "followup", INTAKE_STREAM.name),
    ConsumerChannel("notifications-followup-events", "notifications", FOLLOWUP_STREAM.name),
]

ARRIVAL_REGISTERED = EventChannel(
    "evt.intake.arrival_registered.v1",
    "ml.segin.intake.arrival_registered.v1",
    INTAKE_STREAM.name,
    events.ArrivalRegisteredV1,
    "A person was registered at an arrival point.",
)
REFERRAL_CREATED = EventChannel(
    "evt.referral.referral_created.v1",
    "ml.segin.referral.referral_created.v1",
    REFERRAL_STREAM.name,
    events.ReferralCreatedV1,
    "A referral was opened to another organisation.",
)
SHARING_CHANGED = EventChannel(
    "evt.intake.sharing_changed.v1",
    "ml.segin.intake.sharing_changed.v1",
    INTAKE_STREAM.name,
    events.SharingChangedV1,
    "Consent or another legal basis for sharing a case was recorded or withdrawn.",
)
REFERRAL_STATUS_CHANGED = EventChannel(
    "evt.referral.referral_status_changed.v1",
    "ml.segin.referral.referral_status_changed.v1",
    REFERRAL_STREAM.name,
    events.ReferralStatusChangedV1,
    "A referral changed state (accepted, rejected, done, revoked, became live).",
)
DIRECTORY_SERVICE_CHANGED = EventChannel(
    "evt.referral.directory_service_changed.v1",
    "ml.segin.referral.directory_service_changed.v1",
    REFERRAL_STREAM.name,
    events.DirectoryServiceChangedV1,
    "A directory service was created or changed, or its capacity was updated.",
)
REFERRAL_DEADLINE = EventChannel(
    "evt.referral.referral_deadline.v1",
    "ml.segin.referral.referral_deadline.v1",
    REFERRAL_STREAM.name,
    events.ReferralDeadlineV1,
    "A referral's deadline passed: reminder to the recipient, escalation, or outcome overdue (each once).",
)
NEED_UNASSIGNED = EventChannel(
    "evt.referral.need_unassigned.v1",
    "ml.segin.referral.need_unassigned.v1",
    REFERRAL_STREAM.name,
    events.NeedUnassignedV1,
    "A need of a case has no directory service yet: the registering organisation and the coordinating body act.",
)
CASE_ASSIGNED = EventChannel(
    "evt.followup.case_assigned.v1",
    "ml.segin.followup.case_assigned.v1",
    FOLLOWUP_STREAM.name,
    events.CaseAssignedV1,
    "A case's follow-up was handed to another organisation (which may then read the case).",
)
PLAN_SAVED = EventChannel(
    "evt.followup.plan_saved.v1",
    "ml.segin.followup.plan_saved.v1",
    FOLLOWUP_STREAM.name,
    events.PlanSavedV1,
    "A case's reintegration plan was saved.",
)
PLAN_ACTION_UPDATED = EventChannel(
    "evt.followup.plan_action_updated.v1",
    "ml.segin.followup.plan_action_updated.v1",
    FOLLOWUP_STREAM.name,
    events.PlanActionUpdatedV1,
    "One action of a case's reintegration plan changed state.",
)
CASE_CLOSED = EventChannel(
    "evt.followup.case_closed.v1",
    "ml.segin.followup.case_closed.v1",
    FOLLOWUP_STREAM.name,
    events.CaseClosedV1,
    "A case's follow-up was closed, with its reason.",
)
CASE_REOPENED = EventChannel(
    "evt.followup.case_reopened.v1",
    "ml.segin.followup.case_reopened.v1",
    FOLLOWUP_STREAM.name,
    events.CaseReopenedV1,
    "A closed follow-up was opened again.",
)
CONTACT_LOGGED = EventChannel(
    "evt.followup.contact_logged.v1",
    "ml.segin.followup.contact_logged.v1",
    FOLLOWUP_STREAM.name,
    events.ContactLoggedV1,
    "A follow-up contact was logged (date, mode, reached or not; never its note).",
)
CONTACT_DUE = EventChannel(
    "evt.followup.contact_due.v1",
    "ml.segin.followup.contact_due.v1",
    FOLLOWUP_STREAM.name,
    events.ContactDueV1,
    "A scheduled follow-up contact's window opened (once per case and contact): the manager is told.",
)
CONTACT_OVERDUE = EventChannel(
    "evt.followup.contact_overdue.v1",
    "ml.segin.followup.contact_overdue.v1",
    FOLLOWUP_STREAM.name,
    events.ContactOverdueV1,
    "A scheduled follow-up contact is overdue (once per case and contact): the manager is told.",
)
CASE_UNREACHABLE = EventChannel(
    "evt.followup.case_unreachable.v1",
    "ml.segin.followup.case_unreachable.v1",
    FOLLOWUP_STREAM.name,
    events.CaseUnreachableV1,
    "A person could not be reached the schedule's number of times in a row (once, until reached again).",
)
PLAN_OVERDUE = EventChannel(
    "evt.followup.plan_overdue.v1",
    "ml.segin.followup.plan_overdue.v1",
    FOLLOWUP_STREAM.name,
    events.PlanOverdueV1,
    "A case still has no reintegration plan past its due day (once per case): the manager is told.",
)
SURVEY_RECORDED = EventChannel(
    "evt.followup.survey_recorded.v1",
    "ml.segin.followup.survey_recorded.v1",
    FOLLOWUP_STREAM.name,
    events.SurveyRecordedV1,
    "A survey (the Reintegration Sustainability Survey) was recorded for a case: version and scores, no answers.",
)
EVENT_CHANNELS = [ARRIVAL_REGISTERED, SHARING_CHANGED, REFERRAL_CREATED, REFERRAL_STATUS_CHANGED,
                  DIRECTORY_SERVICE_CHANGED, REFERRAL_DEADLINE, NEED_UNASSIGNED,
                  CASE_ASSIGNED, PLAN_SAVED, PLAN_ACTION_UPDATED, CASE_CLOSED, CASE_REOPENED,
                  CONTACT_LOGGED, CONTACT_DUE, CONTACT_OVERDUE, CASE_UNREACHABLE, PLAN_OVERDUE, SURVEY_RECORDED]

_WHOSE = (("intake", "intake's"), ("referral", "referral's"), ("notifications", "notifications'"),
          ("followup", "follow-up's"))
_case, _sharing, _referral = replies.CaseView, replies.SharingResult, replies.ReferralView
REQUESTS = [
    RequestChannel("svc.intake.register_arrival", commands.RegisterArrivalRequest, "Register one arrival.", _case),
    RequestChannel("svc.intake.get_case", commands.CaseRef, "Read one case.", _case),
    RequestChannel("svc.intake.record_consent", commands.RecordConsent, "Record consent for a case.", _sharing),
    RequestChannel("svc.intake.withdraw_consent", commands.WithdrawConsent, "Withdraw a recorded consent.", _sharing),
    RequestChannel("svc.intake.record_legal_basis", commands.RecordLegalBasis,
                   "Record a legal basis other than consent.", _sharing),
    RequestChannel("svc.intake.statistics", commands.StatisticsRequest, "Aggregate counts, small cells suppressed.",
                   replies.StatisticsView),
    RequestChannel("svc.referral.case_referrals", commands.CaseRef, "Referrals of one case.", list[_referral]),
    RequestChannel("svc.referral.incoming", commands.ReferralListRequest,
                   "Referrals addressed to the caller's organisation (filters: status, priority, overdue).",
                   Page[_referral]),
    RequestChannel("svc.referral.accept", commands.ReferralAction, "The recipient accepts a referral.", _referral),
    RequestChannel("svc.referral.reject", commands.ReferralAction, "The recipient rejects a referral, with a reason.",
                   _referral),
    RequestChannel("svc.referral.complete", commands.CompleteReferral,
                   "The recipient marks a referral done, with its outcome.", _referral),
    RequestChannel("svc.referral.revoke", commands.ReferralAction, "The referring organisation revokes a referral.",
                   _referral),
    RequestChannel("svc.referral.refer", commands.ReferCase,
                   "A case worker refers a case their organisation may read to a directory service.", _referral),
    RequestChannel("svc.referral.outgoing", commands.ReferralListRequest,
                   "Referrals the caller's organisation made (filters: status, priority, overdue).", Page[_referral]),
    RequestChannel("svc.referral.overdue_counts", commands.OverdueCountsRequest,
                   "Overdue referrals of the caller's organisation; per organisation for the coordinating body.",
                   replies.OverdueCountsView),
    RequestChannel("svc.notifications.list", commands.NotificationsRequest,
                   "The caller's organisation's notifications.", Page[replies.NotificationView]),
    RequestChannel("svc.notifications.mark_read", commands.MarkRead, "Mark a notification read.",
                   replies.NotificationView),
    RequestChannel("svc.intake.subject_access", commands.CaseRef, "Steward: everything intake holds on a person.",
                   replies.CaseExport),
    RequestChannel("svc.referral.subject_access", commands.CaseRef, "Steward: every referral of a person's case.",
                   list[_referral]),
    RequestChannel("svc.notifications.subject_access", commands.CaseRef, "Steward: notifications about a case.",
                   list[replies.NotificationExport]),
    RequestChannel("svc.referral.unassigned", commands.PageRequest,
                   "Unmet needs of cases the caller registered (all of them for the coordinating body).",
                   Page[_referral]),
    RequestChannel("svc.referral.assign", commands.AssignNeed,
                   "Assign an unmet need to a directory service (case owner or coordinating body).", _referral),
    RequestChannel("svc.referral.reroute", commands.RerouteReferral,
                   "Send a referral on to the next eligible provider (referring organisation or coordinating body).",
                   _referral),
    *(RequestChannel(f"svc.{service}.audit_search", None, f"Steward: search {whose} audit trail.",
                     Page[replies.AuditEntryView]) for service, whose in _WHOSE),
    *(RequestChannel(f"svc.{service}.audit_verify", None, f"Steward: verify {whose} audit chain.",
                     replies.AuditVerification) for service, whose in _WHOSE),
]
_directory = replies.DirectoryServiceView
REQUESTS += [
    RequestChannel("svc.referral.directory_save", commands.SaveDirectoryService,
                   "Create or update one directory service (own organisation's; the steward any).", _directory),
    RequestChannel("svc.referral.directory_set_capacity", commands.SetServiceCapacity,
                   "Report a directory service's capacity (available / maximum).", _directory),
    RequestChannel("svc.referral.directory_approve", commands.ApproveDirectoryService,
                   "Steward: approve a sensitive-category service so routing and referrals may use it.", _directory),
    RequestChannel("svc.referral.directory_services", commands.DirectoryQuery,
                   "Directory services, filtered, newest first.", Page[_directory]),
    RequestChannel("svc.referral.directory_service", commands.DirectoryServiceRef, "One directory service.",
                   _directory),
    RequestChannel("svc.referral.hsds_services", commands.HsdsPageRequest,
                   "HSDS 3 API: a page of services (one-to-one fields and organization).", replies.HsdsPage),
    RequestChannel("svc.referral.hsds_service", commands.HsdsRef, "HSDS 3 API: one fully nested service.",
                   replies.HsdsDocument),
    RequestChannel("svc.referral.hsds_organizations", commands.HsdsPageRequest,
                   "HSDS 3 API: a page of organizations.", replies.HsdsPage),
    RequestChannel("svc.referral.hsds_organization", commands.HsdsRef,
                   "HSDS 3 API: one organization with its services.", replies.HsdsDocument),
]
_followup = replies.FollowupCaseView
REQUESTS += [
    RequestChannel("svc.followup.get_case", commands.CaseRef,
                   "A case's follow-up: manager, plan, state, hand-overs (its owner and its manager).", _followup),
    RequestChannel("svc.followup.assign", commands.AssignCaseManagement,
                   "Hand a case's follow-up to another organisation a legal basis covers (the manager or steward).",
                   _followup),
    RequestChannel("svc.followup.save_plan", commands.SavePlan,
                   "Save a case's reintegration plan as of the version read (the managing organisation).", _followup),
    RequestChannel("svc.followup.update_action", commands.UpdatePlanAction,
                   "Move one plan action to another state (the managing organisation).", _followup),
    RequestChannel("svc.followup.close", commands.CloseCase, "Close a case's follow-up with its reason.", _followup),
    RequestChannel("svc.followup.reopen", commands.ReopenCase, "Re-open a closed follow-up.", _followup),
    RequestChannel("svc.followup.plans_missing", commands.PageRequest,
                   "Cases the caller's organisation manages that have no plan yet, with their due date.",
                   Page[replies.MissingPlanView]),
    RequestChannel("svc.followup.subject_access", commands.CaseRef,
                   "Steward: a person's follow-up, plan, hand-overs, contacts (with their notes) and survey answers.",
                   list[_followup]),
    RequestChannel("svc.followup.record_survey", commands.RecordSurvey,
                   "Record a survey (answers checked against the instrument's version) for a case (the manager).",
                   replies.SurveyView),
    RequestChannel("svc.followup.instrument", commands.InstrumentRef,
                   "One version of a survey instrument: its indicators and options (any follow-up scope).",
                   replies.InstrumentView),
    RequestChannel("svc.followup.statistics", commands.FollowupStatisticsRequest,
                   "Follow-up aggregates (plans on time, composite scores), small cells suppressed.",
                   replies.FollowupStatisticsView),
    RequestChannel("svc.followup.log_contact", commands.LogContact,
                   "Log a follow-up contact with the person (the managing organisation), once per key.", _followup),
    RequestChannel("svc.followup.followups_due", commands.ContactWorkListRequest,
                   "Cases the caller's organisation manages whose next contact is due, or opens within N days.",
                   Page[replies.ContactDueView]),
    RequestChannel("svc.followup.followups_overdue", commands.PageRequest,
                   "Cases the caller's organisation manages whose next contact is overdue.",
                   Page[replies.ContactDueView]),
    RequestChannel("svc.followup.unreachable_cases", commands.PageRequest,
                   "Cases the caller's organisation manages whose person could not be reached.",
                   Page[replies.UnreachableCaseView]),
]
# People already known (decision record 0022): merges announced with ids only.
CASES_MERGED = EventChannel(
    "evt.intake.cases_merged.v1",
    "ml.segin.intake.cases_merged.v1",
    INTAKE_STREAM.name,
    events.CasesMergedV1,
    "A case was merged into another (explicitly; nothing deleted): its id now answers the survivor.",
)
MERGE_UNDONE = EventChannel(
    "evt.intake.merge_undone.v1",
    "ml.segin.intake.merge_undone.v1",
    INTAKE_STREAM.name,
    events.MergeUndoneV1,
    "A merge was undone: both cases stand on their own again.",
)
EVENT_CHANNELS += [CASES_MERGED, MERGE_UNDONE]
REQUESTS += [
    RequestChannel("svc.intake.match_candidates", commands.MatchCandidatesRequest,
                   "Cases the caller may read that may be the same person (a case, or a person not registered yet), "
                   "ranked, with score and reasons.", replies.MatchCandidatesView),
    RequestChannel("svc.intake.merge_cases", commands.MergeCases,
                   "Merge a case into another (owner of the merged case reading the survivor, or the steward).",
                   replies.CaseMergeView),
    RequestChannel("svc.intake.undo_merge", commands.UndoMerge, "Undo a merge: both cases stand again.",
                   replies.CaseMergeView),
    RequestChannel("svc.intake.possible_duplicates", commands.PossibleDuplicatesRequest,
                   "Steward: possible duplicates across organisations (ids, organisations, score, reason codes).",
                   Page[replies.PossibleDuplicateView]),
    RequestChannel("svc.intake.decide_possible_duplicate", commands.DecidePossibleDuplicate,
                   "Steward: mark a possible duplicate dismissed or resolved.", replies.PossibleDuplicateView),
]
# Reception of groups (issue 10): arrival groups, manifests, check-in.
REQUESTS += [
    RequestChannel("svc.intake.create_arrival_group", commands.CreateArrivalGroup,
                   "Create an expected-arrival group (a charter flight, a convoy).", replies.ArrivalGroupView),
    RequestChannel("svc.intake.upload_manifest", commands.UploadManifest,
                   "Read a manifest (CSV or XLSX, base64) into a group: rows kept, every problem named.",
                   replies.ManifestResult),
    RequestChannel("svc.intake.check_in", commands.CheckIn,
                   "Check one person of a group in (or add someone not on the list): registers their case.",
                   replies.CheckInResult),
    RequestChannel("svc.intake.close_arrival_group", commands.ArrivalGroupRef,
                   "Close a group: whoever was not checked in becomes a no-show.", replies.ArrivalGroupView),
    RequestChannel("svc.intake.arrival_group", commands.ArrivalGroupQuery,
                   "One group with its totals and a page of its people.", replies.ArrivalGroupView),
    RequestChannel("svc.intake.arrival_groups", commands.PageRequest,
                   "The organisation's arrival groups, newest first, with totals.", Page[replies.ArrivalGroupView]),
]
REQUEST_SUBJECTS = {channel.subject: channel for channel in REQUESTS}


def dead_letter_subject(consumer: str) -> str:
    return f"dlq.{consumer}"


def event_producer(subject: str) -> str | None:
    """The service that owns an event subject (``evt.<producer>.…``), or None for any other subject."""
    parts = subject.split(".")
    return parts[1] if len(parts) > 2 and parts[0] == "evt" and parts[1] else None


def event_source(producer: str) -> str:
    """The CloudEvent ``source`` of every event a producer publishes."""
    return f"/segin/{producer}"
REQUESTS += [
    RequestChannel("svc.intake.update_case", commands.UpdateCase,
                   "The owner corrects a case's identity or screening as of the version read (CONFLICT if stale).",
                   replies.CaseView),
    RequestChannel("svc.intake.offline_submission", commands.OfflineSubmission,
                   "One Kobo/ODK submission (REST-service JSON): registered once per submission id, every one kept.",
                   replies.SubmissionResult),
    RequestChannel("svc.intake.offline_submissions", commands.OfflineSubmissionsRequest,
                   "The caller's organisation's received submissions (filter: status), with a rejection's reasons.",
                   Page[replies.OfflineSubmissionView]),
    RequestChannel("svc.intake.sync", commands.SyncBatch,
                   "A batch of offline commands (register, correct), each applied once by its client id.",
                   replies.SyncResult),
]
REQUEST_SUBJECTS = {channel.subject: channel for channel in REQUESTS}
CASE_CORRECTED = EventChannel(
    "evt.intake.case_corrected.v1",
    "ml.segin.intake.case_corrected.v1",
    INTAKE_STREAM.name,
    events.CaseCorrectedV1,
    "The owner corrected a case's identity or screening: the fields changed (names) and the routing attributes now.",
)
EVENT_CHANNELS += [CASE_CORRECTED]


# Families (issue 10, item 3): links between cases, announced with ids and the relation only.
CASES_LINKED = EventChannel(
    "evt.intake.cases_linked.v1",
    "ml.segin.intake.cases_linked.v1",
    INTAKE_STREAM.name,
    events.CasesLinkedV1,
    "Two cases were linked as family (at registration or later).",
)
CASES_UNLINKED = EventChannel(
    "evt.intake.cases_unlinked.v1",
    "ml.segin.intake.cases_unlinked.v1",
    INTAKE_STREAM.name,
    events.CasesUnlinkedV1,
    "A family link between two cases was removed.",
)
EVENT_CHANNELS += [CASES_LINKED, CASES_UNLINKED]
_FAMILY_REQUESTS = [
    RequestChannel("svc.intake.link_cases", commands.LinkCases,
                   "Link two cases as family (the caller may read both and owns one); idempotent.", _case),
    RequestChannel("svc.intake.unlink_cases", commands.UnlinkCases,
                   "Remove the family link between two cases (same access as link_cases).", _case),
    RequestChannel("svc.intake.family", commands.CaseRef,
                   "A case's family: linked cases, transitively and bounded, each under its own access rules.",
                   replies.FamilyView),
]
REQUESTS += _FAMILY_REQUESTS
REQUEST_SUBJECTS.update({channel.subject: channel for channel in _FAMILY_REQUESTS})
