"""Composition root of the referral service."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from contracts.channels import (
    ARRIVAL_REGISTERED,
    CASE_CORRECTED,
    CASES_LINKED,
    CASES_MERGED,
    CASES_UNLINKED,
    INTAKE_STREAM,
    MERGE_UNDONE,
    REFERRAL_STREAM,
    SHARING_CHANGED,
)
from contracts.commands import (
    ApproveDirectoryService,
    AssignNeed,
    CaseRef,
    CompleteReferral,
    DirectoryQuery,
    DirectoryServiceRef,
    HsdsPageRequest,
    HsdsRef,
    OverdueCountsRequest,
    PageRequest,
    ReferCase,
    ReferralAction,
    ReferralListRequest,
    RerouteReferral,
    SaveDirectoryService,
    SetServiceCapacity,
)
from contracts.replies import (
    DirectoryServiceView,
    HsdsDocument,
    HsdsPage,
    OverdueCountsView,
    Page,
    ReferralView,
)
from kernel.bus import ConsumerSpec, by_type
from kernel.rpc import Endpoint
from kernel.runtime import PeriodicTask, ServiceApp
from services.referral import deadlines, directory, family, handlers, hsds, manual, merges, needs, worklists
from services.referral.store import SCHEMA

APP = ServiceApp(
    name="referral",
    schema=SCHEMA,
    migrations=Path(__file__).parent / "migrations",
    streams=[REFERRAL_STREAM],
    endpoints={
        "case_referrals": Endpoint(handlers.case_referrals, CaseRef, "referrals:read", list[ReferralView]),
        "incoming": Endpoint(worklists.incoming, ReferralListRequest, "referrals:read", Page[ReferralView]),
        "outgoing": Endpoint(worklists.outgoing, ReferralListRequest, "referrals:read", Page[ReferralView]),
        "overdue_counts": Endpoint(worklists.overdue_counts, OverdueCountsRequest, "referrals:read",
                                   OverdueCountsView),
        "refer": Endpoint(manual.refer, ReferCase, "referrals:write", ReferralView),
        "subject_access": Endpoint(handlers.subject_access, CaseRef, "audit:read", list[ReferralView]),
        **{action: Endpoint(partial(handlers.act, action), ReferralAction, "referrals:write", ReferralView)
           for action in ("accept", "reject", "revoke")},
        "complete": Endpoint(partial(handlers.act, "complete"), CompleteReferral, "referrals:write", ReferralView),
        # The service directory (HSDS 3): organisations maintain their own services; the steward any.
        "directory_save": Endpoint(directory.save, SaveDirectoryService, "directory:write", DirectoryServiceView),
        "directory_set_capacity": Endpoint(directory.set_capacity, SetServiceCapacity, "directory:write",
                                           DirectoryServiceView),
        "directory_approve": Endpoint(directory.approve, ApproveDirectoryService, "directory:manage",
                                      DirectoryServiceView),
        "directory_services": Endpoint(directory.services, DirectoryQuery, "directory:read", Page[DirectoryServiceView]),
        "directory_service": Endpoint(directory.service, DirectoryServiceRef, "directory:read", DirectoryServiceView),
        "hsds_services": Endpoint(hsds.services, HsdsPageRequest, "directory:read", HsdsPage),
        "hsds_service": Endpoint(hsds.service, HsdsRef, "directory:read", HsdsDocument),
        "hsds_organizations": Endpoint(hsds.organizations, HsdsPageRequest, "directory:read", HsdsPage),
        "hsds_organization": Endpoint(hsds.organization, HsdsRef, "directory:read", HsdsDocument),
        "unassigned": Endpoint(needs.unassigned, PageRequest, "referrals:read", Page[ReferralView]),
        "assign": Endpoint(needs.assign, AssignNeed, "referrals:write", ReferralView),
        "reroute": Endpoint(needs.reroute, RerouteReferral, "referrals:write", ReferralView),
    },
    consumers=[
        ConsumerSpec("referral-intake", INTAKE_STREAM.name, "evt.intake.>", by_type({
            ARRIVAL_REGISTERED.event_type: handlers.on_arrival_registered,
            CASE_CORRECTED.event_type: handlers.on_case_corrected,
            SHARING_CHANGED.event_type: handlers.on_sharing_changed,
            CASES_LINKED.event_type: family.on_cases_linked,
            CASES_UNLINKED.event_type: family.on_cases_unlinked,
            CASES_MERGED.event_type: merges.on_cases_merged,
            MERGE_UNDONE.event_type: merges.on_merge_undone,
        })),
    ],
    tasks=[
        PeriodicTask("referral-deadlines", deadlines.scan_due, deadlines.scan_seconds),
    ],
)
