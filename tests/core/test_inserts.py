"""Rows written in one statement (core/inserts.py) are written as the ORM's save writes them."""

import pytest
from django.db import DatabaseError

from core import inserts
from core.scoping import tenant_scope
from tenants.models import Agent

pytestmark = pytest.mark.django_db


def test_update_writes_only_the_fields_named_with_auto_now_as_save_does(tenant):
    with tenant_scope(tenant):
        agent = Agent(tenant=tenant, crm_username="agent.017", extension="2001")
        agent.save()
        saved_at = agent.updated_at
        agent.extension, agent.display_name = "2002", "not written"

        inserts.update(agent, ("extension", "updated_at"))

        stored = Agent.objects.get(pk=agent.pk)
    assert (stored.extension, stored.display_name) == ("2002", "")
    assert stored.updated_at == agent.updated_at > saved_at


def test_update_of_a_row_that_is_gone_raises_as_save_does(tenant):
    with tenant_scope(tenant):
        agent = Agent(tenant=tenant, crm_username="agent.017")
        agent.save()
        Agent.objects.filter(pk=agent.pk).delete()

        with pytest.raises(DatabaseError, match="did not affect any rows"):
            inserts.update(agent, ("extension",))
