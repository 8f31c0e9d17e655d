"""Every NATS channel in one place: JetStream event subjects and request/reply subjects.

Event subjects start with ``evt.<producer>.`` (one stream per producer); request subjects
with ``svc.<service>.``, which no stream captures.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from contracts import commands, events


@dataclass(frozen=True)
class EventChannel:
    subject: str
    event_type: str
    stream: str
    payload: type[BaseModel]
    description: str


@dataclass(frozen=True)
class RequestChannel:
    subject: str
    request: type[BaseModel] | None
    description: str


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
DEAD_LETTER_STREAM = StreamSpec("DEAD_LETTERS", ["dlq.>"], "Events a consumer gave up on, kept for replay")
STREAMS = [INTAKE_STREAM, REFERRAL_STREAM, NOTIFICATIONS_STREAM, DEAD_LETTER_STREAM]

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
EVENT_CHANNELS = [ARRIVAL_REGISTERED, REFERRAL_CREATED]

REQUESTS = [
    RequestChannel("svc.intake.register_arrival", commands.RegisterArrivalRequest, "Register one arrival."),
    RequestChannel("svc.intake.get_case", commands.CaseRef, "Read one case."),
    RequestChannel("svc.referral.case_referrals", commands.CaseRef, "Referrals of one case."),
    RequestChannel("svc.referral.incoming", commands.PageRequest, "Referrals addressed to the caller's organisation."),
    RequestChannel("svc.notifications.list", commands.NotificationsRequest, "The caller's organisation's notifications."),
    RequestChannel("svc.notifications.mark_read", commands.MarkRead, "Mark a notification read."),
]
REQUEST_SUBJECTS = {channel.subject: channel for channel in REQUESTS}


def dead_letter_subject(consumer: str) -> str:
    return f"dlq.{consumer}"
