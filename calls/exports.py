"""The calls export for BI jobs: every call with its analytics, streamed as CSV or NDJSON.

Calls are read in the order they last changed, (updated_at, id). A cursor is a position in that
order: an export holds the calls changed after the request's cursor (every call without one), at
most `limit` of them, and returns the cursor the next export starts from, so a BI job that keeps
it fetches only what changed since. Both ends are fixed before the first row is sent (so the
cursor can go in a header):

- it stops `settle` seconds before the request: a call whose transaction has not committed yet
  (or written by a worker whose clock is a little behind) cannot be skipped; it comes next time;
- a call changed while the export streams moves past its end and comes next time too.

Rows are read in chunks of CHUNK_SIZE on the (tenant, updated_at, id) index: memory stays
constant whatever the number of calls, and `limit` keeps one response under the web server's
request timeout (the answer says when more rows are waiting).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.core import signing
from django.http import StreamingHttpResponse
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from calls import selectors
from calls.lifecycle import CALLBACK_FIELDS, callback_payload
from calls.models import Call
from calls.recordings import call_recording_url
from core.scoping import tenant_scope
from tenants.models import Tenant

ANALYTICS_FIELDS = ("satisfaction", "resolved", "sentiment", "summary", "transcript")
# Seed 002's callback fields, seed 001's analytics, the agent's notes, when the call last changed.
EXPORT_FIELDS = (*CALLBACK_FIELDS, *ANALYTICS_FIELDS, "variables", "notes", "updated_at")
FORMATS = {"csv": "text/csv; charset=utf-8", "ndjson": "application/x-ndjson"}
CHUNK_SIZE = 2000
MAX_ID = 2**63 - 1  # a position after every call changed at the same moment
CURSOR_SALT = "calls.exports.cursor"
# A spreadsheet runs a cell starting with one of these as a formula (OWASP "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# ... except a plain number such as +447400123456 (E.164): it holds no formula and stays readable.
PLAIN_NUMBER = re.compile(r"[+-]?\d+(\.\d+)?")

Position = tuple[datetime, int]  # (updated_at, id) of the last call an export covers


@dataclass(frozen=True)
class Page:
    """One export: the calls after `start` up to and including `end`."""

    start: Position | None
    end: Position
    more: bool  # calls changed before the settle moment are still waiting after `end`


def export_row(call: Call) -> dict[str, Any]:
    """The call as one export row, JSON types (times are UTC ISO 8601 with a Z)."""
    row = callback_payload(call, call_recording_url(call))
    row.update({name: getattr(call, name) for name in ANALYTICS_FIELDS})
    row["variables"] = call.variables
    row["notes"] = call.notes
    row["updated_at"] = change_stamp(call.updated_at)
    return row


def change_stamp(moment: datetime) -> str:
    """When a call changed, UTC to the microsecond (a consumer keeps each call's latest version
    by it; always six digits, so it also sorts as text)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def csv_cell(value: Any) -> str:
    """A value as a CSV cell: empty for null, true/false, and never a spreadsheet formula."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = json.dumps(value, ensure_ascii=False) if isinstance(value, dict) else str(value)
    if text.startswith(FORMULA_STARTS) and not PLAIN_NUMBER.fullmatch(text):
        return f"'{text}"
    return text


def cursor_encode(position: Position) -> str:
    """The opaque token of a position (signed: a client cannot make one up)."""
    updated_at, pk = position
    return signing.dumps({"u": updated_at.isoformat(), "i": pk}, salt=CURSOR_SALT)


def cursor_decode(token: str) -> Position:
    """The position a cursor token names; ValueError if it is not one of ours."""
    try:
        data = signing.loads(token, salt=CURSOR_SALT)
        updated_at, pk = parse_datetime(data["u"]), int(data["i"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        updated_at = None
    if updated_at is None or updated_at.tzinfo is None:
        raise ValueError("Not a cursor from this API: pass X-Next-Cursor back as it was.")
    return updated_at, pk


def page_plan(
    *,
    start: Position | None,
    limit: int,
    settle: timedelta,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Page:
    """Fix where an export ends: at its `limit`-th call, or at the settle moment (tenant scope)."""
    settled: Position = (timezone.now() - settle, MAX_ID)
    if start is not None and start > settled:  # asked again within the settle delay
        return Page(start=start, end=start, more=False)
    calls = selectors.calls_changed(after=start, upto=settled, since=since, until=until)
    probe = list(calls.values_list("updated_at", "pk")[limit - 1 : limit + 1])
    if len(probe) == 2:
        return Page(start=start, end=probe[0], more=True)
    return Page(start=start, end=settled, more=False)


def export_lines(
    *,
    tenant: Tenant,
    page: Page,
    since: datetime | None = None,
    until: datetime | None = None,
    fmt: str = "ndjson",
    chunk_size: int = CHUNK_SIZE,
) -> Iterator[str]:
    """Yield the export's text: CSV with a header row, or NDJSON ending with a cursor line."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)  # RFC 4180: quotes, commas and newlines in a cell are quoted
    if fmt == "csv":
        writer.writerow(EXPORT_FIELDS)
    after, count = page.start, 0
    while True:
        # This runs after the request's middleware returned: scope each read, never a yield.
        with tenant_scope(tenant):
            calls = selectors.calls_changed(after=after, upto=page.end, since=since, until=until)
            chunk = list(calls.select_related("recording")[:chunk_size])
            rows = [export_row(call) for call in chunk]
        if fmt == "csv":
            writer.writerows([csv_cell(row[name]) for name in EXPORT_FIELDS] for row in rows)
            text = _drain(buffer)
        else:
            text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        if text:
            yield text
        count += len(chunk)
        if len(chunk) < chunk_size:
            break
        after = (chunk[-1].updated_at, chunk[-1].pk)
    if fmt == "ndjson":  # the last line: the export is complete, and where the next one starts
        end = {"next_cursor": cursor_encode(page.end), "more": page.more, "rows": count}
        yield json.dumps(end) + "\n"


def export_response(
    *,
    tenant: Tenant,
    fmt: str,
    start: Position | None,
    limit: int,
    settle: timedelta,
    since: datetime | None = None,
    until: datetime | None = None,
) -> StreamingHttpResponse:
    """Stream one export; X-Next-Cursor and X-More-Rows say where the next one starts."""
    page = page_plan(start=start, limit=limit, settle=settle, since=since, until=until)
    lines = export_lines(tenant=tenant, page=page, since=since, until=until, fmt=fmt)
    response = StreamingHttpResponse(lines, content_type=FORMATS[fmt])
    response["X-Next-Cursor"] = cursor_encode(page.end)
    response["X-More-Rows"] = "true" if page.more else "false"
    response["Cache-Control"] = "no-store"
    stamp = page.end[0].astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    response["Content-Disposition"] = f'attachment; filename="calls-{stamp}.{fmt}"'
    return response


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text
