"""API keys page: create (secret shown once, hashed), scopes, allowlist, rate limit, revoke."""

import secrets

import pytest

from core.scoping import tenant_scope
from tenants.models import ApiKey, AuditEntry
from tenants.selectors import api_key_find
from tenants.services import API_SCOPES, api_key_create

pytestmark = pytest.mark.django_db

ISOLATED_ROUTES = {"api-keys/", "api-keys/<int:pk>/revoke"}


def key_form(**fields) -> dict:
    return {
        "submit_token": secrets.token_urlsafe(16),
        "name": "CRM backend",
        "kind": "server",
        **fields,
    }


def test_a_server_key_is_created_with_its_limits_and_its_secret_shown_once(admin_client, tenant):
    response = admin_client.post(
        "/app/api-keys/",
        key_form(
            scopes=["contacts:read", "routing:write"],
            allowed_cidrs="203.0.113.0/24\n198.51.100.7",
            rate_limit_per_minute="120",
        ),
    )
    later = admin_client.get("/app/api-keys/")

    secret = response.context["secret"]
    assert response.status_code == 200 and secret.startswith("cbs_") and secret in response.text
    assert response.headers["Cache-Control"] == "no-store"
    assert secret not in later.text and secret[:12] in later.text
    with tenant_scope(tenant):
        key = ApiKey.objects.get()
        entry = AuditEntry.objects.get()
    assert api_key_find(secret) == key
    assert key.scopes == ["contacts:read", "routing:write"]
    assert key.allowed_cidrs == ["203.0.113.0/24", "198.51.100.7/32"]
    assert key.rate_limit_per_minute == 120
    assert entry.action == "api_key.create" and secret not in str(entry.changes)


def test_the_scopes_offered_are_the_ones_the_api_knows(admin_client):
    page = admin_client.get("/app/api-keys/")

    offered = page.context["form"].fields["scopes"].choices
    assert [value for value, _ in offered] == list(API_SCOPES)
    assert 'value="apps:write"' in page.text


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"allowed_cidrs": "not-an-ip"}, "allowed_cidrs", "is not an IP address or CIDR range"),
        ({"kind": "browser", "allowed_cidrs": "10.0.0.0/8"}, "allowed_cidrs", "Only server keys"),
        ({"scopes": ["root:write"]}, "scopes", "Select a valid choice"),
        ({"rate_limit_per_minute": "0"}, "rate_limit_per_minute", "greater than or equal to 1"),
        ({"name": ""}, "name", "This field is required."),
    ],
)
def test_bad_input_is_an_error_beside_its_field(admin_client, tenant, fields, field, message):
    response = admin_client.post("/app/api-keys/", key_form(**fields))

    assert response.status_code == 200
    assert message in " ".join(response.context["form"].errors[field])
    with tenant_scope(tenant):
        assert not ApiKey.objects.exists()


def test_a_double_submitted_key_is_created_once(admin_client, tenant):
    form = key_form()

    admin_client.post("/app/api-keys/", form)
    second = admin_client.post("/app/api-keys/", form)

    assert "already submitted" in second.text and "secret" not in second.context
    with tenant_scope(tenant):
        assert ApiKey.objects.count() == 1


def test_a_key_is_revoked_after_confirming(admin_client, tenant):
    with tenant_scope(tenant):
        key, plaintext = api_key_create(tenant=tenant, kind="browser", name="Webphone")

    confirm = admin_client.get(f"/app/api-keys/{key.pk}/revoke")
    response = admin_client.post(f"/app/api-keys/{key.pk}/revoke")

    assert "Revoke the key “Webphone”?" in confirm.text
    assert response.status_code == 302
    key.refresh_from_db()
    assert key.is_revoked and api_key_find(plaintext).is_revoked


def test_a_viewer_sees_the_keys_but_cannot_create_or_revoke(viewer_client, tenant):
    with tenant_scope(tenant):
        key, _ = api_key_create(tenant=tenant, kind="server", name="Backend")

    page = viewer_client.get("/app/api-keys/")
    create = viewer_client.post("/app/api-keys/", key_form())
    revoke = viewer_client.post(f"/app/api-keys/{key.pk}/revoke")

    assert key.prefix in page.text and "Create a key" not in page.text and "Revoke" not in page.text
    assert (create.status_code, revoke.status_code) == (403, 403)
    key.refresh_from_db()
    assert not key.is_revoked


def test_another_tenants_member_sees_and_revokes_none_of_the_keys(other_client, tenant):
    with tenant_scope(tenant):
        key, _ = api_key_create(tenant=tenant, kind="server", name="Acme backend")

    page = other_client.get("/app/api-keys/")
    confirm = other_client.get(f"/app/api-keys/{key.pk}/revoke")
    revoke = other_client.post(f"/app/api-keys/{key.pk}/revoke")

    assert key.prefix not in page.text and "Acme backend" not in page.text
    assert (confirm.status_code, revoke.status_code) == (404, 404)
    key.refresh_from_db()
    assert not key.is_revoked


@pytest.mark.integration
def test_in_a_browser_a_key_is_created_shown_once_and_revoked(signed_in_page, tenant, live_server):
    from playwright.sync_api import expect

    page = signed_in_page(tenant, "admin")
    page.goto(f"{live_server.url}/app/api-keys/")
    expect(page.get_by_text("No API keys yet")).to_be_visible()
    page.get_by_label("Name").fill("CRM backend")
    page.get_by_label("contacts:read").check()
    page.get_by_role("button", name="Create key").click()

    secret = page.locator("#new-key-secret").inner_text()
    assert secret.startswith("cbs_")
    with tenant_scope(tenant):
        assert api_key_find(secret).scopes == ["contacts:read"]
    page.goto(f"{live_server.url}/app/api-keys/")  # the secret is gone for good
    expect(page.locator("#new-key-secret")).to_have_count(0)
    expect(page.get_by_role("cell", name=f"{secret[:12]}…")).to_be_visible()

    page.get_by_role("link", name="Revoke").click()
    page.get_by_role("button", name="Revoke key").click()

    expect(page.get_by_text(f"Key {secret[:12]}… revoked.")).to_be_visible()
    expect(page.get_by_role("cell", name=f"{secret[:12]}… revoked")).to_be_visible()
    assert api_key_find(secret).is_revoked
