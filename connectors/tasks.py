"""Celery tasks: thin wrappers that take ids, enter the tenant's scope and call the engine."""

from celery import shared_task
from django.conf import settings

from connectors import sync
from core.scoping import tenant_scope


@shared_task(soft_time_limit=330, time_limit=360)  # queued on "bulk" by its callers
def connection_sync(tenant_id: int, connection_id: int, kind: str) -> None:
    with tenant_scope(tenant_id):
        run = sync.connection_sync(
            connection_id=connection_id, kind=kind, time_budget=settings.SYNC_RUN_SECONDS
        )
    if run is not None and run.more_pending:  # a big sync goes on in the next task
        connection_sync.apply_async(args=[tenant_id, connection_id, kind], queue="bulk")


@shared_task  # on the default "realtime" queue: quick, never behind a sync
def syncs_dispatch() -> None:
    for tenant_id, connection_id, kind in sync.syncs_dispatch():
        connection_sync.apply_async(args=[tenant_id, connection_id, kind], queue="bulk")
