import json
import urllib.request
from io import StringIO

import pytest
from django.contrib.auth import authenticate
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from core.scoping import across_all_tenants, tenant_scope
from tenants.models import Agent, ApiKey, CallerIdNumber, Membership, Tenant
from tenants.services import api_key_create

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def me(plaintext: str):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    return client.get("/api/v1/me")


def test_onboard_creates_a_usable_tenant_and_prints_json():
    result = json.loads(run("onboard", "Acme Ltd", "--region", "gb", "--json"))

    tenant = Tenant.objects.get(slug="acme-ltd")
    assert result["tenant"]["slug"] == "acme-ltd" and tenant.default_region == "GB"
    assert me(result["server_key"]).json()["tenant"]["slug"] == "acme-ltd"
    assert me(result["browser_key"]).status_code == 403  # browser keys are for the launch URL
    owner = authenticate(username=result["admin"]["username"], password=result["admin"]["password"])
    with tenant_scope(tenant):
        assert Membership.objects.get(user=owner).role == "owner"


def test_onboard_refuses_a_duplicate_tenant_and_creates_nothing_more():
    run("onboard", "Acme", "--json")

    with pytest.raises(CommandError, match="already exists"):
        run("onboard", "Acme", "--json")
    with across_all_tenants():
        assert ApiKey.objects.count() == 2


def test_onboard_refuses_a_bad_region_without_leaving_a_half_tenant():
    with pytest.raises(CommandError, match="region"):
        run("onboard", "Nowhere", "--region", "XX")
    assert not Tenant.objects.exists()


def test_apikey_command_creates_rotates_and_revokes(tenant):
    created = run("apikey", "create", "acme", "--kind", "server", "--scope", "agents:read").strip()
    prefix = created[:12]

    rotated = run("apikey", "rotate", prefix).strip()
    run("apikey", "revoke", rotated[:12])

    assert me(created).status_code == 401
    assert me(rotated).status_code == 401
    with tenant_scope(tenant):
        assert ApiKey.objects.get(prefix=prefix).scopes == ["agents:read"]


def test_apikey_command_explains_bad_input(tenant):
    with pytest.raises(CommandError, match="CIDR"):
        run("apikey", "create", "acme", "--kind", "server", "--allow-ip", "nope")
    with pytest.raises(CommandError):
        run("apikey", "revoke", "cbs_NoSuchKy")


def test_seed_demo_is_idempotent_and_its_keys_work():
    first = run("seed_demo")
    second = run("seed_demo")

    server_key = next(line.split()[-1] for line in first.splitlines() if "server key" in line)
    assert first == second
    assert me(server_key).json()["tenant"]["slug"] == "demo"
    with across_all_tenants():
        assert Agent.objects.count() == 3 and CallerIdNumber.objects.count() == 2
        assert ApiKey.objects.count() == 2


def test_keys_made_by_the_service_are_unique(tenant):
    prefixes = {api_key_create(tenant=tenant, kind="server")[0].prefix for _ in range(50)}

    assert len(prefixes) == 50


def test_seed_demo_connects_the_demo_tenant_to_the_fake_hubspot_once(settings):
    from automations.crm_logging import crm_log_send
    from automations.models import CrmLog
    from connectors.models import Connection
    from connectors.sync import connection_sync
    from contacts.models import Contact
    from fakes.hubspot import FakeHubSpot

    settings.ALLOW_PRIVATE_URLS = True
    fake = FakeHubSpot(contacts=30, companies=5)
    url = fake.start()
    try:
        run("seed_demo", "--fake-hubspot", url)
        run("seed_demo", "--fake-hubspot", url)
        tenant = Tenant.objects.get(slug="demo")
        with tenant_scope(tenant):
            connection = Connection.objects.get()
            run_row = connection_sync(connection_id=connection.pk, kind="incremental")

            assert run_row.error == "" and run_row.created == 35
            assert Contact.objects.filter(source_connection=connection).count() == 35

        # A demo call, once ended, is logged into the fake HubSpot.
        server_key = "cbs_DemoSrv1_demo-server-key-for-local-use-only"
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {server_key}")
        body = {
            "from_number": "+918047000100",
            "to_number": "9876543210",
            "crm_username": "agent.017",
        }
        call_id = client.post("/api/v1/calls", body, format="json").json()["call_id"]
        assert client.post(f"/api/v1/calls/{call_id}/hangup").status_code == 200
        with tenant_scope(tenant):
            log = CrmLog.objects.get(call__call_id=call_id)
            attempt = crm_log_send(crm_log_id=str(log.pk))
            assert attempt is not None and attempt.succeeded, attempt and attempt.error
        assert len(fake.written["tasks"]) == 1  # hung up before the answer: a missed-call task
        # ... which the README shows how to read back from the fake, with its contact there.
        request = urllib.request.Request(  # noqa: S310 - the fake on loopback
            f"{url}/crm/v3/objects/tasks?properties=hs_task_subject&associations=contacts",
            headers={"Authorization": f"Bearer {next(iter(fake.private_app_tokens))}"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            (task,) = json.loads(response.read())["results"]
        (linked,) = task["associations"]["contacts"]["results"]
        assert fake.objects["contacts"][int(linked["id"])].properties["phone"] == "+919876543210"
    finally:
        fake.stop()
