"""Run one sync of the benchmark connection in this process and print its figures as JSON.

The CRM is BENCH_SYNC_PROVIDER (hubspot by default; providers.py lists them).
`sync.py setup CREDENTIALS_JSON` creates the tenant and its connection (or gives it these
credentials); `sync.py incremental|full [--profile FILE]` runs connectors.sync.connection_sync
once; `sync.py fetch` only pages through the fake with the connector (no database writes).
"""

import cProfile
import json
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django

django.setup()

from django.db import connection as db  # noqa: E402

from config.celery import tune_garbage_collector  # noqa: E402
from connectors.interface import Cursor  # noqa: E402
from connectors.models import Connection, SyncRun  # noqa: E402
from connectors.services import connection_create, connector_for_connection  # noqa: E402
from connectors.sync import connection_sync  # noqa: E402
from core.scoping import tenant_scope  # noqa: E402
from tenants.models import Tenant  # noqa: E402

PROVIDER = os.environ.get("BENCH_SYNC_PROVIDER", "hubspot")
NAME = f"Bench {PROVIDER}"
SETTINGS = {
    "objects": ["contacts"],
    "max_delete_share": 0.02,  # the diff deletes exactly 1 %: allowed, but not much more
    **({"custom_fields": ["lifecyclestage"]} if PROVIDER == "hubspot" else {}),
    # --rate-limited: the tenant's tier of the CRM's limits, as the tenant would set them.
    "rate_limits": json.loads(os.environ.get("BENCH_SYNC_RATE_LIMITS") or "{}"),
}


def setup(credentials: dict) -> None:
    tenant, _ = Tenant.objects.get_or_create(
        slug="bench-sync", defaults={"name": "Bench sync", "default_region": "GB"}
    )
    with tenant_scope(tenant):
        connection = Connection.objects.filter(name=NAME).first()
        if connection is None:
            connection = connection_create(
                tenant=tenant,
                provider=PROVIDER,
                name=NAME,
                credentials=credentials,
                settings=SETTINGS,
            )
        connection.credentials = credentials
        connection.settings = SETTINGS
        connection.status = Connection.Status.ACTIVE
        connection.save()
    print(json.dumps({"tenant_id": tenant.pk, "connection_id": connection.pk}))


def sync(kind: str, profile: str | None) -> None:
    tenant = Tenant.objects.get(slug="bench-sync")
    with tenant_scope(tenant):
        connection = Connection.objects.get(name=NAME)
        profiler = cProfile.Profile() if profile else None
        started = time.perf_counter()
        if profiler:
            profiler.enable()
        run = connection_sync(connection_id=connection.pk, kind=kind, time_budget=None)
        if profiler:
            profiler.disable()
            profiler.dump_stats(profile)
        seconds = time.perf_counter() - started
    assert isinstance(run, SyncRun)
    report(
        seconds,
        outcome=run.outcome,
        error=run.error,
        pages=run.pages,
        created=run.created,
        updated=run.updated,
        unchanged=run.unchanged,
        deleted=run.deleted,
        invalid_records=run.invalid_records,
        invalid_numbers=run.invalid_numbers,
    )


def fetch() -> None:
    """Page through every contact as the sync does, without writing: the source's own speed."""
    tenant = Tenant.objects.get(slug="bench-sync")
    with tenant_scope(tenant):
        connector = connector_for_connection(Connection.objects.get(name=NAME))
    records, pages, cursor = 0, 0, Cursor()
    started = time.perf_counter()
    while True:
        page = connector.changed_since("contacts", cursor)
        records, pages, cursor = records + len(page.records), pages + 1, page.cursor
        if page.done:
            break
    report(time.perf_counter() - started, pages=pages, records=records)


def report(seconds: float, **figures: object) -> None:
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    cpu = os.times()
    print(
        json.dumps(
            {
                "seconds": seconds,
                "peak_rss_mb": rss_mb,
                "cpu_seconds": cpu.user + cpu.system,
                "postgres_cpu_seconds": backend_cpu_seconds(),
                **figures,
            }
        )
    )


def backend_cpu_seconds() -> float:
    """CPU seconds our PostgreSQL backend process used (the server runs on this machine)."""
    with db.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


if __name__ == "__main__":
    tune_garbage_collector()  # as each worker process does when it starts
    command = sys.argv[1]
    if command == "setup":
        setup(json.loads(sys.argv[2]))
    elif command == "fetch":
        fetch()
    else:
        sync(command, sys.argv[3] if sys.argv[2:3] == ["--profile"] else None)
