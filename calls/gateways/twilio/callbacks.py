"""Twilio Programmable Voice callbacks mapped to our telephony events, and Twilio's signature.

Status callbacks: https://www.twilio.com/docs/voice/api/call-resource#statuscallback
Recording callbacks: https://www.twilio.com/docs/voice/api/recording#recordingstatuscallback
Signatures: https://www.twilio.com/docs/usage/webhooks/webhooks-security
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any

from calls.inbound import InvalidEvent

# CallStatus -> our event type, and the final status an end carries.
STATUS_EVENTS = {
    "queued": "call.start",
    "initiated": "call.start",
    "ringing": "call.ringing",
    "in-progress": "call.answered",
    "completed": "call.end",
    "busy": "call.end",
    "failed": "call.end",
    "no-answer": "call.end",
    "canceled": "call.end",
}
END_STATUSES = {
    "completed": "ANSWER",  # Twilio: "answered and has ended normally"
    "busy": "BUSY",
    "failed": "FAILED",
    "no-answer": "NO_ANSWER",
    "canceled": "CANCELED",
}


def twilio_event(form: Mapping[str, str]) -> dict[str, Any] | None:
    """Our JSON event for one Twilio callback (None for a recording that is not ready)."""
    call_sid = form.get("CallSid", "").strip()
    if not call_sid:
        raise InvalidEvent("CallSid", "A Twilio callback needs CallSid.")
    if "RecordingStatus" in form and "CallStatus" not in form:
        return _recording_event(form, call_sid)
    call_status = form.get("CallStatus", "").strip()
    event_type = STATUS_EVENTS.get(call_status)
    if event_type is None:
        raise InvalidEvent(
            "CallStatus", f"'{call_status}' is not a Twilio call status; use one of "
            f"{', '.join(STATUS_EVENTS)}."
        )  # fmt: skip
    # A retried callback repeats its SequenceNumber; each status is reported once per call.
    sequence = form.get("SequenceNumber", "").strip()
    event = {
        "id": ":".join(filter(None, ("twilio", call_sid, call_status, sequence))),
        "type": event_type,
        "call_id": call_sid,
        "direction": "inbound" if form.get("Direction") == "inbound" else "outbound",
        "from": party_number(form.get("From", "")),
        "to": party_number(form.get("To", "")),
    }
    timestamp = _timestamp(form.get("Timestamp", ""))
    if timestamp:
        event["timestamp"] = timestamp
    if event_type == "call.end":
        event["status"] = END_STATUSES[call_status]
        if form.get("CallDuration", "").isdigit() and call_status == "completed":
            event["duration"] = int(form["CallDuration"])
    if form.get("RecordingUrl"):
        event["recording_url"] = form["RecordingUrl"]
    return event


def _recording_event(form: Mapping[str, str], call_sid: str) -> dict[str, Any] | None:
    if form.get("RecordingStatus") != "completed" or not form.get("RecordingUrl"):
        return None  # in-progress, absent or failed: nothing to listen to
    return {
        "id": f"twilio:{call_sid}:recording:{form.get('RecordingSid', '')}",
        "type": "recording.ready",
        "call_id": call_sid,
        "recording_url": form["RecordingUrl"],
    }


def party_number(value: str) -> str:
    # Browser and SIP legs are "client:alice" or "sip:..."; withheld callers come without digits.
    value = value.strip()
    return "" if ":" in value or not any(c.isdigit() for c in value) else value


def _timestamp(value: str) -> str:
    """Twilio's RFC 2822 Timestamp ("Tue, 14 Jun 2026 17:01:56 +0000") as ISO 8601, or ""."""
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return ""
    if moment.tzinfo is None:  # "-0000": UTC with no claim about the local zone (RFC 2822)
        moment = moment.replace(tzinfo=UTC)
    return moment.isoformat()


def twilio_signature(auth_token: str, url: str, params: Mapping[str, list[str]]) -> str:
    """X-Twilio-Signature: base64 HMAC-SHA1 of the URL followed by each sorted name and value."""
    data = url + "".join(
        name + value for name in sorted(params) for value in sorted(set(params[name]))
    )
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def twilio_signature_valid(
    auth_token: str, url: str, params: Mapping[str, list[str]], signature: str
) -> bool:
    expected = twilio_signature(auth_token, url, params)
    return hmac.compare_digest(expected.encode(), signature.strip().encode())
