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
