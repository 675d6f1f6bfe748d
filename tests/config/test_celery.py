"""A real Celery worker and beat, started as the Procfile starts them, run the heartbeat task."""

import gc
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from celery.signals import worker_process_init
from django.core.cache import cache
from django.db import connection

from config.celery import GC_YOUNG_THRESHOLD
from config.celery import app as celery_app
from core.health import HEARTBEAT_CACHE_KEY

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def test_the_app_has_separate_realtime_and_bulk_queues_and_late_acks():
    bindings = {q.name: (q.exchange.name, q.routing_key) for q in celery_app.conf.task_queues}
    assert bindings == {"realtime": ("realtime", "realtime"), "bulk": ("bulk", "bulk")}
    assert celery_app.conf.task_acks_late and celery_app.conf.task_reject_on_worker_lost
    assert "record-worker-heartbeat" in celery_app.conf.beat_schedule


def test_each_worker_process_leaves_start_up_objects_out_of_collections():
    threshold = gc.get_threshold()
    try:
        worker_process_init.send(sender=None)  # what the pool sends in each child it starts

        assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, *threshold[1:])
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


@pytest.fixture
def database_url(transactional_db) -> str:
    db = connection.settings_dict
    if connection.vendor != "postgresql":
        pytest.skip("needs the PostgreSQL test database (run bin/test)")
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", *args],
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def test_beat_fires_the_heartbeat_and_a_worker_runs_it(database_url, tmp_path):
    env = {**os.environ, "DATABASE_URL": database_url, "CELERY_HEARTBEAT_SECONDS": "1"}
    worker = ["worker", "-Q", "realtime,bulk", "-c", "1", "--purge", "-l", "INFO"]
    beat = ["beat", "-l", "INFO", "--pidfile=", f"--schedule={tmp_path}/beat"]
    processes = [start(worker, env, tmp_path / "w.log"), start(beat, env, tmp_path / "b.log")]
    try:
        deadline = time.monotonic() + 45
        while cache.get(HEARTBEAT_CACHE_KEY) is None and time.monotonic() < deadline:
            time.sleep(0.25)
        heartbeat = cache.get(HEARTBEAT_CACHE_KEY)
    finally:
        for process in processes:
            os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            process.wait(timeout=30)

    logs = "\n".join(p.read_text() for p in sorted(tmp_path.glob("*.log")))
    assert heartbeat is not None, logs
    assert abs(time.time() - heartbeat) < 45
    assert "record_worker_heartbeat" in logs


def test_a_task_sent_to_bulk_never_reaches_a_realtime_only_worker(database_url, tmp_path):
    env = {**os.environ, "DATABASE_URL": database_url}
    log = tmp_path / "w.log"
    with celery_app.connection_for_write() as conn:
        for queue in ("realtime", "bulk"):
            conn.default_channel.queue_purge(queue)
    worker = start(["worker", "-Q", "realtime", "-c", "1", "-l", "INFO"], env, log)
    try:
        celery_app.send_task("core.tasks.record_worker_heartbeat", queue="bulk")
        celery_app.send_task("core.tasks.record_worker_heartbeat", queue="realtime")
        deadline = time.monotonic() + 30
        while cache.get(HEARTBEAT_CACHE_KEY) is None and time.monotonic() < deadline:
            time.sleep(0.25)
        time.sleep(1)  # had the bulk task leaked into realtime, it would have run first
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)
        with celery_app.connection_for_write() as conn:
            conn.default_channel.queue_purge("bulk")

    assert cache.get(HEARTBEAT_CACHE_KEY) is not None, log.read_text()
    assert log.read_text().count("record_worker_heartbeat[") == 2  # received + succeeded, once
