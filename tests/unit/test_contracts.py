"""The messaging contracts: committed artefacts match the code, events carry no dossier, subjects route.

These are cheap, in-process checks; they catch a forgotten ``make contracts``, an event that starts
leaking personal data onto the bus, or a subject no stream (or two streams) would capture.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from typing import Any

import pytest

from contracts import generate
from contracts.channels import (
    EVENT_CHANNELS,
    REQUEST_SUBJECTS,
    REQUESTS,
    STREAMS,
    EventChannel,
    StreamSpec,
    dead_letter_subject,
)
from contracts.events import ArrivalRegisteredV1
from contracts.reference import ArrivalPoint, Vulnerability
from gateway import export_sdl
from kernel.events import CloudEvent, new_event

REGENERATE = "Generated contracts are out of date: run `make contracts` and commit the result. Differs: {}"


def test_generated_contracts_are_up_to_date() -> None:
    differing = generate.check()
    assert not differing, REGENERATE.format(", ".join(differing))


def test_graphql_sdl_is_up_to_date() -> None:
    differing = export_sdl.check()
    assert not differing, REGENERATE.format(", ".join(differing))


# --- events carry references, not dossiers -------------------------------------------------------

PERSONAL_TOKENS = {
    "name", "names", "surname", "forename", "nickname", "birth", "dob", "born", "phone", "telephone", "mobile",
    "msisdn", "whatsapp", "email", "mail", "address", "street", "gps", "latitude", "longitude", "narrative",
    "story", "note", "notes", "comment", "comments", "remarks", "passport", "nin", "photo", "picture", "face",
    "fingerprint", "biometric", "biometrics", "signature", "document", "documents",
    "answer", "answers", "option", "options",  # what a person said in a survey stays in follow-up
}


def _tokens(name: str) -> set[str]:
    """given_name / givenName / GIVEN-NAME → {"given", "name"}."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    return {token for token in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if token}


def _property_names(schema: Any) -> set[str]:
    """Every property name anywhere in a schema, nested definitions included."""
    names: set[str] = set()
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key == "properties" and isinstance(value, dict):
                names.update(value)
            names |= _property_names(value)
    elif isinstance(schema, list):
        for item in schema:
            names |= _property_names(item)
    return names


def test_personal_data_detector_catches_the_obvious() -> None:
    for field in ("given_name", "familyName", "date_of_birth", "phone", "email", "home_address", "narrative", "name"):
        assert _tokens(field) & PERSONAL_TOKENS, field
    for field in ("case_id", "owner_org_id", "destination_region", "reason_code", "arrival_point", "due_at"):
        assert not _tokens(field) & PERSONAL_TOKENS, field


@pytest.mark.parametrize("channel", EVENT_CHANNELS, ids=lambda c: c.event_type)
def test_event_payloads_carry_no_personal_data(channel: EventChannel) -> None:
    suspicious = sorted(n for n in _property_names(channel.payload.model_json_schema()) if _tokens(n) & PERSONAL_TOKENS)
    assert not suspicious, (
        f"{channel.event_type} has fields that look like personal data: {suspicious}. Events go to every "
        "consumer of the stream; carry a reference (case_id) and let the reader ask the owning service."
    )


# --- subjects, types and streams -----------------------------------------------------------------


def subject_matches(pattern: str, subject: str) -> bool:
    """NATS subject matching: ``*`` is one token, a final ``>`` is one or more tokens."""
    pattern_tokens, subject_tokens = pattern.split("."), subject.split(".")
    for i, token in enumerate(pattern_tokens):
        if token == ">":
            return len(subject_tokens) > i
        if i >= len(subject_tokens) or token not in ("*", subject_tokens[i]):
            return False
    return len(pattern_tokens) == len(subject_tokens)


def streams_capturing(subject: str) -> list[str]:
    return [s.name for s in STREAMS if any(subject_matches(p, subject) for p in s.subjects)]


def producer(stream: StreamSpec) -> str:
    """INTAKE_EVENTS → intake: the service that owns (alone publishes to) a stream."""
    return stream.name.removesuffix("_EVENTS").lower()


def test_subject_matching_follows_nats_rules() -> None:
    assert subject_matches("evt.intake.>", "evt.intake.arrival_registered.v1")
    assert not subject_matches("evt.intake.>", "evt.intake")
    assert subject_matches("evt.*.x", "evt.referral.x")
    assert not subject_matches("evt.*", "evt.referral.x")
    assert not subject_matches("evt.intake.>", "evt.intakes.x")


@pytest.mark.parametrize("channel", EVENT_CHANNELS, ids=lambda c: c.event_type)
def test_event_channel_is_versioned_and_routed_to_its_producers_stream(channel: EventChannel) -> None:
    stream = next((s for s in STREAMS if s.name == channel.stream), None)
    assert stream is not None, f"{channel.subject}: unknown stream {channel.stream}"
    version = re.search(r"\.v([1-9][0-9]*)$", channel.event_type)
    assert version, f"event type {channel.event_type} must end with .v<N>"
    assert channel.subject.endswith(f".v{version.group(1)}"), "subject and type must carry the same version"
    assert channel.subject.startswith(f"evt.{producer(stream)}."), (
        f"{channel.subject} must start with evt.{producer(stream)}. (the producer of stream {stream.name})"
    )
    assert channel.event_type.startswith(f"ml.segin.{producer(stream)}."), channel.event_type
    assert streams_capturing(channel.subject) == [stream.name], (
        f"{channel.subject} must be captured by exactly its stream {stream.name}, "
        f"got {streams_capturing(channel.subject)}"
    )


def test_event_subjects_and_types_are_unique() -> None:
    assert len({c.subject for c in EVENT_CHANNELS}) == len(EVENT_CHANNELS)
    assert len({c.event_type for c in EVENT_CHANNELS}) == len(EVENT_CHANNELS)
    assert len({c.subject for c in REQUESTS}) == len(REQUESTS)


@pytest.mark.parametrize("subject", [r.subject for r in REQUESTS])
def test_request_subjects_are_not_captured_by_any_stream(subject: str) -> None:
    assert subject.startswith("svc."), f"request subject {subject} must start with svc."
    assert not streams_capturing(subject), (
        f"{subject} is captured by {streams_capturing(subject)}: JetStream would answer requests with a PubAck"
    )


def test_dead_letters_go_to_the_dead_letter_stream_only() -> None:
    for consumer in ("referral-arrivals", "notifications-referrals"):
        assert streams_capturing(dead_letter_subject(consumer)) == ["DEAD_LETTERS"]


# --- the AsyncAPI document -----------------------------------------------------------------------


def _resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"only local $refs are expected, got {ref}"
    node: Any = document
    for part in ref[2:].split("/"):
        assert isinstance(node, dict) and part in node, f"dangling $ref {ref}"
        node = node[part]
    return node


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for item in node for ref in _refs(item)]
    return []


def test_asyncapi_lists_every_channel() -> None:
    document = generate.asyncapi()
    assert document["asyncapi"] == "3.0.0"
    addresses = {channel["address"] for channel in document["channels"].values()}
    expected = {c.subject for c in EVENT_CHANNELS} | {r.subject for r in REQUESTS} | {dead_letter_subject("{consumer}")}
    assert expected <= addresses, f"missing from AsyncAPI: {sorted(expected - addresses)}"
    channel_ids = {op["channel"]["$ref"].rsplit("/", 1)[-1] for op in document["operations"].values()}
    assert all(cid in channel_ids for cid, ch in document["channels"].items() if ch["address"]), (
        "every addressed channel needs an operation"
    )


def test_asyncapi_refs_resolve() -> None:
    document = generate.asyncapi()
    refs = _refs(document)
    assert refs
    for ref in refs:
        _resolve(document, ref)


# --- the envelope schema matches what kernel/events.py produces ---------------------------------


def _sample_event() -> CloudEvent:
    payload = ArrivalRegisteredV1(
        case_id="case-1", owner_org_id="org-1", arrival_point=ArrivalPoint.BAMAKO_AIRPORT,
        arrival_date=date(2025, 3, 10), destination_region="07", is_child=False,
        vulnerabilities=[Vulnerability.MEDICAL_NEEDS], consent_given=True, consent_recipient_org_ids=["org-2"],
    )
    return new_event(EVENT_CHANNELS[0].event_type, "/segin/intake", payload, subject="case-1")


def test_sample_envelope_matches_the_envelope_schema() -> None:
    """jsonschema is not a dependency, so check the envelope's shape by hand."""
    schema = generate.envelope_schema()
    envelope = _sample_event().to_json()
    properties = schema["properties"]
    assert set(schema["required"]) <= set(envelope), "kernel/events.py no longer sends a required attribute"
    assert set(envelope) <= set(properties), f"undocumented attributes: {set(envelope) - set(properties)}"
    for attribute, rule in properties.items():
        if attribute not in envelope:
            continue
        if "const" in rule:
            assert envelope[attribute] == rule["const"], attribute
        if rule.get("type") == "string":
            assert isinstance(envelope[attribute], str), attribute
        if "pattern" in rule:
            assert re.search(rule["pattern"], envelope[attribute]), attribute
        if rule.get("format") == "date-time":
            assert datetime.fromisoformat(envelope[attribute]).tzinfo is not None, "time must carry an offset"
    assert isinstance(envelope["data"], dict)


def test_sample_envelope_round_trips_to_the_payload_model() -> None:
    event = CloudEvent.from_bytes(json.dumps(_sample_event().to_json()).encode())
    parsed = ArrivalRegisteredV1.model_validate(event.data)
    assert parsed.case_id == "case-1"
    assert parsed.arrival_date == date(2025, 3, 10)
    assert datetime.fromisoformat(event.time) <= datetime.now(UTC)
    schema = generate.event_schema(EVENT_CHANNELS[0])
    assert set(schema["required"]) <= set(event.data)
    assert set(event.data) <= set(schema["properties"])


def test_every_service_endpoint_is_a_declared_channel() -> None:
    """What a service answers is what the AsyncAPI document says it answers, and no more."""
    from kernel.audit import audit_endpoints
    from kernel.runtime import ServiceApp
    from services.followup.app import APP as FOLLOWUP
    from services.intake.app import APP as INTAKE
    from services.notifications.app import APP as NOTIFICATIONS
    from services.referral.app import APP as REFERRAL

    apps: list[ServiceApp] = [INTAKE, REFERRAL, NOTIFICATIONS, FOLLOWUP]
    served = {f"svc.{app.name}.{name}" for app in apps for name in app.endpoints}
    served |= {e.subject for app in apps for e in audit_endpoints(app.schema, app.name, None)}  # type: ignore[arg-type]
    assert served == {c.subject for c in REQUESTS}


def test_every_service_endpoint_answers_what_its_channel_documents() -> None:
    """The reply model an endpoint is served with is the one the AsyncAPI document and the JSON
    Schemas under contracts/schemas/replies/ describe, and so are its request model and scope's presence."""
    from services.followup.app import APP as FOLLOWUP
    from services.intake.app import APP as INTAKE
    from services.notifications.app import APP as NOTIFICATIONS
    from services.referral.app import APP as REFERRAL

    for app in (INTAKE, REFERRAL, NOTIFICATIONS, FOLLOWUP):
        for name, endpoint in app.endpoints.items():
            channel = REQUEST_SUBJECTS[f"svc.{app.name}.{name}"]
            assert (endpoint.request, endpoint.reply) == (channel.request, channel.reply), channel.subject
            assert endpoint.scope, f"{channel.subject} declares no scope"
    assert all(c.reply is not None for c in REQUESTS)
