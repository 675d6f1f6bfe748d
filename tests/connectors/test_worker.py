"""A real Celery worker syncs from the fake HubSpot: survives kill -9, holds the lock, guards
deletes."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection as db

from config.celery import app as celery_app
from connectors import sync
from connectors.models import Connection, SyncRun
from contacts.models import Contact
from core.scoping import tenant_scope
from fakes.hubspot import Fault

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration
# Pages of 200, the run's progress saved every few: enough pages to be killed between saves.
CONTACTS = 200 * (2 * sync.PROGRESS_EVERY_PAGES + 2)


@pytest.fixture
def database_url(transactional_db) -> str:
    settings = db.settings_dict
    if db.vendor != "postgresql":
        pytest.skip("needs the PostgreSQL test database (run bin/test)")
    return f"postgres://{settings['USER']}@{settings['HOST']}:{settings['PORT']}/{settings['NAME']}"


@pytest.fixture
def start_worker(database_url, tmp_path):
    env = {**os.environ, "DATABASE_URL": database_url, "ALLOW_PRIVATE_URLS": "1"}
    started = []
    with celery_app.connection_for_write() as conn:
        conn.default_channel.queue_purge("bulk")

    def start(concurrency: int = 1) -> subprocess.Popen:
        log = (tmp_path / f"worker{len(started)}.log").open("w")
        worker = ["worker", "-Q", "bulk", "-c", str(concurrency), "-l", "INFO"]
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", *worker],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        started.append(process)
        return process

    yield start
    for process in started:  # killed: a warm shutdown takes seconds (tests/calls/conftest.py)
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
    with celery_app.connection_for_write() as conn:
        conn.default_channel.queue_purge("bulk")


def send_sync(connection, kind="incremental") -> None:
    celery_app.send_task(
        "connectors.tasks.connection_sync",
        args=[connection.tenant_id, connection.pk, kind],
        queue="bulk",
    )


def runs(connection) -> list[SyncRun]:
    with tenant_scope(connection.tenant_id):
        return list(SyncRun.objects.filter(connection=connection).order_by("id"))


def wait_for(condition, seconds: float = 60, what: str = "") -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_a_worker_killed_mid_sync_is_resumed_without_duplicates_then_deletes_are_guarded(
    tenant, make_hubspot, make_connection, start_worker, tmp_path
):
    fake = make_hubspot(contacts=CONTACTS)
    fake.inject(Fault("slow", times=10_000, path_contains="/search", seconds=0.4))
    connection = make_connection(tenant, fake, settings={"objects": ["contacts"]})

    worker = start_worker()
    send_sync(connection)
    wait_for(
        lambda: runs(connection) and runs(connection)[0].pages >= sync.PROGRESS_EVERY_PAGES,
        what="the first progress saved",
    )
    os.killpg(worker.pid, signal.SIGKILL)  # mid-sync: pages left, the task never acknowledged
    worker.wait(timeout=10)
    killed = runs(connection)[0]
    assert killed.outcome == "running" and killed.pages < CONTACTS / 200

    # Two workers now, and the sync queued twice (the dispatcher's next tick and "sync now"):
    # the lock lets one run, the other skips.
    start_worker(concurrency=2)
    send_sync(connection)
    send_sync(connection)
    wait_for(lambda: any(r.outcome == "succeeded" for r in runs(connection)), what="resume")
    time.sleep(1.5)  # had the second task not been locked out, its run row would be here

    killed, resumed = runs(connection)
    assert killed.outcome == "failed" and "died" in killed.error
    assert resumed.created + killed.created <= CONTACTS  # no page upserted twice as new
    # From the saved cursor: the pages stored after it are read again (unchanged), not page 1.
    assert resumed.unchanged < sync.PROGRESS_EVERY_PAGES * 200
    assert killed.created + resumed.created + resumed.unchanged >= CONTACTS
    with tenant_scope(tenant):
        external_ids = list(
            Contact.objects.filter(source_connection=connection).values_list(
                "external_id", flat=True
            )
        )
    assert len(external_ids) == len(set(external_ids)) == CONTACTS
    logs = "\n".join(p.read_text() for p in sorted(tmp_path.glob("worker*.log")))
    assert "already running: skipped" in logs

    fake.archive("contacts", list(range(1, CONTACTS // 6 + 1)))  # a sixth vanishes at once
    send_sync(connection, "full")
    wait_for(lambda: len(runs(connection)) == 3 and runs(connection)[2].finished_at, what="diff")

    assert runs(connection)[2].outcome == "guarded"
    with tenant_scope(tenant):
        assert not Contact.objects.filter(deleted_at__isnull=False).exists()
        assert Connection.objects.get(pk=connection.pk).status == "needs_attention"
