import re
from operator import attrgetter

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


SECRETS = {  # the tenant's settings rows'
    "telephony_settings.twilio_auth_token": "twilio-s3cret-token",
    "callback_settings.auth_value": "Bearer cb-s3cret-value",
    "callback_settings.signing_secret": "whsec_c2lnbmluZy1zM2NyZXQ=",
    "callback_settings.previous_signing_secret": "whsec_cHJldmlvdXMtczNjcmV0",
}


def secret_values(tenant) -> dict:
    tenant.refresh_from_db()
    tenant.callback_settings.refresh_from_db()
    tenant.telephony_settings.refresh_from_db()
    return {name: attrgetter(name)(tenant) for name in SECRETS}


def inline(prefix: str, tenant, **fields) -> dict:
    """One settings row's inline as the admin posts it: its management form and its fields."""
    return {
        f"{prefix}-TOTAL_FORMS": "1", f"{prefix}-INITIAL_FORMS": "1",
        f"{prefix}-MIN_NUM_FORMS": "0", f"{prefix}-MAX_NUM_FORMS": "1",
        f"{prefix}-0-tenant": str(tenant.pk),
        **{f"{prefix}-0-{name}": value for name, value in fields.items()},
    }  # fmt: skip


def tenant_form(tenant, **changes) -> dict:
    """The tenant change form as the admin posts it, with `changes` (inline fields prefixed)."""
    return {
        "name": tenant.name, "slug": tenant.slug, "default_region": tenant.default_region,
        "timezone": tenant.timezone, "is_active": "on",
        **inline("phonebook_settings", tenant, shared_number_policy="most_recent"),
        **inline("routing_settings", tenant, deadline_ms="300", fallback_extension=""),
        **inline(
            "callback_settings", tenant, url="https://crm.example.com/callbacks",
            auth_header="Authorization", default_disposition="CRM_CALL",
        ),
        **inline(
            "telephony_settings", tenant, simulator_outcomes="[]", simulator_ring_seconds="4",
            simulator_talk_seconds="20",
        ),
        **inline("webphone_settings", tenant, frame_origins="[]"),
        **changes,
    }  # fmt: skip


@pytest.fixture
def tenant_with_secrets(tenant):
    for name, value in SECRETS.items():
        row, field = name.split(".")
        setattr(getattr(tenant, row), field, value)
    tenant.callback_settings.save()
    tenant.telephony_settings.save()
    return tenant


def test_the_tenant_page_never_shows_its_secrets(staff_client, tenant_with_secrets):
    page = staff_client.get(f"/admin/tenants/tenant/{tenant_with_secrets.pk}/change/")

    assert page.status_code == 200
    html = page.content.decode()
    assert not [value for value in SECRETS.values() if value in html]
    assert 'name="callback_settings-0-new_auth_value"' in html and "Now set; never shown" in html


def test_staff_replace_keep_and_clear_tenant_secrets(staff_client, tenant_with_secrets):
    url = f"/admin/tenants/tenant/{tenant_with_secrets.pk}/change/"

    kept = staff_client.post(url, tenant_form(tenant_with_secrets))
    assert kept.status_code == 302, kept.content.decode()
    assert secret_values(tenant_with_secrets) == SECRETS

    staff_client.post(
        url,
        tenant_form(
            tenant_with_secrets,
            **{"callback_settings-0-new_auth_value": "Bearer rotated"},
            **{"callback_settings-0-clear_signing_secret": "on"},
            **{"telephony_settings-0-clear_twilio_auth_token": "on"},
        ),
    )
    assert secret_values(tenant_with_secrets) == {
        "telephony_settings.twilio_auth_token": "",
        "callback_settings.auth_value": "Bearer rotated",
        "callback_settings.signing_secret": "",
        "callback_settings.previous_signing_secret": "",
    }


def test_a_new_secret_and_a_clear_together_or_a_line_break_are_refused(
    staff_client, tenant_with_secrets
):
    url = f"/admin/tenants/tenant/{tenant_with_secrets.pk}/change/"

    both = staff_client.post(
        url,
        tenant_form(
            tenant_with_secrets,
            **{"telephony_settings-0-new_twilio_auth_token": "x"},
            **{"telephony_settings-0-clear_twilio_auth_token": "on"},
        ),
    )
    broken = staff_client.post(
        url,
        tenant_form(
            tenant_with_secrets, **{"callback_settings-0-new_auth_value": "a\r\nX-Evil: 1"}
        ),
    )

    assert both.status_code == 200 and "not both" in both.content.decode()
    assert broken.status_code == 200 and "line breaks" in broken.content.decode()
    assert secret_values(tenant_with_secrets) == SECRETS


def test_staff_rotate_the_signing_secret_and_see_the_new_one_once(
    staff_client, tenant_with_secrets
):
    response = staff_client.post(
        "/admin/tenants/tenant/",
        {"action": "rotate_signing_secret", "_selected_action": [tenant_with_secrets.pk]},
    )

    text = " ".join(str(m) for m in get_messages(response.wsgi_request))
    (secret,) = re.findall(r"whsec_[\w+/=]+", text)
    values = secret_values(tenant_with_secrets)
    assert values["callback_settings.signing_secret"] == secret
    assert (
        values["callback_settings.previous_signing_secret"]
        == SECRETS["callback_settings.signing_secret"]
    )
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
