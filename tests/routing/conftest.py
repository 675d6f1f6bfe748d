import pytest
from django.db import connections

from core.scoping import tenant_scope
from routing import deadline
from routing.models import RoutingRule
from routing.services import routing_rule_create, routing_token_regenerate
from tenants.models import Tenant


@pytest.fixture(autouse=True)
def _forget_routing_profiles(monkeypatch):
    deadline.profiles.clear()
    monkeypatch.setattr(deadline, "_here_paused_until", 0.0)  # a late decision of another test
    yield
    deadline.profiles.clear()


@pytest.fixture(autouse=True)
def _pool_connections_close_after_each_decision(monkeypatch):
    # Decisions run on pool threads with connections of their own; closing them after each one
    # lets the test database be flushed and dropped, and lets a test point them elsewhere.
    monkeypatch.setitem(connections["default"].settings_dict, "CONN_MAX_AGE", 0)


@pytest.fixture
def make_rule():
    def make(tenant: Tenant, name: str = "VIP", **fields) -> RoutingRule:
        fields.setdefault("action", RoutingRule.Action.EXTENSION)
        if fields["action"] == RoutingRule.Action.EXTENSION:
            fields.setdefault("extension", "1093")
        with tenant_scope(tenant):
            return routing_rule_create(tenant=tenant, name=name, **fields)

    return make


@pytest.fixture
def routed(tenant, make_rule, make_contact) -> Tenant:
    """Seed 003: registered customers (+44 20 4520 5757) to 1093, unknown numbers to 1094."""
    tenant.routing_settings.fallback_extension = "1000"
    tenant.routing_settings.save()
    make_contact(tenant, "020 4520 5757", first_name="Ada", custom_fields={"tier": "gold"})
    make_rule(tenant, "Registered customers", conditions={"known": True}, extension="1093")
    make_rule(tenant, "Unknown numbers", position=1, conditions={"known": False}, extension="1094")
    return tenant


@pytest.fixture
def make_token():
    """The plaintext of a new routing URL token of `tenant`."""

    def make(tenant: Tenant) -> str:
        with tenant_scope(tenant):
            return routing_token_regenerate(tenant=tenant)[1]

    return make


@pytest.fixture
def unhurried(monkeypatch, tenant):
    """Time enough for any decision: for tests of what is answered, on a busy machine (a fresh
    decision thread's first database connection can take longer than 300 ms there).
    tests/routing/test_deadline.py tests the deadline itself."""
    monkeypatch.setattr(deadline, "DEFAULT_DEADLINE_MS", 5_000)
    tenant.routing_settings.deadline_ms = 5_000
    tenant.routing_settings.save()
