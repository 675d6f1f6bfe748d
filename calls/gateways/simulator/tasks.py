"""The simulator's Celery task (loaded by CallsConfig.ready with every engine's tasks)."""

from celery import shared_task

from calls import deliveries
from core.scoping import tenant_scope


# Named as before it moved here, so messages queued by an older release still run.
@shared_task(name="calls.tasks.simulator_advance", ignore_result=True)
def simulator_advance(tenant_id: int, call_id: str, step: int) -> None:
    """Play the next step of a simulated call."""
    from calls.gateways.simulator.gateway import simulator_step

    with tenant_scope(tenant_id), deliveries.first_attempts_here():
        simulator_step(call_id=call_id, step=step)
