import pytest

from core.scoping import TenantScopeMissing, across_all_tenants, current_tenant_id, tenant_scope
from tenants.models import Agent

pytestmark = pytest.mark.django_db


def add_agent(tenant, crm_username: str) -> None:
    Agent(tenant=tenant, crm_username=crm_username).save()


def test_it_refuses_an_unscoped_query(tenant):
    with pytest.raises(TenantScopeMissing, match="tenant_scope"):
        list(Agent.objects.all())


def test_it_sees_only_the_scoped_tenants_rows(tenant, other_tenant):
    add_agent(tenant, "mine")
    add_agent(other_tenant, "theirs")

    with tenant_scope(tenant):
        assert list(Agent.objects.values_list("crm_username", flat=True)) == ["mine"]
        assert not Agent.objects.filter(crm_username="theirs").exists()
    with across_all_tenants():
        assert Agent.objects.count() == 2


def test_it_restores_the_outer_scope_after_a_block(tenant, other_tenant):
    with tenant_scope(tenant):
        with tenant_scope(other_tenant):
            assert current_tenant_id() == other_tenant.pk
        assert current_tenant_id() == tenant.pk
    assert current_tenant_id() is None


def test_a_request_scope_does_not_leak_into_the_caller(api):
    assert api.get("/api/v1/agents").status_code == 200

    assert current_tenant_id() is None
    with pytest.raises(TenantScopeMissing):
        Agent.objects.count()
