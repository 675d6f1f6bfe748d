"""Another tenant's key gets 404 (detail) or nothing (lists) on every tenants endpoint."""

import pytest

from tenants.models import Agent, CallerIdNumber

pytestmark = pytest.mark.django_db

# Routes this module proves isolated; tests/test_architecture.py checks every API route is listed
# in some tests/<app>/test_isolation.py.
ISOLATED_ROUTES = {"me", "tenant", "agents", "agents/<int:pk>", "numbers"}


@pytest.fixture
def agent(tenant) -> Agent:
    agent = Agent(tenant=tenant, crm_username="agent.017", display_name="Priya")
    agent.save()
    return agent


@pytest.mark.parametrize("method", ["get", "patch", "delete"])
def test_it_answers_404_for_another_tenants_agent(other_api, agent, method):
    response = getattr(other_api, method)(
        f"/api/v1/agents/{agent.pk}", {"display_name": "x"}, format="json"
    )

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    agent.refresh_from_db()
    assert agent.display_name == "Priya"


def test_it_hides_other_tenants_agents_and_numbers(other_api, agent, tenant):
    CallerIdNumber(tenant=tenant, number="+442079460000").save()

    assert other_api.get("/api/v1/agents").json()["results"] == []
    assert other_api.get("/api/v1/numbers").json()["results"] == []


def test_it_shows_and_changes_only_the_callers_own_tenant(other_api, tenant):
    me = other_api.get("/api/v1/me").json()
    other_api.patch("/api/v1/tenant", {"name": "Hijacked"}, format="json")

    tenant.refresh_from_db()
    assert me["tenant"]["slug"] == "globex"
    assert tenant.name == "Acme"
