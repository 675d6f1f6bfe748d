"""Hooks on the calls signals: write the after-call outbox rows in the call's transaction."""

from typing import Any

from django.dispatch import receiver
from django.utils import timezone

from automations import alerts, app_runs, crm_logging
from automations.models import App
from calls.models import Call
from calls.signals import call_analyzed, call_changed, call_ended, call_started
from contacts.services import contacts_call_record
from tenants.models import Tenant
from tenants.signals import owners_alerted


@receiver(call_started, sender=Call)
def call_started_outbox(*, call: Call, **_: Any) -> None:
    app_runs.app_runs_create(call=call, event=App.Event.CALL_START)


@receiver(call_ended, sender=Call)
def call_ended_outbox(*, call: Call, **_: Any) -> None:
    if call.customer_number and call.tenant.phonebook_settings.update_from_calls:
        at = call.start_time or call.end_time or timezone.now()
        contacts_call_record(e164=call.customer_number, at=at, status=call.status)
    crm_logging.crm_logs_create(call=call)
    for event in app_runs.call_end_events(call):
        app_runs.app_runs_create(call=call, event=event)


@receiver(call_analyzed, sender=Call)
def call_analyzed_outbox(*, call: Call, **_: Any) -> None:
    app_runs.app_runs_create(call=call, event=App.Event.ANALYTICS_COMPLETED)


@receiver(call_changed, sender=Call)
def call_changed_outbox(*, call: Call, **_: Any) -> None:
    crm_logging.crm_logs_mark_changed(call=call)


@receiver(owners_alerted, sender=Tenant)
def owners_alerted_on_slack(*, tenant: Tenant, subject: str, **_: Any) -> None:
    """The tenant's Slack apps carry the alert too (seed 000: Slack where a Slack app exists)."""
    alerts.slack_alert(tenant=tenant, text=f":warning: CallBridge: {subject}")
