"""Another tenant's key gets 404 (details, actions) or nothing (lists) on every calls endpoint."""

import json

import pytest
from rest_framework.test import APIClient

from calls import events, recordings
from calls.models import Call, Delivery, TelephonyEvent
from calls.services import call_place
from core.scoping import tenant_scope
from tenants.models import Agent, CallerIdNumber

pytestmark = pytest.mark.django_db

ISOLATED_ROUTES = {
    "calls",
    "calls/<uuid:call_id>",
    "calls/<uuid:call_id>/hangup",
    "calls/<uuid:call_id>/disposition",
    "calls/<uuid:call_id>/notes",
    "calls/<uuid:call_id>/transfer",
    "calls/<uuid:call_id>/add-party",
    "calls/<uuid:call_id>/recording",
    "telephony/events",
    "telephony/events/<str:token>",
    "telephony/token",
    "deliveries",
    "deliveries/<uuid:pk>",
    "deliveries/<uuid:pk>/resend",
    "deliveries/pause",
    "tenant/signing-secret",
    "gateway",
    "live",
    "exports/calls",
}


@pytest.fixture
def acme_call(tenant) -> Call:
    tenant.callback_settings.url = "https://crm.example.com/callbacks"
    tenant.callback_settings.save()
    with tenant_scope(tenant):
        agent = Agent(tenant=tenant, crm_username="agent.017")
        agent.save()
        CallerIdNumber(tenant=tenant, number="+442079460000").save()
        call, _ = call_place(
            tenant=tenant,
            call_type="server",
            from_number="+442079460000",
            customer_number="+447400123456",
            agent=agent,
            uuid="crm-call-42",
        )
    return call


@pytest.fixture
def acme_delivery(acme_call, api) -> Delivery:
    api.post(f"/api/v1/calls/{acme_call.call_id}/hangup")
    with tenant_scope(acme_call.tenant_id):
        delivery = Delivery.objects.get()
        Delivery.objects.filter(pk=delivery.pk).update(state="failed")
    return delivery


def test_other_tenants_see_no_calls_and_no_deliveries(other_api, acme_delivery):
    assert other_api.get("/api/v1/calls").json()["results"] == []
    assert other_api.get("/api/v1/deliveries").json()["results"] == []


@pytest.mark.parametrize(
    "method,suffix,body",
    [
        ("get", "", None),
        ("post", "/hangup", None),
        ("post", "/disposition", {"disposition": "HIJACKED"}),
        ("post", "/notes", {"notes": "hijacked"}),
        ("post", "/transfer", {"to_number": "+14155550123"}),
        ("post", "/add-party", {"number": "+14155550123"}),
    ],
)
def test_another_tenants_call_is_a_404(other_api, acme_call, method, suffix, body):
    response = getattr(other_api, method)(
        f"/api/v1/calls/{acme_call.call_id}{suffix}", body, format="json"
    )

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    with tenant_scope(acme_call.tenant_id):
        acme_call.refresh_from_db()
        assert not acme_call.parties.exists()
    assert (acme_call.state, acme_call.disposition) == ("initiated", "CRM_CALL")
    assert acme_call.notes == ""


@pytest.mark.parametrize("method,suffix", [("get", ""), ("post", "/resend")])
def test_another_tenants_delivery_is_a_404(other_api, acme_delivery, method, suffix):
    response = getattr(other_api, method)(f"/api/v1/deliveries/{acme_delivery.pk}{suffix}")

    assert response.status_code == 404
    with tenant_scope(acme_delivery.tenant_id):
        assert Delivery.objects.get().state == "failed"


def test_another_tenant_cannot_replay_a_uuid_into_our_call(other_api, acme_call, other_tenant):
    with tenant_scope(other_tenant):
        Agent(tenant=other_tenant, crm_username="agent.017").save()
        CallerIdNumber(tenant=other_tenant, number="+14155550100").save()
    body = {
        "from_number": "+14155550100",
        "to_number": "+447400123456",
        "crm_username": "agent.017",
        "uuid": "crm-call-42",
    }

    response = other_api.post("/api/v1/calls", body, format="json")

    assert response.status_code == 201
    assert response.json()["call_id"] != str(acme_call.call_id)


def test_rotating_a_signing_secret_touches_only_the_callers_tenant(other_api, tenant):
    response = other_api.post("/api/v1/tenant/signing-secret")

    tenant.refresh_from_db()
    assert response.status_code == 201
    assert tenant.callback_settings.signing_secret == ""


def test_the_gateway_is_read_and_changed_only_for_the_callers_tenant(api, other_api, tenant):
    api.patch("/api/v1/gateway", {"engine": "twilio", "credentials": TWILIO}, format="json")

    changed = other_api.patch("/api/v1/gateway", {"engine": "simulator"}, format="json")

    assert other_api.get("/api/v1/gateway").json()["credentials_set"] == []
    assert changed.status_code == 200
    assert api.get("/api/v1/gateway").json()["engine"] == "twilio"


TWILIO = {"account_sid": "AC" + "0123456789abcdef" * 2, "auth_token": "acme-token"}


def test_the_live_feed_shows_only_the_callers_tenant(api, other_api, acme_call, settings):
    settings.LIVE_STREAM_SECONDS = 0.2

    def read(client) -> list[dict]:
        response = client.get("/api/v1/live", HTTP_LAST_EVENT_ID="0")  # replay everything
        body = b"".join(response.streaming_content).decode()
        return [json.loads(line[6:]) for line in body.splitlines() if line.startswith("data: ")]

    ours, theirs = read(api), read(other_api)

    assert (theirs[0]["active"], theirs[0]["calls"]) == (0, [])
    assert theirs[1:] == []
    assert ours[0]["active"] == 1
    assert [e["call_id"] for e in ours[1:]] == [str(acme_call.call_id)]


def test_another_tenants_recording_can_be_neither_read_nor_revoked(other_api, acme_call):
    with tenant_scope(acme_call.tenant_id):
        recording = recordings.recording_ensure(call=acme_call)
    path = f"/api/v1/calls/{acme_call.call_id}/recording"

    assert other_api.get(path).status_code == 404
    assert other_api.delete(path).status_code == 404
    with tenant_scope(acme_call.tenant_id):
        recording.refresh_from_db()
    assert recording.revoked_at is None


EVENT = {"id": "evt-1", "type": "call.start", "call_id": "pbx-42", "from": "+447400123456"}


@pytest.fixture
def acme_event(tenant) -> TelephonyEvent:
    with tenant_scope(tenant):
        row, _ = events.telephony_event_accept(tenant=tenant, body=EVENT, source="json")
        events.telephony_event_process(event_pk=row.pk)
    return row


def test_the_same_event_and_call_ids_from_another_tenant_stay_apart(
    other_api, acme_event, tenant, other_tenant
):
    changed = {**EVENT, "type": "call.end", "status": "BUSY"}

    response = other_api.post("/api/v1/telephony/events", changed, format="json")

    assert response.status_code == 202  # not a duplicate of, nor a conflict with, acme's event
    with tenant_scope(other_tenant):
        assert TelephonyEvent.objects.get().payload == changed
        events.telephony_event_process(event_pk=TelephonyEvent.objects.get().pk)
        assert Call.objects.get().status == "BUSY"
    with tenant_scope(tenant):
        assert TelephonyEvent.objects.count() == 1
        assert Call.objects.get(external_id="pbx-42").state == "initiated"


def test_an_events_url_stores_for_its_own_tenant_only(api, other_api, tenant, other_tenant):
    acme_url = api.post("/api/v1/telephony/token").json()["url"]
    other_api.post("/api/v1/telephony/token")
    other_api.delete("/api/v1/telephony/token")

    response = APIClient().post(
        acme_url.removeprefix("http://127.0.0.1:8000"), EVENT, format="json"
    )

    assert response.status_code == 202
    assert other_api.get("/api/v1/telephony/token").status_code == 404
    assert api.get("/api/v1/telephony/token").status_code == 200
    with tenant_scope(other_tenant):
        assert not TelephonyEvent.objects.exists()
    with tenant_scope(tenant):
        assert TelephonyEvent.objects.count() == 1


def test_the_calls_export_holds_only_the_callers_tenant(api, other_api, acme_call, settings):
    settings.CALL_EXPORT_SETTLE_SECONDS = 0

    def rows(client) -> list[dict]:
        response = client.get("/api/v1/exports/calls", {"format": "ndjson"})
        lines = b"".join(response.streaming_content).decode().splitlines()
        return [json.loads(line) for line in lines[:-1]]

    assert rows(other_api) == []
    assert [row["call_id"] for row in rows(api)] == [str(acme_call.call_id)]
