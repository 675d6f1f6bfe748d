import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.messages import get_messages
from rest_framework.test import APIClient

from core.scoping import across_all_tenants
from tenants.models import Agent, ApiKey
from tenants.services import api_key_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    user = get_user_model().objects.create_superuser("staff", "staff@example.com", "pw-staff-123")
    client.force_login(user)
    return client


def secrets_shown(response) -> list[str]:
    text = " ".join(str(m) for m in get_messages(response.wsgi_request))
    return re.findall(r"cb[sb]_\w{8}_[\w-]+", text)


def test_staff_see_every_tenants_agents(staff_client, tenant, other_tenant):
    Agent(tenant=tenant, crm_username="mine").save()
    Agent(tenant=other_tenant, crm_username="theirs").save()

    page = staff_client.get("/admin/tenants/agent/?q=").content.decode()

    assert "mine" in page and "theirs" in page


def test_staff_create_a_key_and_see_its_secret_once(staff_client, tenant):
    response = staff_client.post(
        "/admin/tenants/apikey/add/",
        {
            "tenant": tenant.pk,
            "kind": "server",
            "name": "backend",
            "scopes": "[]",
            "allowed_cidrs": '["203.0.113.0/24"]',
            "rate_limit_per_minute": "",
        },
    )

    (plaintext,) = secrets_shown(response)
    with across_all_tenants():
        api_key = ApiKey.objects.get()
    assert api_key.prefix == plaintext[:12] and plaintext not in api_key.secret_hash
    assert api_key.allowed_cidrs == ["203.0.113.0/24"]
    first_view = staff_client.get("/admin/tenants/apikey/").content.decode()
    second_view = staff_client.get("/admin/tenants/apikey/").content.decode()
    assert plaintext in first_view and plaintext not in second_view


def test_staff_rotate_a_key_from_the_admin(staff_client, tenant):
    api_key, old = api_key_create(tenant=tenant, kind="server")

    response = staff_client.post(
        "/admin/tenants/apikey/",
        {"action": "rotate_keys", "_selected_action": [api_key.pk]},
    )

    (new,) = secrets_shown(response)
    for plaintext, expected in ((old, 401), (new, 200)):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
        assert client.get("/api/v1/me").status_code == expected


def test_the_api_key_added_message_names_the_new_keys_prefix(staff_client, tenant):
    response = staff_client.post(
        "/admin/tenants/apikey/add/",
        {"tenant": tenant.pk, "kind": "browser", "name": "crm", "scopes": "[]",
         "allowed_cidrs": "[]", "rate_limit_per_minute": ""},
        follow=True,
    )  # fmt: skip

    text = " ".join(str(m) for m in get_messages(response.wsgi_request))
    (plaintext,) = secrets_shown(response)
    assert f"{plaintext[:12]}… (browser)</a>” was added" in text


SECRETS = {
    "callback_auth_value": "Bearer cb-s3cret-value",
    "twilio_auth_token": "twilio-s3cret-token",
    "signing_secret": "whsec_c2lnbmluZy1zM2NyZXQ=",
    "previous_signing_secret": "whsec_cHJldmlvdXMtczNjcmV0",
}


def tenant_form(tenant, **changes) -> dict:
    """The tenant change form as the admin posts it, with `changes`."""
    return {
        "name": tenant.name, "slug": tenant.slug, "default_region": tenant.default_region,
        "timezone": tenant.timezone, "is_active": "on",
        "shared_number_policy": tenant.shared_number_policy,
        "routing_deadline_ms": tenant.routing_deadline_ms, "routing_fallback_extension": "",
        "callback_url": "https://crm.example.com/callbacks",
        "callback_auth_header": "Authorization",
        "default_disposition": "CRM_CALL", "simulator_outcomes": "[]",
        "simulator_ring_seconds": "4", "simulator_talk_seconds": "20", **changes,
    }  # fmt: skip


@pytest.fixture
def tenant_with_secrets(tenant):
    for name, value in SECRETS.items():
        setattr(tenant, name, value)
    tenant.save()
    return tenant


def test_the_tenant_page_never_shows_its_secrets(staff_client, tenant_with_secrets):
    page = staff_client.get(f"/admin/tenants/tenant/{tenant_with_secrets.pk}/change/")

    assert page.status_code == 200
    html = page.content.decode()
    assert not [value for value in SECRETS.values() if value in html]
    assert 'name="new_callback_auth_value"' in html and "Now set; never shown" in html


def test_staff_replace_keep_and_clear_tenant_secrets(staff_client, tenant_with_secrets):
    url = f"/admin/tenants/tenant/{tenant_with_secrets.pk}/change/"

    kept = staff_client.post(url, tenant_form(tenant_with_secrets))
    tenant_with_secrets.refresh_from_db()
    assert kept.status_code == 302, kept.content.decode()
    assert {name: getattr(tenant_with_secrets, name) for name in SECRETS} == SECRETS

    staff_client.post(
        url,
        tenant_form(
            tenant_with_secrets,
            new_callback_auth_value="Bearer rotated",
            clear_twilio_auth_token="on",
            clear_signing_secret="on",
        ),
    )
    tenant_with_secrets.refresh_from_db()
    assert tenant_with_secrets.callback_auth_value == "Bearer rotated"
    assert tenant_with_secrets.twilio_auth_token == ""
    assert (tenant_with_secrets.signing_secret, tenant_with_secrets.previous_signing_secret) == (
        "",
        "",
    )


def test_a_new_secret_and_a_clear_together_or_a_line_break_are_refused(
    staff_client, tenant_with_secrets
):
    url = f"/admin/tenants/tenant/{tenant_with_secrets.pk}/change/"

    both = staff_client.post(
        url,
        tenant_form(tenant_with_secrets, new_twilio_auth_token="x", clear_twilio_auth_token="on"),
    )
    broken = staff_client.post(
        url, tenant_form(tenant_with_secrets, new_callback_auth_value="a\r\nX-Evil: 1")
    )

    assert both.status_code == 200 and "not both" in both.content.decode()
    assert broken.status_code == 200 and "line breaks" in broken.content.decode()
    tenant_with_secrets.refresh_from_db()
    assert tenant_with_secrets.twilio_auth_token == SECRETS["twilio_auth_token"]


def test_staff_rotate_the_signing_secret_and_see_the_new_one_once(
    staff_client, tenant_with_secrets
):
    response = staff_client.post(
        "/admin/tenants/tenant/",
        {"action": "rotate_signing_secret", "_selected_action": [tenant_with_secrets.pk]},
    )

    text = " ".join(str(m) for m in get_messages(response.wsgi_request))
    (secret,) = re.findall(r"whsec_[\w+/=]+", text)
    tenant_with_secrets.refresh_from_db()
    assert tenant_with_secrets.signing_secret == secret
    assert tenant_with_secrets.previous_signing_secret == SECRETS["signing_secret"]
    change_page = f"/admin/tenants/tenant/{tenant_with_secrets.pk}/change/"
    first_view = staff_client.get(change_page).content.decode()
    second_view = staff_client.get(change_page).content.decode()
    assert secret in first_view and secret not in second_view  # the message, once


def test_no_admin_page_has_a_box_or_a_line_for_an_encrypted_field(rf, staff_client):
    from django.contrib import admin

    from core.encryption import EncryptedTextField

    request = rf.get("/admin/")
    request.user = get_user_model().objects.get(username="staff")
    checked = 0
    for model, model_admin in admin.site._registry.items():
        secrets = {f.name for f in model._meta.fields if isinstance(f, EncryptedTextField)}
        if not secrets:
            continue
        shown = {
            *model_admin.get_form(request).base_fields,
            *model_admin.get_readonly_fields(request),
        }
        assert not secrets & shown, f"{model.__name__} shows {secrets & shown}"
        checked += 1
    assert checked >= 2  # the tenant's secrets and the connections' credentials at least
