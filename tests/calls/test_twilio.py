"""Twilio callbacks mapped to our events (captured-shape fixtures), and Twilio's signature."""

from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from calls.gateways.twilio.callbacks import twilio_event, twilio_signature, twilio_signature_valid
from calls.inbound import InvalidEvent, parse_event

FIXTURES = Path(__file__).parent / "fixtures" / "twilio"
INBOUND_SID = "CA5f3b1e9a0c2d4e6f8a1b3c5d7e9f0a12"
OUTBOUND_SID = "CA9e8d7c6b5a49382716a5b4c3d2e1f0a9"


def form(name: str) -> dict[str, str]:
    fields = parse_qs((FIXTURES / name).read_text().strip(), keep_blank_values=True)
    return {key: values[-1] for key, values in fields.items()}


def test_an_inbound_call_maps_to_ringing_answered_and_end_with_twilios_talk_time():
    ringing, answered, end = (
        twilio_event(form(f"status_inbound_{name}.txt"))
        for name in ("ringing", "in_progress", "completed")
    )

    assert ringing == {
        "id": f"twilio:{INBOUND_SID}:ringing:0",
        "type": "call.ringing",
        "call_id": INBOUND_SID,
        "direction": "inbound",
        "from": "+447400123456",
        "to": "+442079460000",
        "timestamp": "2026-07-03T10:00:01+00:00",
    }
    assert (answered["type"], answered["id"]) == (
        "call.answered",
        f"twilio:{INBOUND_SID}:in-progress:1",
    )
    assert (end["type"], end["status"], end["duration"]) == ("call.end", "ANSWER", 150)
    assert end["timestamp"] == "2026-07-03T10:02:39+00:00"


@pytest.mark.parametrize(
    "name,status",
    [
        ("status_outbound_no_answer.txt", "NO_ANSWER"),
        ("status_outbound_busy.txt", "BUSY"),
        ("status_client_leg_canceled.txt", "CANCELED"),
    ],
)
def test_unanswered_outbound_calls_end_with_the_matching_status_and_no_duration(name, status):
    end = twilio_event(form(name))

    assert (end["type"], end["status"], end["direction"]) == ("call.end", status, "outbound")
    assert "duration" not in end
    assert end["to"] == "+447400123456"


def test_a_browser_client_leg_has_no_caller_number():
    assert twilio_event(form("status_client_leg_canceled.txt"))["from"] == ""


def test_a_completed_recording_is_ready_and_one_in_progress_is_ignored():
    ready = twilio_event(form("recording_completed.txt"))

    assert ready == {
        "id": f"twilio:{INBOUND_SID}:recording:RE1d2c3b4a5968778695a4b3c2d1e0f9a8",
        "type": "recording.ready",
        "call_id": INBOUND_SID,
        "recording_url": "https://api.twilio.com/2010-04-01/Accounts/"
        "AC0a1b2c3d4e5f60718293a4b5c6d7e8f9/Recordings/RE1d2c3b4a5968778695a4b3c2d1e0f9a8",
    }
    assert twilio_event(form("recording_in_progress.txt")) is None


@pytest.mark.parametrize(
    "name",
    [p.name for p in sorted(FIXTURES.glob("*.txt")) if p.name != "recording_in_progress.txt"],
)
def test_every_mapped_callback_is_a_valid_event_of_ours(name):
    event = parse_event(twilio_event(form(name)), region="US", received_at=datetime.now(UTC))

    assert event.call_id in (INBOUND_SID, OUTBOUND_SID)


def test_a_retried_callback_keeps_its_id_and_each_status_gets_its_own():
    ids = {twilio_event(form(f"status_inbound_{n}.txt"))["id"] for n in ("ringing", "completed")}

    assert twilio_event(form("status_inbound_ringing.txt"))["id"] in ids
    assert len(ids) == 2


@pytest.mark.parametrize(
    "fields,field",
    [
        ({"CallStatus": "ringing"}, "CallSid"),
        ({"CallSid": INBOUND_SID, "CallStatus": "ok"}, "CallStatus"),
    ],
)
def test_a_callback_without_sid_or_with_an_unknown_status_is_refused(fields, field):
    with pytest.raises(InvalidEvent) as refused:
        twilio_event(fields)

    assert refused.value.field == field


# Twilio's published example (twilio-python/-php/-csharp RequestValidator tests).
DOC_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
DOC_PARAMS = {
    "CallSid": ["CA1234567890ABCDE"],
    "Caller": ["+14158675309"],
    "Digits": ["1234"],
    "From": ["+14158675309"],
    "To": ["+18005551212"],
}


def test_the_signature_matches_twilios_documented_example():
    assert twilio_signature("12345", DOC_URL, DOC_PARAMS) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    assert twilio_signature_valid("12345", DOC_URL, DOC_PARAMS, "RSOYDt4T1cUTdK1PDd93/VVr8B8=")


def test_repeated_parameters_are_signed_sorted_and_once_each():
    params = {"Sid": ["CA123"], "SidAccount": ["AC123"], "Digits": ["5678", "1234", "1234"]}

    assert twilio_signature("12345", DOC_URL, params) == "IK+Dwps556ElfBT0I3Rgjkr1wJU="


@pytest.mark.parametrize(
    "token,url,params,signature",
    [
        ("54321", DOC_URL, DOC_PARAMS, "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
        ("12345", DOC_URL + "&x=1", DOC_PARAMS, "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
        ("12345", DOC_URL, {**DOC_PARAMS, "Digits": ["9999"]}, "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
        ("12345", DOC_URL, DOC_PARAMS, ""),
        ("12345", DOC_URL, DOC_PARAMS, "not base64 at all ✓"),
    ],
)
def test_any_change_breaks_the_signature(token, url, params, signature):
    assert not twilio_signature_valid(token, url, params, signature)
