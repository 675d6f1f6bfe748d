"""The drain's statements written out for PostgreSQL (calls/events.py keeps the ORM's for
SQLite): a drain runs them for every event, and building them with the ORM cost more than
running them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, TypeVar

from django.db import connection, models

from calls.models import Call, CallbackSettings, CallEvent, Recording, TelephonyEvent
from contacts.models import PhonebookSettings
from core import hot_path, inserts
from tenants.models import Tenant


@dataclass
class LockedCall:
    """A call locked in this transaction, and its events once read (kept current as added)."""

    call: Call
    known_events: list[CallEvent] | None = None

    def events(self) -> list[CallEvent]:
        if self.known_events is None:
            self.known_events = list(self.call.events.all())
        return self.known_events


def claim(tenant_id: int, skip: set[int], limit: int) -> tuple[list[TelephonyEvent], str]:
    """Up to `limit` of the tenant's waiting events but `skip`, oldest first, locked (SKIP
    LOCKED); and the version of the tenant's row and settings rows the claim saw (their
    `xmin`, which every update of a row changes)."""
    rows = hot_path.fetch_all(_claim_sql(), [tenant_id, tenant_id, list(skip), limit])
    fields = len(TelephonyEvent._meta.concrete_fields)
    events = [_from_db(TelephonyEvent, row[:fields]) for row in rows]
    return events, rows[0][fields] if rows else ""


@functools.cache
def _claim_sql() -> str:
    """What the ORM query in events._claim says (the model's columns, in its order), and the
    version of the tenant's settings."""
    quote = connection.ops.quote_name
    columns = ", ".join(quote(str(f.column)) for f in TelephonyEvent._meta.concrete_fields)
    tenant, callback, phonebook = (
        quote(m._meta.db_table) for m in (Tenant, CallbackSettings, PhonebookSettings)
    )
    version = (
        f'SELECT concat_ws(\':\', "t"."xmin", "c"."xmin", "p"."xmin") FROM {tenant} AS "t" '  # noqa: S608
        f'LEFT JOIN {callback} AS "c" ON "c"."tenant_id" = "t"."id" '
        f'LEFT JOIN {phonebook} AS "p" ON "p"."tenant_id" = "t"."id" WHERE "t"."id" = %s'
    )
    return (
        f'SELECT {columns}, ({version}) FROM "calls_telephonyevent" WHERE "tenant_id" = %s '  # noqa: S608
        'AND "processed_at" IS NULL AND NOT ("id" = ANY(%s)) ORDER BY "received_at", "id" '
        "LIMIT %s FOR NO KEY UPDATE SKIP LOCKED"
    )


# What bulk_update(rows, ["call", "processed_at"]) does, in one statement built once.
_PROCESSED_SQL = (
    'UPDATE "calls_telephonyevent" SET "call_id" = "v"."call_id", '
    '"processed_at" = "v"."processed_at" FROM unnest(%s::bigint[], %s::bigint[], '
    '%s::timestamptz[]) AS "v"("id", "call_id", "processed_at") '
    'WHERE "calls_telephonyevent"."id" = "v"."id"'
)


def mark_processed(rows: list[TelephonyEvent]) -> None:
    """Save each row's call and processed_at."""
    if not rows:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            _PROCESSED_SQL,
            [[r.pk for r in rows], [r.call_id for r in rows], [r.processed_at for r in rows]],
        )


@functools.cache
def _call_lock_sql() -> str:
    """Insert the call, or lock the one an earlier event made; either way return it, with its
    recording and events, and the call as this statement's snapshot saw it (`seen`)."""
    quote = connection.ops.quote_name

    def columns(model: type[models.Model], alias: str) -> str:
        return ", ".join(f'"{alias}".{quote(str(f.column))}' for f in model._meta.concrete_fields)

    values = ", ".join(["%s"] * len(inserts.insert_values(Call())))
    # DO UPDATE sets the conflicting column to itself: it locks the row (FOR NO KEY UPDATE)
    # and returns it as the last commit left it, where DO NOTHING would return nothing.
    return (
        f'WITH "locked" AS (INSERT INTO "calls_call" ({inserts.insert_columns(Call)}) '  # noqa: S608
        f"VALUES ({values}) "
        """ON CONFLICT ("tenant_id", "external_id") WHERE NOT ("external_id" = '') """
        'DO UPDATE SET "external_id" = EXCLUDED."external_id" '
        f'RETURNING {columns(Call, "calls_call")}, "calls_call"."xmax" = 0) '
        'SELECT "locked".*, "seen"."updated_at", '
        f'{columns(Recording, "recording")}, {columns(CallEvent, "event")} FROM "locked" '
        'LEFT JOIN "calls_call" AS "seen" ON "seen"."id" = "locked"."id" '
        'LEFT JOIN "calls_recording" AS "recording" ON "recording"."call_id" = "locked"."id" '
        'LEFT JOIN "calls_callevent" AS "event" ON "event"."call_id" = "locked"."id" '
        'ORDER BY "event"."id"'
    )


def call_insert_or_lock(call: Call) -> LockedCall:
    """Insert the call, or find and lock the one an earlier event made, with its recording and
    events, in one statement."""
    with connection.cursor() as cursor:
        cursor.execute(_call_lock_sql(), inserts.insert_values(call))
        rows = cursor.fetchall()
    calls, recordings_at = len(Call._meta.concrete_fields), len(Call._meta.concrete_fields) + 2
    events_at = recordings_at + len(Recording._meta.concrete_fields)
    first = rows[0]
    inserted, seen = first[calls], first[calls + 1]
    if inserted:  # new: no events, no recording; the uncommitted row is its lock
        call.pk = first[0]
        call._state.adding, call._state.db = False, connection.alias
        Call.recording.related.set_cached_value(call, None)
        return LockedCall(call, known_events=[])
    locked = _from_db(Call, first[:calls])
    locked.tenant = call.tenant  # with its callback settings, loaded once for a drain's batch
    if seen != locked.updated_at:
        # Another transaction changed the call after this statement's snapshot was taken and
        # before its lock was granted: the recording and events read with it may be stale.
        return LockedCall(_with_recording(locked))
    recording = (
        _from_db(Recording, first[recordings_at:events_at]) if first[recordings_at] else None
    )
    Call.recording.related.set_cached_value(locked, recording)
    events = [_from_db(CallEvent, row[events_at:]) for row in rows if row[events_at] is not None]
    return LockedCall(locked, known_events=events)


def _with_recording(call: Call) -> Call:
    """The locked call with its recording read now."""
    recording = Recording.objects.filter(call=call).first()
    Call.recording.related.set_cached_value(call, recording)
    return call


M = TypeVar("M", bound=models.Model)


def _from_db(model: type[M], values: tuple[Any, ...]) -> M:
    """A model from its concrete fields' values as the database returned them."""
    fields = model._meta.concrete_fields
    converted = []
    for model_field, value in zip(fields, values, strict=True):
        for converter in model_field.get_db_converters(connection):
            value = converter(value, model_field, connection)
        converted.append(value)
    return model.from_db(connection.alias, [f.attname for f in fields], converted)
