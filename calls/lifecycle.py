"""Pure call-lifecycle rules: merging events into a call, simulated sequences, the callback body."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from calls.models import CallState, CallStatus

STATE_ORDER = list(CallState)  # initiated < agent_ringing < customer_ringing < answered < ended

# The seed 002 callback fields, in the seed's order.
CALLBACK_FIELDS = (
    "call_id",
    "uuid",
    "status",
    "duration",
    "customer_number",
    "agent_number",
    "crm_username",
    "call_type",
    "disposition",
    "direction",
    "start_time",
    "end_time",
    "recording_url",
)


@dataclass(frozen=True)
class Event:
    kind: str
    occurred_at: datetime
    status: str = ""
    duration: int | None = None  # talk seconds, when an end reports them


@dataclass(frozen=True)
class Merged:
    state: str
    status: str
    start_time: datetime | None
    answer_time: datetime | None
    end_time: datetime | None
    duration: int


def merge_events(events: list[Event]) -> Merged:
    """The call's state from its events, whatever order they arrived in.

    The furthest state reached wins; an answer after the end never happened; the end's status
    is final (ANSWER when the call was answered and the end names no status), and so is the
    talk time it reports (else answer to end). The call starts with its earliest event.
    """
    by_kind: dict[str, Event] = {}
    for event in sorted(events, key=lambda e: (e.occurred_at, STATE_ORDER.index(e.kind))):
        by_kind.setdefault(event.kind, event)  # the first of each kind counts
    ended = by_kind.get(CallState.ENDED)
    answered = by_kind.get(CallState.ANSWERED)
    if answered and ended and answered.occurred_at > ended.occurred_at:
        answered = None
    reached = [kind for kind in by_kind if kind != CallState.ANSWERED or answered]
    state = max(reached, key=STATE_ORDER.index) if reached else CallState.INITIATED
    status = ""
    if ended:
        status = ended.status or (CallStatus.ANSWER if answered else CallStatus.FAILED)
    talk = 0
    if ended and status == CallStatus.ANSWER:
        if ended.duration is not None:
            talk = ended.duration
        elif answered:
            talk = round((ended.occurred_at - answered.occurred_at).total_seconds())
    talk = max(0, talk)
    answer_time = answered.occurred_at if answered else None
    if answer_time is None and ended and talk:  # the end said how long they talked
        answer_time = ended.occurred_at - timedelta(seconds=talk)
    moments = [e.occurred_at for e in by_kind.values()] + ([answer_time] if answer_time else [])
    return Merged(
        state=state,
        status=status,
        start_time=min(moments) if moments else None,
        answer_time=answer_time,
        end_time=ended.occurred_at if ended else None,
        duration=talk,
    )


@dataclass(frozen=True)
class Step:
    delay: float  # seconds after the previous step
    kind: str
    status: str = ""


def simulated_outcome(customer_number: str, outcomes: list[dict]) -> str:
    """The final status the simulator plays for a number: first matching pattern, else ANSWER."""
    for outcome in outcomes:
        if fnmatch.fnmatchcase(customer_number, outcome["pattern"]):
            return outcome["status"]
    return CallStatus.ANSWER


def simulated_steps(status: str, ring_seconds: float, talk_seconds: float) -> list[Step]:
    """The events a real switch would report for a call that ends with `status`."""
    ring, half = ring_seconds, ring_seconds / 2
    agent_answers = Step(half, CallState.CUSTOMER_RINGING)  # the agent picked up; now the customer
    sequences = {
        CallStatus.ANSWER: [
            agent_answers,
            Step(half, CallState.ANSWERED),
            Step(talk_seconds, CallState.ENDED, CallStatus.ANSWER),
        ],
        CallStatus.NO_ANSWER: [agent_answers, Step(ring, CallState.ENDED, CallStatus.NO_ANSWER)],
        CallStatus.BUSY: [agent_answers, Step(min(half, 1.0), CallState.ENDED, CallStatus.BUSY)],
        CallStatus.CANCELED: [agent_answers, Step(half, CallState.ENDED, CallStatus.CANCELED)],
        CallStatus.FAILED: [Step(min(half, 1.0), CallState.ENDED, CallStatus.FAILED)],
    }
    return [Step(0, CallState.AGENT_RINGING), *sequences[CallStatus(status)]]


def iso_z(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC with a 'Z', to the second, as the seed writes it."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def callback_payload(call: object, recording_url: str | None = None) -> dict:
    """The seed 002 callback body for an ended call: exactly its fields, nothing else.

    `recording_url` is always present: null unless the call is recorded.
    """
    payload = {
        "call_id": str(call.call_id),
        "uuid": call.uuid or None,
        "status": call.status,
        "duration": call.duration,
        "customer_number": call.customer_number,
        "agent_number": call.agent_number or None,
        "crm_username": call.crm_username or None,
        "call_type": call.call_type,
        "disposition": call.disposition,
        "direction": call.direction,
        "start_time": iso_z(call.start_time),
        "end_time": iso_z(call.end_time),
        "recording_url": recording_url,
    }
    assert tuple(payload) == CALLBACK_FIELDS
    return payload


UPDATE_EVENT = "call.updated"


def callback_update_payload(call: object, recording_url: str | None = None) -> dict:
    """The opt-in second callback: marked, the seed's fields as they are now, and the notes."""
    return {"event": UPDATE_EVENT, **callback_payload(call, recording_url), "notes": call.notes}
