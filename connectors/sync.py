"""The sync engine: incremental upserts page by page, the guarded full diff, the dispatcher.

Only this module catches ConnectorError and records what happened (SyncRun, connection status).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import connection as db
from django.db import connections as db_connections
from django.db import transaction
from django.utils import timezone

from connectors.interface import Connector, ConnectorError, Cursor, Page, SourceRecord
from connectors.models import Connection, SyncRun
from connectors.services import connector_for_connection
from contacts.models import Contact
from contacts.services import (
    SyncCounts,
    SyncedContact,
    contacts_delete,
    contacts_statistics_refresh,
    contacts_upsert_synced,
)
from core.scoping import across_all_tenants
from tenants.models import Agent

logger = logging.getLogger(__name__)

DEFAULT_MAX_DELETE_SHARE = 0.10
# The phonebook tables are analyzed when a run has created this many contacts, then each time
# the count doubles: the planner keeps up with a first sync (contacts_statistics_refresh).
ANALYZE_AFTER_CREATED = 2_000
_LOCK_NAMESPACE = 0x43_42_53_59 << 32  # "CBSY": keeps our advisory locks apart from others'
_FALLBACK_LOCK_SECONDS = 600
# The cursor and the run's counts are saved every this many pages rather than with each page
# (two statements a page were ~5 % of a sync's CPU); pages stored since are read again.
PROGRESS_EVERY_PAGES = 5


def connection_sync(
    *, connection_id: int, kind: str, time_budget: float | None = None
) -> SyncRun | None:
    """Run one sync of the connection (in the caller's tenant scope); None if one is running.

    An incremental run stops after `time_budget` seconds with its cursor saved; the returned
    run's `error` is empty and `more_pending` tells the caller to queue the rest.
    """
    with _sync_lock(connection_id) as locked:
        if not locked:
            logger.info("A sync of connection %s is already running: skipped", connection_id)
            return None
        connection = Connection.objects.select_related("tenant").get(pk=connection_id)
        if connection.status == Connection.Status.DISABLED:
            return None
        # We hold the lock, so a run still marked running died with its worker (kill -9, OOM).
        SyncRun.objects.filter(connection=connection, outcome=SyncRun.Outcome.RUNNING).update(
            outcome=SyncRun.Outcome.FAILED,
            error="The worker running this sync died; the next run resumed from its cursor.",
            finished_at=timezone.now(),
        )
        run = SyncRun.objects.create(tenant=connection.tenant, connection=connection, kind=kind)
        connector = connector_for_connection(connection)
        try:
            if kind == SyncRun.Kind.FULL:
                _full_diff(connection, connector, run)
            else:
                run.more_pending = _incremental(connection, connector, run, time_budget)
        except ConnectorError as error:
            _fail(connection, run, error)
        except Exception as error:  # a bug or the database: recorded here, raised to Celery
            run.outcome, run.error = (
                SyncRun.Outcome.FAILED,
                f"Internal error ({type(error).__name__}).",
            )
            raise
        finally:
            run.rate_limit_waits = connector.rate_limit_waits
            run.finished_at = timezone.now()
            run.save()
        return run


def _incremental(
    connection: Connection, connector: Connector, run: SyncRun, time_budget: float | None
) -> bool:
    started = time.monotonic()
    cursors = dict(connection.sync_cursor)
    owners = OwnerAgents(connector)
    analyze_at = ANALYZE_AFTER_CREATED
    unsaved = 0  # pages stored since the cursor was last saved
    try:
        for object_type in connector.object_types():
            cursor = Cursor.from_json(cursors.get(object_type))
            previous_page: set[str] = set()
            with contextlib.closing(_pages(connector, object_type, cursor, owners)) as pages:
                for page in pages:
                    contacts = _synced_contacts(page.records, owners)
                    with transaction.atomic():
                        counts = _upsert(connection, contacts, read_before=previous_page)
                    cursors[object_type] = page.cursor.as_json()
                    _add(run, counts, invalid=page.invalid)
                    unsaved += 1
                    if unsaved == PROGRESS_EVERY_PAGES:
                        _progress_save(connection, run, cursors)
                        unsaved = 0
                    previous_page = {contact.external_id for contact in contacts}
                    if run.created >= analyze_at:  # the tables grew: 2,000, 4,000 ... rows
                        contacts_statistics_refresh()
                        analyze_at = run.created * 2
                    if page.done:
                        break
                    if time_budget is not None and time.monotonic() - started > time_budget:
                        run.outcome = SyncRun.Outcome.SUCCEEDED  # its pages are in; next goes on
                        return True
    finally:
        if unsaved:  # the pages stored are kept whatever ends the run (the caller saves `run`)
            Connection.objects.filter(pk=connection.pk).update(sync_cursor=cursors)
    minutes = connection.settings.get("incremental_minutes") or settings.SYNC_INCREMENTAL_MINUTES
    run.outcome = SyncRun.Outcome.SUCCEEDED
    Connection.objects.filter(pk=connection.pk).update(
        status=Connection.Status.ACTIVE,
        last_error="",
        next_incremental_at=timezone.now() + timedelta(minutes=minutes),
    )
    return False


def _progress_save(connection: Connection, run: SyncRun, cursors: dict) -> None:
    """Save where the run stands: a killed worker resumes there, re-reading (not rewriting) the
    pages stored since."""
    with transaction.atomic():
        Connection.objects.filter(pk=connection.pk).update(sync_cursor=cursors)
        run.save()


def _upsert(
    connection: Connection, contacts: list[SyncedContact], *, read_before: set[str]
) -> SyncCounts:
    """Upsert a page; records the previous page already counted are not counted "unchanged".

    Keyset paging reads the records sharing the previous page's last modification time again:
    on a first sync they were just created, and "unchanged" would count them twice.
    """
    reread = [c for c in contacts if c.external_id in read_before]
    counts = contacts_upsert_synced(
        tenant=connection.tenant,
        source_connection_id=connection.pk,
        records=[c for c in contacts if c.external_id not in read_before],
    )
    if reread:
        again = contacts_upsert_synced(
            tenant=connection.tenant, source_connection_id=connection.pk, records=reread
        )
        counts.created += again.created
        counts.updated += again.updated
        counts.invalid_numbers += again.invalid_numbers
    return counts


def _pages(
    connector: Connector, object_type: str, cursor: Cursor, owners: OwnerAgents
) -> Iterator[Page]:
    """The pages from cursor on, each next one fetched on a thread while this one is written.

    The first page is fetched here, so a token refreshed at the start is saved on the caller's
    database connection; the thread's own connection (a token refreshed mid-run) is closed at
    the end. Pages come in order, each once: page N+1 is asked for with page N's cursor. The
    CRM's users, when a page names owners by id, are read by the fetch too: one request to the
    CRM at a time.
    """

    def fetch(cursor: Cursor) -> Page:
        page = connector.changed_since(object_type, cursor)
        owners.read_users_for(page.records)
        return page

    page = fetch(cursor)
    context = contextvars.copy_context()  # the tenant scope, for the thread's queries
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sync-fetch") as fetcher:
        try:
            while not page.done:
                ahead = fetcher.submit(context.run, fetch, page.cursor)
                yield page
                page = ahead.result()
            yield page
        finally:
            fetcher.submit(db_connections.close_all)


def _synced_contacts(records: Sequence[SourceRecord], owners: OwnerAgents) -> list[SyncedContact]:
    return [
        SyncedContact(
            external_id=r.external_id,
            fields={
                "first_name": r.first_name,
                "last_name": r.last_name,
                "company": r.company,
                "is_company": r.is_company,
                "crm_url": r.crm_url,
                "country": r.country,
                "custom_fields": dict(r.custom_fields),
                # A CRM that names no owner leaves the contact's owner as it is.
                **({"owner_id": owners.agent_id(r)} if r.owner_email or r.owner_id else {}),
            },
            phones=r.phones,  # SourcePhones: numbers as written, with their kind
        )
        for r in records
    ]


class OwnerAgents:
    """The agent owning each synced record: the CRM owner's email matched to an agent's.

    Agents, and the CRM's users when records name their owner by id, are read once a run.
    """

    def __init__(self, connector: Connector) -> None:
        self._connector = connector
        self._agent_ids: dict[str, int] | None = None
        self._user_emails: dict[str, str] | None = None

    def read_users_for(self, records: Sequence[SourceRecord]) -> None:
        """Read the CRM's users (once) if these records name an owner by id only."""
        if self._user_emails is None and any(r.owner_id and not r.owner_email for r in records):
            self._user_emails = {user.external_id: user.email for user in self._connector.users()}

    def agent_id(self, record: SourceRecord) -> int | None:
        email = record.owner_email or (self._user_emails or {}).get(record.owner_id, "")
        if self._agent_ids is None:
            agents = Agent.objects.filter(is_active=True).exclude(email="")
            self._agent_ids = {e.lower(): pk for pk, e in agents.values_list("pk", "email")}
        return self._agent_ids.get(email.lower()) if email else None


def _full_diff(connection: Connection, connector: Connector, run: SyncRun) -> None:
    source_ids: set[str] = set()
    for object_type in connector.object_types():
        for ids in connector.all_ids(object_type):  # a failure part-way raises: nothing deleted
            source_ids.update(ids)
            run.pages += 1
    ours, vanished = 0, []
    live = Contact.objects.filter(source_connection_id=connection.pk, deleted_at__isnull=True)
    for pk, external_id in live.values_list("pk", "external_id").iterator(chunk_size=10_000):
        ours += 1
        if external_id not in source_ids:
            vanished.append(pk)
    max_share = connection.settings.get("max_delete_share", DEFAULT_MAX_DELETE_SHARE)
    if ours and len(vanished) / ours > max_share:
        message = (
            f"The full diff would delete {len(vanished)} of {ours} contacts, more than "
            f"{max_share:.0%}: nothing was deleted. Check the connection (wrong account, lost "
            "permissions?), then raise max_delete_share in its settings or sync again."
        )
        run.outcome, run.error = SyncRun.Outcome.GUARDED, message
        Connection.objects.filter(pk=connection.pk).update(
            status=Connection.Status.NEEDS_ATTENTION, last_error=message
        )
        return
    contacts_delete(contact_ids=vanished)
    run.deleted, run.outcome = len(vanished), SyncRun.Outcome.SUCCEEDED
    run.unchanged = ours - len(vanished)  # still in the CRM: kept as they are
    Connection.objects.filter(pk=connection.pk).update(last_full_diff_at=timezone.now())


def _fail(connection: Connection, run: SyncRun, error: ConnectorError) -> None:
    run.outcome, run.error = SyncRun.Outcome.FAILED, str(error)
    if error.permanent:
        Connection.objects.filter(pk=connection.pk).update(
            status=Connection.Status.NEEDS_ATTENTION, last_error=str(error)
        )
        return
    minutes = connection.settings.get("incremental_minutes") or settings.SYNC_INCREMENTAL_MINUTES
    wait = max(timedelta(minutes=minutes), timedelta(seconds=error.retry_after or 0))
    Connection.objects.filter(pk=connection.pk).update(next_incremental_at=timezone.now() + wait)


def _add(run: SyncRun, counts: SyncCounts, *, invalid: int) -> None:
    run.pages += 1
    run.created += counts.created
    run.updated += counts.updated
    run.unchanged += counts.unchanged
    run.invalid_records += counts.invalid_records + invalid
    run.invalid_numbers += counts.invalid_numbers


@contextlib.contextmanager
def _sync_lock(connection_id: int) -> Iterator[bool]:
    """One sync per connection. PostgreSQL: a session advisory lock, which the server drops when
    a killed worker's connection closes (no expiry to wait out). Elsewhere: a cache key."""
    if db.vendor == "postgresql":
        key = _LOCK_NAMESPACE | connection_id
        with db.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
            locked = cursor.fetchone()[0]
        try:
            yield locked
        finally:
            if locked:
                with db.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
        return
    key = f"sync-lock:{connection_id}"
    locked = cache.add(key, 1, timeout=_FALLBACK_LOCK_SECONDS)
    try:
        yield locked
    finally:
        if locked:
            cache.delete(key)


def syncs_dispatch() -> list[tuple[int, int, str]]:
    """Claim the connections due a sync (full diff first when due); return (tenant, id, kind)."""
    now = timezone.now()
    full_before = now - timedelta(hours=settings.SYNC_FULL_DIFF_HOURS)
    due = []
    with across_all_tenants(), transaction.atomic():
        connections = (
            Connection.objects.select_for_update(skip_locked=True)
            .filter(status=Connection.Status.ACTIVE)
            .exclude(next_incremental_at__gt=now)
        )
        for connection in connections:
            full = (
                connection.last_full_diff_at is None or connection.last_full_diff_at < full_before
            )
            kind = (
                SyncRun.Kind.FULL if full and connection.sync_cursor else SyncRun.Kind.INCREMENTAL
            )
            minutes = (
                connection.settings.get("incremental_minutes") or settings.SYNC_INCREMENTAL_MINUTES
            )
            connection.next_incremental_at = now + timedelta(minutes=minutes)
            connection.save(update_fields=["next_incremental_at"])
            due.append((connection.tenant_id, connection.pk, kind))
    return due
