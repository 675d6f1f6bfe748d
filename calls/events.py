"""Writes for telephony events: accept (store, then process after commit), process, sweep.

Accepting only validates and stores the raw event (the inbox row, unique per tenant and event
id), so the phone system gets its answer in milliseconds; a `realtime` task then applies it to
the call with the same lifecycle code the simulator uses (`services.call_event_record`), and a
beat task re-sends events whose task was lost.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from calls import live, recordings, signals
from calls.inbound import InboundEvent, InvalidEvent, body_hash, parse_event
from calls.models import Call, CallState, TelephonyEvent
from calls.services import call_event_record
from core.scoping import across_all_tenants
from tenants.models import Agent, Tenant

logger = logging.getLogger(__name__)

TOKEN_TAG = "cbe"  # noqa: S105 - the visible tag of events URL tokens, not a secret
EVENTS_URL_NAME = "telephony-events-by-token"


class EventConflict(Exception):
    """An event id already names a different event."""


def telephony_event_accept(
    *, tenant: Tenant, body: dict, source: str, raw: dict | None = None
) -> tuple[TelephonyEvent, bool]:
    """Validate and store one event; a new one is processed once this commits.

    Returns the event's row and whether it is new (False: a duplicate, which changes nothing).
    Raises InvalidEvent, or EventConflict when the id already names a different event.
    """
    now = timezone.now()
    event = parse_event(body, region=tenant.default_region, received_at=now)
    digest = body_hash(body)
    with transaction.atomic():
        row, created = TelephonyEvent.objects.get_or_create(
            tenant=tenant,
            event_id=event.id,
            defaults={
                "type": event.type,
                "source": source,
                "payload": body,
                "raw": raw,
                "body_hash": digest,
                "received_at": now,
            },
        )
        if not created and row.body_hash != digest:
            raise EventConflict(
                f"Event id '{event.id}' was already used for a different event; "
                "give each event its own id."
            )
        if created:
            _process_after_commit(row)
    return row, created


def _process_after_commit(row: TelephonyEvent) -> None:
    from calls.tasks import telephony_event_process

    args = (row.tenant_id, row.pk)

    def enqueue() -> None:
        try:
            telephony_event_process.delay(*args)
        except Exception:  # broker down: the row is committed, the sweeper will process it
            logger.exception("Could not enqueue telephony event %s; the sweeper will", args[1])

    transaction.on_commit(enqueue)


def telephony_event_process(*, event_pk: int) -> None:
    """Apply a stored event to its call, once (a re-run or a swept duplicate does nothing)."""
    with transaction.atomic():
        row = (
            TelephonyEvent.objects.select_for_update(of=("self",), no_key=True)
            .select_related("tenant__callback_settings")
            .filter(pk=event_pk)
            .first()
        )
        if row is None or row.processed_at is not None:
            return
        try:
            event = parse_event(
                row.payload, region=row.tenant.default_region, received_at=row.received_at
            )
        except InvalidEvent as error:  # valid when accepted; the tenant's region changed since
            logger.warning("Telephony event %s no longer reads: %s", row.pk, error)
        else:
            row.call = _apply(row.tenant, event)
        row.processed_at = timezone.now()
        row.save(update_fields=["call", "processed_at"])


def _apply(tenant: Tenant, event: InboundEvent) -> Call:
    call = _call_for(tenant, event)
    was_ended = call.state == CallState.ENDED
    # Before the end is recorded: its callback is written from the call as it is then.
    if event.recording_url:
        recordings.recording_attach(call=call, location=event.recording_url)
    elif event.recording:
        recordings.recording_ensure(call=call)
    if event.start_time and event.kind != CallState.INITIATED:  # e.g. an end that came first
        call_event_record(call=call, kind=CallState.INITIATED, occurred_at=event.start_time)
    if event.kind:
        call = call_event_record(
            call=call,
            kind=event.kind,
            occurred_at=event.occurred_at,
            status=event.status,
            duration=event.duration,
        )
    if event.type == "analytics.completed" and event.analytics:
        signals.call_analyzed.send(sender=Call, call=call)
        live.call_analyzed_publish(call=call)
    if was_ended and (
        event.analytics or event.recording_url or event.disposition or event.variables
    ):
        signals.call_changed.send(sender=Call, call=call)
    return call


def _call_for(tenant: Tenant, event: InboundEvent) -> Call:
    """The call this event is about, locked; created by whichever event arrives first."""
    inbound = event.direction != Call.Direction.OUTBOUND
    known = {
        "customer_number": event.from_number if inbound else event.to_number,
        "from_number": event.to_number if inbound else event.from_number,
        "crm_username": event.crm_username,
        "agent_number": event.agent_number,
    }
    # INSERT ... ON CONFLICT DO NOTHING: one statement whether or not an earlier event made it.
    new_call = Call(
        tenant=tenant,
        external_id=event.call_id,
        **known,
        direction=Call.Direction.INBOUND if inbound else Call.Direction.OUTBOUND,
        call_type=Call.CallType.SERVER,
        disposition=tenant.callback_settings.default_disposition,
        start_time=event.occurred_at,
    )
    Call.objects.bulk_create([new_call], ignore_conflicts=True)
    # Events of one call are applied one at a time: this lock is held until the event commits.
    call = Call.objects.select_for_update(of=("self",), no_key=True).get(external_id=event.call_id)
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
    return call


def _agent(event: InboundEvent) -> Agent | None:
    if event.crm_username:
        return Agent.objects.filter(crm_username=event.crm_username).first()
    if event.agent_number:
        return Agent.objects.filter(phone_number=event.agent_number).order_by("pk").first()
    return None


def telephony_events_sweep(*, limit: int = 500) -> int:
    """Re-send events still unprocessed a while after they arrived (lost task or worker)."""
    stale = timezone.now() - timedelta(seconds=settings.TELEPHONY_EVENT_STALE_SECONDS)
    with across_all_tenants(), transaction.atomic():
        lost = list(
            TelephonyEvent.objects.filter(processed_at__isnull=True, received_at__lt=stale)
            .order_by("received_at")
            .values_list("tenant_id", "pk")[:limit]
        )
    from calls.tasks import telephony_event_process

    for tenant_id, pk in lost:
        telephony_event_process.delay(tenant_id, pk)
    return len(lost)
