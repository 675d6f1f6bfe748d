"""Celery tasks for calls: thin, id-only, each entering the tenant's scope."""

from celery import shared_task

from calls import alerts, deliveries, events, recordings
from core.scoping import tenant_scope


@shared_task(ignore_result=True)
def delivery_send(tenant_id: int, delivery_id: str) -> None:
    """Make a delivery's next attempt (does nothing if it is not due or already done)."""
    with tenant_scope(tenant_id):
        deliveries.delivery_attempt(delivery_id=delivery_id)


@shared_task(ignore_result=True)
def deliveries_sweep() -> None:
    """Re-send deliveries whose send was lost (beat)."""
    deliveries.deliveries_sweep()


@shared_task(ignore_result=True)
def telephony_events_drain(tenant_id: int, slot: int = 0) -> None:
    """Apply the tenant's stored telephony events to their calls, in batches, until none wait."""
    with tenant_scope(tenant_id):
        events.telephony_events_drain(tenant_id=tenant_id, slot=slot)


@shared_task(ignore_result=True)
def telephony_event_process(tenant_id: int, event_pk: int) -> None:
    """Apply one stored telephony event (tasks queued before drains existed)."""
    with tenant_scope(tenant_id), deliveries.first_attempts_here():
        events.telephony_event_process(event_pk=event_pk)


@shared_task(ignore_result=True)
def telephony_events_sweep() -> None:
    """Start drains for telephony events left waiting (beat)."""
    events.telephony_events_sweep()


@shared_task(ignore_result=True)
def callback_alerts_send() -> None:
    """Tell owners whose callback URL keeps failing (beat)."""
    alerts.callback_alerts_send()


@shared_task(ignore_result=True)
def recording_copy(tenant_id: int, recording_pk: int) -> None:
    """Copy a recording into our storage; tried again later while another try may do better."""
    with tenant_scope(tenant_id):
        try:
            recordings.recording_copy_now(recording_pk=recording_pk)
        except recordings.CopyFailed:
            attempts = recordings.copy_attempts(recording_pk)
            recording_copy.apply_async((tenant_id, recording_pk), countdown=5 * 2**attempts)


@shared_task(ignore_result=True)
def recordings_sweep() -> None:
    """Re-send copies whose task was lost, and apply each tenant's retention (beat)."""
    for tenant_id, recording_pk in recordings.recordings_copy_stale():
        recording_copy.delay(tenant_id, recording_pk)
    recordings.recordings_retention_apply()
