"""Writes for calls: place one, record its events, hang up, set disposition and notes."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from calls import deliveries, live, signals, signing
from calls.gateways import gateway_class, gateway_for
from calls.lifecycle import Event, merge_events
from calls.models import Call, CallEvent, CallParty, CallState, CallStatus, GatewayConfig
from core import inserts
from tenants.models import Agent, Tenant

# How long a rotated-out signing secret keeps signing beside the new one.
SIGNING_SECRET_GRACE = timedelta(hours=24)


# What call_event_record changes on the call: the merge of its events.
MERGED_FIELDS = ["state", "status", "start_time", "answer_time", "end_time", "duration"]


class CallConflict(Exception):
    """The request cannot apply to the call as it is (e.g. hanging up an ended call)."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


def call_place(
    *,
    tenant: Tenant,
    call_type: str,
    from_number: str,
    customer_number: str,
    agent: Agent,
    uuid: str = "",
) -> tuple[Call, bool]:
    """Start an outbound call (or return the one this uuid already started); True if new.

    The call, its first event and the gateway's originate request commit together or not at all.
    """
    fields = {
        "call_type": call_type,
        "from_number": from_number,
        "customer_number": customer_number,
        "agent": agent,
    }
    if uuid and (existing := Call.objects.filter(uuid=uuid).first()):
        return _replayed(existing, fields), False
    now = timezone.now()
    try:
        with transaction.atomic():
            call = Call.objects.create(
                tenant=tenant,
                uuid=uuid,
                direction=Call.Direction.OUTBOUND,
                crm_username=agent.crm_username,
                agent_number=agent.phone_number,
                disposition=tenant.callback_settings.default_disposition,
                start_time=now,
                **fields,
            )
            event = CallEvent.objects.create(
                tenant=tenant, call=call, kind=CallState.INITIATED, occurred_at=now
            )
            live.call_event_publish(call=call, event=event)
            signals.call_started.send(sender=Call, call=call)
            gateway_for(tenant).originate(call)
    except IntegrityError:
        if not uuid:
            raise
        # A concurrent request with the same uuid won the race: answer with its call.
        return _replayed(Call.objects.get(uuid=uuid), fields), False
    return call, True


def _replayed(call: Call, fields: dict) -> Call:
    differs = [name for name, value in fields.items() if getattr(call, name) != value]
    if differs:
        raise CallConflict(
            f"uuid '{call.uuid}' already names call {call.call_id} with a different "
            f"{', '.join(differs)}; send a new uuid for a new call.",
            code="uuid_conflict",
        )
    return call


def call_event_record(
    *,
    call: Call,
    kind: str,
    occurred_at: datetime,
    status: str = "",
    duration: int | None = None,
    locked: bool = False,
    events: list[CallEvent] | None = None,
) -> Call:
    """Add one event and re-merge the call; when it first ends, write its callback (outbox).

    `locked`: the caller holds the call's lock in this transaction and `call` is as the lock
    found it (changed only by that caller), with its tenant's callback settings and recording.
    `events`: the call's events, when the locking caller knows them without a query (a call it
    has just inserted has none); the new event is added to that list.
    """
    # No savepoint: nothing below is caught, so a failure fails the caller's transaction anyway.
    with transaction.atomic(savepoint=False):
        if not locked:
            call = (
                Call.objects.select_for_update(of=("self",), no_key=True)
                .select_related("tenant__callback_settings", "recording")
                .get(pk=call.pk)
            )
        if events is None:
            events = list(call.events.all())
        if any(e.kind == kind for e in events):
            return call
        # The call's lock makes this the only writer of its events: no race on (call, kind).
        event = CallEvent(
            tenant_id=call.tenant_id,
            call=call,
            kind=kind,
            status=status,
            occurred_at=occurred_at,
            duration=duration,
        )
        inserts.insert(event)
        events.append(event)
        was_ended = call.state == CallState.ENDED
        merged = merge_events([Event(e.kind, e.occurred_at, e.status, e.duration) for e in events])
        call.state, call.status = merged.state, merged.status
        call.start_time = merged.start_time or call.start_time
        call.answer_time, call.end_time = merged.answer_time, merged.end_time
        call.duration = merged.duration
        inserts.update(call, (*MERGED_FIELDS, "updated_at"))
        live.call_event_publish(call=call, event=event)
        if kind == CallState.INITIATED:  # a phone system's call.start (placed calls: call_place)
            signals.call_started.send(sender=Call, call=call)
        if call.state == CallState.ENDED and not was_ended:
            deliveries.delivery_create(call=call)
            signals.call_ended.send(sender=Call, call=call)
    return call


def call_hang_up(*, call: Call) -> Call:
    with transaction.atomic():  # locked, so a simulated answer cannot slip in between
        call = (
            Call.objects.select_for_update(of=("self",), no_key=True)
            .select_related("tenant")
            .get(pk=call.pk)
        )
        if call.state == CallState.ENDED:
            raise CallConflict(f"Call {call.call_id} already ended ({call.status}).", "call_ended")
        gateway_for(call.tenant).hang_up(call)
        answered = call.state == CallState.ANSWERED
        return call_event_record(
            call=call,
            kind=CallState.ENDED,
            status=CallStatus.ANSWER if answered else CallStatus.CANCELED,
            occurred_at=timezone.now(),
        )


def call_party_add(*, call: Call, kind: str, number: str) -> Call:
    """Transfer the live call to `number`, or bring `number` in as a third party."""
    with transaction.atomic():
        call = (
            Call.objects.select_for_update(of=("self",), no_key=True)
            .select_related("tenant")
            .get(pk=call.pk)
        )
        if call.state != CallState.ANSWERED:
            raise CallConflict(
                f"Call {call.call_id} is {call.state}; only an answered call can take a "
                "transfer or a third party.",
                "call_not_answered",
            )
        gateway = gateway_for(call.tenant)
        if kind == CallParty.Kind.TRANSFER:
            gateway.transfer(call, number)
        else:
            gateway.add_party(call, number)
        CallParty.objects.create(
            tenant_id=call.tenant_id, call=call, kind=kind, number=number, added_at=timezone.now()
        )
    return call


def call_disposition_set(*, call: Call, disposition: str) -> Call:
    with transaction.atomic():
        call = _locked(call)
        call.disposition = disposition
        call.save(update_fields=["disposition", "updated_at"])
        _wrap_up_changed(call)
    return call


def call_notes_add(*, call: Call, notes: str) -> Call:
    with transaction.atomic():
        call = _locked(call)
        call.notes = f"{call.notes}\n{notes}" if call.notes else notes
        call.save(update_fields=["notes", "updated_at"])
        _wrap_up_changed(call)
    return call


def _locked(call: Call) -> Call:
    return (
        Call.objects.select_for_update(of=("self",), no_key=True)
        .select_related("tenant__callback_settings", "recording")
        .get(pk=call.pk)
    )


def _wrap_up_changed(call: Call) -> None:
    """Tell the apps; after the end, send the "call.updated" callback if the tenant asked."""
    signals.call_changed.send(sender=Call, call=call)
    if call.state == CallState.ENDED and call.tenant.callback_settings.on_update:
        deliveries.delivery_create(call=call, update=True)


def signing_secret_rotate(*, tenant: Tenant) -> str:
    """Issue a new signing secret (returned once); the old one keeps signing for a grace period."""
    new_secret = signing.secret_generate()
    callback = tenant.callback_settings
    if callback.signing_secret:
        callback.previous_signing_secret = callback.signing_secret
        callback.previous_signing_secret_expires_at = timezone.now() + SIGNING_SECRET_GRACE
    callback.signing_secret = new_secret
    callback.save(
        update_fields=[
            "signing_secret",
            "previous_signing_secret",
            "previous_signing_secret_expires_at",
        ]
    )
    return new_secret


def gateway_config_update(
    *,
    tenant: Tenant,
    engine: str,
    settings: dict[str, Any] | None = None,
    credentials: dict[str, Any] | None = None,
) -> GatewayConfig:
    """Switch the tenant's engine or change its settings; credentials merge within an engine.

    Raises GatewayConfigError naming what the engine cannot work with; nothing is saved then.
    """
    with transaction.atomic():
        config = GatewayConfig.objects.select_for_update().filter(
            tenant=tenant
        ).first() or GatewayConfig(tenant=tenant, engine=engine)
        same_engine = config.pk is not None and config.engine == engine
        merged = {**(config.credentials if same_engine else {}), **(credentials or {})}
        merged = {name: value for name, value in merged.items() if value not in ("", None)}
        new_settings = settings if settings is not None else config.settings if same_engine else {}
        gateway_class(engine).check_config(merged, new_settings)
        config.engine, config.settings, config.credentials = engine, new_settings, merged
        config.save()
    return config
