"""The calls export: CSV and NDJSON, date range, incremental cursor, paging, formula-safe CSV."""

import csv
import io
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from calls import events, exports
from calls.models import Call, TelephonyEvent
from core.scoping import tenant_scope

pytestmark = pytest.mark.django_db

URL = "/api/v1/exports/calls"


@pytest.fixture(autouse=True)
def _no_settle(settings) -> None:
    settings.CALL_EXPORT_SETTLE_SECONDS = 0


def phone_event(tenant, call_id: str, type: str, **fields) -> Call:
    """Accept and apply one telephony event the way the worker does."""
    body = {"id": f"{call_id}-{type}", "type": type, "call_id": call_id, **fields}
    with tenant_scope(tenant):
        row, _ = events.telephony_event_accept(tenant=tenant, body=body, source="json")
        events.telephony_event_process(event_pk=row.pk)
        return TelephonyEvent.objects.get(pk=row.pk).call


def ended_call(tenant, call_id: str, hour: int = 10, **analytics) -> Call:
    """A call answered at `hour` on 3 July 2026 for 150 s, then its analytics if given."""
    call = phone_event(
        tenant,
        call_id,
        "call.end",
        **{"from": "07400 123456", "to": "+442079460000"},
        status="ANSWER",
        duration=150,
        start_time=f"2026-07-03T{hour:02d}:00:00Z",
        timestamp=f"2026-07-03T{hour:02d}:02:30Z",
    )
    if analytics:
        call = phone_event(tenant, call_id, "analytics.completed", **analytics)
    return call


def changed_ago(call: Call, minutes: float) -> None:
    with tenant_scope(call.tenant_id):
        moment = timezone.now() - timedelta(minutes=minutes)
        Call.objects.filter(pk=call.pk).update(updated_at=moment)


def read(response) -> str:
    assert response.status_code == 200, response.content
    return b"".join(response.streaming_content).decode()


def ndjson(api, **params) -> tuple[list[dict], dict, dict]:
    """The rows, the closing line and the headers of one NDJSON export."""
    response = api.get(URL, {"format": "ndjson", **params})
    lines = [json.loads(line) for line in read(response).splitlines()]
    headers = {"cursor": response["X-Next-Cursor"], "more": response["X-More-Rows"]}
    return lines[:-1], lines[-1], headers


def test_ndjson_has_every_call_with_its_analytics_then_the_cursor(api, tenant):
    ended_call(
        tenant,
        "pbx-1",
        satisfaction=2,
        resolved=False,
        sentiment="negative",
        summary="Wants a refund",
        transcript="Agent: Hello\nCaller: I want a refund, now.",
    )
    ended_call(tenant, "pbx-2", hour=11)

    rows, end, headers = ndjson(api)

    assert [tuple(row) for row in rows] == [exports.EXPORT_FIELDS] * 2
    first = next(row for row in rows if row["satisfaction"] is not None)
    assert {k: first[k] for k in ("status", "duration", "customer_number", "direction")} == {
        "status": "ANSWER",
        "duration": 150,
        "customer_number": "+447400123456",
        "direction": "inbound",
    }
    assert first["start_time"] == "2026-07-03T10:00:00Z"
    assert first["end_time"] == "2026-07-03T10:02:30Z"
    assert (first["satisfaction"], first["resolved"], first["sentiment"]) == (2, False, "negative")
    assert first["transcript"] == "Agent: Hello\nCaller: I want a refund, now."
    assert (first["disposition"], first["notes"], first["recording_url"]) == ("CRM_CALL", "", None)
    assert end == {"next_cursor": headers["cursor"], "more": False, "rows": 2}
    assert headers["more"] == "false"


def test_the_variables_collected_on_any_event_are_one_json_column(api, tenant):
    phone_event(tenant, "pbx-1", "call.start", variables={"order_number": "A-1001"})
    ended_call(tenant, "pbx-1")
    phone_event(tenant, "pbx-1", "analytics.completed", variables={"wants_callback": True})

    [row] = list(csv.DictReader(io.StringIO(read(api.get(URL, {"format": "csv"})))))

    assert json.loads(row["variables"]) == {"order_number": "A-1001", "wants_callback": True}


def test_csv_quotes_what_needs_it_and_reads_back_the_same(api, tenant):
    transcript = 'Caller: "Hi", I said,\nthen; nothing.\r\nAgent: ok'
    ended_call(tenant, "pbx-1", satisfaction=9, resolved=True, transcript=transcript)

    response = api.get(URL, {"format": "csv"})
    body = read(response)

    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="calls-')
    header, row = list(csv.reader(io.StringIO(body, newline="")))
    assert tuple(header) == exports.EXPORT_FIELDS
    record = dict(zip(header, row, strict=True))
    assert record["transcript"] == transcript
    assert (record["satisfaction"], record["resolved"], record["uuid"]) == ("9", "true", "")
    assert record["customer_number"] == "+447400123456"  # a plain number: no quote added


@pytest.mark.parametrize(
    "notes",
    ['=HYPERLINK("http://evil","x")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)"],
)
def test_csv_cells_a_spreadsheet_would_run_start_with_a_quote(api, tenant, notes):
    call = ended_call(tenant, "pbx-1", summary="=1+1")
    api.post(f"/api/v1/calls/{call.call_id}/notes", {"notes": notes}, format="json")

    header, row = list(csv.reader(io.StringIO(read(api.get(URL)), newline="")))
    record = dict(zip(header, row, strict=True))

    assert (record["notes"], record["summary"]) == (f"'{notes}", "'=1+1")


def test_a_cell_starting_with_a_tab_or_return_is_quoted_too_but_not_a_plain_number():
    assert [exports.csv_cell(v) for v in ("\t=1", "\r=1", "+447400123456", -5, None)] == [
        "'\t=1",
        "'\r=1",
        "+447400123456",
        "-5",
        "",
    ]


def test_ndjson_keeps_values_as_they_are(api, tenant):
    ended_call(tenant, "pbx-1", summary="=1+1")

    rows, _, _ = ndjson(api)

    assert rows[0]["summary"] == "=1+1"


def test_since_and_until_pick_calls_by_start_time(api, tenant):
    for hour in (9, 10, 11):
        ended_call(tenant, f"pbx-{hour}", hour=hour)

    rows, end, _ = ndjson(api, since="2026-07-03T10:00:00Z", until="2026-07-03T11:00:00+00:00")

    assert [row["start_time"] for row in rows] == ["2026-07-03T10:00:00Z"]
    assert end["rows"] == 1


def test_the_cursor_brings_only_the_calls_changed_since(api, tenant):
    first, second = ended_call(tenant, "pbx-1"), ended_call(tenant, "pbx-2")
    changed_ago(first, 60)
    changed_ago(second, 30)
    rows, _, headers = ndjson(api)
    assert [row["call_id"] for row in rows] == [str(first.call_id), str(second.call_id)]

    api.post(f"/api/v1/calls/{first.call_id}/notes", {"notes": "Call back Monday"}, format="json")
    rows, end, _ = ndjson(api, cursor=headers["cursor"])

    assert [(row["call_id"], row["notes"]) for row in rows] == [
        (str(first.call_id), "Call back Monday")
    ]
    assert ndjson(api, cursor=end["next_cursor"])[0] == []


def test_calls_changed_within_the_settle_delay_wait_for_the_next_export(api, tenant, settings):
    settings.CALL_EXPORT_SETTLE_SECONDS = 30
    old, new = ended_call(tenant, "pbx-1"), ended_call(tenant, "pbx-2")
    changed_ago(old, 5)

    rows, _, headers = ndjson(api)
    assert [row["call_id"] for row in rows] == [str(old.call_id)]

    settings.CALL_EXPORT_SETTLE_SECONDS = 0  # time has passed
    rows, _, _ = ndjson(api, cursor=headers["cursor"])
    assert [row["call_id"] for row in rows] == [str(new.call_id)]


def test_limit_pages_through_calls_changed_at_the_same_moment(api, tenant):
    calls = [ended_call(tenant, f"pbx-{n}") for n in range(5)]
    with tenant_scope(tenant):
        Call.objects.update(updated_at=timezone.now() - timedelta(minutes=1))

    seen, pages, cursor = [], [], None
    while True:
        rows, end, headers = ndjson(api, limit=2, **({"cursor": cursor} if cursor else {}))
        seen += [row["call_id"] for row in rows]
        pages.append((len(rows), end["more"], headers["more"]))
        cursor = end["next_cursor"]
        if not end["more"]:
            break

    assert pages == [(2, True, "true"), (2, True, "true"), (1, False, "false")]
    assert sorted(seen) == sorted(str(call.call_id) for call in calls)


def test_rows_are_read_in_chunks_without_gaps_or_repeats(tenant):
    calls = [ended_call(tenant, f"pbx-{n}") for n in range(7)]
    with tenant_scope(tenant):
        Call.objects.filter(pk__in=[c.pk for c in calls[:4]]).update(
            updated_at=timezone.now() - timedelta(minutes=1)
        )
        page = exports.page_plan(start=None, limit=100, settle=timedelta(0))

    lines = list(exports.export_lines(tenant=tenant, page=page, chunk_size=3))

    assert len(lines) == 4  # three chunks of rows (3, 3, 1), then the closing line
    ids = [json.loads(line)["call_id"] for chunk in lines[:-1] for line in chunk.splitlines()]
    assert sorted(ids) == sorted(str(call.call_id) for call in calls)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"format": "xlsx"}, "format"),
        ({"since": "2026-07-03T10:00:00"}, "since"),
        ({"since": "yesterday"}, "since"),
        ({"since": "2026-07-03T10:00:00Z", "until": "2026-07-03T10:00:00Z"}, "until"),
        ({"cursor": "eyJ1IjoiMjAyNiJ9:forged"}, "cursor"),
        ({"limit": "0"}, "limit"),
        ({"from": "2026-07-03T10:00:00Z"}, "from"),
    ],
)
def test_bad_parameters_are_a_400_naming_the_field(api, params, field):
    response = api.get(URL, params)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert response.json()["error"]["field"] == field


def test_a_key_without_the_calls_scope_cannot_export(make_client, tenant):
    client = make_client(tenant, scopes=["contacts:read"])

    response = client.get(URL)

    assert response.status_code == 403
    assert "error" in response.json()


def test_a_revoked_recording_url_comes_in_the_next_export(api, tenant):
    call = phone_event(tenant, "pbx-1", "call.start", recording=True)
    changed_ago(call, 1)
    rows, _, headers = ndjson(api)
    assert rows[0]["recording_url"].startswith("http")

    api.delete(f"/api/v1/calls/{call.call_id}/recording")
    rows, _, _ = ndjson(api, cursor=headers["cursor"])

    assert [(row["call_id"], row["recording_url"]) for row in rows] == [(str(call.call_id), None)]
