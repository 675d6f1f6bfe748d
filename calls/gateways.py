"""Telephony gateways: what places and controls calls. The built-in simulator is the default.

A gateway for a real engine implements `TelephonyGateway` and reports state changes through
`calls.services.call_event_record`; nothing else in the app changes. Operations it cannot do
raise `GatewayNotSupported` (answered as 501).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Protocol

from django.db import transaction
from django.utils import timezone

from calls import recordings
from calls.lifecycle import simulated_outcome, simulated_steps
from calls.models import Call, CallState, CallStatus

if TYPE_CHECKING:
    from tenants.models import Tenant


logger = logging.getLogger(__name__)


class GatewayNotSupported(Exception):
    """The tenant's gateway cannot do this operation."""


class TelephonyGateway(Protocol):
    def originate(self, call: Call) -> None: ...
    def hang_up(self, call: Call) -> None: ...
    def transfer(self, call: Call, to_number: str) -> None: ...
    def add_party(self, call: Call, number: str) -> None: ...


class SimulatorGateway:
    """Plays a realistic event sequence in the worker; the outcome comes from tenant settings."""

    def originate(self, call: Call) -> None:
        from calls.services import call_event_record
        from calls.tasks import simulator_advance

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


GATEWAYS: dict[str, type] = {"simulator": SimulatorGateway}


def gateway_for(tenant: Tenant) -> TelephonyGateway:
    return GATEWAYS["simulator"]()


def simulator_step(*, call_id: str, step: int) -> None:
    """Play step `step` of the call's simulated sequence and schedule the next one."""
    from calls.services import call_event_record
    from calls.tasks import simulator_advance

    call = Call.objects.select_related("tenant").get(call_id=call_id)
    tenant = call.tenant
    status = simulated_outcome(call.customer_number, tenant.simulator_outcomes)
    steps = simulated_steps(status, tenant.simulator_ring_seconds, tenant.simulator_talk_seconds)
    if call.state == CallState.ENDED or step >= len(steps):
        return  # hung up meanwhile, or done
    current = steps[step]
    with transaction.atomic():
        call = call_event_record(
            call=call, kind=current.kind, status=current.status, occurred_at=timezone.now()
        )
        # Only a call that connected has audio; its URL exists before the end writes the callback.
        if call.state == CallState.ANSWERED and tenant.simulator_recording:
            recordings.recording_attach(call=call, location=recordings.SIMULATED_LOCATION)
    if step + 1 < len(steps):
        simulator_advance.apply_async(
            (call.tenant_id, call_id, step + 1), countdown=steps[step + 1].delay
        )
