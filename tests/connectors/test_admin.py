"""Staff see connections and their runs in the admin, never the credentials, and can sync now."""

import pytest

from connectors.models import Connection
from core.scoping import tenant_scope

pytestmark = pytest.mark.django_db


def test_the_change_page_shows_runs_but_never_the_credentials(
    admin_client, tenant, hubspot, make_connection
):
    connection = make_connection(
        tenant, hubspot, credentials={"private_app_token": "pat-na1-s3cret"}
    )

    response = admin_client.get(f"/admin/connectors/connection/{connection.pk}/change/")

    assert response.status_code == 200
    assert b"pat-na1-s3cret" not in response.content
    assert b"new_credentials" in response.content


def test_new_credentials_typed_in_the_admin_are_merged_and_clear_the_error(
    admin_client, tenant, hubspot, make_connection
):
    connection = make_connection(tenant, hubspot)
    with tenant_scope(tenant):
        Connection.objects.filter(pk=connection.pk).update(
            status="needs_attention", last_error="401"
        )
    form = {
        "tenant": tenant.pk,
        "provider": "hubspot",
        "name": "HubSpot",
        "settings": '{"objects": ["contacts"]}',
        "status": "active",
        "new_credentials": '{"private_app_token": "pat-new"}',
        "runs-TOTAL_FORMS": "0",
        "runs-INITIAL_FORMS": "0",
    }

    response = admin_client.post(f"/admin/connectors/connection/{connection.pk}/change/", form)

    assert response.status_code == 302, response.content
    with tenant_scope(tenant):
        stored = Connection.objects.get(pk=connection.pk)
    assert stored.credentials["private_app_token"] == "pat-new"
    assert stored.credentials["base_url"] == hubspot.url
    assert (stored.status, stored.last_error) == ("active", "")


def test_sync_now_queues_a_sync_per_selected_connection(
    admin_client, tenant, hubspot, make_connection, django_capture_on_commit_callbacks
):
    connection = make_connection(tenant, hubspot)

    with django_capture_on_commit_callbacks() as queued:
        response = admin_client.post(
            "/admin/connectors/connection/",
            {"action": "full_diff_now", "_selected_action": [connection.pk]},
        )

    assert response.status_code == 302
    assert len(queued) == 1


def test_the_new_credentials_box_starts_empty_and_names_what_is_stored(
    admin_client, tenant, hubspot, make_connection
):
    connection = make_connection(tenant, hubspot, credentials={"private_app_token": "pat-x"})

    html = admin_client.get(f"/admin/connectors/connection/{connection.pk}/change/").content
    box = html.decode().split('name="new_credentials"')[1].split("</textarea>")[0]

    assert "null" not in box and "pat-x" not in box
    assert "base_url, private_app_token (values never shown)" in html.decode()


def test_a_null_in_new_credentials_removes_that_credential(
    admin_client, tenant, hubspot, make_connection
):
    connection = make_connection(tenant, hubspot, credentials={"hub_id": "4212"})
    form = {
        "tenant": tenant.pk, "provider": "hubspot", "name": "HubSpot",
        "settings": "{}", "status": "active", "new_credentials": '{"hub_id": null}',
        "runs-TOTAL_FORMS": "0", "runs-INITIAL_FORMS": "0",
    }  # fmt: skip

    response = admin_client.post(f"/admin/connectors/connection/{connection.pk}/change/", form)

    assert response.status_code == 302, response.content
    with tenant_scope(tenant):
        assert "hub_id" not in Connection.objects.get(pk=connection.pk).credentials
