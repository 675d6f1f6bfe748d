"""The warehouse app: one row per call upserted into a real second PostgreSQL database."""

import socket
import threading
import time

import psycopg
import pytest
from django.db import connection

from automations import app_runs, warehouse
from automations.models import App, AppRun
from calls import events
from calls.models import Call, TelephonyEvent
from core.http import is_blocked_address
from core.scoping import tenant_scope

pytestmark = pytest.mark.django_db

TABLE = """
CREATE SCHEMA IF NOT EXISTS analytics;
DROP TABLE IF EXISTS analytics.calls;
CREATE TABLE analytics.calls (
    call_id uuid PRIMARY KEY, uuid text, status text, duration integer, customer_number text,
    agent_number text, crm_username text, call_type text, disposition text, direction text,
    start_time timestamptz, end_time timestamptz, recording_url text, satisfaction smallint,
    resolved boolean, sentiment text, summary text, transcript text, variables jsonb, notes text,
    updated_at timestamptz
);
DROP TABLE IF EXISTS public.call_facts;
CREATE TABLE public.call_facts (id text PRIMARY KEY, csat integer, outcome text);
"""


def _server_dsn(dbname: str) -> str:
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    return f"postgresql://{db['USER']}{password}@{db['HOST']}:{db['PORT']}/{dbname}?sslmode=disable"


@pytest.fixture(scope="module")
def warehouse_db(django_db_setup, django_db_blocker):
    """A second database on the same server: the tenant's warehouse."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (run bin/test)")
    name = f"{connection.settings_dict['NAME']}_warehouse"
    drop = psycopg.sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
        psycopg.sql.Identifier(name)
    )
    with psycopg.connect(_server_dsn("postgres"), autocommit=True) as admin:
        admin.execute(drop)
        admin.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name)))
    yield _server_dsn(name)
    with psycopg.connect(_server_dsn("postgres"), autocommit=True) as admin:
        admin.execute(drop)


@pytest.fixture
def dsn(warehouse_db, settings) -> str:
    settings.ALLOW_PRIVATE_URLS = True  # the test warehouse is on 127.0.0.1
    with psycopg.connect(warehouse_db) as db:
        db.execute(TABLE)
    return warehouse_db


def rows(dsn: str, query: str = "SELECT * FROM analytics.calls") -> list[dict]:
    with psycopg.connect(dsn, row_factory=psycopg.rows.dict_row) as db:
        return db.execute(query).fetchall()


def phone_event(tenant, type: str, **fields) -> Call:
    """Accept and apply one event of call pbx-7 the way the worker does."""
    body = {"id": f"pbx-7-{type}", "type": type, "call_id": "pbx-7", **fields}
    with tenant_scope(tenant):
        row, _ = events.telephony_event_accept(tenant=tenant, body=body, source="json")
        events.telephony_event_process(event_pk=row.pk)
        return TelephonyEvent.objects.get(pk=row.pk).call


def run_apps(tenant, call: Call, event: str) -> AppRun:
    with tenant_scope(tenant):
        app_runs.app_runs_execute(call_pk=call.pk, event=event)
        return AppRun.objects.get(call=call, event=event)


def end_call(tenant) -> Call:
    return phone_event(
        tenant,
        "call.end",
        **{"from": "07400 123456", "to": "+442079460000"},
        variables={"order_number": "A-1001", "wants_callback": True},
        status="ANSWER",
        duration=150,
        start_time="2026-07-03T10:00:00Z",
        timestamp="2026-07-03T10:02:30Z",
    )


def analyze(tenant) -> Call:
    return phone_event(
        tenant,
        "analytics.completed",
        satisfaction=2,
        resolved=False,
        sentiment="negative",
        summary="Wants a refund",
        transcript="Caller: I want a refund.",
    )


def warehouse_app(make_app, dsn: str, **config) -> App:
    return make_app(
        "warehouse",
        kind="warehouse",
        events=["call.end", "analytics.completed"],
        config={"dsn": dsn, "table": "analytics.calls", **config},
    )


def test_the_call_end_inserts_the_row_and_the_analytics_update_it(tenant, make_app, dsn):
    warehouse_app(make_app, dsn)

    call = end_call(tenant)
    ended = run_apps(tenant, call, "call.end")

    assert ended.state == "succeeded", ended.error
    assert ended.result["data"]["action"] == "inserted"
    [row] = rows(dsn)
    assert (str(row["call_id"]), row["status"], row["duration"]) == (
        str(call.call_id),
        "ANSWER",
        150,
    )
    assert row["customer_number"] == "+447400123456" and row["satisfaction"] is None
    assert row["start_time"].isoformat() == "2026-07-03T10:00:00+00:00"
    assert row["variables"] == {"order_number": "A-1001", "wants_callback": True}

    analyzed = run_apps(tenant, analyze(tenant), "analytics.completed")

    assert analyzed.result["data"]["action"] == "updated"
    [row] = rows(dsn)
    assert (row["satisfaction"], row["resolved"], row["sentiment"]) == (2, False, "negative")
    assert (row["summary"], row["status"]) == ("Wants a refund", "ANSWER")


def test_running_again_writes_the_same_row(tenant, make_app, dsn):
    warehouse_app(make_app, dsn)
    call = end_call(tenant)
    first = run_apps(tenant, call, "call.end")
    before = rows(dsn)

    with tenant_scope(tenant):
        AppRun.objects.filter(pk=first.pk).update(state="failed")
        app_runs.app_run_resend(run=first)
    again = run_apps(tenant, call, "call.end")

    assert again.state == "succeeded" and again.result["data"]["action"] == "updated"
    assert rows(dsn) == before


def test_an_older_version_of_the_call_never_overwrites_a_newer_one(tenant, make_app, dsn):
    app = warehouse_app(make_app, dsn)
    call = analyze(tenant)
    run_apps(tenant, end_call(tenant), "call.end")
    config = warehouse.WarehouseConfig.from_settings(app.config, dsn)
    with tenant_scope(tenant):
        stale = app_runs.event_context(call, "call.end")["event"]
    stale.update(satisfaction=None, updated_at="2026-01-01T00:00:00.000000Z")

    action = warehouse.warehouse_upsert(config, warehouse.warehouse_row(config, stale))

    assert action == "kept"
    assert rows(dsn)[0]["satisfaction"] == 2


def test_a_column_mapping_writes_only_the_mapped_fields_under_their_names(tenant, make_app, dsn):
    columns = {"call_id": "id", "satisfaction": "csat", "status": "outcome"}
    make_app(
        "facts",
        kind="warehouse",
        events=["analytics.completed"],
        config={"dsn": dsn, "table": "call_facts", "columns": columns},
    )
    end_call(tenant)

    run = run_apps(tenant, analyze(tenant), "analytics.completed")

    assert run.state == "succeeded", run.error
    [row] = rows(dsn, "SELECT * FROM call_facts")
    assert (row["csat"], row["outcome"]) == (2, "ANSWER")


def test_an_unknown_table_fails_the_run_with_the_databases_reason(tenant, make_app, dsn):
    make_app("warehouse", kind="warehouse", config={"dsn": dsn, "table": "analytics.no_such_table"})

    run = run_apps(tenant, end_call(tenant), "call.end")

    assert (run.state, run.error) == ("failed", "sql")
    assert 'relation "analytics.no_such_table" does not exist' in run.attempts[0]["error"]


def test_the_call_test_shows_the_row_and_writes_nothing(api, make_app, dsn):
    warehouse_app(make_app, dsn)

    body = {"calling_number": "+447400123456", "event": "analytics.completed"}
    [report] = api.post("/api/v1/apps/test-call", body, format="json").json()["apps"]

    assert (report["state"], report["sent"]) == ("succeeded", False)
    assert report["request"]["table"] == "analytics.calls"
    assert report["request"]["row"]["customer_number"] is None  # not a call field of the test
    assert "dsn" not in report["request"] and rows(dsn) == []


APP = {"name": "Warehouse", "slug": "dwh", "kind": "warehouse", "events": ["call.end"]}
DSN = "postgresql://bi:s3cret-pw@db.example.com:5432/analytics?sslmode=require"


def test_the_dsn_is_write_only_and_encrypted_at_rest(api, tenant):
    config = {"dsn": DSN, "table": "analytics.calls", "timeout": 5}
    created = api.post("/api/v1/apps", {**APP, "config": config}, format="json")
    assert created.status_code == 201, created.json()
    app_id = created.json()["id"]

    patched = api.patch(f"/api/v1/apps/{app_id}", {"config": {"table": "calls"}}, format="json")

    assert patched.status_code == 200, patched.json()
    assert patched.json()["config"] == {"table": "calls"}
    assert "s3cret" not in str(api.get(f"/api/v1/apps/{app_id}").json())
    with tenant_scope(tenant):
        assert App.objects.get().secrets == {"dsn": DSN}
    with connection.cursor() as cursor:
        cursor.execute("SELECT secrets_json FROM automations_app")
        assert "s3cret" not in cursor.fetchone()[0]


@pytest.mark.parametrize(
    "table",
    ["calls; DROP TABLE users", "analytics.calls.extra", "1calls", 'calls"', "", "a b", 42],
)
def test_a_bad_table_name_is_refused_when_saved(api, table):
    config = {"dsn": DSN, "table": table}

    response = api.post("/api/v1/apps", {**APP, "config": config}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["field"] == "config.table"


@pytest.mark.parametrize(
    "dsn",
    [
        "postgresql://bi@127.0.0.1/analytics",
        "postgresql://bi@10.0.0.5/analytics",
        "postgresql://bi@localhost/analytics",
        "postgresql://bi@[::1]/analytics",
        "postgresql://bi@169.254.169.254/analytics",
        "host=/var/run/postgresql dbname=analytics user=bi",
        "postgresql://bi@db.example.com/analytics?service=ours",
        "postgresql://bi@db.example.com/analytics?passfile=/root/.pgpass",
        "postgresql://bi@db.example.com,db2.example.com/analytics",
        "postgresql://bi@db.example.com/analytics?sslmode=prefer",
        "postgresql://bi@db.example.com/analytics?sslmode=verify-ca",
        "postgresql://db.example.com/analytics",
        "not a dsn =",
    ],
)
def test_a_private_host_or_unsafe_dsn_is_refused_when_saved(api, dsn):
    response = api.post(
        "/api/v1/apps", {**APP, "config": {"dsn": dsn, "table": "calls"}}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["error"]["field"] == "config.dsn"


def test_a_name_that_resolves_to_a_private_address_is_refused_when_run(
    tenant, make_app, dsn, settings
):
    # The machine's own name passes the save-time check (a name); its address does not.
    name = socket.gethostname()
    try:
        address = socket.getaddrinfo(name, 5432, type=socket.SOCK_STREAM)[0][4][0]
    except socket.gaierror:
        pytest.skip(f"{name!r} does not resolve here")
    if not is_blocked_address(address):
        pytest.skip(f"{name!r} resolves to a public address here")
    app = warehouse_app(make_app, dsn.replace("@127.0.0.1:", f"@{name}:"))
    settings.ALLOW_PRIVATE_URLS = False

    run = run_apps(tenant, end_call(tenant), "call.end")

    assert (run.state, run.error) == ("failed", "blocked_ip")
    assert rows(dsn) == [] and app.secrets["dsn"].startswith("postgresql://")


def test_an_app_saved_while_private_hosts_were_allowed_fails_once_they_are_not(
    tenant, make_app, dsn, settings
):
    warehouse_app(make_app, dsn)
    settings.ALLOW_PRIVATE_URLS = False

    run = run_apps(tenant, end_call(tenant), "call.end")

    assert run.state == "failed" and "private or reserved" in run.error
    assert rows(dsn) == []


def test_a_server_that_never_answers_times_out(tenant, make_app, dsn):
    silent = socket.create_server(("127.0.0.1", 0))  # accepts, then says nothing
    port = silent.getsockname()[1]
    accepted = []
    threading.Thread(target=lambda: accepted.append(silent.accept()), daemon=True).start()
    warehouse_app(make_app, f"postgresql://bi@127.0.0.1:{port}/x?sslmode=disable", timeout=2)

    started = time.monotonic()
    run = run_apps(tenant, end_call(tenant), "call.end")

    assert (run.state, run.error) == ("failed", "connection")
    assert 1.5 < time.monotonic() - started < 6
    silent.close()


def test_nothing_of_ours_goes_with_the_connection():
    config = warehouse.WarehouseConfig.from_settings(
        {"table": "calls"}, "postgresql://bi@db.example.com/analytics?sslmode=verify-full"
    )

    params = warehouse.connect_params(config.dsn, "203.0.113.7", 10)

    assert (params["host"], params["hostaddr"], params["port"]) == (
        "db.example.com",
        "203.0.113.7",
        "5432",
    )
    assert (params["password"], params["passfile"]) == ("", "/dev/null")
    assert (params["sslcertmode"], params["sslrootcert"]) == ("disable", "system")
    assert params["options"] == "-c statement_timeout=10000"
