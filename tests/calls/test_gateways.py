"""The tenant's gateway: the engine its GatewayConfig names (the simulator without one)."""

import json

import pytest
from django.db import connection

from calls import gateways
from calls.gateways.simulator.gateway import simulator_step
from calls.models import Call, GatewayConfig, TelephonyEvent
from core.scoping import tenant_scope
from tests.calls.test_events import process_all, stored, twilio_post

pytestmark = pytest.mark.django_db


def configure(tenant, engine: str, **credentials) -> GatewayConfig:
    with tenant_scope(tenant):
        config = GatewayConfig(tenant=tenant, engine=engine)
        config.credentials = credentials
        config.save()
    return config


def test_a_tenant_without_a_config_runs_the_simulator(tenant):
    with tenant_scope(tenant):
        assert gateways.gateway_for(tenant).engine == "simulator"


def test_a_twilio_gateway_without_its_account_answers_501_and_places_nothing(
    api, tenant, call_body
):
    configure(tenant, "twilio", auth_token="twilio-secret")

    response = api.post("/api/v1/calls", call_body, format="json")

    assert response.status_code == 501, response.json()
    assert "no account_sid" in response.json()["error"]["message"]
    with tenant_scope(tenant):
        assert not Call.objects.exists()


def test_the_configured_twilio_token_checks_the_callbacks_signature(api, tenant):
    configure(tenant, "twilio", auth_token="configured-secret")
    url = api.post("/api/v1/telephony/token").json()["url"].removeprefix("http://127.0.0.1:8000")

    refused = twilio_post(url, "status_inbound_ringing.txt", auth_token="another-token")
    signed = twilio_post(url, "status_inbound_ringing.txt", auth_token="configured-secret")

    assert refused.status_code == 403
    assert signed.status_code == 202, signed.json()
    assert [row.source for row in stored(tenant)] == ["twilio"]


def test_the_gateway_credentials_are_encrypted_at_rest(tenant):
    config = configure(tenant, "twilio", auth_token="configured-secret")

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT credentials_json FROM calls_gatewayconfig WHERE id = %s", [config.pk]
        )
        stored_text = cursor.fetchone()[0]
    assert "configured-secret" not in stored_text
    with tenant_scope(tenant):
        assert GatewayConfig.objects.get().credentials == {"auth_token": "configured-secret"}


def test_the_simulator_reports_each_step_as_a_stored_event(tenant, place_call, in_tenant):
    call = place_call()

    simulator_step(call_id=str(call.call_id), step=0)
    simulator_step(call_id=str(call.call_id), step=1)
    process_all(tenant)

    rows = list(TelephonyEvent.objects.order_by("pk"))
    assert [(r.source, r.event_id) for r in rows] == [
        ("simulator", f"simulator:{call.call_id}:0"),
        ("simulator", f"simulator:{call.call_id}:1"),
    ]
    assert [r.payload["ringing"] for r in rows] == ["agent", "customer"]
    call.refresh_from_db()
    assert call.external_id == str(call.call_id)
    assert call.state == "customer_ringing"


def test_staff_configure_a_gateway_and_never_see_its_credentials(admin_client, tenant):
    form = {"tenant": tenant.pk, "engine": "twilio", "settings": "{}"}
    credentials = {"account_sid": "AC" + "0123456789abcdef" * 2, "auth_token": "admin-secret"}

    refused = admin_client.post(
        "/admin/calls/gatewayconfig/add/",
        {**form, "new_credentials": '{"auth_token": "admin-secret"}'},
    )
    response = admin_client.post(
        "/admin/calls/gatewayconfig/add/", {**form, "new_credentials": json.dumps(credentials)}
    )

    assert refused.status_code == 200 and "account_sid" in refused.content.decode()
    assert response.status_code == 302, response.content.decode()[:2000]
    with tenant_scope(tenant):
        config = GatewayConfig.objects.get()
    assert config.credentials == credentials
    page = admin_client.get(f"/admin/calls/gatewayconfig/{config.pk}/change/").content.decode()
    assert "admin-secret" not in page
