"""What an ARI event about one of our channels means for its call, and the steps that follow.

`ari_message_receive` is the events socket's handler (listener.py): the event becomes our event
(stored, then processed: calls/events.py) and the next step is queued in the same transaction
(tasks.asterisk_step), so a stored state change always has its step. The steps (`step_run`) talk
to Asterisk from a worker. How engine states read as our statuses follows
../shared/reference/gateways.md part 4: the agent's leg decides until the customer is dialled;
from then on the customer's leg is the call.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from calls import recordings
from calls.events import EventConflict, telephony_event_accept
from calls.gateways import gateway_for
from calls.gateways.asterisk import rest
from calls.gateways.asterisk.gateway import (
    AGENT_RING_SECONDS,
    CUSTOMER_RING_SECONDS,
    LEG,
    RECORDING,
    AsteriskGateway,
    channel_id,
    parties,
)
from calls.inbound import InvalidEvent
from calls.models import Call, CallState, CallStatus
from tenants.models import Tenant

logger = logging.getLogger(__name__)

# ChannelDestroyed's Q.850 cause for a leg that was never answered -> our end status.
UNANSWERED_CAUSES = {
    16: CallStatus.CANCELED,  # normal clearing before an answer: the caller gave up
    17: CallStatus.BUSY,
    18: CallStatus.NO_ANSWER,
    19: CallStatus.NO_ANSWER,
    21: CallStatus.BUSY,  # rejected: reads as busy to users
    26: CallStatus.CANCELED,  # answered elsewhere
}
GONE_CAUSE = 38  # what a channel that ended while we were away reads as, unanswered: FAILED


def ari_message_receive(tenant: Tenant, message: dict[str, Any]) -> None:
    """Record one event from the app's socket; events about channels not ours are ignored."""
    if message.get("type") == "RecordingFinished":
        _recording_finished(tenant, message)
        return
    channel = message.get("channel") or message.get("peer") or {}
    found = LEG.fullmatch(str(channel.get("id", "")))
    if not found:
        return
    with transaction.atomic():
        call = (
            Call.objects.select_for_update(of=("self",), no_key=True)
            .filter(tenant=tenant, call_id=found["call"])
            .first()
        )
        if call is None:
            return
        event, step = _meaning(call, found["leg"], message)
        if event is not None:
            try:
                telephony_event_accept(tenant=tenant, body=event, source="asterisk", raw=message)
            except EventConflict:
                pass  # the same state change reported again (recovery, a re-sent event)
            except InvalidEvent:
                logger.warning("Unreadable ARI event for call %s: %s", call.call_id, message)
        if step:
            _queue_step(call, step)


def _recording_finished(tenant: Tenant, message: dict[str, Any]) -> None:
    """A bridge's recording is done: its file is where the copy fetches it from."""
    name = str((message.get("recording") or {}).get("name", ""))
    found = RECORDING.fullmatch(name)
    call = Call.objects.filter(tenant=tenant, call_id=found["call"]).first() if found else None
    if call is None:
        return
    gateway = gateway_for(tenant)
    assert isinstance(gateway, AsteriskGateway)
    event = {
        "id": f"ari:{name}:recording",
        "type": "recording.ready",
        "call_id": call.external_id,
        "direction": call.direction,
        "recording_url": gateway.recording_url(name),
    }
    with contextlib.suppress(EventConflict):  # the same file reported again
        telephony_event_accept(tenant=tenant, body=event, source="asterisk", raw=message)


def _meaning(call: Call, leg: str, message: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
    """(our event or None, the next step or "") for one ARI event about the call's `leg`."""
    kind = message.get("type")
    legs = call.engine_legs
    base = {
        "call_id": call.external_id,
        "direction": call.direction,
        "timestamp": str(message.get("timestamp") or timezone.now().isoformat()),
    }
    channel = f"ari:{channel_id(call, leg)}"
    if kind == "ChannelStateChange" and message["channel"].get("state") == "Ringing":
        if leg in ("agent", "customer"):
            return {**base, "id": f"{channel}:ringing", "type": "call.ringing", "ringing": leg}, ""
    elif kind == "StasisStart":
        if leg == "agent":
            return None, "dial_customer"
        if leg == "customer":
            _legs_update(call, answered=True)
            return {**base, "id": f"{channel}:answered", "type": "call.answered"}, "bridge"
        return None, f"join:{leg}"
    elif kind == "ChannelDestroyed":
        cause = int(message.get("cause") or 0)
        end = {**base, "id": f"{channel}:end", "type": "call.end"}
        if leg == "agent" and "customer" not in legs:
            return {**end, "status": UNANSWERED_CAUSES.get(cause, CallStatus.FAILED)}, ""
        if leg == "agent":
            return None, "" if legs.get("transferred") else "hang_up:customer"
        if leg == "customer":
            if legs.get("answered"):
                return {**end, "status": CallStatus.ANSWER}, "hang_up_rest"
            return {
                **end,
                "status": UNANSWERED_CAUSES.get(cause, CallStatus.FAILED),
            }, "hang_up_rest"
        if legs.get("transferred") and legs.get(leg) == legs["transferred"]:
            return None, "hang_up:customer"  # the transferred-to party hung up: the call is over
    return None, ""


def _queue_step(call: Call, step: str) -> None:
    from calls.gateways.asterisk.tasks import asterisk_step

    args = (call.tenant_id, str(call.call_id), step)
    transaction.on_commit(lambda: asterisk_step.delay(*args))


def _legs_update(call: Call, **changes: Any) -> None:
    """Note the engine's state of the call's legs (the caller holds the call's row lock)."""
    call.engine_legs = {**call.engine_legs, **changes}
    call.save(update_fields=["engine_legs", "updated_at"])


def step_run(*, call_id: str, step: str) -> None:
    """Take one step of a call on Asterisk; a dial Asterisk refuses ends the call FAILED."""
    with transaction.atomic():
        call = (
            Call.objects.select_for_update(of=("self",), no_key=True)
            .select_related("tenant", "agent")
            .get(call_id=call_id)
        )
        gateway = gateway_for(call.tenant)
        if not isinstance(gateway, AsteriskGateway):
            return  # the tenant changed engines meanwhile
        action, _, leg = step.partition(":")
        if action in ("dial_agent", "dial_customer"):
            _dial(gateway, call, "agent" if action == "dial_agent" else "customer")
        elif action == "bridge":  # a transfer answered first has hung the agent up already
            _bridge(
                gateway,
                call,
                ["customer"] if call.engine_legs.get("transferred") else ["agent", "customer"],
            )
        elif action == "join":
            _bridge(gateway, call, [leg])
            if call.engine_legs.get("transferred"):
                gateway.hang_up_leg(call, "agent")
        elif action == "hang_up":
            gateway.hang_up_leg(call, leg)
        elif action == "hang_up_rest":
            for other in ("agent", *parties(call)):
                gateway.hang_up_leg(call, other)
            _bridge_delete(gateway, call)


def _dial(gateway: AsteriskGateway, call: Call, leg: str) -> None:
    from calls.services import call_event_record

    if call.state == CallState.ENDED:
        if leg == "customer":
            gateway.hang_up_leg(call, "agent")  # hung up while the agent answered
        return
    _legs_update(call, **{leg: channel_id(call, leg)})
    if leg == "agent":
        ring = int(gateway.settings.get("agent_ring_seconds", AGENT_RING_SECONDS))
        endpoint = gateway.agent_endpoint(call)
    else:
        ring, endpoint = CUSTOMER_RING_SECONDS, gateway.customer_endpoint(call.customer_number)
    try:
        gateway.dial(call, leg, endpoint, ring)
    except rest.AriError as error:
        logger.warning("Asterisk did not dial the %s of call %s: %s", leg, call.call_id, error)
        call_event_record(
            call=call, kind=CallState.ENDED, status=CallStatus.FAILED, occurred_at=timezone.now()
        )
        if leg == "customer":
            gateway.hang_up_leg(call, "agent")


def _bridge(gateway: AsteriskGateway, call: Call, legs: list[str]) -> None:
    bridge = gateway.bridge_id(call)
    if not call.engine_legs.get("bridge"):
        try:
            rest.ari_request(
                gateway.server, "POST", "bridges", {"type": "mixing", "bridgeId": bridge}
            )
        except rest.AriError as error:
            if error.status != 409:  # made by an earlier try of this step
                raise
        _legs_update(call, bridge=bridge)
    channels = ",".join(channel_id(call, leg) for leg in legs)
    rest.ari_request(gateway.server, "POST", f"bridges/{bridge}/addChannel", {"channel": channels})
    if gateway.settings.get("record") and not call.engine_legs.get("recording"):
        _record(gateway, call, bridge)


def _record(gateway: AsteriskGateway, call: Call, bridge: str) -> None:
    """Record the bridge (the conversation; a channel's recording misses what it hears).

    Our link exists from now on, so the callback carries it; the audio follows once ARI has
    finished the file (RecordingFinished) and a worker has copied it to our storage.
    """
    params = {"name": bridge, "format": "wav", "ifExists": "overwrite"}
    rest.ari_request(gateway.server, "POST", f"bridges/{bridge}/record", params)
    _legs_update(call, recording=bridge)
    recordings.recording_ensure(call=call)


def _bridge_delete(gateway: AsteriskGateway, call: Call) -> None:
    """The call is over: its bridge goes (which ends the bridge's recording)."""
    if not call.engine_legs.get("bridge"):
        return
    try:
        rest.ari_request(gateway.server, "DELETE", f"bridges/{gateway.bridge_id(call)}")
    except rest.AriError as error:
        if error.status != 404:
            raise


def ari_recover(tenant: Tenant, gateway: AsteriskGateway) -> int:
    """After (re)connecting: what happened to our live calls' channels while nobody listened.

    Asterisk drops an app's events while its socket is closed and never replays them, so each
    leg of each live call is asked for (`GET /ari/channels/{id}`): a leg gone ended while we were
    away, a leg up was answered. Both read as the event we missed; answers how many.
    """
    found = 0
    since = timezone.now() - timedelta(days=1)
    recent = Call.objects.filter(tenant=tenant, updated_at__gte=since)
    for call in recent.filter(engine_legs__has_key="recording", recording__location=""):
        found += _missed_recording(tenant, gateway, str(call.engine_legs["recording"]))
    live = recent.exclude(state=CallState.ENDED)
    for call in live.exclude(engine_legs={}):
        for leg in ("agent", "customer", *parties(call)):
            if leg not in call.engine_legs:
                continue
            message = _missed_event(gateway, call, leg)
            if message is not None:
                found += 1
                ari_message_receive(tenant, message)
    return found


def _missed_recording(tenant: Tenant, gateway: AsteriskGateway, name: str) -> int:
    """A recording that finished while we were away is stored: read it as its RecordingFinished."""
    try:
        rest.ari_request(gateway.server, "GET", f"recordings/stored/{name}")
    except rest.AriError as error:
        if error.status != 404:
            raise
        return 0  # still recording, or never made
    _recording_finished(tenant, {"type": "RecordingFinished", "recording": {"name": name}})
    return 1


def _missed_event(gateway: AsteriskGateway, call: Call, leg: str) -> dict[str, Any] | None:
    snapshot = {"id": channel_id(call, leg)}
    now = timezone.now().isoformat()
    try:
        channel = rest.ari_request(gateway.server, "GET", rest.channel_path(snapshot["id"]))
    except rest.AriError as error:
        if error.status != 404:
            raise
        answered = call.engine_legs.get("answered") or (
            leg == "agent" and "customer" in call.engine_legs
        )
        cause = 16 if answered else GONE_CAUSE
        return {"type": "ChannelDestroyed", "channel": snapshot, "cause": cause, "timestamp": now}
    if channel.get("state") == "Up" and not _seen_up(call, leg):
        return {"type": "StasisStart", "channel": channel, "args": [leg], "timestamp": now}
    return None


def _seen_up(call: Call, leg: str) -> bool:
    legs = call.engine_legs
    if leg == "agent":
        return "customer" in legs
    if leg == "customer":
        return bool(legs.get("answered"))
    return bool(legs.get("bridge"))  # a party: joined by its step once the bridge exists
