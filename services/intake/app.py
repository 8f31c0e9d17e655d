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
    CaseRef,
    LinkCases,
    RecordConsent,
    RecordLegalBasis,
    RegisterArrivalRequest,
    StatisticsRequest,
    UnlinkCases,
    WithdrawConsent,
)
from contracts.replies import CaseExport, CaseView, FamilyView, SharingResult, StatisticsView
from kernel.bus import ConsumerSpec, by_type
from kernel.rpc import Endpoint
from kernel.runtime import ServiceApp
from services.intake import family, handlers
from services.intake.store import SCHEMA

from contracts.commands import OfflineSubmission, OfflineSubmissionsRequest, SyncBatch, UpdateCase  # noqa: E402
from contracts.replies import OfflineSubmissionView, Page, SubmissionResult, SyncResult  # noqa: E402
from services.intake import offline  # noqa: E402

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
    tasks=[offline.RETENTION_TASK],
)
