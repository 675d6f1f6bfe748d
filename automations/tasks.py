"""Celery tasks for after-call automations: thin, id-only, each entering the tenant's scope."""

from celery import shared_task

from automations import alerts, app_runs, crm_logging
from core.scoping import tenant_scope


@shared_task(ignore_result=True)
def crm_log_send(tenant_id: int, crm_log_id: str) -> None:
    """Make a CRM log's next attempt (does nothing if it is not due or already done)."""
    with tenant_scope(tenant_id):
        crm_logging.crm_log_send(crm_log_id=crm_log_id)


@shared_task(ignore_result=True)
def crm_logs_sweep() -> None:
    """Re-enqueue CRM logs whose task was lost (beat)."""
    crm_logging.crm_logs_sweep()


@shared_task(ignore_result=True)
def app_runs_execute(tenant_id: int, call_pk: int, event: str) -> None:
    """Run a call event's pending app runs in order."""
    with tenant_scope(tenant_id):
        app_runs.app_runs_execute(call_pk=call_pk, event=event)


@shared_task(ignore_result=True)
def app_runs_sweep() -> None:
    """Re-enqueue app runs whose task was lost (beat)."""
    app_runs.app_runs_sweep()


@shared_task(ignore_result=True)
def after_call_alerts_send() -> None:
    """Tell owners whose CRM call logging or apps keep failing (beat)."""
    alerts.after_call_alerts_send()
