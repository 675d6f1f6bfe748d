"""Hooks on the calls signals: write the after-call outbox rows in the call's transaction."""

from typing import Any

from django.dispatch import receiver

from automations import crm_logging
from calls.models import Call
from calls.signals import call_changed, call_ended


@receiver(call_ended, sender=Call)
def log_ended_call(*, call: Call, **_: Any) -> None:
    crm_logging.crm_logs_create(call=call)


@receiver(call_changed, sender=Call)
def update_logged_call(*, call: Call, **_: Any) -> None:
    crm_logging.crm_logs_mark_changed(call=call)
