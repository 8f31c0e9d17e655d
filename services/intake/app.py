"""Composition root of the intake service."""

from __future__ import annotations

from pathlib import Path

from contracts.channels import (
    CASE_ASSIGNED,
    FOLLOWUP_STREAM,
    INTAKE_STREAM,
    REFERRAL_CREATED,
    REFERRAL_STATUS_CHANGED,
    REFERRAL_STREAM,
)
from contracts.commands import (
    ArrivalGroupQuery,
    ArrivalGroupRef,
    CaseRef,
    CheckIn,
    CreateArrivalGroup,
    DecidePossibleDuplicate,
    LinkCases,
    MatchCandidatesRequest,
    MergeCases,
    OfflineSubmission,
    OfflineSubmissionsRequest,
    PageRequest,
    PossibleDuplicatesRequest,
    RecordConsent,
    RecordLegalBasis,
    RegisterArrivalRequest,
    StatisticsRequest,
    SyncBatch,
    UndoMerge,
    UnlinkCases,
    UpdateCase,
    UploadManifest,
    WithdrawConsent,
)
from contracts.replies import (
    ArrivalGroupView,
    CaseExport,
    CaseMergeView,
    CaseView,
    CheckInResult,
    FamilyView,
    ManifestResult,
    MatchCandidatesView,
    OfflineSubmissionView,
    Page,
    PossibleDuplicateView,
    SharingResult,
    StatisticsView,
    SubmissionResult,
    SyncResult,
)
from kernel.bus import ConsumerSpec, by_type
from kernel.rpc import Endpoint
from kernel.runtime import ServiceApp
from services.intake import family, handlers, matches, merges, offline, reception
from services.intake.store import SCHEMA

APP = ServiceApp(
    name="intake",
    schema=SCHEMA,
    migrations=Path(__file__).parent / "migrations",
    streams=[INTAKE_STREAM],
    endpoints={
        "register_arrival": Endpoint(handlers.register_arrival, RegisterArrivalRequest, "cases:write", CaseView),
        "get_case": Endpoint(handlers.get_case, CaseRef, "cases:read", CaseView),
        "record_consent": Endpoint(handlers.record_consent, RecordConsent, "consent:write", SharingResult),
        "withdraw_consent": Endpoint(handlers.withdraw_consent, WithdrawConsent, "consent:write", SharingResult),
        "record_legal_basis": Endpoint(handlers.record_legal_basis, RecordLegalBasis, "consent:write", SharingResult),
        "statistics": Endpoint(handlers.statistics, StatisticsRequest, "statistics:read", StatisticsView),
        "subject_access": Endpoint(handlers.subject_access, CaseRef, "audit:read", CaseExport),
        # People already known (decision record 0022).
        "match_candidates": Endpoint(matches.match_candidates, MatchCandidatesRequest, matches.CANDIDATES_SCOPE,
                                     MatchCandidatesView),
        "merge_cases": Endpoint(merges.merge_cases, MergeCases, ("cases:write", merges.RECONCILE), CaseMergeView),
        "undo_merge": Endpoint(merges.undo_merge, UndoMerge, ("cases:write", merges.RECONCILE), CaseMergeView),
        "possible_duplicates": Endpoint(merges.possible_duplicates, PossibleDuplicatesRequest, merges.RECONCILE,
                                        Page[PossibleDuplicateView]),
        "decide_possible_duplicate": Endpoint(merges.decide_possible_duplicate, DecidePossibleDuplicate,
                                              merges.RECONCILE, PossibleDuplicateView),
        # Offline capture (services/intake/offline.py): corrections as of a version, Kobo/ODK, batches.
        "update_case": Endpoint(offline.update_case, UpdateCase, "cases:write", CaseView),
        "offline_submission": Endpoint(offline.receive_submission, OfflineSubmission, "cases:write", SubmissionResult),
        "offline_submissions": Endpoint(offline.offline_submissions, OfflineSubmissionsRequest, "cases:write",
                                        Page[OfflineSubmissionView]),
        "sync": Endpoint(offline.sync, SyncBatch, "cases:write", SyncResult),
        # Families (decision record 0023): links written with cases:write, read with cases:read.
        "link_cases": Endpoint(family.link_cases, LinkCases, "cases:write", CaseView),
        "unlink_cases": Endpoint(family.unlink_cases, UnlinkCases, "cases:write", CaseView),
        "family": Endpoint(family.family, CaseRef, "cases:read", FamilyView),
        # Reception of groups (issue 10): arrival groups, manifests, check-in (services/intake/reception.py).
        "create_arrival_group": Endpoint(reception.create_group, CreateArrivalGroup, "cases:write", ArrivalGroupView),
        "upload_manifest": Endpoint(reception.upload_manifest, UploadManifest, "cases:write", ManifestResult),
        "check_in": Endpoint(reception.check_in, CheckIn, "cases:write", CheckInResult),
        "close_arrival_group": Endpoint(reception.close_group, ArrivalGroupRef, "cases:write", ArrivalGroupView),
        "arrival_group": Endpoint(reception.arrival_group, ArrivalGroupQuery, "cases:read", ArrivalGroupView),
        "arrival_groups": Endpoint(reception.arrival_groups, PageRequest, "cases:read", Page[ArrivalGroupView]),
    },
    consumers=[
        # The access projection: which organisation holds an open referral for which case.
        ConsumerSpec("intake-referrals", REFERRAL_STREAM.name, "evt.referral.>", by_type({
            REFERRAL_CREATED.event_type: handlers.on_referral_created,
            REFERRAL_STATUS_CHANGED.event_type: handlers.on_referral_status_changed,
        })),
        # The management projection: which organisation manages which case's follow-up.
        ConsumerSpec("intake-followup", FOLLOWUP_STREAM.name, "evt.followup.>", by_type({
            CASE_ASSIGNED.event_type: handlers.on_case_assigned,
        })),
    ],
    tasks=[offline.RETENTION_TASK, reception.RETENTION_TASK],
)
