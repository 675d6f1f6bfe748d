"""Writes for telephony events: accept (store, then drain after commit), apply, sweep.

Accepting only validates and stores the raw event (the inbox row, unique per tenant and event
id) in one statement, so the phone system gets its answer in milliseconds. The tenant's drain,
a `realtime` task, then applies stored events to their calls in batches (one transaction and
one task for many events) with the same lifecycle code the simulator uses
(`services.call_event_record`); a beat task starts drains for events left behind.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from calls import deliveries, drain_statements, live, recordings, signals
from calls.drain_statements import LockedCall
from calls.inbound import InboundEvent, InvalidEvent, body_hash, parse_event
from calls.models import Call, CallState, TelephonyEvent
from calls.services import call_event_record
from core import batch_cache, inserts, shared_redis
from core.scoping import across_all_tenants
from tenants.models import Agent, Tenant

logger = logging.getLogger(__name__)

TOKEN_TAG = "cbe"  # noqa: S105 - the visible tag of events URL tokens, not a secret
EVENTS_URL_NAME = "telephony-events-by-token"
# Events a drain applies in one transaction (and whose callbacks it then sends).
DRAIN_BATCH = 50
# A batch this full means events arrive faster than one drain applies them: start another.
DRAIN_BEHIND = 5
# A drain that keeps finding events hands over to a new task after this long: a steady stream
# must not run into the task time limit (task_soft_time_limit, 300 s).
DRAIN_RUN_SECONDS = 60
# How many looks in a row find nothing before a drain stops. Between looks a drain waits up to
# TELEPHONY_EVENT_DRAIN_WAIT_SECONDS for an event to be accepted: the accept signals it
# (`_drain_start`), so it looks as soon as there is something to take, not on a timer.
DRAIN_IDLE_LOOKS = 3
# How long a drain's flag outlives its last sign of life: a drain lost with its worker stops
# holding new events back after this (the sweeper starts another meanwhile).
DRAIN_FLAG_SECONDS = 30
# A running drain reads the tenant's CRM connections and post-call apps again at least this
# often, not once a batch: at a steady rate a batch holds one event, and those reads were a
# sixth of its work. A change of them reaches a running drain this soon.
DRAIN_SETTINGS_SECONDS = 1.0


class EventConflict(Exception):
    """An event id already names a different event."""


def telephony_event_accept(
    *, tenant: Tenant, body: dict, source: str, raw: dict | None = None
) -> tuple[TelephonyEvent, bool]:
    """Validate and store one event; a new one is applied by the tenant's drain once stored.

    Returns the event's row and whether it is new (False: a duplicate, which changes nothing).
    Raises InvalidEvent, or EventConflict when the id already names a different event.
    """
    now = timezone.now()
    event = parse_event(body, region=tenant.default_region, received_at=now)
    row = TelephonyEvent(
        tenant=tenant,
        event_id=event.id,
        type=event.type,
        source=source,
        payload=body,
        raw=raw,
        body_hash=body_hash(body),
        received_at=now,
    )
    if inserts.insert_new(row):
        transaction.on_commit(lambda: _drain_start(tenant.pk, slot=0))
        return row, True
    stored = TelephonyEvent.objects.get(tenant=tenant, event_id=event.id)
    if stored.body_hash != row.body_hash:
        raise EventConflict(
            f"Event id '{event.id}' was already used for a different event; "
            "give each event its own id."
        )
    return stored, False


def _drain_start(tenant_id: int, slot: int) -> None:
    """Start a drain of the tenant's stored events in this slot unless one holds it.

    Never raises: the events are stored, and the sweeper starts a drain for any left behind.
    """
    from calls.tasks import telephony_events_drain

    flag = _drain_flag(tenant_id, slot)
    if not shared_redis.flag_raise_or_signal(flag, _drain_signal(tenant_id), DRAIN_FLAG_SECONDS):
        return  # a drain holds the slot, is told, and looks for new events before it ends
    try:
        telephony_events_drain.delay(tenant_id, slot)
    except Exception:  # broker down: the rows are committed, the sweeper will process them
        shared_redis.flag_lower(flag)
        logger.exception(
            "Could not start a drain of tenant %s's events; the sweeper will", tenant_id
        )


def _drain_continue(tenant_id: int, slot: int) -> None:
    """Hand the slot (its flag still up) to a new task, within the task time limit."""
    from calls.tasks import telephony_events_drain

    try:
        telephony_events_drain.delay(tenant_id, slot)
    except Exception:  # broker down: the flag expires and the sweeper starts one
        logger.exception("Could not continue the drain of tenant %s's events", tenant_id)


def _drain_flag(tenant_id: int, slot: int) -> str:
    return f"events-drain:{tenant_id}:{slot}"


def _drain_signal(tenant_id: int) -> str:
    return f"events-accepted:{tenant_id}"


def telephony_events_drain(*, tenant_id: int, slot: int = 0) -> int:
    """Apply the tenant's stored events, oldest first, a batch per transaction, until none is
    left; answer how many were applied. Run in the tenant's scope.

    A drain holds its slot's flag in Redis while it runs (raised by whoever started it): a new
    event starts no task while slot 0's is up, and a drain falling behind (DRAIN_BEHIND events
    waited for it) starts the next slot's, up to TELEPHONY_EVENT_DRAINS_PER_TENANT side by side
    (rows are claimed with SKIP LOCKED: drains never take the same event). An event that fails
    is left for the sweeper; the others are applied.
    """
    with batch_cache.kept_between_batches(DRAIN_SETTINGS_SECONDS):
        return _drain(tenant_id, slot)


def _drain(tenant_id: int, slot: int) -> int:
    flag, applied, failed, lowered = _drain_flag(tenant_id, slot), 0, set[int](), False
    started, idle, renewed = time.monotonic(), 0, -float(DRAIN_FLAG_SECONDS)
    partial_at = -float("inf")  # when the last batch that was not full was claimed
    while True:
        # Events keep coming, but fewer than a batch: let a few gather rather than claim each
        # on its own (a batch of one cost twice the CPU an event of a full one did). A drain's
        # first batch, and one after a quiet spell, is claimed at once.
        gather = partial_at + settings.TELEPHONY_EVENT_DRAIN_GATHER_SECONDS - time.monotonic()
        time.sleep(max(gather, 0.0))
        claiming = time.monotonic()
        with deliveries.first_attempts_here():
            batch = _batch_apply(tenant_id, skip=failed)
        applied, failed = applied + batch.applied, failed | batch.failed
        if batch.claimed:
            partial_at = claiming if batch.claimed < DRAIN_BATCH else -float("inf")
        # Still running: renewed now and then, not every batch (a Redis round trip an event at
        # a steady rate), and at once when this drain had lowered it.
        if batch.claimed and (lowered or time.monotonic() - renewed > DRAIN_FLAG_SECONDS / 3):
            shared_redis.flag_raise(flag, DRAIN_FLAG_SECONDS, again=True)
            renewed = time.monotonic()
        if batch.claimed and time.monotonic() - started > DRAIN_RUN_SECONDS:
            _drain_continue(tenant_id, slot)  # a fresh task goes on
            return applied
        # Events waited for this one: get help. After a gather, only a full batch says so.
        behind = batch.claimed >= (DRAIN_BATCH if gather > 0 else DRAIN_BEHIND)
        if behind and slot + 1 < settings.TELEPHONY_EVENT_DRAINS_PER_TENANT:
            _drain_start(tenant_id, slot + 1)
        wait = settings.TELEPHONY_EVENT_DRAIN_WAIT_SECONDS
        if batch.claimed and (batch.claimed >= DRAIN_BATCH or lowered or not wait):
            idle = 0
            continue  # more are likely waiting already
        idle = 0 if batch.claimed else idle + 1
        if idle <= DRAIN_IDLE_LOOKS and not lowered and wait:
            # More events are likely soon: taking them here saves the task and the per-batch
            # work of a drain of their own (a drain per event or two doubled their CPU). Any
            # accepted since this batch's claim have signalled: the wait ends at once.
            shared_redis.signal_wait(_drain_signal(tenant_id), wait)
            continue
        if lowered or slot:
            shared_redis.flag_lower(flag)
            return applied
        # Looks done. An event stored while the flag was up started no drain of its own: lower
        # the flag, then look once more; an event stored after that starts a drain itself.
        shared_redis.flag_lower(flag)
        lowered = True


@dataclass
class Batch:
    claimed: int = 0
    applied: int = 0
    failed: set[int] = field(default_factory=set)


def _batch_apply(tenant_id: int, *, skip: set[int]) -> Batch:
    """Claim up to DRAIN_BATCH waiting events and apply them in one transaction.

    Should one fail, that transaction is rolled back and each is applied in its own, so that
    one bad event never holds the others back (it stays waiting, for the sweeper).
    """
    claimed: list[int] = []
    try:
        with transaction.atomic(), batch_cache.batch_cache():
            rows = _claim(tenant_id, skip)
            claimed = [row.pk for row in rows]
            for row in rows:
                _process(row)
            if connection.vendor == "postgresql":
                drain_statements.mark_processed(rows)
            else:
                TelephonyEvent.objects.bulk_update(rows, ["call", "processed_at"])
        return Batch(claimed=len(rows), applied=len(rows))
    except Exception:
        if not claimed:
            raise
        logger.warning("A batch of events failed; applying them one at a time", exc_info=True)
    batch = Batch(claimed=len(claimed))
    for pk in claimed:
        try:
            telephony_event_process(event_pk=pk)
            batch.applied += 1
        except Exception:
            logger.exception("Telephony event %s could not be applied; the sweeper will retry", pk)
            batch.failed.add(pk)
    return batch


def _claim(tenant_id: int, skip: set[int]) -> list[TelephonyEvent]:
    """Up to DRAIN_BATCH waiting events nobody else holds, locked, sorted by call.

    Sorted by call so that drains lock the calls they share in the same order (no deadlock).
    """
    settings_version = None
    if connection.vendor == "postgresql":  # the same query, without the ORM's cost to build it
        rows, settings_version = drain_statements.claim(tenant_id, skip, DRAIN_BATCH)
    else:
        rows = list(
            TelephonyEvent.objects.select_for_update(of=("self",), no_key=True, skip_locked=True)
            .filter(processed_at__isnull=True)
            .exclude(pk__in=skip)
            .order_by("received_at", "pk")[:DRAIN_BATCH]
        )
    if rows:
        # The tenant with its settings as this batch's claim saw them: read again whenever
        # one of their rows changed (a delivery written as held after a resume would stay
        # held), else kept between batches (their secrets cost a decryption to read).
        tenant = batch_cache.cached(
            ("tenant", tenant_id, settings_version),
            lambda: Tenant.objects.select_related("callback_settings", "phonebook_settings").get(
                pk=tenant_id
            ),
            kept=settings_version is not None,
        )
        for row in rows:
            row.tenant = tenant
    return sorted(rows, key=lambda row: (str(row.payload.get("call_id")), row.received_at))


def telephony_event_process(*, event_pk: int) -> None:
    """Apply one stored event now, once (a re-run or a swept duplicate does nothing)."""
    with transaction.atomic():
        row = (
            TelephonyEvent.objects.select_for_update(of=("self",), no_key=True)
            .select_related("tenant__callback_settings")
            .filter(pk=event_pk, processed_at__isnull=True)
            .first()
        )
        if row is not None:
            _process(row)
            row.save(update_fields=["call", "processed_at"])


def _process(row: TelephonyEvent) -> None:
    tenant = row.tenant
    try:
        event = parse_event(row.payload, region=tenant.default_region, received_at=row.received_at)
    except InvalidEvent as error:  # valid when accepted; the tenant's region changed since
        logger.warning("Telephony event %s no longer reads: %s", row.pk, error)
    else:
        row.call = _apply(tenant, event)
    row.processed_at = timezone.now()  # saved by the caller


def _apply(tenant: Tenant, event: InboundEvent) -> Call:
    locked = _call_for(tenant, event)
    call = locked.call
    was_ended = call.state == CallState.ENDED
    # Before the end is recorded: its callback is written from the call as it is then.
    if event.recording_url:
        call.recording = recordings.recording_attach(call=call, location=event.recording_url)
    elif event.recording:
        call.recording = recordings.recording_ensure(call=call)
    if event.start_time and event.kind != CallState.INITIATED:  # e.g. an end that came first
        call = call_event_record(
            call=call,
            kind=CallState.INITIATED,
            occurred_at=event.start_time,
            locked=True,
            events=locked.events(),
        )
    if event.kind:
        call = call_event_record(
            call=call,
            kind=event.kind,
            occurred_at=event.occurred_at,
            status=event.status,
            duration=event.duration,
            locked=True,
            events=locked.events(),
        )
    if event.type == "analytics.completed" and event.analytics:
        signals.call_analyzed.send(sender=Call, call=call)
        live.call_analyzed_publish(call=call)
    if was_ended and (
        event.analytics or event.recording_url or event.disposition or event.variables
    ):
        signals.call_changed.send(sender=Call, call=call)
    return call


def _call_for(tenant: Tenant, event: InboundEvent) -> LockedCall:
    """The call this event is about, locked, created by whichever event arrives first.

    Events of one call are applied one at a time: the call's lock (or, for a call inserted
    here, its uncommitted row) is held until they commit. A drain's batch is one transaction
    sorted by call, so the next events of a call in it reuse the call as the last one left it.
    """
    inbound = event.direction != Call.Direction.OUTBOUND
    known = {
        "customer_number": event.from_number if inbound else event.to_number,
        "from_number": event.to_number if inbound else event.from_number,
        "crm_username": event.crm_username,
        "agent_number": event.agent_number,
    }
    locked = batch_cache.cached(
        ("locked call", tenant.pk, event.call_id), lambda: _call_lock(tenant, event, known)
    )
    call = locked.call
    changed = [name for name, value in known.items() if value and not getattr(call, name)]
    for name in changed:
        setattr(call, name, known[name])
    if call.agent_id is None and (agent := _agent(event)):
        call.agent, call.crm_username = agent, agent.crm_username
        call.agent_number = call.agent_number or agent.phone_number
        changed += ["agent", "crm_username", "agent_number"]
    if event.disposition:
        call.disposition = event.disposition
        changed.append("disposition")
    for name, value in event.analytics.items():
        setattr(call, name, value)
        changed.append(name)
    if event.variables and {**call.variables, **event.variables} != call.variables:
        call.variables = {**call.variables, **event.variables}
        changed.append("variables")
    if changed:
        call.save(update_fields=[*set(changed), "updated_at"])
    return locked


def _call_lock(tenant: Tenant, event: InboundEvent, known: dict[str, str]) -> LockedCall:
    inbound = event.direction != Call.Direction.OUTBOUND
    call = Call(
        tenant=tenant,
        external_id=event.call_id,
        **known,
        direction=Call.Direction.INBOUND if inbound else Call.Direction.OUTBOUND,
        call_type=Call.CallType.SERVER,
        disposition=tenant.callback_settings.default_disposition,
        start_time=event.occurred_at,
    )
    if connection.vendor == "postgresql":
        return drain_statements.call_insert_or_lock(call)
    if inserts.insert_new(call):  # one statement whether or not an earlier event made it
        Call.recording.related.set_cached_value(call, None)
        return LockedCall(call, known_events=[])  # new: no events, no recording
    call = (
        Call.objects.select_for_update(of=("self",), no_key=True)
        .select_related("recording")
        # Spelled as the unique index's predicate: a prepared statement's generic plan can
        # use that partial index only then (else it scanned every call of the tenant).
        .exclude(external_id="")
        .get(external_id=event.call_id)
    )
    call.tenant = tenant  # with its callback settings, loaded once for a drain's batch
    return LockedCall(call)


def _agent(event: InboundEvent) -> Agent | None:
    if event.crm_username:
        return Agent.objects.filter(crm_username=event.crm_username).first()
    if event.agent_number:
        return Agent.objects.filter(phone_number=event.agent_number).order_by("pk").first()
    return None


def telephony_events_sweep(*, limit: int = 500) -> int:
    """Start a drain for each tenant with events still waiting a while after they arrived (a
    drain lost with its worker, or an event that failed); answer how many events wait."""
    stale = timezone.now() - timedelta(seconds=settings.TELEPHONY_EVENT_STALE_SECONDS)
    with across_all_tenants():
        lost = list(
            TelephonyEvent.objects.filter(processed_at__isnull=True, received_at__lt=stale)
            .order_by("received_at")
            .values_list("tenant_id", flat=True)[:limit]
        )
    from calls.tasks import telephony_events_drain

    for tenant_id in set(lost):  # not through the flag: it may be held by the lost drain
        telephony_events_drain.delay(tenant_id, 0)
    return len(lost)
