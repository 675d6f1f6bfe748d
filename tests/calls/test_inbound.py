"""Pure reading of telephony events (seed 001): what is accepted, and what is refused and why."""

from datetime import UTC, datetime

import pytest

from calls.inbound import EVENT_TYPES, InvalidEvent, body_hash, parse_event

RECEIVED = datetime(2026, 7, 3, 10, 5, tzinfo=UTC)


def read(**body):
    return parse_event(body, region="GB", received_at=RECEIVED)


def event(**fields) -> dict:
    return {"id": "evt-1", "type": "call.start", "call_id": "pbx-42", **fields}


def test_it_reads_a_call_start_with_numbers_in_any_format():
    start = read(**event(direction="inbound", **{"from": "07400 123456", "to": "+442079460000"}))

    assert (start.id, start.type, start.call_id) == ("evt-1", "call.start", "pbx-42")
    assert (start.from_number, start.to_number) == ("+447400123456", "+442079460000")
    assert (start.kind, start.occurred_at) == ("initiated", RECEIVED)


def test_ringing_is_the_agent_on_inbound_calls_and_the_customer_on_outbound_ones():
    assert read(**event(type="call.ringing")).kind == "agent_ringing"
    assert read(**event(type="call.ringing", direction="outbound")).kind == "customer_ringing"


def test_it_reads_an_end_with_its_status_duration_and_timestamp():
    end = read(
        **event(type="call.end", status="ANSWER", duration=150, timestamp="2026-07-03T10:02:30Z")
    )

    assert (end.kind, end.status, end.duration) == ("ended", "ANSWER", 150)
    assert end.occurred_at == datetime(2026, 7, 3, 10, 2, 30, tzinfo=UTC)


def test_it_reads_analytics_and_recordings_without_a_lifecycle_kind():
    analytics = read(
        **event(type="analytics.completed", satisfaction=2, resolved=False, sentiment="negative",
                summary="Refund refused", transcript="Agent: Hello ...")
    )  # fmt: skip
    recording = read(**event(type="recording.ready", recording_url="https://pbx.example/r/1.wav"))

    assert analytics.kind == "" and analytics.analytics == {
        "satisfaction": 2,
        "resolved": False,
        "sentiment": "negative",
        "summary": "Refund refused",
        "transcript": "Agent: Hello ...",
    }
    assert (recording.kind, recording.recording, recording.recording_url) == (
        "",
        True,
        "https://pbx.example/r/1.wav",
    )


@pytest.mark.parametrize(
    "body,field",
    [
        ({"type": "call.start", "call_id": "pbx-42"}, "id"),
        ({"id": "evt-1", "call_id": "pbx-42"}, "type"),
        ({"id": "evt-1", "type": "call.start"}, "call_id"),
        (event(type="call.transferred"), "type"),
        (event(id=42), "id"),
        (event(id="x" * 256), "id"),
        (event(id="evt\n1"), "id"),
        (event(direction="sideways"), "direction"),
        (event(type="call.end", status="HUNG_UP"), "status"),
        (event(type="call.end", duration=-1), "duration"),
        (event(type="call.end", duration="150"), "duration"),
        (event(timestamp="yesterday"), "timestamp"),
        (event(timestamp="2026-07-03T10:02:30"), "timestamp"),
        (event(**{"from": "not a number"}), "from"),
        (event(type="recording.ready"), "recording_url"),
        (event(type="recording.ready", recording_url="file:///etc/passwd"), "recording_url"),
        (event(type="analytics.completed", satisfaction=11), "satisfaction"),
        (event(type="analytics.completed", resolved="yes"), "resolved"),
        (event(recording="yes"), "recording"),
    ],
)
def test_it_refuses_a_bad_event_naming_the_field(body, field):
    with pytest.raises(InvalidEvent) as refused:
        read(**body)

    assert refused.value.field == field
    assert refused.value.message


@pytest.mark.parametrize("body", [[event()], "call.start", None, 42])
def test_it_refuses_anything_but_one_json_object(body):
    with pytest.raises(InvalidEvent) as refused:
        parse_event(body, region="GB", received_at=RECEIVED)

    assert refused.value.field is None


def test_it_knows_the_six_event_types():
    assert EVENT_TYPES == (
        "call.start", "call.ringing", "call.answered", "call.end", "recording.ready",
        "analytics.completed",
    )  # fmt: skip


def test_the_body_hash_ignores_key_order_but_not_values():
    assert body_hash({"a": 1, "b": 2}) == body_hash({"b": 2, "a": 1})
    assert body_hash({"a": 1}) != body_hash({"a": 2})
