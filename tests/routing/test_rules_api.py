"""/api/v1/routing/rules: the tenant's ordered rules, with clear 400s naming the bad field."""

import json

import pytest

from core.scoping import tenant_scope
from routing.models import RoutingRule

pytestmark = pytest.mark.django_db

GOLD_RULE = {
    "name": "Gold customers",
    "position": 10,
    "conditions": {
        "known": True,
        "fields": [{"field": "tier", "op": "in", "value": ["gold", "platinum"]}],
        "time_window": {"days": ["mon", "tue"], "start": "09:00", "end": "17:00"},
    },
    "action": "extension",
    "extension": "1093",
}


def error_of(response) -> dict:
    return response.json()["error"]


def test_it_creates_a_rule_and_stores_its_conditions_in_canonical_form(api, tenant):
    response = api.post("/api/v1/routing/rules", GOLD_RULE, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["conditions"]["fields"] == [
        {"field": "tier", "op": "in", "value": ["gold", "platinum"]}
    ]
    assert (body["is_enabled"], body["agent"], body["queue"]) == (True, None, "")
    with tenant_scope(tenant):
        assert RoutingRule.objects.get().name == "Gold customers"


def test_it_lists_rules_in_the_order_they_are_tried(api, tenant, make_rule):
    make_rule(tenant, "Second", position=2)
    make_rule(tenant, "First", position=1)
    make_rule(tenant, "Also second, added later", position=2)

    names = [rule["name"] for rule in api.get("/api/v1/routing/rules").json()["results"]]

    assert names == ["First", "Second", "Also second, added later"]


def test_it_changes_and_deletes_a_rule(api, tenant, make_rule):
    rule = make_rule(tenant, "VIP")

    patched = api.patch(f"/api/v1/routing/rules/{rule.pk}", {"is_enabled": False}, format="json")
    deleted = api.delete(f"/api/v1/routing/rules/{rule.pk}")

    assert patched.status_code == 200 and patched.json()["is_enabled"] is False
    assert deleted.status_code == 204
    assert api.get(f"/api/v1/routing/rules/{rule.pk}").status_code == 404


def test_it_routes_to_an_agent_of_the_tenant(api, tenant, make_agent):
    agent = make_agent(tenant)

    response = api.post(
        "/api/v1/routing/rules",
        {"name": "To Priya", "action": "agent", "agent": agent.pk},
        format="json",
    )

    assert response.status_code == 201
    assert response.json()["agent"] == agent.pk


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": ""}, "name"),
        ({"action": "voicemail"}, "action"),
        ({"action": "queue", "queue": ""}, "queue"),
        ({"action": "extension", "extension": ""}, "extension"),
        ({"action": "agent"}, "agent"),
        ({"agent": 999_999}, "agent"),
        ({"position": "first"}, "position"),
        ({"conditions": {"known": "yes"}}, "conditions.known"),
        ({"conditions": {"fields": [{"field": "tier"}]}}, "conditions.fields[0].value"),
        (
            {"conditions": {"time_window": {"start": "9", "end": "17"}}},
            "conditions.time_window.start",
        ),
        ({"conditions": {"countries": ["XYZ"]}}, "conditions.countries[0]"),
        ({"conditions": "known"}, "conditions"),
        ({"priority": 1}, "priority"),
    ],
)
def test_it_rejects_a_bad_rule_naming_the_field(api, tenant, change, field):
    response = api.post("/api/v1/routing/rules", {**GOLD_RULE, **change}, format="json")

    assert response.status_code == 400, response.content
    error = error_of(response)
    assert (error["code"], error["field"]) == ("invalid", field)
    assert error["message"].startswith(f"{field}: ")
    with tenant_scope(tenant):
        assert not RoutingRule.objects.exists()


def test_it_does_not_route_to_another_tenants_agent(api, other_tenant, make_agent):
    stranger = make_agent(other_tenant)

    response = api.post(
        "/api/v1/routing/rules",
        {"name": "Theirs", "action": "agent", "agent": stranger.pk},
        format="json",
    )

    assert response.status_code == 400
    assert error_of(response)["field"] == "agent"


def test_it_rejects_a_patch_that_leaves_the_action_without_its_target(api, tenant, make_rule):
    rule = make_rule(tenant, "VIP")

    response = api.patch(f"/api/v1/routing/rules/{rule.pk}", {"action": "queue"}, format="json")

    assert response.status_code == 400
    assert error_of(response)["field"] == "queue"


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        ("{not json", "application/json", 400, "malformed_request"),
        ("name=VIP", "text/plain", 415, "unsupported_media_type"),
        (json.dumps({**GOLD_RULE, "name": "x" * 70_000}), "application/json", 413, "too_large"),
        ("[]", "application/json", 400, "invalid"),
        ("null", "application/json", 400, "invalid"),
    ],
)
def test_it_answers_a_clear_4xx_for_an_unreadable_body(api, body, content_type, status, code):
    response = api.post("/api/v1/routing/rules", body, content_type=content_type)

    assert response.status_code == status
    assert error_of(response)["code"] == code


def test_it_needs_the_routing_scope(make_client, tenant):
    reader = make_client(tenant, scopes=["routing:read"])

    assert reader.get("/api/v1/routing/rules").status_code == 200
    response = reader.post("/api/v1/routing/rules", GOLD_RULE, format="json")
    assert response.status_code == 403
    assert error_of(response)["code"] == "missing_scope"


def test_staff_find_rules_in_the_admin(admin_client, tenant, make_rule):
    make_rule(tenant, "Gold customers")

    listing = admin_client.get("/admin/routing/routingrule/", {"q": "gold"})

    assert listing.status_code == 200
    assert b"Gold customers" in listing.content
    assert admin_client.get("/admin/routing/routingrule/add/").status_code == 200
