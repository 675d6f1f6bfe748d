"""Twilio's Celery task (loaded by CallsConfig.ready with every engine's tasks)."""

from celery import shared_task

from core.scoping import tenant_scope

TRIES = 4


@shared_task(ignore_result=True)
def twilio_originate(tenant_id: int, call_id: str, attempt: int = 1) -> None:
    """Ask Twilio to ring the agent of a placed call (again, after a 429, up to TRIES times)."""
    from calls.gateways.twilio.calls import originate_now
    from calls.gateways.twilio.rest import TwilioError

    with tenant_scope(tenant_id):
        try:
            originate_now(call_id=call_id, final=attempt >= TRIES)
        except TwilioError:  # surely not taken by Twilio, and worth another try
            twilio_originate.apply_async((tenant_id, call_id, attempt + 1), countdown=2**attempt)
