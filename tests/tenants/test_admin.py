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
