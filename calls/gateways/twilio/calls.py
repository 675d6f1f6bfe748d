"""What happens to our call when Twilio places it or reports on its legs."""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from calls.events import telephony_event_accept
from calls.gateways import gateway_for
from calls.gateways.twilio import rest
from calls.gateways.twilio.gateway import TwilioGateway, inbound_event, leg_event
from calls.models import Call, CallState, CallStatus
from tenants.models import Tenant

logger = logging.getLogger(__name__)


def originate_now(*, call_id: str, final: bool) -> None:
    """Ring the agent; a refusal (or the last failed try) ends the call FAILED.

    Raises TwilioError only when another try is worth it: Twilio surely did not take the
    request (429, refused connection) and this was not the last try.
    """
    from calls.services import call_event_record

    call = Call.objects.select_related("tenant__telephony_settings", "agent").get(call_id=call_id)
    if call.state == CallState.ENDED:
        return  # hung up before it could ring
    gateway = gateway_for(call.tenant)
    assert isinstance(gateway, TwilioGateway)
    try:
        agent_leg = rest.call_create(gateway.account, gateway.agent_leg_fields(call))
    except rest.TwilioError as error:
        if error.retryable and not final:
            raise
        logger.warning("Twilio did not place call %s: %s", call.call_id, error)
        call_event_record(
            call=call, kind=CallState.ENDED, status=CallStatus.FAILED, occurred_at=timezone.now()
        )
        return
    legs_record(call=call, leg="agent", call_sid=agent_leg)


def legs_record(*, call: Call, leg: str, call_sid: str) -> Call:
    """Remember the engine's id of one of the call's legs (the first one reported stays)."""
    with transaction.atomic():
        call = Call.objects.select_for_update(of=("self",), no_key=True).get(pk=call.pk)
        if leg not in call.engine_legs:
            call.engine_legs = {**call.engine_legs, leg: call_sid}
            call.save(update_fields=["engine_legs", "updated_at"])
    return call


def leg_progress(*, call: Call, leg: str, form: dict[str, str]) -> None:
    """Record one of Twilio's progress callbacks about a leg of the call."""
    if leg in ("agent", "customer") and form.get("CallSid"):
        call = legs_record(call=call, leg=leg, call_sid=form["CallSid"])
    event = leg_event(call, leg, form)
    if event is not None:
        telephony_event_accept(tenant=call.tenant, body=event, source="twilio", raw=form)


def inbound_progress(tenant: Tenant, call_sid: str, form: dict[str, str]) -> None:
    """Record the agent's ringing, answer or (DialCallStatus) end of an inbound call."""
    event = inbound_event(call_sid, form)
    if event is not None:
        telephony_event_accept(tenant=tenant, body=event, source="twilio", raw=form)
