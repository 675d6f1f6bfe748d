"""The demo tenant (`seed_demo`, run by bin/run): what the README's first steps show."""

import pytest
from rest_framework.test import APIClient

from tests.tenants.test_commands import run

# Routing decisions are made on a thread of their own (routing/deadline.py): commit the demo.
pytestmark = pytest.mark.django_db(transaction=True)

DEMO_SERVER_KEY = "cbs_DemoSrv1_demo-server-key-for-local-use-only"


def demo_api() -> APIClient:
    run("seed_demo")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {DEMO_SERVER_KEY}")
    return client


@pytest.mark.parametrize(
    ("caller", "extension", "rule", "queue"),
    [
        ("+442045205757", "1093", "Gold customers to the VIP line", None),  # seed 003's request
        ("+919876543210", "102", "Known callers to their owner", None),  # Ravi, Mehmet's
        ("+14155550100", "1094", "Unknown callers to the general queue", "general"),
    ],
)
def test_the_demo_routes_callers_as_seed_003_does(caller, extension, rule, queue):
    client = demo_api()

    decision = client.post("/api/v1/routing/decide", {"caller": caller}, format="json").json()

    assert decision["extension"] == extension, decision
    assert decision["rule"]["name"] == rule
    assert decision.get("queue") == queue


def test_the_demo_keeps_routing_rules_a_user_changed():
    client = demo_api()
    rule = client.get("/api/v1/routing/rules").json()["results"][0]
    client.patch(f"/api/v1/routing/rules/{rule['id']}", {"extension": "2000"}, format="json")

    run("seed_demo")

    rules = client.get("/api/v1/routing/rules").json()["results"]
    assert len(rules) == 3 and rules[0]["extension"] == "2000"


def test_the_demo_places_seed_002s_example_call_with_the_number_as_the_seed_writes_it():
    client = demo_api()
    body = {"from_number": "+918047000100", "to_number": "9876543210", "crm_username": "agent.017"}

    response = client.post("/api/v1/calls", body, format="json")

    assert response.status_code == 201, response.json()
    assert response.json()["customer_number"] == "+919876543210"


def test_a_number_the_region_cannot_read_names_the_default_region_and_how_to_change_it():
    client = demo_api()
    client.patch("/api/v1/tenant", {"default_region": "US"}, format="json")
    body = {"from_number": "+918047000100", "to_number": "9876543210", "crm_username": "agent.017"}

    response = client.post("/api/v1/calls", body, format="json")

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["field"] == "to_number"
    assert "default_region US" in error["message"] and "E.164" in error["message"]
    assert "PATCH /api/v1/tenant" in error["message"]
