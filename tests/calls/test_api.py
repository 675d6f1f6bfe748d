"""Server-to-server calls (seed 002): placing, idempotency, bad input, reading and actions."""

import threading
from urllib.parse import urlencode

import pytest
from django.db import connection

from calls.lifecycle import callback_payload
from calls.models import Call, CallEvent, CallState, Delivery
from tenants.models import Agent

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _scoped(in_tenant) -> None:
    """Assertions read the calling tenant's rows."""


def test_it_places_a_call_with_the_seed_body(api, call_body, agent, tenant):
    response = api.post("/api/v1/calls", call_body, format="json")

    assert response.status_code == 201, response.json()
    call = response.json()
    assert call["uuid"] == "crm-call-42"
    assert call["customer_number"] == "+447400123456"
    assert call["from_number"] == "+442079460000"
    assert (call["crm_username"], call["agent_number"]) == ("agent.017", "+447400000017")
    assert (call["call_type"], call["direction"]) == ("server", "outbound")
    assert (call["state"], call["status"], call["duration"]) == ("initiated", "", 0)
    assert call["disposition"] == "CRM_CALL"
    with_tenant = Call.objects.get(call_id=call["call_id"])
    assert list(CallEvent.objects.filter(call=with_tenant).values_list("kind", flat=True)) == [
        "initiated"
    ]


def test_it_finds_the_agent_by_agent_number_too(api, call_body):
    body = {**call_body, "agent_number": "07400 000017"}
    del body["crm_username"]

    response = api.post("/api/v1/calls", body, format="json")

    assert response.status_code == 201, response.json()
    assert response.json()["crm_username"] == "agent.017"


def test_the_same_uuid_twice_places_one_call_and_answers_it_again(api, call_body):
    first = api.post("/api/v1/calls", call_body, format="json")
    second = api.post("/api/v1/calls", call_body, format="json")

    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["call_id"] == second.json()["call_id"]
    assert Call.objects.count() == 1


def test_a_reused_uuid_for_a_different_call_is_a_conflict(api, call_body):
    api.post("/api/v1/calls", call_body, format="json")

    response = api.post("/api/v1/calls", {**call_body, "to_number": "07400999999"}, format="json")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "uuid_conflict"
    assert Call.objects.count() == 1


def test_calls_without_a_uuid_are_each_new(api, call_body):
    body = {k: v for k, v in call_body.items() if k != "uuid"}

    ids = {api.post("/api/v1/calls", body, format="json").json()["call_id"] for _ in range(2)}

    assert len(ids) == 2


def test_a_call_without_a_uuid_shows_null_as_its_callback_does(api, call_body, in_tenant):
    body = {k: v for k, v in call_body.items() if k != "uuid"}
    placed = api.post("/api/v1/calls", body, format="json").json()

    ended = api.post(f"/api/v1/calls/{placed['call_id']}/hangup").json()

    assert placed["uuid"] is None and ended["uuid"] is None
    assert api.get("/api/v1/calls").json()["results"][0]["uuid"] is None
    assert callback_payload(Call.objects.get(call_id=placed["call_id"]))["uuid"] is None


@pytest.mark.django_db(transaction=True)
def test_concurrent_duplicates_place_one_call(make_client, tenant, call_body):
    clients = [make_client(tenant) for _ in range(6)]
    barrier, answers = threading.Barrier(len(clients)), []

    def post(client) -> None:
        barrier.wait()
        answers.append(client.post("/api/v1/calls", call_body, format="json"))
        connection.close()

    threads = [threading.Thread(target=post, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(a.status_code for a in answers) == [200] * 5 + [201]
    assert len({a.json()["call_id"] for a in answers}) == 1
    assert Call.objects.count() == 1


BAD_BODIES = {
    "missing from_number": ({"from_number": None}, "from_number"),
    "empty to_number": ({"to_number": ""}, "to_number"),
    "garbage to_number": ({"to_number": "call me maybe"}, "to_number"),
    "unassigned from_number": ({"from_number": "+442079460999"}, "from_number"),
    "unregistered agent": ({"crm_username": "ghost"}, "crm_username"),
    "empty agent": ({"crm_username": ""}, "crm_username"),
    "no agent at all": ({"crm_username": None}, "agent_number"),
    "both agent fields": ({"agent_number": "+447400000017"}, "agent_number"),
    "unregistered agent_number": (
        {"crm_username": None, "agent_number": "+447400000555"},
        "agent_number",
    ),
    "garbage agent_number": ({"crm_username": None, "agent_number": "x"}, "agent_number"),
    "empty uuid": ({"uuid": ""}, "uuid"),
    "oversized uuid": ({"uuid": "u" * 256}, "uuid"),
}


@pytest.mark.parametrize("change,field", BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_bad_input_is_a_clear_400_and_places_nothing(api, call_body, change, field):
    body = {k: v for k, v in {**call_body, **change}.items() if v is not None}

    response = api.post("/api/v1/calls", body, format="json")

    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("invalid", field)
    assert field in error["message"]
    assert not Call.objects.exists()
    assert not CallEvent.objects.exists()


def test_a_deactivated_agent_cannot_place_calls(api, call_body, agent):
    agent.is_active = False
    agent.save()

    response = api.post("/api/v1/calls", call_body, format="json")

    assert response.status_code == 400
    assert "deactivated" in response.json()["error"]["message"]
    assert not Call.objects.exists()


def test_a_form_body_is_refused_with_415(api, call_body):
    response = api.generic(
        "POST", "/api/v1/calls", urlencode(call_body), "application/x-www-form-urlencoded"
    )

    assert response.status_code == 415
    assert not Call.objects.exists()


def test_a_multipart_body_is_refused_with_415(api, call_body):
    response = api.post("/api/v1/calls", call_body, format="multipart")

    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"
    assert not Call.objects.exists()


def test_malformed_json_is_a_400(api, call_body):
    response = api.generic("POST", "/api/v1/calls", "{nope", content_type="application/json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_request"


def test_it_reads_a_call_and_filters_the_list(api, place_call, in_tenant):
    first = place_call(uuid="a")
    second = place_call(uuid="b")
    Call.objects.filter(pk=first.pk).update(status="BUSY", state="ended")

    assert api.get(f"/api/v1/calls/{second.call_id}").json()["uuid"] == "b"
    assert [c["uuid"] for c in api.get("/api/v1/calls").json()["results"]] == ["b", "a"]
    assert [c["uuid"] for c in api.get("/api/v1/calls?status=BUSY").json()["results"]] == ["a"]
    assert api.get("/api/v1/calls?agent=nobody").json()["results"] == []
    since = second.start_time.isoformat()
    assert [c["uuid"] for c in api.get("/api/v1/calls", {"since": since}).json()["results"]] == [
        "b"
    ]


@pytest.mark.parametrize("query,field", [("status=DONE", "status"), ("since=yesterday", "since")])
def test_bad_list_filters_are_a_400(api, query, field):
    response = api.get(f"/api/v1/calls?{query}")

    assert response.status_code == 400
    assert response.json()["error"]["field"] == field


def test_an_unknown_call_id_is_a_404(api):
    response = api.get("/api/v1/calls/5deb67aa-d54d-4536-9a25-a29813b3bddd")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_hanging_up_a_ringing_call_cancels_it_and_writes_its_callback(
    api, place_call, tenant, in_tenant
):
    tenant.callback_settings.url = "https://crm.example.com/callbacks"
    tenant.callback_settings.save()
    call = place_call()

    response = api.post(f"/api/v1/calls/{call.call_id}/hangup")
    again = api.post(f"/api/v1/calls/{call.call_id}/hangup")

    assert response.status_code == 200
    assert (response.json()["state"], response.json()["status"]) == ("ended", "CANCELED")
    assert response.json()["duration"] == 0
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "call_ended"
    delivery = Delivery.objects.get()
    assert delivery.payload["status"] == "CANCELED"
    assert delivery.payload["uuid"] == "crm-call-42"


def test_it_sets_the_disposition_and_appends_notes(api, place_call):
    call = place_call()

    disposition = api.post(
        f"/api/v1/calls/{call.call_id}/disposition", {"disposition": "SALE"}, format="json"
    )
    api.post(f"/api/v1/calls/{call.call_id}/notes", {"notes": "Wants a demo"}, format="json")
    notes = api.post(f"/api/v1/calls/{call.call_id}/notes", {"notes": "Call back"}, format="json")

    assert disposition.json()["disposition"] == "SALE"
    assert notes.json()["notes"] == "Wants a demo\nCall back"


@pytest.mark.parametrize("action", ["disposition", "notes"])
def test_actions_need_their_value(api, place_call, action):
    call = place_call()

    response = api.post(f"/api/v1/calls/{call.call_id}/{action}", {action: ""}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["field"] == action


def test_the_tenant_default_disposition_applies(api, place_call, tenant):
    tenant.callback_settings.default_disposition = "OUTBOUND_SALES"
    tenant.callback_settings.save()

    assert place_call().disposition == "OUTBOUND_SALES"


def test_a_key_limited_to_other_scopes_cannot_place_calls(make_client, tenant, call_body):
    client = make_client(tenant, scopes=["agents:read"])

    response = client.post("/api/v1/calls", call_body, format="json")

    assert response.status_code == 403
    assert not Call.objects.exists()


def test_a_calls_read_key_lists_but_cannot_place(make_client, tenant, call_body):
    client = make_client(tenant, scopes=["calls:read"])

    assert client.get("/api/v1/calls").status_code == 200
    assert client.post("/api/v1/calls", call_body, format="json").status_code == 403


def test_the_call_keeps_the_agent_it_was_placed_by(api, place_call, in_tenant):
    call = place_call()
    Agent.objects.filter(crm_username="agent.017").update(phone_number="+447400000018")

    call.refresh_from_db()
    assert (call.agent_number, call.state) == ("+447400000017", CallState.INITIATED)


def test_the_calls_api_is_in_the_openapi_schema(client):
    paths = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()["paths"]

    for path in (
        "/api/v1/calls",
        "/api/v1/calls/{call_id}",
        "/api/v1/calls/{call_id}/hangup",
        "/api/v1/deliveries/{id}/resend",
        "/api/v1/tenant/signing-secret",
    ):
        assert path in paths, path
    body = paths["/api/v1/calls"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"]["$ref"].endswith("/CallCreate")


def answer(call: Call) -> None:
    """Play the switch's answer, as the simulator would in the worker."""
    from django.utils import timezone

    from calls.services import call_event_record

    call_event_record(call=call, kind=CallState.ANSWERED, occurred_at=timezone.now())


def test_an_answered_call_can_be_transferred_and_take_a_third_party(api, place_call):
    call = place_call()
    answer(call)

    transfer = api.post(
        f"/api/v1/calls/{call.call_id}/transfer", {"to_number": "07400 555666"}, format="json"
    )
    added = api.post(
        f"/api/v1/calls/{call.call_id}/add-party", {"number": "+14155550123"}, format="json"
    )

    assert transfer.status_code == 200, transfer.json()
    assert [(p["kind"], p["number"]) for p in added.json()["parties"]] == [
        ("transfer", "+447400555666"),
        ("third_party", "+14155550123"),
    ]


@pytest.mark.parametrize("action,field", [("transfer", "to_number"), ("add-party", "number")])
def test_a_ringing_call_cannot_take_a_transfer_or_party(api, place_call, action, field):
    call = place_call()

    response = api.post(
        f"/api/v1/calls/{call.call_id}/{action}", {field: "+14155550123"}, format="json"
    )

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "call_not_answered"


@pytest.mark.parametrize("action,field", [("transfer", "to_number"), ("add-party", "number")])
def test_a_transfer_or_party_needs_a_real_number(api, place_call, action, field):
    call = place_call()
    answer(call)

    response = api.post(f"/api/v1/calls/{call.call_id}/{action}", {field: "nobody"}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["field"] == field
    assert api.get(f"/api/v1/calls/{call.call_id}").json()["parties"] == []
