import pytest

from core.scoping import tenant_scope
from tenants.models import Agent, CallerIdNumber

pytestmark = pytest.mark.django_db


def make_agent(tenant, crm_username="agent.017", **fields) -> Agent:
    agent = Agent(tenant=tenant, crm_username=crm_username, **fields)
    agent.save()
    return agent


def test_it_reads_the_tenant_settings(api):
    response = api.get("/api/v1/tenant")

    assert response.status_code == 200
    assert response.json() == {
        "id": response.json()["id"],
        "name": "Acme",
        "slug": "acme",
        "default_region": "GB",
        "timezone": "Europe/London",
        "is_active": True,
        "shared_number_policy": "most_recent",
        "contacts_update_from_calls": False,
        "routing_deadline_ms": 300,
        "routing_fallback_extension": "",
        "callback_url": "",
        "callback_auth_header": "",
        "callback_on_update": False,
        "default_disposition": "CRM_CALL",
        "simulator_outcomes": [],
        "simulator_ring_seconds": 4.0,
        "simulator_talk_seconds": 20.0,
        "simulator_recording": False,
        "webphone_frame_origins": [],
        "recordings_keep": "link",
        "recordings_retention_days": None,
    }


def test_it_changes_the_tenant_settings(api, tenant):
    response = api.patch(
        "/api/v1/tenant", {"default_region": "tr", "timezone": "Europe/Istanbul"}, format="json"
    )

    assert response.status_code == 200
    tenant.refresh_from_db()
    assert (tenant.default_region, tenant.timezone) == ("TR", "Europe/Istanbul")


@pytest.mark.parametrize(
    ("payload", "field"),
    [({"default_region": "XX"}, "default_region"), ({"timezone": "Mars/Base"}, "timezone")],
)
def test_it_rejects_bad_tenant_settings_naming_the_field(api, tenant, payload, field):
    response = api.patch("/api/v1/tenant", payload, format="json")

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid" and error["field"] == field
    assert error["message"].startswith(f"{field}: ")
    tenant.refresh_from_db()
    assert tenant.default_region == "GB"


def test_it_does_not_let_the_api_change_the_slug_or_activation(api, tenant):
    api.patch("/api/v1/tenant", {"slug": "evil", "is_active": False}, format="json")

    tenant.refresh_from_db()
    assert (tenant.slug, tenant.is_active) == ("acme", True)


def test_it_registers_an_agent_normalizing_the_phone(api, tenant):
    response = api.post(
        "/api/v1/agents",
        {
            "crm_username": "agent.017",
            "display_name": "Priya",
            "phone_number": "020 7946 0018",
            "extension": "1093",
        },
        format="json",
    )

    assert response.status_code == 201, response.content
    assert response.json()["phone_number"] == "+442079460018"
    with tenant_scope(tenant):
        assert Agent.objects.get().crm_username == "agent.017"


def test_it_refuses_a_duplicate_crm_username(api, tenant):
    make_agent(tenant)

    response = api.post("/api/v1/agents", {"crm_username": "agent.017"}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["field"] == "crm_username"


def test_it_allows_the_same_crm_username_in_another_tenant(api, other_tenant):
    make_agent(other_tenant)

    assert (
        api.post("/api/v1/agents", {"crm_username": "agent.017"}, format="json").status_code == 201
    )


def test_it_refuses_an_unreadable_agent_phone(api):
    response = api.post(
        "/api/v1/agents", {"crm_username": "a.2", "phone_number": "call me"}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["error"]["field"] == "phone_number"


def test_it_lists_updates_and_deletes_agents(api, tenant):
    agent = make_agent(tenant, display_name="Old")
    make_agent(tenant, "agent.020", is_active=False)

    listed = api.get("/api/v1/agents?is_active=true").json()
    updated = api.patch(f"/api/v1/agents/{agent.pk}", {"display_name": "New"}, format="json")
    deleted = api.delete(f"/api/v1/agents/{agent.pk}")

    assert [a["crm_username"] for a in listed["results"]] == ["agent.017"]
    assert updated.json()["display_name"] == "New"
    assert deleted.status_code == 204
    with tenant_scope(tenant):
        assert list(Agent.objects.values_list("crm_username", flat=True)) == ["agent.020"]


def test_it_lists_only_the_tenants_own_numbers(api, tenant, other_tenant):
    CallerIdNumber(tenant=tenant, number="+442079460000", label="Main").save()
    CallerIdNumber(tenant=other_tenant, number="+12125550100").save()

    numbers = api.get("/api/v1/numbers").json()["results"]

    assert [(n["number"], n["label"]) for n in numbers] == [("+442079460000", "Main")]


def test_it_answers_unknown_api_paths_in_the_error_shape(api):
    response = api.get("/api/v1/nothing-here")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_it_answers_malformed_json_with_a_clear_400(api):
    response = api.post("/api/v1/agents", "{not json", content_type="application/json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_request"


def test_it_answers_a_wrong_method_in_the_error_shape(api):
    response = api.put("/api/v1/tenant", {}, format="json")

    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_it_serves_the_openapi_schema_and_docs(client):
    schema = client.get("/api/schema/")
    docs = client.get("/api/docs/")

    assert schema.status_code == 200
    assert b"/api/v1/agents/{id}" in schema.content
    assert docs.status_code == 200
