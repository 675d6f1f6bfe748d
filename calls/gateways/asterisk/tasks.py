"""Asterisk's Celery task (loaded by CallsConfig.ready with every engine's tasks)."""

from celery import shared_task

from core.scoping import tenant_scope

TRIES = 4


@shared_task(ignore_result=True)
def asterisk_step(tenant_id: int, call_id: str, step: str, attempt: int = 1) -> None:
    """Take one step of a call on Asterisk (events.step_run), again if Asterisk did not answer."""
    from calls.gateways.asterisk.events import step_run
    from calls.gateways.asterisk.rest import AriError

    with tenant_scope(tenant_id):
        try:
            step_run(call_id=call_id, step=step)
        except AriError as error:
            if attempt >= TRIES or 400 <= error.status < 500:
                raise
            asterisk_step.apply_async((tenant_id, call_id, step, attempt + 1), countdown=attempt)
