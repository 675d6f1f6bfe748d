"""Pure rules: events merge to one final state whatever their order; simulated sequences."""

import itertools
from datetime import UTC, datetime, timedelta, timezone
from types import SimpleNamespace
from uuid import UUID

import pytest

from calls.lifecycle import (
    CALLBACK_FIELDS,
    Event,
    callback_payload,
    merge_events,
    simulated_outcome,
    simulated_steps,
)
from calls.models import CallState, CallStatus

T0 = datetime(2026, 7, 3, 10, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


ANSWERED_CALL = [
    Event(CallState.INITIATED, at(0)),
    Event(CallState.AGENT_RINGING, at(1)),
    Event(CallState.CUSTOMER_RINGING, at(5)),
    Event(CallState.ANSWERED, at(9)),
    Event(CallState.ENDED, at(159), CallStatus.ANSWER),
]


def test_an_answered_call_ends_with_its_talk_time_as_duration():
    merged = merge_events(ANSWERED_CALL)

    assert merged.state == CallState.ENDED
    assert merged.status == CallStatus.ANSWER
    assert (merged.answer_time, merged.end_time, merged.duration) == (at(9), at(159), 150)


@pytest.mark.parametrize("order", list(itertools.permutations(range(5))))
def test_events_in_any_arrival_order_merge_to_the_same_call(order):
    assert merge_events([ANSWERED_CALL[i] for i in order]) == merge_events(ANSWERED_CALL)


def test_an_end_before_the_answer_means_the_answer_never_happened():
    merged = merge_events(
        [Event(CallState.ENDED, at(5), CallStatus.CANCELED), Event(CallState.ANSWERED, at(9))]
    )

    assert (merged.status, merged.answer_time, merged.duration) == ("CANCELED", None, 0)


def test_an_unanswered_call_lasts_zero_seconds():
    merged = merge_events(
        [Event(CallState.AGENT_RINGING, at(0)), Event(CallState.ENDED, at(30), "NO_ANSWER")]
    )

    assert (merged.state, merged.status, merged.duration) == ("ended", "NO_ANSWER", 0)


def test_a_call_in_progress_is_in_its_furthest_state_without_a_status():
    merged = merge_events(ANSWERED_CALL[:3])

    assert (merged.state, merged.status, merged.end_time) == ("customer_ringing", "", None)


@pytest.mark.parametrize("status", list(CallStatus))
def test_the_simulator_plays_a_sequence_ending_in_each_status(status):
    steps = simulated_steps(status, ring_seconds=2, talk_seconds=3)

    assert steps[0].kind == CallState.AGENT_RINGING
    assert (steps[-1].kind, steps[-1].status) == (CallState.ENDED, status)
    assert (CallState.ANSWERED in [s.kind for s in steps]) == (status == CallStatus.ANSWER)
    assert sum(s.delay for s in steps) <= 2 + 3


def test_the_simulator_picks_the_first_matching_number_pattern_else_answer():
    outcomes = [
        {"pattern": "+44770090012?", "status": "BUSY"},
        {"pattern": "+447700*", "status": "NO_ANSWER"},
    ]

    assert simulated_outcome("+447700900123", outcomes) == "BUSY"
    assert simulated_outcome("+447700111111", outcomes) == "NO_ANSWER"
    assert simulated_outcome("+14155550123", outcomes) == "ANSWER"


def test_the_callback_payload_has_exactly_the_seed_fields_in_utc():
    call = SimpleNamespace(
        call_id=UUID("5deb67aa-d54d-4536-9a25-a29813b3bddd"),
        uuid="your-own-call-id",
        status="ANSWER",
        duration=150,
        customer_number="+919876543210",
        agent_number="+919876543211",
        crm_username="agent.017",
        call_type="browser",
        disposition="CRM_CALL",
        direction="outbound",
        start_time=T0,
        end_time=at(150).astimezone(timezone(timedelta(hours=5, minutes=30))),  # any zone in
    )

    payload = callback_payload(call)

    seed_fields = [
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
    ]
    assert list(payload) == seed_fields == list(CALLBACK_FIELDS)
    assert payload["call_id"] == "5deb67aa-d54d-4536-9a25-a29813b3bddd"
    assert (payload["start_time"], payload["end_time"]) == (
        "2026-07-03T10:00:00Z",
        "2026-07-03T10:02:30Z",
    )
    assert payload["recording_url"] is None


def test_an_end_reporting_its_talk_time_is_believed_even_before_the_answer_arrives():
    end = Event(CallState.ENDED, at(159), CallStatus.ANSWER, duration=148)

    alone = merge_events([end])
    complete = merge_events([*ANSWERED_CALL[:4], end])

    assert (alone.status, alone.duration, alone.answer_time) == ("ANSWER", 148, at(11))
    assert (complete.status, complete.duration, complete.answer_time) == ("ANSWER", 148, at(9))


def test_a_call_starts_with_its_earliest_event_whatever_arrived_first():
    assert merge_events(list(reversed(ANSWERED_CALL))).start_time == at(0)
    assert merge_events([Event(CallState.ENDED, at(30), "NO_ANSWER")]).start_time == at(30)


def test_the_callback_carries_the_recording_url_when_there_is_one():
    call = SimpleNamespace(
        call_id=UUID(int=1), uuid="", status="ANSWER", duration=150,
        customer_number="+447400123456", agent_number="", crm_username="", call_type="server",
        disposition="CRM_CALL", direction="inbound", start_time=at(0), end_time=at(159),
    )  # fmt: skip

    assert callback_payload(call)["recording_url"] is None
    assert callback_payload(call, "https://cb.example/r/x")["recording_url"] == (
        "https://cb.example/r/x"
    )
