"""Another tenant's key gets 404 (detail, sync, runs) or nothing (list) on every connection
endpoint, and can never touch this tenant's connection."""

import pytest

from connectors.models import Connection, SyncRun
from core.scoping import tenant_scope

pytestmark = pytest.mark.django_db

# Routes this module proves isolated; tests/test_architecture.py checks every API route is listed
# in some tests/<app>/test_isolation.py.
ISOLATED_ROUTES = {
    "connections",
    "connections/<int:pk>",
    "connections/<int:pk>/sync",
    "connections/<int:pk>/runs",
    "connections/<int:pk>/oauth",
    "connections/oauth/callback",  # signed state: test_oauth.test_a_forged_state_is_refused
    # signed per connection: test_hubspot_webhooks.test_another_tenants_connection_secret_…
    "connections/<int:pk>/hubspot/webhook",
}


@pytest.fixture
def connection(tenant, hubspot, make_connection) -> Connection:
    connection = make_connection(tenant, hubspot)
    with tenant_scope(tenant):
        SyncRun.objects.create(tenant=tenant, connection=connection, kind="incremental")
    return connection


def test_another_tenant_lists_no_connections(other_api, connection):
    response = other_api.get("/api/v1/connections")

    assert response.status_code == 200
    assert response.json()["results"] == []


@pytest.mark.parametrize("method", ["get", "patch", "delete"])
def test_another_tenant_gets_404_for_a_connection(other_api, connection, method):
    response = getattr(other_api, method)(
        f"/api/v1/connections/{connection.pk}", {"name": "Hijacked"}, format="json"
    )

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    with tenant_scope(connection.tenant_id):
        assert Connection.objects.get(pk=connection.pk).name == "HubSpot"


def test_another_tenant_cannot_sync_or_read_runs(
    other_api, api, connection, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as queued:
        sync = other_api.post(f"/api/v1/connections/{connection.pk}/sync", {}, format="json")
    runs = other_api.get(f"/api/v1/connections/{connection.pk}/runs")

    assert (sync.status_code, runs.status_code) == (404, 404)
    assert queued == []
    assert api.get(f"/api/v1/connections/{connection.pk}/runs").json()["count"] == 1


def test_another_tenant_cannot_start_oauth_for_a_connection(other_api, connection):
    response = other_api.post(f"/api/v1/connections/{connection.pk}/oauth")

    assert response.status_code == 404
