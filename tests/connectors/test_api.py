"""Connections API: credentials are write-only, sync now queues a task, runs are listed."""

import pytest

from connectors.models import Connection, SyncRun
from core.scoping import tenant_scope

pytestmark = pytest.mark.django_db


def test_it_creates_a_connection_and_never_returns_its_credentials(api, hubspot, settings):
    response = api.post(
        "/api/v1/connections",
        {
            "provider": "hubspot",
            "name": "Sales HubSpot",
            "credentials": {"private_app_token": "pat-na1-secret", "base_url": hubspot.url},
            "settings": {"objects": ["contacts", "companies"], "custom_fields": ["lifecyclestage"]},
        },
        format="json",
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert "credentials" not in body and "pat-na1-secret" not in response.content.decode()
    assert body["status"] == "active"
    listed = api.get("/api/v1/connections").content.decode()
    detail = api.get(f"/api/v1/connections/{body['id']}").content.decode()
    assert "pat-na1-secret" not in listed + detail


@pytest.mark.parametrize("limits", [{"requests": [0, 10]}, {"requests": 190}, [190, 10]])
def test_it_refuses_rate_limits_that_are_not_requests_in_seconds(api, hubspot, limits):
    response = api.post(
        "/api/v1/connections",
        {
            "provider": "hubspot",
            "name": "x",
            "credentials": {"private_app_token": "t", "base_url": hubspot.url},
            "settings": {"rate_limits": limits},
        },
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["error"]["field"] == "settings"


def test_it_refuses_a_connection_without_usable_credentials(api):
    response = api.post(
        "/api/v1/connections",
        {"provider": "hubspot", "name": "x", "credentials": {"access_token": "a"}},
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["error"]["field"] == "credentials"


def test_it_refuses_a_private_base_url_unless_allowed(api, settings):
    settings.ALLOW_PRIVATE_URLS = False
    response = api.post(
        "/api/v1/connections",
        {
            "provider": "hubspot",
            "name": "x",
            "credentials": {"private_app_token": "t", "base_url": "http://169.254.169.254/"},
        },
        format="json",
    )

    assert response.status_code == 400


def test_new_credentials_reactivate_a_connection_that_needs_attention(
    api, tenant, hubspot, make_connection
):
    connection = make_connection(tenant, hubspot)
    with tenant_scope(tenant):
        Connection.objects.filter(pk=connection.pk).update(
            status="needs_attention", last_error="HubSpot rejected the private-app token (401)"
        )

    response = api.patch(
        f"/api/v1/connections/{connection.pk}",
        {"credentials": {"private_app_token": "pat-new"}},
        format="json",
    )

    assert response.status_code == 200
    assert (response.json()["status"], response.json()["last_error"]) == ("active", "")
    with tenant_scope(tenant):
        assert (
            Connection.objects.get(pk=connection.pk).credentials["private_app_token"] == "pat-new"
        )


def test_sync_now_queues_the_kind_asked_for_on_commit(
    api, tenant, hubspot, make_connection, django_capture_on_commit_callbacks
):
    connection = make_connection(tenant, hubspot)

    with django_capture_on_commit_callbacks() as queued:
        response = api.post(
            f"/api/v1/connections/{connection.pk}/sync", {"kind": "full"}, format="json"
        )
    bad = api.post(f"/api/v1/connections/{connection.pk}/sync", {"kind": "all"}, format="json")

    assert response.status_code == 202 and response.json() == {"queued": "full"}
    assert len(queued) == 1
    assert bad.status_code == 400


def test_runs_are_listed_newest_first_with_their_counts(api, tenant, hubspot, make_connection):
    connection = make_connection(tenant, hubspot)
    with tenant_scope(tenant):
        SyncRun.objects.create(tenant=tenant, connection=connection, kind="full", deleted=3)
        SyncRun.objects.create(tenant=tenant, connection=connection, kind="incremental", created=9)

    runs = api.get(f"/api/v1/connections/{connection.pk}/runs").json()["results"]

    assert [(r["kind"], r["created"], r["deleted"]) for r in runs] == [
        ("incremental", 9, 0),
        ("full", 0, 3),
    ]


def test_deleting_a_connection_deletes_its_synced_contacts_only(
    api, tenant, hubspot, make_connection, make_contact
):
    connection = make_connection(tenant, hubspot)
    make_contact(tenant, "020 7946 0018", first_name="Synced", source_connection=connection)
    manual = make_contact(tenant, "020 7946 0019", first_name="Manual")

    response = api.delete(f"/api/v1/connections/{connection.pk}")

    assert response.status_code == 204
    assert api.get("/api/v1/contacts").json()["results"][0]["id"] == manual.pk
    assert api.get("/api/v1/contacts").json()["count"] == 1


def test_a_key_limited_to_other_scopes_cannot_manage_connections(make_client, tenant):
    client = make_client(tenant, scopes=["contacts:read"])

    assert client.get("/api/v1/connections").status_code == 403
