"""The decision is never late and never an error: slow or unreachable database included."""

import socket
import time
from contextlib import contextmanager

import psycopg
import pytest
from django.db import connection, connections
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
    """New connections go to a port nothing listens on, and the open ones of the decision pool
    are cut (a pool thread kept its connection from an earlier decision); the test's own stays.
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
