"""The live feed: call events pushed as server-sent events to dashboards and agent call pages.

When a call event row commits, a summary of the event and the call (with the tenant's live
counts) is PUBLISHed on Redis, on one channel per tenant and one per call. A stream subscribes,
sends a snapshot, replays what a reconnecting browser missed (`Last-Event-ID`), then forwards
messages with heartbeats for at most LIVE_STREAM_SECONDS, so it holds a web thread only so long,
and ends; the browser reconnects after `retry:`. Any web process can serve any stream.
Without Redis (the embedded SQLite default) a stream polls the event table instead.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

import redis
from django.conf import settings
from django.db import transaction
from django.http import StreamingHttpResponse
from django.utils import timezone

from calls import selectors
from calls.lifecycle import iso_z
from calls.models import Call, CallEvent, CallState
from contacts.selectors import caller_card
from core import batch_cache
from core.scoping import tenant_scope
from tenants.models import Tenant

logger = logging.getLogger(__name__)

RETRY_MS = 1000  # how soon a browser reconnects once a stream ends
REPLAY_WINDOW = timedelta(minutes=10)  # how far back a reconnecting browser is caught up
ACTIVE_CALLS_IN_SNAPSHOT = 100


def call_summary(call: Call) -> dict:
    """What a live view shows of a call, with who is calling (seed 001's live feed)."""
    return _call_fields(call) | _caller(call)


def _caller(call: Call) -> dict:
    card = caller_card(tenant=call.tenant, number=call.customer_number)
    return {
        "caller_name": card.contact.name if card.contact else "",
        "caller_company": card.contact.company if card.contact else "",
    }


def _call_fields(call: Call) -> dict:
    return {
        "call_id": str(call.call_id),
        "state": call.state,
        "status": call.status,
        "duration": call.duration,
        "customer_number": call.customer_number,
        "from_number": call.from_number,
        "crm_username": call.crm_username,
        "call_type": call.call_type,
        "direction": call.direction,
        "start_time": iso_z(call.start_time),
        "answer_time": iso_z(call.answer_time),
        "end_time": iso_z(call.end_time),
    }


def event_summary(event: CallEvent, call: Call) -> dict:
    return _event_fields(event, call) | _caller(call)


def _event_fields(event: CallEvent, call: Call) -> dict:
    return {"id": event.pk, "kind": event.kind, "occurred_at": iso_z(event.occurred_at)} | (
        _call_fields(call)
    )


def snapshot(*, tenant: Tenant, call: Call | None) -> dict:
    """The current truth a stream starts with: the call, or the tenant's counts and live calls."""
    if call is not None:
        call.refresh_from_db()
        return call_summary(call)
    calls = selectors.active_calls()[:ACTIVE_CALLS_IN_SNAPSHOT]
    return selectors.live_counts(tenant=tenant) | {"calls": [call_summary(c) for c in calls]}


@functools.cache
def _redis(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)


def _channel(client: redis.Redis, scope: str) -> str:
    # Channels are server-wide, unlike keys: name the database so two deployments sharing a
    # Redis (or two test runs) never hear each other.
    return f"callbridge:{client.connection_pool.connection_kwargs.get('db', 0)}:live:{scope}"


def call_event_publish(*, call: Call, event: CallEvent) -> None:
    """Publish the event to live streams once the transaction that wrote it commits.

    A drain's batch publishes all its events together (one look at who is listening).
    """
    if not settings.REDIS_URL:
        return  # streams poll the table instead
    unpublished: list[tuple[Call, dict]] = batch_cache.cached(("live events", call.tenant_id), list)
    unpublished.append((call, _event_fields(event, call)))  # the call as this event left it
    if len(unpublished) == 1:  # the batch's first: the others join it before the commit
        transaction.on_commit(lambda: _publish(call.tenant, unpublished))


def _publish(tenant: Tenant, unpublished: list[tuple[Call, dict]]) -> None:
    try:
        client = _redis(settings.REDIS_URL)
        tenant_channel = _channel(client, f"tenant:{tenant.pk}")
        call_channels = [_channel(client, f"call:{m['call_id']}") for _, m in unpublished]
        # Nobody listening: skip the counts. A stream subscribing after this reads its snapshot
        # after this commit, so it misses nothing.
        listening = {
            channel.decode() if isinstance(channel, bytes) else channel: count
            for channel, count in client.pubsub_numsub(tenant_channel, *set(call_channels))
            if count
        }
        if not listening:
            return
        with tenant_scope(tenant):  # who is calling: only when someone is listening
            counts = selectors.live_counts(tenant=tenant)
            pipe = client.pipeline(transaction=False)
            for (call, message), call_channel in zip(unpublished, call_channels, strict=True):
                channels = [c for c in (tenant_channel, call_channel) if c in listening]
                if channels:
                    data = json.dumps(message | _caller(call) | counts)
                    for channel in channels:
                        pipe.publish(channel, data)
            pipe.execute()
    except Exception:  # a live view missing an update must never fail the call
        logger.warning("Could not publish %d call events", len(unpublished), exc_info=True)


def call_analyzed_publish(*, call: Call) -> None:
    """Tell the tenant's live views a call's analytics came (today's metrics changed)."""
    if not settings.REDIS_URL:
        return  # polling views refresh on the next call event
    tenant_id, call_id = call.tenant_id, str(call.call_id)

    def publish() -> None:
        try:
            client = _redis(settings.REDIS_URL)
            message = {"kind": "analytics", "call_id": call_id}
            client.publish(_channel(client, f"tenant:{tenant_id}"), json.dumps(message))
        except Exception:  # a live view missing one update must never fail the event
            logger.warning("Could not publish the analytics of call %s", call_id, exc_info=True)

    transaction.on_commit(publish)


class _RedisSource:
    """Messages published on one channel; first any events a reconnecting browser missed."""

    def __init__(self, tenant: Tenant, call: Call | None, after_id: int | None) -> None:
        client = _redis(settings.REDIS_URL)
        self.pubsub = client.pubsub(ignore_subscribe_messages=True)
        scope = f"call:{call.call_id}" if call else f"tenant:{tenant.pk}"
        self.pubsub.subscribe(_channel(client, scope))  # before the snapshot: nothing slips by
        self.missed = [] if after_id is None else _events_after(tenant, call, after_id)

    def next(self, timeout: float) -> list[dict]:
        if self.missed:
            missed, self.missed = self.missed, []
            return missed
        message = self.pubsub.get_message(timeout=max(timeout, 0.01))
        return [json.loads(message["data"])] if message else []

    def close(self) -> None:
        self.pubsub.close()


class _PollingSource:
    """New rows of the event table, polled every LIVE_POLL_SECONDS (no Redis)."""

    def __init__(self, tenant: Tenant, call: Call | None, after_id: int | None) -> None:
        self.tenant, self.call = tenant, call
        self.cursor = selectors.latest_event_id(call=call) if after_id is None else after_id

    def next(self, timeout: float) -> list[dict]:
        deadline = time.monotonic() + timeout
        while True:
            messages = _events_after(self.tenant, self.call, self.cursor)
            if messages or time.monotonic() >= deadline:
                break
            time.sleep(min(settings.LIVE_POLL_SECONDS, max(deadline - time.monotonic(), 0)))
        if messages:
            self.cursor = messages[-1]["id"]
        return messages

    def close(self) -> None:
        pass


def _events_after(tenant: Tenant, call: Call | None, after_id: int) -> list[dict]:
    since = timezone.now() - REPLAY_WINDOW
    events = selectors.call_events_after(after_id=after_id, call=call, since=since)
    if not events:
        return []
    counts = {} if call else selectors.live_counts(tenant=tenant)
    return [event_summary(event, event.call) | counts for event in events]


@contextmanager
def _source(
    tenant: Tenant, call: Call | None, after_id: int | None
) -> Iterator[_RedisSource | _PollingSource]:
    kind = _RedisSource if settings.REDIS_URL else _PollingSource
    with tenant_scope(tenant):
        source = kind(tenant, call, after_id)
    try:
        yield source
    finally:
        source.close()


def _frame(event: str, data: dict, event_id: int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data)}\n\n"


@functools.cache
def _stream_slots(count: int) -> threading.BoundedSemaphore:
    return threading.BoundedSemaphore(count)


def stream_slots_forget() -> None:
    """Free every slot, as a restarted process has them (tests)."""
    _stream_slots.cache_clear()


@contextmanager
def _stream_slot() -> Iterator[bool]:
    """Take one of this process's LIVE_STREAMS_PER_PROCESS slots if one is free (True)."""
    slots = _stream_slots(settings.LIVE_STREAMS_PER_PROCESS)
    held = slots.acquire(blocking=False)
    try:
        yield held
    finally:
        if held:
            slots.release()


def stream(
    *,
    tenant: Tenant,
    call: Call | None = None,
    last_event_id: int | None = None,
    select: Callable[[dict], dict | None] | None = None,
) -> Iterator[str]:
    """Yield one bounded SSE stream: retry, snapshot, missed events, then live ones.

    A call's stream ends with the event that ends the call. `select` (tenant streams) keeps a
    call's summary, changed as it likes, or drops it (None), in the snapshot and every event.
    A stream holds a web thread while it lasts: when this process's stream slots are all taken,
    it sends the snapshot and missed events and ends at once, and the browser comes back after
    LIVE_BUSY_RETRY_SECONDS (polling), so open pages never take the threads lookups need.
    """
    with _stream_slot() as held:
        yield from _stream(tenant, call, last_event_id, select, live=held)


def _stream(
    tenant: Tenant,
    call: Call | None,
    last_event_id: int | None,
    select: Callable[[dict], dict | None] | None,
    *,
    live: bool,
) -> Iterator[str]:
    seconds = settings.LIVE_STREAM_SECONDS if live else 0.0
    deadline = time.monotonic() + seconds
    heartbeat = settings.LIVE_HEARTBEAT_SECONDS
    retry_ms = RETRY_MS if live else round(settings.LIVE_BUSY_RETRY_SECONDS * 1000)
    # This runs after the request's middleware returned, so it scopes its own queries; never
    # across a yield, or the scope would stay set in whatever runs between two events.
    with _source(tenant, call, last_event_id) as source:
        yield f"retry: {retry_ms}\n\n"
        with tenant_scope(tenant):
            # The snapshot's id: a browser coming back is sent the events after it (at least once).
            resume_after = selectors.latest_event_id(call=call)
            current = snapshot(tenant=tenant, call=call)
            if select is not None:
                current["calls"] = [s for c in current["calls"] if (s := select(c)) is not None]
        yield _frame("snapshot", current, resume_after or None)
        if call is not None and current["state"] == CallState.ENDED:
            return
        sent: set[int] = set()
        last_write = time.monotonic()
        while True:  # at least once: a busy stream still sends what the browser missed
            now = time.monotonic()
            with tenant_scope(tenant):
                messages = source.next(
                    timeout=max(min(deadline - now, last_write + heartbeat - now), 0.0)
                )
                if select is not None:
                    messages = [s for m in messages if (s := select(m)) is not None]
            for message in messages:
                if message.get("kind") == "analytics":  # no event row: nothing to resume from
                    yield _frame("analytics", message)
                    last_write = time.monotonic()
                    continue
                if message["id"] in sent:
                    continue
                sent.add(message["id"])
                yield _frame("call", message, message["id"])
                last_write = time.monotonic()
                if call is not None and message["state"] == CallState.ENDED:
                    return
            if time.monotonic() >= deadline:
                return
            if time.monotonic() - last_write >= heartbeat:
                yield ": heartbeat\n\n"  # also how a dead client is noticed: the write fails
                last_write = time.monotonic()


def last_event_id(header: str | None) -> int | None:
    """The Last-Event-ID a reconnecting browser sent, if it is one of ours."""
    return int(header) if header and header.isdigit() else None


def sse_response(events: Iterator[str]) -> StreamingHttpResponse:
    response = StreamingHttpResponse(events, content_type="text/event-stream")
    response["Cache-Control"] = "no-cache, no-store"
    response["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
    return response
