"""The one outbox engine: rows written in the event's transaction; claim, attempt, record, sweep.

Callback deliveries, CRM logs and app runs are each a model on `OutboxRow` and an `Outbox`
saying how long an attempt may hold its claim (the lease) and when an unclaimed row counts as
lost. The rules, the same for all of them:

- claim: a pending row that is due, not held by a live claim (one younger than the lease), is
  locked, counted (`attempt_count`) and stamped (`attempting_since`); a claim older than the
  lease was lost with its worker and is taken over (`Claim.interrupted`).
- record: the attempt's outcome is saved only while the claim is still ours: had the sweeper
  taken the row over (this worker stalled past the lease), it decides what comes next.
- run again (`rerun`): only a failed row, by hand (admin, API, dashboard); it becomes pending and
  due with its attempts counted afresh.
- sweep: a claim older than the lease, or a due row nobody claimed for `lost_after`, goes back
  to pending-and-due (the row's `interrupted()` says what a cut-off attempt leaves behind) and
  is handed back to be enqueued.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Generic, TypeVar

from django.db import connection, models, transaction
from django.db.models import F, Q
from django.utils import timezone

from core import inserts
from core.scoping import TenantOwnedModel, across_all_tenants

PENDING, SUCCEEDED, FAILED = "pending", "succeeded", "failed"


class NotFailed(Exception):
    """Only a failed row runs again by hand; the message says what state the row is in."""


class OutboxRow(TenantOwnedModel):
    """Something a call event set off, delivered after commit by a worker."""

    attempt_count = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    # Set while an attempt runs: a second worker keeps off, the sweeper waits out the lease.
    attempting_since = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    # Each subclass has a `state` field whose values include PENDING, SUCCEEDED and FAILED.
    state: Any

    class Meta:
        abstract = True

    def out_of_attempts(self) -> bool:
        """No attempt is left: the claim fails the row instead (deliveries count at claim)."""
        return False

    def claimed(self) -> list[str]:
        """Change what a claim changes besides the engine's fields; answer their names."""
        return []

    def interrupted(self) -> list[str]:
        """The sweeper found this row's attempt cut off: record that; answer changed fields."""
        return []


Row = TypeVar("Row", bound=OutboxRow)


@dataclass(frozen=True)
class Outbox(Generic[Row]):
    model: type[Row]
    lease: Callable[[], timedelta]  # how long an attempt may hold its claim
    lost_after: Callable[[], timedelta]  # a due row unclaimed this long lost its task
    # Send the row's task after commit, `countdown` seconds later.
    enqueue: Callable[[Row, float], None]
    # A task may run a moment before its countdown ends (timer granularity): that moment is due.
    early_tolerance_seconds: float = 0.0


@dataclass(frozen=True)
class Claim(Generic[Row]):
    row: Row
    interrupted: bool  # it took over a claim whose attempt was cut off
    wait_seconds: float  # until the row is due (within the early tolerance)


def claim(outbox: Outbox[Row], pk: Any, *, related: tuple[str, ...] = ()) -> Claim[Row] | None:
    """Claim the row for one attempt, or None: not pending, not due, or someone else's."""
    with transaction.atomic():
        # Waits for a lock another transaction holds (a resend, the sweeper), then reads the
        # row as that left it: skipping it would lose this attempt until the next sweep.
        row = (
            outbox.model.objects.select_for_update(of=("self",), no_key=True)
            .select_related(*related)
            .filter(pk=pk, state=PENDING)
            .first()
        )
        if row is None:
            return None
        now = timezone.now()
        if row.attempting_since and now - row.attempting_since < outbox.lease():
            return None  # another worker is making the attempt
        wait = (row.next_attempt_at - now).total_seconds()
        if wait > outbox.early_tolerance_seconds:
            return None  # not due: its scheduled task (or the sweeper) will come back
        if row.out_of_attempts():
            row.state, row.attempting_since = FAILED, None
            row.save(update_fields=["state", "attempting_since", "updated_at"])
            return None
        interrupted = row.attempting_since is not None
        row.attempt_count += 1
        row.attempting_since = now
        changed = row.claimed()
        row.save(update_fields=["attempt_count", "attempting_since", "updated_at", *changed])
    return Claim(row, interrupted, max(0.0, wait))


def record(
    outbox: Outbox[Row],
    row: Row,
    *,
    state: str,
    retry_in: float | None = None,
    attempt: models.Model | None = None,
    changes: dict[str, Any] | None = None,
) -> bool:
    """Save the claimed attempt's outcome (and its `attempt` row); False if the claim was lost.

    `state` PENDING with `retry_in`: the next attempt is that many seconds from now.
    """
    now = timezone.now()
    fields = {**(changes or {}), "state": state, "attempting_since": None, "updated_at": now}
    if state == PENDING:
        fields["next_attempt_at"] = now + timedelta(seconds=retry_in or 0)
    with transaction.atomic():
        if attempt is not None:
            attempt.save()
        ours = outbox.model.objects.filter(pk=row.pk, attempting_since=row.attempting_since)
        if not ours.update(**fields):
            return False
        for name, value in fields.items():
            setattr(row, name, value)
        if state == PENDING:
            transaction.on_commit(lambda: outbox.enqueue(row, retry_in or 0))
    return True


def record_all(
    outbox: Outbox[Row], rows: list[Row], *, state: str, attempts: list[models.Model]
) -> int:
    """record() for rows whose attempts ended the same final way (not PENDING): their attempts
    in one INSERT, the rows in one UPDATE per claim moment; answers how many claims were ours.
    """
    now = timezone.now()
    if connection.vendor == "postgresql":  # one statement: a drain records every batch's
        ours = _record_all_sql(outbox.model, rows, state, now, attempts)
    else:
        by_claim: dict[Any, list[Any]] = {}
        for row in rows:
            by_claim.setdefault(row.attempting_since, []).append(row.pk)
        with transaction.atomic():
            type(attempts[0])._default_manager.bulk_create(attempts)
            ours = sum(
                outbox.model.objects.filter(pk__in=pks, attempting_since=since).update(
                    state=state, attempting_since=None, updated_at=now
                )
                for since, pks in by_claim.items()
            )
    for row in rows:
        row.state, row.attempting_since, row.updated_at = state, None, now
    return ours


def _record_all_sql(
    model: type[Row], rows: list[Row], state: str, now: Any, attempts: list[models.Model]
) -> int:
    """What record_all does on PostgreSQL: the attempts inserted and the rows still claimed
    updated, in one statement (the ORM's build of the two cost more than their run)."""
    quote = connection.ops.quote_name
    table, pk = quote(model._meta.db_table), quote(str(model._meta.pk.column))
    attempt_model = type(attempts[0])
    values = [inserts.insert_values(attempt) for attempt in attempts]
    row_values = ", ".join(["(" + ", ".join(["%s"] * len(values[0])) + ")"] * len(attempts))
    sql = (
        f"WITH {quote('attempts')} AS (INSERT INTO {quote(attempt_model._meta.db_table)} "  # noqa: S608
        f"({inserts.insert_columns(attempt_model)}) VALUES {row_values}) "
        f'UPDATE {table} SET "state" = %s, "attempting_since" = NULL, "updated_at" = %s '
        f"FROM unnest(%s::{model._meta.pk.db_type(connection)}[], %s::timestamptz[]) "
        f'AS "claim"("id", "since") '
        f'WHERE {table}.{pk} = "claim"."id" AND {table}."attempting_since" = "claim"."since"'
    )
    params = [value for row_value in values for value in row_value]
    params += [state, now, [row.pk for row in rows], [row.attempting_since for row in rows]]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return int(cursor.rowcount)


def release(outbox: Outbox[Row], rows: list[Row]) -> None:
    """Give back claims whose attempt was not made: due now, the claim's count undone."""
    for row in rows:
        outbox.model.objects.filter(pk=row.pk, attempting_since=row.attempting_since).update(
            attempt_count=F("attempt_count") - 1, attempting_since=None, updated_at=timezone.now()
        )
        row.attempt_count, row.attempting_since = row.attempt_count - 1, None


def sweep(outbox: Outbox[Row], *, limit: int = 500) -> list[Row]:
    """Put back the rows whose task or worker was lost; answer those still pending, to enqueue."""
    now = timezone.now()
    lost = Q(attempting_since__isnull=True, next_attempt_at__lte=now - outbox.lost_after()) | Q(
        attempting_since__lt=now - outbox.lease()
    )
    with across_all_tenants(), transaction.atomic():
        rows = list(
            outbox.model.objects.select_for_update(skip_locked=True)
            .filter(lost, state=PENDING)
            .order_by("next_attempt_at")[:limit]
        )
        for row in rows:
            changed = row.interrupted() if row.attempting_since is not None else []
            row.attempting_since = None
            row.next_attempt_at = now
            row.save(update_fields=["attempting_since", "next_attempt_at", "updated_at", *changed])
    return [row for row in rows if row.state == PENDING]


def rerun(model: type[OutboxRow], row: OutboxRow, what: str, **reset: Any) -> None:
    """Make a failed row pending and due now (with `reset` fields), or raise NotFailed.

    Checked and changed in one UPDATE, so two clicks or a row that has just changed state never
    start a second run. `what` names the row for the message ("CRM log").
    """
    this_row: models.QuerySet[Any] = model._default_manager.filter(pk=row.pk)
    # Every outbox model has a `state` (choices of its own), so it is not declared on OutboxRow.
    changed = this_row.filter(state=FAILED).update(
        state=PENDING,
        attempt_count=0,
        next_attempt_at=timezone.now(),
        attempting_since=None,
        **reset,
    )
    if not changed:
        state = this_row.values_list("state", flat=True).first()
        raise NotFailed(f"This {what} is {state}; only a failed one can be run again.")
    row.refresh_from_db()
