"""Composition root of the notifications service."""

from __future__ import annotations

from pathlib import Path

from contracts.channels import (
    CASE_ASSIGNED,
    CASE_CLOSED,
    CASE_REOPENED,
    CASE_UNREACHABLE,
    CONTACT_DUE,
    CONTACT_OVERDUE,
    FOLLOWUP_STREAM,
    NEED_UNASSIGNED,
    NOTIFICATIONS_STREAM,
    PLAN_OVERDUE,
    REFERRAL_CREATED,
    REFERRAL_DEADLINE,
    REFERRAL_STATUS_CHANGED,
    REFERRAL_STREAM,
)
from contracts.commands import CaseRef, MarkRead, NotificationsRequest
from contracts.replies import NotificationExport, NotificationView, Page
from kernel.bus import ConsumerSpec, by_type
from kernel.rpc import Endpoint
from kernel.runtime import ServiceApp
from services.notifications import handlers
from services.notifications.store import SCHEMA

APP = ServiceApp(
    name="notifications",
    schema=SCHEMA,
    migrations=Path(__file__).parent / "migrations",
    streams=[NOTIFICATIONS_STREAM],
    endpoints={
        "list": Endpoint(handlers.list_notifications, NotificationsRequest, "notifications:read",
                         Page[NotificationView]),
        "mark_read": Endpoint(handlers.mark_read, MarkRead, "notifications:read", NotificationView),
        "subject_access": Endpoint(handlers.subject_access, CaseRef, "audit:read", list[NotificationExport]),
    },
    consumers=[
        ConsumerSpec("notifications-referral-events", REFERRAL_STREAM.name, "evt.referral.>", by_type({
            REFERRAL_CREATED.event_type: handlers.on_referral_created,
            REFERRAL_STATUS_CHANGED.event_type: handlers.on_referral_status_changed,
            REFERRAL_DEADLINE.event_type: handlers.on_referral_deadline,
            NEED_UNASSIGNED.event_type: handlers.on_need_unassigned,
        })),
        # Follow-up: contacts due or overdue, a person unreachable, a plan overdue, a hand-over (to the new manager).
        ConsumerSpec("notifications-followup-events", FOLLOWUP_STREAM.name, "evt.followup.>", by_type({
            CONTACT_DUE.event_type: handlers.on_contact_due,
            CONTACT_OVERDUE.event_type: handlers.on_contact_overdue,
            CASE_UNREACHABLE.event_type: handlers.on_case_unreachable,
            PLAN_OVERDUE.event_type: handlers.on_plan_overdue,
            CASE_ASSIGNED.event_type: handlers.on_case_assigned,
            # Closed or re-opened by a merge of registrations or its undo (decision record 0026); by hand: no one.
            CASE_CLOSED.event_type: handlers.on_case_closed,
            CASE_REOPENED.event_type: handlers.on_case_reopened,
        })),
    ],
)
