"""Reads for what a call set off: its CRM logs and app runs."""

from django.db.models import QuerySet

from automations.models import AppRun, CrmLog
from calls.models import Call


def call_crm_logs(*, call: Call) -> QuerySet[CrmLog]:
    """The call's CRM logs, each with its connection and every attempt, oldest first."""
    return (
        CrmLog.objects.filter(call=call)
        .select_related("connection")
        .prefetch_related("attempts")
        .order_by("created_at")
    )


def call_app_runs(*, call: Call) -> QuerySet[AppRun]:
    """The call's app runs in the order they ran (event, then app order)."""
    return AppRun.objects.filter(call=call).select_related("app").order_by("event", "order")
