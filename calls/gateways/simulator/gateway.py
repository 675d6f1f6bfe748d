"""The built-in simulator, the default engine: plays a realistic call in the worker.

Its outcome, ring and talk times and recording come from the tenant's simulator settings.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from calls import recordings
from calls.gateways.base import TelephonyGateway
from calls.lifecycle import simulated_outcome, simulated_steps
from calls.models import Call, CallState, CallStatus

logger = logging.getLogger(__name__)


class SimulatorGateway(TelephonyGateway):
    """Plays a realistic event sequence in the worker; the outcome comes from tenant settings."""

    def originate(self, call: Call) -> None:
        from calls.gateways.simulator.tasks import simulator_advance
        from calls.services import call_event_record

        if call.tenant.simulator_recording:  # the URL must exist before the callback is written
            recordings.recording_attach(call=call, location=recordings.SIMULATED_LOCATION)

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
    """Play step `step` of the call's simulated sequence and schedule the next one."""
    from calls.gateways.simulator.tasks import simulator_advance
    from calls.services import call_event_record

    call = Call.objects.select_related("tenant").get(call_id=call_id)
    tenant = call.tenant
    status = simulated_outcome(call.customer_number, tenant.simulator_outcomes)
    steps = simulated_steps(status, tenant.simulator_ring_seconds, tenant.simulator_talk_seconds)
    if call.state == CallState.ENDED or step >= len(steps):
        return  # hung up meanwhile, or done
    current = steps[step]
    call_event_record(
        call=call, kind=current.kind, status=current.status, occurred_at=timezone.now()
    )
    if step + 1 < len(steps):
        simulator_advance.apply_async(
            (call.tenant_id, call_id, step + 1), countdown=steps[step + 1].delay
        )
