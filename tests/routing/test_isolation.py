"""Another tenant's key or routing URL gets 404 or nothing on every routing endpoint."""

import pytest
from rest_framework.test import APIClient

from core.scoping import tenant_scope
from routing.models import RoutingRule
from tenants.models import Tenant

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("unhurried")]

# Routes this module proves isolated; tests/test_architecture.py checks every API route is listed
# in some tests/<app>/test_isolation.py.
ISOLATED_ROUTES = {
    "routing/rules",
    "routing/rules/<int:pk>",
    "routing/decide",
    "routing/decide/<str:token>",
    "routing/dry-run",
    "routing/token",
}
SEED_CALLER = "+442045205757"


@pytest.fixture
def routed(tenant, make_rule, make_contact) -> RoutingRule:
    """Acme routes its known customer to 1093; Globex has no rules and falls back to 2000."""
    make_contact(tenant, SEED_CALLER, first_name="Ada")
    return make_rule(tenant, "Acme VIP", conditions={"known": True}, extension="1093")


@pytest.fixture
def globex(other_tenant) -> Tenant:
    other_tenant.routing_settings.fallback_extension = "2000"
    other_tenant.routing_settings.save()
    return other_tenant


@pytest.mark.parametrize("method", ["get", "patch", "delete"])
def test_it_answers_404_for_another_tenants_rule(other_api, routed, method):
    response = getattr(other_api, method)(
        f"/api/v1/routing/rules/{routed.pk}", {"name": "Hijacked"}, format="json"
    )

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    with tenant_scope(routed.tenant_id):
        assert RoutingRule.objects.get().name == "Acme VIP"


def test_it_lists_only_the_callers_own_rules(other_api, routed):
    assert other_api.get("/api/v1/routing/rules").json()["results"] == []


def test_it_decides_with_the_callers_own_rules_and_phonebook_by_key(other_api, routed, globex):
    body = other_api.post("/api/v1/routing/decide", {"caller": SEED_CALLER}, format="json").json()

    assert body == {"extension": "2000", "rule": None, "reason": "fallback: no rules enabled"}


def test_it_decides_with_the_callers_own_rules_by_routing_url(routed, globex, make_token):
    path = f"/api/v1/routing/decide/{make_token(globex)}"

    body = APIClient().post(path, {"caller": SEED_CALLER}, format="json").json()

    assert (body["extension"], body["rule"]) == ("2000", None)


def test_it_explains_only_the_callers_own_rules_and_contacts(other_api, routed, globex):
    body = other_api.post("/api/v1/routing/dry-run", {"caller": SEED_CALLER}, format="json").json()

    assert body["rules"] == []
    assert body["call"]["known"] is False


def test_it_shows_and_replaces_only_the_callers_own_routing_url(
    other_api, routed, globex, make_token
):
    acme_token = make_token(routed.tenant)

    assert other_api.get("/api/v1/routing/token").status_code == 404
    other_api.post("/api/v1/routing/token")
    other_api.delete("/api/v1/routing/token")

    still = APIClient().post(f"/api/v1/routing/decide/{acme_token}", {"caller": SEED_CALLER})
    assert still.json()["extension"] == "1093"
