"""With Redis stopped the API still answers: keys from the database, events stored, decide routes.

The web process runs as the Procfile runs it (granian, one worker of 2 threads) on the test
database and on a Redis of this test's own (cache and broker), which the test stops while
requests are running.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import redis
import requests

from calls.models import TelephonyEvent
from core.scoping import tenant_scope
from routing.services import routing_rule_create
from tenants.models import ApiKey
from tenants.services import api_key_create, api_key_revoke
from tests.calls.conftest import database_url  # noqa: F401 - the web process uses the test database

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not shutil.which("redis-server"), reason="needs the redis-server binary"),
]

ROOT = Path(__file__).resolve().parents[2]
KNOWN = "+442045205757"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class OwnRedis:
    """A redis-server of this test's own on a free port: never the shared one."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
             "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis(port=self.port)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)

    def stop(self) -> None:
        assert self.process is not None
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture
def own_redis():
    server = OwnRedis()
    server.start()
    yield server
    if server.process.poll() is None:
        server.stop()


@pytest.fixture
def web(database_url, own_redis, tmp_path):  # noqa: F811
    """The web process on the test database and this Redis; its base URL."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": f"redis://127.0.0.1:{own_redis.port}/0",
        "CELERY_BROKER_URL": f"redis://127.0.0.1:{own_redis.port}/1",
    }
    log = tmp_path / "web.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "granian", "--interface", "wsgi", "config.wsgi:application",
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1", "--blocking-threads", "2",
         "--no-ws"],
        cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(f"{url}/api/v1/me", timeout=5)
                break
            except requests.RequestException:  # not listening yet, or still booting its worker
                assert process.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


@pytest.fixture
def routed(tenant, make_contact):
    tenant.routing_settings.fallback_extension = "1000"
    tenant.routing_settings.save()
    make_contact(tenant, KNOWN, first_name="Ada")
    with tenant_scope(tenant):
        routing_rule_create(
            tenant=tenant,
            name="Known",
            action="extension",
            conditions={"known": True},
            extension="1093",
        )
    return tenant


def key(tenant, **options) -> dict[str, str]:
    plaintext = api_key_create(tenant=tenant, kind=ApiKey.Kind.SERVER, **options)[1]
    return {"Authorization": f"Bearer {plaintext}"}


def test_the_api_answers_while_its_redis_is_down(web, own_redis, routed):
    headers, limited = key(routed), key(routed, rate_limit_per_minute=1)
    revoked_key, revoked = api_key_create(tenant=routed, kind=ApiKey.Kind.SERVER)
    session = requests.Session()

    def lookup(auth: dict) -> requests.Response:
        return session.get(
            f"{web}/api/v1/lookup", params={"number": KNOWN}, headers=auth, timeout=5
        )

    def decide() -> requests.Response:
        return session.post(
            f"{web}/api/v1/routing/decide", json={"caller": KNOWN}, headers=headers, timeout=5
        )

    # Before: every key and the rules are remembered in the web process.
    assert lookup(headers).json()["known"] is True
    assert decide().json()["extension"] == "1093"
    assert lookup({"Authorization": f"Bearer {revoked}"}).status_code == 200
    assert lookup(limited).status_code == 200 and lookup(limited).status_code == 429

    # Requests keep coming while Redis stops.
    statuses: list[int] = []
    stop = threading.Event()

    def keep_asking() -> None:
        asking = requests.Session()
        while not stop.is_set():
            response = asking.get(
                f"{web}/api/v1/lookup", params={"number": KNOWN}, headers=headers, timeout=5
            )
            statuses.append(response.status_code)

    asker = threading.Thread(target=keep_asking)
    asker.start()
    time.sleep(0.3)
    own_redis.stop()
    api_key_revoke(api_key=revoked_key)  # while Redis is down
    time.sleep(0.5)

    started = time.monotonic()
    found = lookup(headers)
    decided = decide()
    event = {"id": "e-1", "type": "call.start", "call_id": "pbx-1", "from": KNOWN,
             "to": "+442079460000", "direction": "inbound"}  # fmt: skip
    accepted = session.post(
        f"{web}/api/v1/telephony/events", json=event, headers=headers, timeout=5
    )
    listed = session.get(f"{web}/api/v1/contacts", headers=headers, timeout=5)
    refused = lookup({"Authorization": f"Bearer {revoked}"})
    unlimited = [lookup(limited).status_code for _ in range(3)]
    elapsed = time.monotonic() - started
    stop.set()
    asker.join()

    assert found.status_code == 200 and found.json()["known"] is True
    assert decided.json()["extension"] == "1093", decided.json()  # routed, not the fallback
    assert "matched" in decided.json()["reason"]
    assert accepted.status_code == 202, accepted.text
    with tenant_scope(routed):
        assert TelephonyEvent.objects.filter(event_id="e-1", processed_at=None).exists()
    assert listed.status_code == 200 and listed.json()["count"] == 1
    assert refused.status_code == 401  # revocation still takes effect, from the database
    assert unlimited == [200, 200, 200]  # rate limits fail open
    assert elapsed < 5
    assert statuses and set(statuses) == {200}, statuses

    # Redis back (empty, as after a restart): remembered again, the revocation still holds.
    own_redis.start()
    time.sleep(2.1)  # the web process leaves Redis alone a moment after a failure
    assert lookup(headers).status_code == 200
    assert lookup({"Authorization": f"Bearer {revoked}"}).status_code == 401
    assert decide().json()["extension"] == "1093"
