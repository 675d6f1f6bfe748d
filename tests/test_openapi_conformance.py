"""Every documented operation answers as /api/schema/ says: never a 5xx, bodies match the schema.

Schemathesis generates requests from the schema: a fixed number per operation, derandomized (the
same requests every run), so the run is bounded (well under a minute) and reproducible.
"""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections, connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tenants.models import ApiKey
from tenants.services import api_key_create

EXAMPLES_PER_OPERATION = 4
CONFIG = schemathesis.Config.from_dict(
    {
        "seed": 11,
        "generation": {
            "max-examples": EXAMPLES_PER_OPERATION,
            "deterministic": True,
            "database": "none",
        },
        "phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}},
    }
)


schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application(), config=CONFIG)


@pytest.fixture(autouse=True)
def _requests_keep_the_test_connection():
    # As Django's test client does: a request must not close the test's database connection.
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


@pytest.fixture(autouse=True)
def _quick(settings, monkeypatch):
    settings.LIVE_STREAM_SECONDS = 0.5  # the live feed's stream ends sooner
    # Decisions run on pool threads with connections of their own: close them after each one.
    monkeypatch.setitem(connections["default"].settings_dict, "CONN_MAX_AGE", 0)


@pytest.fixture
def authorization(tenant) -> dict[str, str]:
    plaintext = api_key_create(
        tenant=tenant, kind=ApiKey.Kind.SERVER, rate_limit_per_minute=100_000
    )[1]
    return {"Authorization": f"Bearer {plaintext}"}


@pytest.mark.django_db
@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_as_documented(case, authorization):
    case.call_and_validate(
        headers=authorization,
        checks=[not_a_server_error, response_schema_conformance, status_code_conformance],
    )


def test_the_schema_allows_what_validation_accepts_and_no_more(client, api):
    components = client.get("/api/schema/?format=json").json()["components"]["schemas"]
    order = components["App"]["properties"]["order"]

    assert (order["minimum"], order["maximum"]) == (10, 100)
    assert components["Contact"]["properties"]["owner"]["nullable"] is True
    app = {"name": "x", "slug": "x", "kind": "webhook", "events": ["call.end"]}
    config = {"url": "https://api.company.com/calls"}
    for value, status in [(10, 201), (100, 201), (0, 400), (101, 400)]:
        body = {**app, "slug": f"x{value}", "order": value, "config": config}
        assert api.post("/api/v1/apps", body, format="json").status_code == status, value
