"""Reads for connections and their sync runs (in the current tenant scope)."""

from django.db.models import OuterRef, QuerySet, Subquery

from connectors.models import Connection, SyncRun
from contacts.models import Contact


def connection_list() -> QuerySet[Connection]:
    return Connection.objects.order_by("id")


def sync_run_list(*, connection: Connection) -> QuerySet[SyncRun]:
    return SyncRun.objects.filter(connection=connection)


def connection_health() -> QuerySet[Connection]:
    """Connections with `last_synced_at`: when their latest successful sync run finished."""
    latest_success = SyncRun.objects.filter(
        connection=OuterRef("pk"), outcome=SyncRun.Outcome.SUCCEEDED
    ).order_by("-started_at")  # the syncrun_by_connection index, newest first
    return connection_list().annotate(
        last_synced_at=Subquery(latest_success.values("finished_at")[:1])
    )


def connection_list_with_last_run() -> QuerySet[Connection]:
    """Connections with their latest sync run's start and outcome (last_run_at, _outcome)."""
    latest = SyncRun.objects.filter(connection=OuterRef("pk")).order_by("-started_at", "-id")
    return connection_list().annotate(
        last_run_at=Subquery(latest.values("started_at")[:1]),
        last_run_outcome=Subquery(latest.values("outcome")[:1]),
    )


def synced_contact_count(*, connection: Connection) -> int:
    """The phonebook's contacts that came from this connection (deleted with it)."""
    return Contact.objects.filter(source_connection_id=connection.pk).count()
