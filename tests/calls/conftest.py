import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from calls.models import Call
from tenants.models import Agent, CallerIdNumber, Tenant
from tests.calls.receiver import CallbackReceiver

ROOT = Path(__file__).resolve().parents[2]
FROM_NUMBER = "+442079460000"
AGENT_NUMBER = "+447400000017"


@pytest.fixture
def caller_id(tenant: Tenant) -> CallerIdNumber:
    number = CallerIdNumber(tenant=tenant, number=FROM_NUMBER)
    number.save()
    return number


@pytest.fixture
def agent(tenant: Tenant) -> Agent:
    agent = Agent(tenant=tenant, crm_username="agent.017", phone_number=AGENT_NUMBER)
    agent.save()
    return agent


@pytest.fixture
def call_body(caller_id, agent) -> dict:
    """The seed 002 server-to-server body, written the way a CRM would."""
    return {
        "from_number": "020 7946 0000",
        "to_number": "07400 123456",
        "crm_username": "agent.017",
        "uuid": "crm-call-42",
    }


@pytest.fixture
def receiver():
    receiver = CallbackReceiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture
def private_urls(settings) -> None:
    settings.ALLOW_PRIVATE_URLS = True


@pytest.fixture
def place_call(api, call_body):
    """Place a call through the API and return it (the simulator is not run in-process)."""

    def place(**overrides: str) -> Call:
        response = api.post("/api/v1/calls", {**call_body, **overrides}, format="json")
        assert response.status_code == 201, response.json()
        return Call.objects.get(call_id=response.json()["call_id"])

    return place


@pytest.fixture
def database_url(transactional_db) -> str:
    db = connection.settings_dict
    if connection.vendor != "postgresql":
        pytest.skip("needs the PostgreSQL test database (run bin/test)")
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


@pytest.fixture
def processes(database_url, tmp_path):
    """Start Celery processes as the Procfile does, on the test database; stop them after."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "ALLOW_PRIVATE_URLS": "true",
        "DELIVERY_SWEEP_SECONDS": "1",
        "DELIVERY_STALE_SECONDS": "1",
    }
    started: list[subprocess.Popen] = []

    def start(
        *args: str,
        name: str = "worker",
        program: tuple[str, ...] = ("-m", "celery", "-A", "config"),
    ) -> subprocess.Popen:
        log = tmp_path / f"{name}-{len(started)}.log"
        process = subprocess.Popen(
            [sys.executable, *program, *args],
            cwd=ROOT,
            env=env,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        process.log = log
        started.append(process)
        return process

    def worker(*extra: str) -> subprocess.Popen:
        process = start(
            "worker", "-Q", "realtime", "-c", "2", "-l", "INFO", "--without-gossip",
            "--without-mingle", *extra,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while "ready." not in process.log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        return process

    def manage(*args: str) -> subprocess.Popen:
        """A manage.py command (e.g. ari_events), as the Procfile runs it."""
        return start(*args, name=args[0], program=("manage.py",))

    start.worker = worker
    start.manage = manage
    yield start
    # Killed, not stopped: the test is over, and a Celery worker's warm shutdown (SIGTERM) takes
    # 2-3 s even when idle. Tasks it held unacknowledged stay unacknowledged in the broker (the
    # visibility timeout is an hour), so none reaches the next test's worker.
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    for process in started:
        process.wait(timeout=30)
