"""Real-time apps enrich the caller card within the tenant's routing deadline (seed 004)."""

import time

import pytest

from tests.automations.receiver import Answer

pytestmark = pytest.mark.django_db


@pytest.fixture
def crm_lookup(receiver, make_app):
    return make_app(
        "crm",
        config={"method": "GET", "url": f"{receiver.url}/customers/{{{{ event.calling_number }}}}"},
        timing="realtime",
        events=["call.start"],
        side_effects=False,
    )


def test_the_card_comes_with_what_the_real_time_apps_found(
    api, tenant, receiver, crm_lookup, make_contact
):
    make_contact(tenant, "+442045205757", first_name="Ada")
    receiver.script = [Answer(200, {"customer_id": "CUST-12345", "support_tier": "Gold"})]

    body = api.get("/api/v1/lookup/enriched", {"number": "020 4520 5757"}).json()

    assert body["card"]["known"] is True and body["card"]["contact"]["first_name"] == "Ada"
    assert body["app_data"]["crm"]["data"] == {"customer_id": "CUST-12345", "support_tier": "Gold"}
    assert [r.path for r in receiver.received] == ["/customers/%2B442045205757"]


def test_a_slow_app_cannot_make_the_card_late(api, tenant, receiver, crm_lookup, make_app):
    tenant.routing_settings.deadline_ms = 300
    tenant.routing_settings.save()
    make_app(
        "after",
        config={"method": "GET", "url": f"{receiver.url}/after"},
        timing="realtime",
        events=["call.start"],
        order=90,
    )
    receiver.script = [Answer(200, {"late": True}, delay=2.0)]

    started = time.monotonic()
    body = api.get("/api/v1/lookup/enriched", {"number": "+442045205757"}).json()
    elapsed = time.monotonic() - started

    assert elapsed < 1.0
    assert body["app_data"] == {}
    assert [(a["app"], a["state"]) for a in body["apps"]] == [
        ("crm", "failed"),
        ("after", "skipped"),
    ]


def test_post_call_apps_do_not_run_on_a_lookup(api, receiver, make_app):
    make_app("later", config={"url": f"{receiver.url}/later"}, events=["call.start"])

    body = api.get("/api/v1/lookup/enriched", {"number": "+442045205757"}).json()

    assert body["apps"] == [] and receiver.received == []


def test_it_needs_a_number(api):
    response = api.get("/api/v1/lookup/enriched")

    assert response.status_code == 400 and response.json()["error"]["field"] == "number"


def test_seed_004s_event_names_render_from_the_phone_system_else_the_phonebook(
    api, tenant, receiver, make_app, make_contact
):
    make_contact(tenant, "+442045205757", first_name="Ada", last_name="Lovelace")
    make_app(
        "device",
        config={
            "method": "POST",
            "url": f"{receiver.url}/device",
            "body": {
                "name": "{{ event.calling_name }}",
                "device": "{{ event.calling_devicename }}",
                "trigger": "{{ event.trigger_point_type }}",
            },
        },
        timing="realtime",
        events=["call.start"],
    )
    cucm = {"calling_devicename": "SEP001122334455", "trigger_point_type": "route_point"}

    api.get("/api/v1/lookup/enriched", {"number": "+442045205757", **cucm})
    api.get("/api/v1/lookup/enriched", {"number": "+442045205757", "calling_name": "Reception"})
    api.get("/api/v1/lookup/enriched", {"number": "+14155550100"})

    assert [r.json() for r in receiver.received] == [
        {"name": "Ada Lovelace", "device": "SEP001122334455", "trigger": "route_point"},
        {"name": "Reception", "device": "", "trigger": ""},
        {"name": "", "device": "", "trigger": ""},
    ]


def test_a_slack_app_on_call_start_posts_the_caller_card(
    api, tenant, receiver, make_app, make_contact
):
    make_contact(
        tenant,
        "+442045205757",
        first_name="Ada",
        last_name="Lovelace",
        company="Analytical Engines",
        crm_url="https://crm.example.com/contacts/7",
    )
    make_app(
        "incoming",
        kind="slack",
        config={
            "webhook_url": f"{receiver.url}/slack",
            "message": "Incoming call from {{ contact.name }} ({{ contact.company }}) "
            "{{ event.calling_number }}: {{ contact.crm_url }}",
        },
        timing="realtime",
        events=["call.start"],
    )

    body = api.get("/api/v1/lookup/enriched", {"number": "020 4520 5757"}).json()

    assert body["apps"] == [{"app": "incoming", "state": "succeeded", "error": ""}]
    assert [(r.path, r.json()) for r in receiver.received] == [
        (
            "/slack",
            {
                "text": "Incoming call from Ada Lovelace (Analytical Engines) +442045205757: "
                "https://crm.example.com/contacts/7"
            },
        )
    ]
