"""Reads for connections and their sync runs (in the current tenant scope)."""

from django.db.models import QuerySet

from connectors.models import Connection, SyncRun


def connection_list() -> QuerySet[Connection]:
    return Connection.objects.order_by("id")


def sync_run_list(*, connection: Connection) -> QuerySet[SyncRun]:
    return SyncRun.objects.filter(connection=connection)
