"""Pure reading of telephony events (seed 001): our JSON format, validated field by field.

Every event names itself (`id`, unique per tenant: the dedupe key), its `type` and the phone
system's `call_id`; anything else it knows about the call may come on any event, because events
arrive out of order and the first one seen creates the call. Unknown fields are ignored.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from hashlib import sha256
from urllib.parse import urlsplit

from django.utils.dateparse import parse_datetime

from calls.models import Call, CallState, CallStatus
from core import phone_numbers

EVENT_TYPES = (
    "call.start",
    "call.ringing",
    "call.answered",
    "call.end",
    "recording.ready",
    "analytics.completed",
)
# The lifecycle kind each call event records (ringing depends on who rings: see `kind_of`).
_KINDS = {
    "call.start": CallState.INITIATED,
    "call.answered": CallState.ANSWERED,
    "call.end": CallState.ENDED,
}
# Seed 001: the analysis (transcript, summary, satisfaction ...) comes on analytics.completed,
# or already on call.end ("Receive webhook with transcript and outcome").
ANALYZED_TYPES = ("call.end", "analytics.completed")
ID_MAX_LENGTH = 255
TEXT_LIMITS = {"sentiment": 32, "summary": 20_000, "transcript": 200_000, "disposition": 64}
SATISFACTION_RANGE = (0, 10)
VARIABLES_MAX = 50


class InvalidEvent(ValueError):
    """The event cannot be accepted; `field` names the culprit (None: the body as a whole)."""

    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class InboundEvent:
    id: str
    type: str
    call_id: str
    occurred_at: datetime
    start_time: datetime | None = None  # when the call began, if this event knows
    direction: str = ""  # inbound | outbound | "" (not said: inbound)
    ringing: str = ""  # call.ringing: agent | customer | "" (by direction: who is called)
    from_number: str = ""  # E.164
    to_number: str = ""
    crm_username: str = ""
    agent_number: str = ""
    status: str = ""  # call.end: ANSWER, NO_ANSWER, BUSY, FAILED, CANCELED
    duration: int | None = None  # call.end: talk seconds
    disposition: str = ""
    recording: bool = False  # the call is recorded; its audio follows in recording.ready
    recording_url: str = ""  # where the phone system keeps the audio
    analytics: dict = field(default_factory=dict)  # transcript, summary, satisfaction, ...
    variables: dict = field(default_factory=dict)  # what the call collected (seed 001)

    @property
    def kind(self) -> str:
        """The lifecycle state this event records ("" for recordings and analytics)."""
        if self.type == "call.ringing":
            customer = self.ringing == "customer" or (
                not self.ringing and self.direction == Call.Direction.OUTBOUND
            )
            return CallState.CUSTOMER_RINGING if customer else CallState.AGENT_RINGING
        return _KINDS.get(self.type, "")


def body_hash(body: Mapping) -> str:
    """SHA-256 of the event as canonical JSON: tells a true duplicate from a reused id."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return sha256(canonical.encode()).hexdigest()


def parse_event(body: object, *, region: str, received_at: datetime) -> InboundEvent:
    """Read one event; raise InvalidEvent naming the first bad field."""
    if not isinstance(body, Mapping):
        raise InvalidEvent(None, 'Send one event as a JSON object: {"id", "type", "call_id", ...}.')
    event_type = _text(body, "type", required=True)
    if event_type not in EVENT_TYPES:
        raise InvalidEvent("type", f"'{event_type}' is not an event type; use one of "
                           f"{', '.join(EVENT_TYPES)}.")  # fmt: skip
    direction = _text(body, "direction")
    if direction not in ("", *Call.Direction.values):
        raise InvalidEvent("direction", "Use inbound or outbound.")
    ringing = _text(body, "ringing")
    if ringing not in ("", "agent", "customer"):
        raise InvalidEvent("ringing", "Use agent or customer.")
    status = _text(body, "status")
    if status not in ("", *CallStatus.values):
        raise InvalidEvent("status", f"Use one of {', '.join(CallStatus.values)}.")
    recording_url = _url(body, "recording_url")
    if event_type == "recording.ready" and not recording_url:
        raise InvalidEvent("recording_url", "A recording.ready event needs the recording_url.")
    return InboundEvent(
        id=_text(body, "id", required=True, limit=ID_MAX_LENGTH),
        type=event_type,
        call_id=_text(body, "call_id", required=True, limit=ID_MAX_LENGTH),
        occurred_at=_moment(body, "timestamp") or received_at,
        start_time=_moment(body, "start_time"),
        direction=direction,
        ringing=ringing,
        from_number=_number(body, "from", region),
        to_number=_number(body, "to", region),
        crm_username=_text(body, "crm_username", limit=150),
        agent_number=_number(body, "agent_number", region),
        status=status,
        duration=_integer(body, "duration", 0, 86_400),
        disposition=_text(body, "disposition", limit=TEXT_LIMITS["disposition"]),
        recording=_boolean(body, "recording") or bool(recording_url),
        recording_url=recording_url,
        analytics=_analytics(body) if event_type in ANALYZED_TYPES else {},
        variables=_variables(body),
    )


def _text(body: Mapping, name: str, *, required: bool = False, limit: int = 255) -> str:
    value = body.get(name)
    if value is None or value == "":
        if required:
            raise InvalidEvent(name, f"{name} is required.")
        return ""
    if not isinstance(value, str):
        raise InvalidEvent(name, f"{name} must be a string.")
    value = value.strip()
    if len(value) > limit:
        raise InvalidEvent(name, f"{name} is longer than {limit} characters.")
    if name in ("id", "call_id", "type") and not value.isprintable():
        raise InvalidEvent(name, f"{name} cannot contain control characters.")
    return value


def _number(body: Mapping, name: str, region: str) -> str:
    raw = _text(body, name, limit=64)
    if not raw:
        return ""  # withheld
    e164 = phone_numbers.e164_of(raw, region)  # a phone system's E.164 numbers: no parse
    if e164 is None:
        raise InvalidEvent(name, f"'{raw}' is not a phone number.")
    return e164


def _moment(body: Mapping, name: str) -> datetime | None:
    raw = _text(body, name, limit=64)
    if not raw:
        return None
    try:
        moment = parse_datetime(raw)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise InvalidEvent(name, "Use an ISO 8601 time with a zone, e.g. 2026-07-03T10:02:30Z.")
    return moment


def _integer(body: Mapping, name: str, low: int, high: int) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidEvent(name, f"{name} must be a whole number from {low} to {high}.")
    return value


def _boolean(body: Mapping, name: str) -> bool | None:
    value = body.get(name)
    if value is not None and not isinstance(value, bool):
        raise InvalidEvent(name, f"{name} must be true or false.")
    return value


def _url(body: Mapping, name: str) -> str:
    value = _text(body, name, limit=2000)
    if value and (urlsplit(value).scheme not in ("http", "https") or not urlsplit(value).netloc):
        raise InvalidEvent(name, f"{name} must be an http(s) URL.")
    return value


def _variables(body: Mapping) -> dict:
    """Seed 001's "variables (customer data collected)": names to plain JSON values."""
    variables = body.get("variables")
    if variables is None:
        return {}
    example = '{"order_number": "A-1001", "wants_callback": true}'
    if not isinstance(variables, Mapping) or len(variables) > VARIABLES_MAX:
        raise InvalidEvent(
            "variables", f"Give at most {VARIABLES_MAX} names and values, e.g. {example}."
        )
    for name, value in variables.items():
        plain = value is None or isinstance(value, str | int | float | bool)
        if not 0 < len(name) <= 64 or not plain or (isinstance(value, str) and len(value) > 2000):
            raise InvalidEvent(
                "variables",
                f"{name!r}: each variable is a name of up to 64 characters with a string (up to "
                f"2,000 characters), number, boolean or null, e.g. {example}.",
            )
    return dict(variables)


def _analytics(body: Mapping) -> dict:
    analytics: dict = {}
    satisfaction = _integer(body, "satisfaction", *SATISFACTION_RANGE)
    if satisfaction is not None:
        analytics["satisfaction"] = satisfaction
    resolved = _boolean(body, "resolved")
    if resolved is not None:
        analytics["resolved"] = resolved
    for name in ("sentiment", "summary", "transcript"):
        if body.get(name) not in (None, ""):
            analytics[name] = _text(body, name, limit=TEXT_LIMITS[name])
    return analytics
