"""Composition root of the follow-up service."""

from __future__ import annotations

from pathlib import Path

from contracts.channels import (
    ARRIVAL_REGISTERED,
    CASE_CORRECTED,
    CASES_MERGED,
    FOLLOWUP_STREAM,
    INTAKE_STREAM,
    MERGE_UNDONE,
    SHARING_CHANGED,
)
from contracts.commands import (
    AssignCaseManagement,
    CaseRef,
    CloseCase,
    FollowupStatisticsRequest,
    InstrumentRef,
    ContactWorkListRequest,
    LogContact,
    PageRequest,
    RecordSurvey,
    ReopenCase,
    SavePlan,
    UpdatePlanAction,
)
from contracts.replies import (
    ContactDueView,
    FollowupCaseView,
    FollowupStatisticsView,
    InstrumentView,
    MissingPlanView,
    Page,
    SurveyView,
    UnreachableCaseView,
)
from kernel.bus import ConsumerSpec, by_type
from kernel.rpc import Endpoint
from kernel.runtime import PeriodicTask, ServiceApp
from services.followup import contacts, handlers, statistics, surveys, timers
from services.followup.schedule import shipped
from services.followup.store import SCHEMA

shipped()  # the schedules, checked at start: a bad file stops the service with its line and reason

APP = ServiceApp(
    name="followup",
    schema=SCHEMA,
    migrations=Path(__file__).parent / "migrations",
    streams=[FOLLOWUP_STREAM],
    endpoints={
        "get_case": Endpoint(handlers.get_case, CaseRef, "followup:read", FollowupCaseView),
        "assign": Endpoint(handlers.assign, AssignCaseManagement, "followup:write", FollowupCaseView),
        "save_plan": Endpoint(handlers.save_plan, SavePlan, "followup:write", FollowupCaseView),
        "update_action": Endpoint(handlers.update_action, UpdatePlanAction, "followup:write", FollowupCaseView),
        "close": Endpoint(handlers.close_case, CloseCase, "followup:write", FollowupCaseView),
        "reopen": Endpoint(handlers.reopen_case, ReopenCase, "followup:write", FollowupCaseView),
        "plans_missing": Endpoint(handlers.plans_missing, PageRequest, "followup:read", Page[MissingPlanView]),
        "subject_access": Endpoint(handlers.subject_access, CaseRef, "audit:read", list[FollowupCaseView]),
        # The Reintegration Sustainability Survey: the manager records; any follow-up scope reads the form.
        "record_survey": Endpoint(surveys.record_survey, RecordSurvey, "followup:write", SurveyView),
        "instrument": Endpoint(surveys.get_instrument, InstrumentRef,
                               ("followup:read", "followup:write", "followup:manage"), InstrumentView),
        "statistics": Endpoint(statistics.statistics, FollowupStatisticsRequest, "statistics:read",
                               FollowupStatisticsView),
        # Contacts (issue 9, item 3) and the work lists of the managing organisation (item 6).
        "log_contact": Endpoint(handlers.log_contact, LogContact, "followup:write", FollowupCaseView),
        "followups_due": Endpoint(contacts.followups_due, ContactWorkListRequest, "followup:read",
                                  Page[ContactDueView]),
        "followups_overdue": Endpoint(contacts.followups_overdue, PageRequest, "followup:read", Page[ContactDueView]),
        "unreachable_cases": Endpoint(contacts.unreachable_cases, PageRequest, "followup:read",
                                      Page[UnreachableCaseView]),
    },
    consumers=[
        # The cases to follow (owner, arrival date, region) and who they may be shared with for FOLLOW_UP.
        ConsumerSpec("followup-intake", INTAKE_STREAM.name, "evt.intake.>", by_type({
            ARRIVAL_REGISTERED.event_type: handlers.on_arrival_registered,
            CASE_CORRECTED.event_type: handlers.on_case_corrected,
            CASES_MERGED.event_type: handlers.on_cases_merged,
            MERGE_UNDONE.event_type: handlers.on_merge_undone,
            SHARING_CHANGED.event_type: handlers.on_sharing_changed,
        })),
    ],
    tasks=[
        # Scheduled contacts due and overdue, plans overdue: told to the manager once each (timers.py).
        PeriodicTask("followup-timers", timers.scan_due, timers.scan_seconds),
    ],
)
