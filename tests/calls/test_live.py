"""Live streams (server-sent events): the call page's per-call stream and GET /api/v1/live.

Each test runs twice: with Redis pub/sub (production) and with the polling fallback (no Redis).
Events are recorded through calls.services while the stream is read, as a gateway would.
"""

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
import requests
from django.utils import timezone

from calls.models import Call, CallEvent, CallState, CallStatus
from calls.services import call_event_record, call_hang_up, call_place
from calls.webphone.access import page_token
from core.scoping import current_tenant_id, tenant_scope
from tenants.models import Agent, ApiKey, CallerIdNumber

pytestmark = pytest.mark.django_db


@dataclass(frozen=True)
class Frame:
    event: str  # "message" for a frame without an event name; "" for a comment (heartbeat)
    data: dict | None
    id: str | None
    retry: int | None


def frames(chunks: Iterator[bytes]) -> Iterator[Frame]:
    """Parse a text/event-stream body into frames, as EventSource would."""
    buffer = b""
    for chunk in chunks:
        buffer += chunk
        while b"\n\n" in buffer:
            block, buffer = buffer.split(b"\n\n", 1)
            fields: dict[str, str] = {}
            for line in block.decode().split("\n"):
                name, _, value = line.partition(":")
                fields[name] = value.removeprefix(" ")
            data = json.loads(fields["data"]) if "data" in fields else None
            retry = int(fields["retry"]) if "retry" in fields else None
            event = "" if "" in fields else fields.get("event", "message")
            yield Frame(event, data, fields.get("id"), retry)


@pytest.fixture(params=["redis", "polling"])
def transport(request, settings) -> str:
    if request.param == "polling":
        settings.REDIS_URL = ""
        settings.LIVE_POLL_SECONDS = 0.05
    settings.LIVE_STREAM_SECONDS = 5.0
    return request.param


@pytest.fixture
def record(django_capture_on_commit_callbacks):
    """Record an event as the gateway would, running what its commit triggers (the publish)."""

    def record(call: Call, kind: str, status: str = "") -> Call:
        with tenant_scope(call.tenant_id), django_capture_on_commit_callbacks(execute=True):
            return call_event_record(
                call=call, kind=kind, status=status, occurred_at=timezone.now()
            )

    return record


@pytest.fixture
def placed(tenant, caller_id, agent) -> Call:
    with tenant_scope(tenant):
        call, _ = call_place(
            tenant=tenant,
            call_type=Call.CallType.BROWSER,
            from_number=caller_id.number,
            customer_number="+447400123456",
            agent=agent,
        )
    return call


@pytest.fixture
def page(client, placed) -> str:
    """The call page's path for the placed call."""
    return f"/webphone/calls/{page_token(placed)}"


def test_the_call_stream_pushes_each_state_change_until_the_call_ends(
    transport, client, page, placed, record, django_capture_on_commit_callbacks
):
    response = client.get(f"{page}/events", HTTP_ACCEPT="text/event-stream")
    stream = frames(response.streaming_content)

    assert response["Content-Type"] == "text/event-stream"
    assert response["Cache-Control"] == "no-cache, no-store"
    assert next(stream).retry == 1000
    snapshot = next(stream)
    with tenant_scope(placed.tenant_id):
        initiated = CallEvent.objects.get().pk
    assert (snapshot.event, snapshot.data["state"]) == ("snapshot", "initiated")
    assert snapshot.id == str(initiated)  # where a browser coming back resumes
    seen = []
    for kind in (CallState.AGENT_RINGING, CallState.CUSTOMER_RINGING, CallState.ANSWERED):
        record(placed, kind)
        frame = next(stream)
        seen.append((frame.event, frame.data["kind"], frame.data["state"]))
    with tenant_scope(placed.tenant_id):
        event_ids = list(CallEvent.objects.order_by("pk").values_list("pk", flat=True))
    assert frame.id == str(event_ids[-1])
    with tenant_scope(placed.tenant_id), django_capture_on_commit_callbacks(execute=True):
        call_hang_up(call=placed)  # the agent hangs up
    ended = next(stream)

    assert seen == [
        ("call", "agent_ringing", "agent_ringing"),
        ("call", "customer_ringing", "customer_ringing"),
        ("call", "answered", "answered"),
    ]
    assert (ended.data["kind"], ended.data["state"], ended.data["status"]) == (
        "ended",
        "ended",
        "ANSWER",
    )
    assert list(stream) == []  # the stream closes with the call


def test_a_reconnecting_browser_gets_what_it_missed_after_its_last_event_id(
    transport, client, page, placed, record
):
    with tenant_scope(placed.tenant_id):
        initiated = CallEvent.objects.get().pk
    record(placed, CallState.AGENT_RINGING)
    record(placed, CallState.CUSTOMER_RINGING)

    response = client.get(f"{page}/events", HTTP_LAST_EVENT_ID=str(initiated))
    stream = frames(response.streaming_content)
    next(stream)  # retry

    assert next(stream).data["state"] == "customer_ringing"  # the snapshot: today's truth
    assert [next(stream).data["kind"] for _ in range(2)] == ["agent_ringing", "customer_ringing"]


def test_an_ended_calls_stream_sends_its_final_state_and_closes(
    transport, client, page, placed, record
):
    record(placed, CallState.ENDED, CallStatus.FAILED)

    found = list(frames(client.get(f"{page}/events").streaming_content))

    assert [f.event for f in found] == ["message", "snapshot"]
    assert (found[1].data["state"], found[1].data["status"]) == ("ended", "FAILED")


def test_a_quiet_stream_sends_heartbeats_and_ends_in_time_for_the_browser_to_reconnect(
    transport, settings, client, page
):
    settings.LIVE_STREAM_SECONDS = 0.8
    settings.LIVE_HEARTBEAT_SECONDS = 0.25
    started = time.monotonic()

    found = list(frames(client.get(f"{page}/events").streaming_content))

    took = time.monotonic() - started
    heartbeats = [f for f in found if f.event == ""]
    assert found[0].retry == 1000 and found[1].event == "snapshot"
    assert 2 <= len(heartbeats) <= 4, found
    assert 0.8 <= took < 2.0


def test_streams_beyond_the_process_slots_send_what_was_missed_and_end_at_once(
    transport, settings, client, page, placed, record
):
    settings.LIVE_STREAMS_PER_PROCESS = 1
    settings.LIVE_BUSY_RETRY_SECONDS = 3.0
    settings.LIVE_STREAM_SECONDS = 1.5
    with tenant_scope(placed.tenant_id):
        initiated = CallEvent.objects.get().pk
    holding = client.get(f"{page}/events")
    held = frames(holding.streaming_content)
    assert next(held).retry == 1000  # the one slot: a live stream
    record(placed, CallState.AGENT_RINGING)
    started = time.monotonic()

    busy = list(frames(client.get(f"{page}/events", HTTP_LAST_EVENT_ID=str(initiated))))

    took = time.monotonic() - started
    with tenant_scope(placed.tenant_id):
        ringing = CallEvent.objects.latest("pk").pk
    assert [(f.event, f.retry) for f in busy] == [
        ("message", 3000),
        ("snapshot", None),
        ("call", None),
    ]
    assert (busy[1].id, busy[2].id, busy[2].data["state"]) == (str(ringing),) * 2 + (
        "agent_ringing",
    )
    assert took < 1.0, took
    list(held)  # the live stream ends (LIVE_STREAM_SECONDS): its slot is free again
    again = frames(client.get(f"{page}/events").streaming_content)
    assert next(again).retry == 1000


def test_the_live_feed_counts_active_and_completed_calls_and_streams_every_call(
    transport, api, placed, record, tenant, caller_id, agent
):
    with tenant_scope(tenant):
        finished, _ = call_place(
            tenant=tenant,
            call_type=Call.CallType.SERVER,
            from_number=caller_id.number,
            customer_number="+447400123457",
            agent=agent,
        )
    record(finished, CallState.ENDED, CallStatus.BUSY)
    response = api.get("/api/v1/live", HTTP_ACCEPT="text/event-stream")
    stream = frames(response.streaming_content)
    next(stream)

    snapshot = next(stream).data
    record(placed, CallState.AGENT_RINGING)
    ringing = next(stream).data
    record(placed, CallState.ENDED, CallStatus.NO_ANSWER)
    ended = next(stream).data

    assert response.status_code == 200
    assert (snapshot["active"], snapshot["completed"]) == (1, 1)
    assert [c["call_id"] for c in snapshot["calls"]] == [str(placed.call_id)]
    assert (ringing["call_id"], ringing["kind"]) == (str(placed.call_id), "agent_ringing")
    assert (ringing["active"], ringing["completed"]) == (1, 1)
    assert (ended["kind"], ended["status"], ended["active"], ended["completed"]) == (
        "ended",
        "NO_ANSWER",
        0,
        2,
    )


def test_a_call_lost_by_its_switch_stops_counting_as_active(api, placed, tenant, settings):
    settings.LIVE_STREAM_SECONDS = 0.2
    with tenant_scope(tenant):
        Call.objects.filter(pk=placed.pk).update(start_time=timezone.now() - timedelta(hours=13))
    response = api.get("/api/v1/live")

    snapshot = list(frames(response.streaming_content))[1].data

    assert (snapshot["active"], snapshot["calls"]) == (0, [])


def test_the_live_feed_needs_a_server_key_with_the_calls_scope(
    client, make_client, make_key, tenant
):
    browser = make_key(tenant, ApiKey.Kind.BROWSER)
    no_scope = make_client(tenant, scopes=["contacts:read"])

    anonymous = client.get("/api/v1/live", HTTP_ACCEPT="text/event-stream")
    with_browser_key = client.get("/api/v1/live", HTTP_AUTHORIZATION=f"Bearer {browser}")
    without_scope = no_scope.get("/api/v1/live", HTTP_ACCEPT="text/event-stream")

    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "not_authenticated"
    assert with_browser_key.status_code == 403
    assert with_browser_key.json()["error"]["code"] == "wrong_key_kind"
    assert without_scope.status_code == 403
    assert without_scope.json()["error"]["code"] == "missing_scope"


@pytest.mark.integration
def test_events_reach_a_real_http_client_as_the_worker_records_them(
    transactional_db, live_server, settings, tenant, make_key
):
    """Real HTTP: a call placed in one thread is seen on /api/v1/live read by another."""
    settings.LIVE_STREAM_SECONDS = 3  # read to its end: the server is done when the test is
    key = make_key(tenant)
    with tenant_scope(tenant):
        agent = Agent.objects.create(tenant=tenant, crm_username="agent.017")
        caller_id = CallerIdNumber.objects.create(tenant=tenant, number="+442079460000")
    received: list[Frame] = []
    arrived: list[float] = []

    def read() -> None:
        with requests.get(
            f"{live_server.url}/api/v1/live",
            headers={"Authorization": f"Bearer {key}", "Accept": "text/event-stream"},
            stream=True,
            timeout=10,
        ) as response:
            # Byte by byte: a larger read would wait for more bytes than one event has.
            for frame in frames(response.iter_content(chunk_size=1)):
                received.append(frame)
                arrived.append(time.monotonic())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.monotonic() + 5
    while not any(f.event == "snapshot" for f in received) and time.monotonic() < deadline:
        time.sleep(0.02)
    with tenant_scope(tenant):
        call = Call.objects.create(
            tenant=tenant,
            direction="outbound",
            call_type="server",
            agent=agent,
            customer_number="+447400123456",
            from_number=caller_id.number,
            disposition="CRM_CALL",
            start_time=timezone.now(),
        )
        for kind in (CallState.AGENT_RINGING, CallState.ANSWERED):
            call_event_record(call=call, kind=kind, occurred_at=timezone.now())
        hanging_up = time.monotonic()
        call_hang_up(call=call)
    reader.join(timeout=10)

    calls = [f.data for f in received if f.event == "call"]
    assert [(c["kind"], c["state"], c["status"]) for c in calls] == [
        ("agent_ringing", "agent_ringing", ""),
        ("answered", "answered", ""),
        ("ended", "ended", "ANSWER"),
    ], received
    assert calls[-1]["completed"] == 1 and calls[-1]["active"] == 0
    latency = arrived[received.index(next(f for f in received if f.data == calls[-1]))] - hanging_up
    print(f"hang-up to reader: {latency * 1000:.0f} ms")
    assert latency < 1  # pushed as it happened, not when the stream ended


def test_a_half_read_stream_leaves_no_tenant_scope_behind(transport, client, page):
    stream = frames(client.get(f"{page}/events").streaming_content)
    next(stream), next(stream)

    assert current_tenant_id() is None


def test_the_feed_names_the_caller_and_says_when_a_calls_analytics_come(
    api, placed, tenant, make_contact, settings, django_capture_on_commit_callbacks
):
    from calls import events

    settings.LIVE_STREAM_SECONDS = 5.0
    make_contact(tenant, "+447400123456", first_name="Ada", last_name="Lovelace", company="AE")
    with tenant_scope(tenant):
        Call.objects.filter(pk=placed.pk).update(external_id="pbx-9")
    response = api.get("/api/v1/live", HTTP_ACCEPT="text/event-stream")
    stream = frames(response.streaming_content)
    next(stream)
    [live_call] = next(stream).data["calls"]

    body = {"id": "a-1", "type": "analytics.completed", "call_id": "pbx-9", "satisfaction": 8}
    with tenant_scope(tenant), django_capture_on_commit_callbacks(execute=True):
        row, _ = events.telephony_event_accept(tenant=tenant, body=body, source="json")
        events.telephony_event_process(event_pk=row.pk)
    analyzed = next(frame for frame in stream if frame.event)

    assert (live_call["caller_name"], live_call["caller_company"]) == ("Ada Lovelace", "AE")
    assert (analyzed.event, analyzed.data, analyzed.id) == (
        "analytics", {"kind": "analytics", "call_id": str(placed.call_id)}, None
    )  # fmt: skip
