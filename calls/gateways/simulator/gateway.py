"""The built-in simulator, the default engine: plays a realistic call in the worker.

Its outcome, ring and talk times and recording come from the tenant's simulator settings.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.utils import timezone

from calls import recordings
from calls.gateways.base import TelephonyGateway
from calls.lifecycle import Step, simulated_outcome, simulated_steps
from calls.models import Call, CallState, CallStatus

logger = logging.getLogger(__name__)

EVENT_TYPES: dict[str, str] = {
    CallState.AGENT_RINGING: "call.ringing",
    CallState.CUSTOMER_RINGING: "call.ringing",
    CallState.ANSWERED: "call.answered",
    CallState.ENDED: "call.end",
}
RINGING: dict[str, str] = {CallState.AGENT_RINGING: "agent", CallState.CUSTOMER_RINGING: "customer"}


class SimulatorGateway(TelephonyGateway):
    """Plays a realistic event sequence in the worker; the outcome comes from tenant settings."""

    def originate(self, call: Call) -> None:
        from calls.gateways.simulator.tasks import simulator_advance
        from calls.services import call_event_record

        # The engine's id for the call: its events name it (the simulator's is ours).
        call.external_id = str(call.call_id)
        call.save(update_fields=["external_id", "updated_at"])

        def start() -> None:
            try:
                simulator_advance.delay(call.tenant_id, str(call.call_id), 0)
            except Exception:  # broker down: the call cannot start, and the CRM must hear so
                logger.exception("Could not start simulated call %s", call.call_id)
                call_event_record(
                    call=call,
                    kind=CallState.ENDED,
                    status=CallStatus.FAILED,
                    occurred_at=timezone.now(),
                )

        transaction.on_commit(start)

    def hang_up(self, call: Call) -> None:
        """Nothing to tell: the simulator stops at its next step once the call has ended."""

    def transfer(self, call: Call, to_number: str) -> None:
        """The simulated switch re-bridges at once; the talk continues on the same call."""

    def add_party(self, call: Call, number: str) -> None:
        """The simulated switch conferences the number in at once."""


def simulator_step(*, call_id: str, step: int) -> None:
    """Report step `step` of the simulated call as an engine would; schedule the next one.

    The event takes the ingest path every engine's events take (calls/events.py).
    """
    from calls.events import telephony_event_accept
    from calls.gateways.simulator.tasks import simulator_advance

    call = Call.objects.select_related("tenant__telephony_settings").get(call_id=call_id)
    tenant = call.tenant
    simulator = tenant.telephony_settings
    status = simulated_outcome(call.customer_number, simulator.simulator_outcomes)
    steps = simulated_steps(
        status, simulator.simulator_ring_seconds, simulator.simulator_talk_seconds
    )
    if call.state == CallState.ENDED or step >= len(steps):
        return  # hung up meanwhile, or done
    current = steps[step]
    with transaction.atomic():
        # Only a call that connects has audio; its URL exists before the end writes the callback.
        if current.kind == CallState.ANSWERED and simulator.simulator_recording:
            recordings.recording_attach(call=call, location=recordings.SIMULATED_LOCATION)
        telephony_event_accept(tenant=tenant, body=_event(call, step, current), source="simulator")
    if step + 1 < len(steps):
        simulator_advance.apply_async(
            (call.tenant_id, call_id, step + 1), countdown=steps[step + 1].delay
        )


def _event(call: Call, step: int, current: Step) -> dict[str, Any]:
    """The step in our event format (calls/inbound.py), about the call's engine id."""
    event = {
        "id": f"simulator:{call.call_id}:{step}",
        "type": EVENT_TYPES[current.kind],
        "call_id": call.external_id,
        "direction": call.direction,
        "timestamp": timezone.now().isoformat(),
    }
    if current.kind in RINGING:
        event["ringing"] = RINGING[current.kind]
    if current.status:
        event["status"] = current.status
    return event
