"""The decision is never late and never an error: slow or unreachable database included."""

import socket
import time
from contextlib import contextmanager

import psycopg
import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from tenants.models import Tenant

pytestmark = pytest.mark.django_db(transaction=True)

SEED_CALLER = "+442045205757"
DEADLINE_MS = 200
# Time the test client itself needs around the view (rendering, middleware) on a busy machine.
MARGIN_SECONDS = 0.06


@pytest.fixture
def routed(tenant, make_rule) -> Tenant:
    tenant.routing_settings.deadline_ms = DEADLINE_MS
    tenant.routing_settings.fallback_extension = "1000"
    tenant.routing_settings.save()
    make_rule(tenant, "Everyone", extension="1093")
    return tenant


@pytest.fixture(params=["server key", "routing URL"])
def caller(request, routed, make_client, make_token):
    """POSTs a decision request for `routed` the way one kind of phone system does."""
    if request.param == "server key":
        client, path = make_client(routed), "/api/v1/routing/decide"
    else:
        client, path = APIClient(), f"/api/v1/routing/decide/{make_token(routed)}"

    def post(body: dict) -> tuple[dict, float]:
        started = time.monotonic()
        response = client.post(path, body, format="json")
        elapsed = time.monotonic() - started
        assert response.status_code == 200, response.content
        return response.json(), elapsed

    return post


@contextmanager
def phonebook_locked():
    """Another session holds an exclusive lock on the phonebook's numbers: every lookup waits.

    (Not the rules: a process remembers those between decisions.)
    """
    with psycopg.connect(**connection.get_connection_params(), autocommit=False) as other:
        other.execute("LOCK TABLE contacts_contactphone IN ACCESS EXCLUSIVE MODE")
        try:
            yield
        finally:
            other.rollback()


@contextmanager
def database_unreachable(monkeypatch):
    """New connections go to a port nothing listens on, and every open one is cut: the decision
    pool's (a pool thread kept its connection from an earlier decision) and the test's own (the
    request thread decides on it while all is well).
    """
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    with monkeypatch.context() as patch:
        settings = connections["default"].settings_dict
        patch.setitem(settings, "HOST", "127.0.0.1")
        patch.setitem(settings, "PORT", str(closed_port))
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        connection.close()
        yield


def test_it_answers_the_fallback_within_the_deadline_when_the_lookup_is_slow(caller):
    assert caller({"caller": SEED_CALLER})[0]["extension"] == "1093"

    with phonebook_locked():
        body, elapsed = caller({"caller": SEED_CALLER})

    assert body == {
        "extension": "1000",
        "rule": None,
        "reason": f"fallback: deadline exceeded ({DEADLINE_MS} ms)",
    }
    assert elapsed < DEADLINE_MS / 1000 + MARGIN_SECONDS


def test_it_honours_the_tenants_deadline_on_its_first_call_too(caller):
    # Nothing remembered yet about this caller: the deadline is learnt while deciding.
    with phonebook_locked():
        body, elapsed = caller({"caller": SEED_CALLER})

    assert body["extension"] == "1000"
    assert elapsed < DEADLINE_MS / 1000 + MARGIN_SECONDS


def test_it_routes_normally_again_once_the_database_is_fast(caller):
    with phonebook_locked():
        caller({"caller": SEED_CALLER})

    body, elapsed = caller({"caller": SEED_CALLER})

    assert body["extension"] == "1093"
    assert elapsed < DEADLINE_MS / 1000


def test_it_answers_the_fallback_within_the_deadline_when_the_database_is_down(caller, monkeypatch):
    assert caller({"caller": SEED_CALLER})[0]["extension"] == "1093"

    with database_unreachable(monkeypatch):
        body, elapsed = caller({"caller": SEED_CALLER})

    assert body["extension"] == "1000"
    assert body["rule"] is None
    assert body["reason"].startswith("fallback: lookup failed (OperationalError")
    assert elapsed < DEADLINE_MS / 1000 + MARGIN_SECONDS


def test_it_cannot_name_a_fallback_for_a_caller_it_never_saw_while_the_database_is_down(
    caller, monkeypatch
):
    with database_unreachable(monkeypatch):
        body, elapsed = caller({"caller": SEED_CALLER})

    assert body["extension"] is None
    assert body["reason"].startswith("unrouted: lookup failed")
    assert elapsed < 0.3 + MARGIN_SECONDS


def _decided_on(caller, body: dict) -> str:
    """Where the decision ran: "request thread" when its queries ran on the caller's own
    connection (the test client answers on the test's thread), else "pool"."""
    with CaptureQueriesContext(connection) as queries:
        caller(body)
    return "request thread" if any("contacts_contact" in q["sql"] for q in queries) else "pool"


def test_a_caller_already_seen_is_decided_on_the_request_thread(caller):
    connection.close()  # the request thread has no connection yet: the pool decides, then it
    assert _decided_on(caller, {"caller": SEED_CALLER}) == "pool"  # connects for the next ones
    assert connection.connection is not None

    assert _decided_on(caller, {"caller": SEED_CALLER}) == "request thread"
    assert caller({"caller": SEED_CALLER})[0]["extension"] == "1093"


def test_a_query_late_on_the_request_thread_is_cancelled_and_the_pool_decides_a_while(caller):
    assert caller({"caller": SEED_CALLER})[0]["extension"] == "1093"
    assert _decided_on(caller, {"caller": SEED_CALLER}) == "request thread"

    with phonebook_locked():
        body, elapsed = caller({"caller": SEED_CALLER})
        assert body["reason"] == f"fallback: deadline exceeded ({DEADLINE_MS} ms)"
        assert elapsed < DEADLINE_MS / 1000 + MARGIN_SECONDS
        # The request connection has no statement timeout: its query, left behind, is cancelled
        # rather than waiting for the lock as long as it is held.
        assert _waiting_for_a_lock(seconds=3) == 0

    assert _decided_on(caller, {"caller": SEED_CALLER}) == "pool"
    assert caller({"caller": SEED_CALLER})[0]["extension"] == "1093"


def _waiting_for_a_lock(seconds: float) -> int:
    """Sessions of this database still waiting for a lock once `seconds` have passed (or none)."""
    with psycopg.connect(**connection.get_connection_params(), autocommit=True) as observer:
        for _ in range(int(seconds * 20)):
            (waiting,) = observer.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            ).fetchone()
            if not waiting:
                return 0
            time.sleep(0.05)
    return waiting
