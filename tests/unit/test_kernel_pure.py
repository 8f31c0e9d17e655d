"""Pure kernel helpers: retry back-off, cursors, CloudEvents envelopes, and intake's is_child."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import BaseModel

from contracts.commands import RegisterArrival
from kernel.bus import retry_delay
from kernel.errors import BadInput
from kernel.events import SPEC_VERSION, CloudEvent, new_event
from kernel.pagination import decode_cursor, encode_cursor, page
from services.intake.domain import ADULT_AGE, is_child

# --- retry_delay ----------------------------------------------------------------------------------


def test_retry_delay_grows() -> None:
    delays = [retry_delay(n) for n in range(1, 8)]
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0]
    assert all(a < b for a, b in zip(delays, delays[1:], strict=False))


def test_retry_delay_is_capped_at_sixty_seconds() -> None:
    assert retry_delay(7) == 60.0
    assert retry_delay(8) == 60.0
    assert retry_delay(100) == 60.0
    assert max(retry_delay(n) for n in range(0, 200)) == 60.0


def test_retry_delay_is_positive_even_for_odd_counts() -> None:
    assert retry_delay(0) == 1.0
    assert retry_delay(-3) == 1.0
    assert isinstance(retry_delay(3), float)


# --- cursors -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "created_at",
    [
        datetime(2025, 3, 10, 9, 30, 0, 123456, tzinfo=UTC),
        datetime(2024, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-3))),
        datetime(2025, 1, 1, 0, 0),
    ],
)
def test_cursor_round_trips(created_at: datetime) -> None:
    row_id = uuid.uuid4()
    cursor = encode_cursor(created_at, row_id)
    assert "=" not in cursor  # URL-safe and unpadded
    assert decode_cursor(cursor) == (created_at, str(row_id))
    assert decode_cursor(cursor)[0].utcoffset() == created_at.utcoffset()


def test_cursor_round_trips_integer_ids() -> None:
    moment = datetime(2025, 3, 10, tzinfo=UTC)
    assert decode_cursor(encode_cursor(moment, 42)) == (moment, "42")


@pytest.mark.parametrize(
    "garbage",
    [
        "not a cursor!",
        "%%%",
        "",
        base64.urlsafe_b64encode(b"{not json").decode(),
        base64.urlsafe_b64encode(json.dumps({"a": 1}).encode()).decode(),
        base64.urlsafe_b64encode(json.dumps(["yesterday", "x"]).encode()).decode(),
        base64.urlsafe_b64encode(json.dumps([1, 2, 3]).encode()).decode(),
        base64.urlsafe_b64encode(json.dumps([None, "x"]).encode()).decode(),
        base64.urlsafe_b64encode(b"\xff\xfe\x00").decode(),
    ],
)
def test_garbage_cursor_is_bad_input_on_after(garbage: str) -> None:
    with pytest.raises(BadInput) as caught:
        decode_cursor(garbage)
    assert caught.value.field == "after"
    assert caught.value.code == "BAD_USER_INPUT"


def test_page_reports_next_page_and_end_cursor() -> None:
    base = datetime(2025, 3, 10, tzinfo=UTC)
    rows = [{"id": i, "created_at": base - timedelta(minutes=i)} for i in range(4)]
    result = page(rows, 3)
    assert [r["id"] for r in result["nodes"]] == [0, 1, 2]
    assert result["page_info"]["has_next_page"] is True
    assert decode_cursor(result["page_info"]["end_cursor"]) == (rows[2]["created_at"], "2")

    last = page(rows[:2], 3)
    assert last["page_info"] == {"has_next_page": False, "end_cursor": encode_cursor(rows[1]["created_at"], 1)}
    assert page([], 3)["page_info"] == {"has_next_page": False, "end_cursor": None}


# --- CloudEvents ------------------------------------------------------------------------------------


class Payload(BaseModel):
    case_id: str
    when: date
    count: int


def test_cloud_event_round_trip() -> None:
    event = new_event("ml.segin.test.v1", "/segin/test", Payload(case_id="c1", when=date(2025, 3, 9), count=2), "c1")
    uuid.UUID(event.id)
    envelope = event.to_json()
    assert envelope["specversion"] == SPEC_VERSION == "1.0"
    assert envelope["datacontenttype"] == "application/json"
    assert envelope["data"] == {"case_id": "c1", "when": "2025-03-09", "count": 2}
    assert envelope["subject"] == "c1"
    parsed = CloudEvent.from_bytes(json.dumps(envelope).encode())
    assert parsed == event
    assert datetime.fromisoformat(parsed.time).tzinfo is not None


def test_cloud_event_without_subject_round_trips() -> None:
    event = new_event("ml.segin.test.v1", "/segin/test", Payload(case_id="c", when=date(2025, 1, 1), count=0))
    assert "subject" not in event.to_json()
    assert CloudEvent.from_bytes(json.dumps(event.to_json()).encode()) == event


def test_event_ids_are_unique() -> None:
    payload = Payload(case_id="c", when=date(2025, 1, 1), count=0)
    assert len({new_event("t", "/s", payload).id for _ in range(100)}) == 100


def _envelope(**changes: Any) -> bytes:
    envelope: dict[str, Any] = {"specversion": "1.0", "id": "e1", "type": "t", "source": "/s", "time": "x",
                                "data": {}}
    envelope.update(changes)
    return json.dumps({k: v for k, v in envelope.items() if v is not ...}).encode()


@pytest.mark.parametrize("version", ["0.3", "1", "2.0", None, ...])
def test_cloud_event_rejects_other_spec_versions(version: Any) -> None:
    with pytest.raises(ValueError, match="CloudEvents 1.0"):
        CloudEvent.from_bytes(_envelope(specversion=version))


@pytest.mark.parametrize("attr", ["id", "type", "source"])
@pytest.mark.parametrize("value", [..., "", None])
def test_cloud_event_rejects_missing_required_attributes(attr: str, value: Any) -> None:
    with pytest.raises(ValueError, match=attr):
        CloudEvent.from_bytes(_envelope(**{attr: value}))


def test_cloud_event_rejects_non_json() -> None:
    with pytest.raises(ValueError):  # json.JSONDecodeError is a ValueError
        CloudEvent.from_bytes(b"\x00not json")


@pytest.mark.parametrize("raw", [b"[1, 2]", b"42", b'"1.0"', b"null"], ids=["array", "number", "string", "null"])
def test_cloud_event_rejects_json_that_is_not_an_object_with_value_error(raw: bytes) -> None:
    with pytest.raises(ValueError):
        CloudEvent.from_bytes(raw)


def test_cloud_event_tolerates_missing_data_and_time() -> None:
    event = CloudEvent.from_bytes(_envelope(data=..., time=...))
    assert event.data == {}
    assert event.time == ""


# --- intake: is_child ------------------------------------------------------------------------------


TODAY = date(2025, 6, 15)


def arrival(date_of_birth: date | None = None, estimated_age: int | None = None, vulnerabilities: tuple[str, ...] = ()
            ) -> RegisterArrival:
    return RegisterArrival.model_validate({
        "given_name": "Moussa", "family_name": "Keita", "sex": "MALE",
        "date_of_birth": date_of_birth, "estimated_age": estimated_age,
        "country_returned_from": "DZ", "arrival_point": "GAO", "arrival_date": "2025-06-01",
        "destination_region": "07", "vulnerabilities": list(vulnerabilities),
        "consent": {"given": False},
    })


def test_is_child_by_date_of_birth_around_the_eighteenth_birthday() -> None:
    assert ADULT_AGE == 18
    assert is_child(arrival(date(2007, 6, 16)), TODAY) is True   # 18 tomorrow
    assert is_child(arrival(date(2007, 6, 15)), TODAY) is False  # 18 today
    assert is_child(arrival(date(2007, 6, 14)), TODAY) is False


def test_is_child_by_estimated_age() -> None:
    assert is_child(arrival(estimated_age=17), TODAY) is True
    assert is_child(arrival(estimated_age=18), TODAY) is False


@pytest.mark.parametrize("flag", ["UNACCOMPANIED_CHILD", "SEPARATED_CHILD"])
def test_child_screening_flag_makes_a_child_whatever_the_age(flag: str) -> None:
    assert is_child(arrival(estimated_age=25, vulnerabilities=(flag,)), TODAY) is True


def test_other_flags_do_not_make_a_child() -> None:
    assert is_child(arrival(estimated_age=30, vulnerabilities=("PREGNANT", "ELDERLY")), TODAY) is False
