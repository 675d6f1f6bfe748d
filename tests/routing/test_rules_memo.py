"""Rules remembered per process (routing.selectors.routing_rules): every change is seen at once."""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from core.scoping import tenant_scope
from core.shared_redis import redis_client, redis_client_forget
from routing.models import RoutingRule
from routing.selectors import routing_rules
from routing.services import routing_rule_delete, routing_rule_update

# Decisions run on pool threads with their own database connections: the data must be committed.
pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("unhurried", "generations"),
]

SEED_CALLER = "+442045205757"


def rule_reads(tenant) -> int:
    """How many times reading the tenant's rules queried the rules table."""
    with tenant_scope(tenant), CaptureQueriesContext(connection) as queries:
        routing_rules(tenant=tenant)
    return sum("routing_routingrule" in query["sql"] for query in queries)


def extension(api) -> str:
    return api.post("/api/v1/routing/decide", {"caller": SEED_CALLER}, format="json").json()[
        "extension"
    ]


def test_it_reads_the_rules_once_while_nothing_changes(tenant, make_rule):
    make_rule(tenant, "Everyone", extension="1093")

    assert [rule_reads(tenant) for _ in range(3)] == [1, 0, 0]


@pytest.mark.parametrize(
    "change",
    [
        lambda rule, make_rule: make_rule(rule.tenant, "First", position=-1, extension="1200"),
        lambda rule, make_rule: routing_rule_update(rule=rule, extension="1200"),
        lambda rule, make_rule: routing_rule_update(rule=rule, is_enabled=False),
        lambda rule, make_rule: routing_rule_delete(rule=rule),
    ],
    ids=["added", "changed", "disabled", "deleted"],
)
def test_the_next_decision_sees_a_rule_change(api, tenant, make_rule, change):
    tenant.routing_settings.fallback_extension = "1000"
    tenant.routing_settings.save()
    rule = make_rule(tenant, "Everyone", extension="1093")
    assert extension(api) == "1093"

    with tenant_scope(tenant):
        change(rule, make_rule)

    assert extension(api) in {"1200", "1000"}


def test_the_next_decision_sees_an_agents_new_extension(api, tenant, make_rule, make_agent):
    agent = make_agent(tenant, extension="1093")
    make_rule(tenant, "Priya", action=RoutingRule.Action.AGENT, agent=agent)
    assert extension(api) == "1093"

    agent.extension = "1201"
    agent.save()

    assert extension(api) == "1201"


def test_a_tenant_change_makes_the_rules_read_afresh(tenant, make_rule):
    make_rule(tenant, "Everyone", extension="1093")
    rule_reads(tenant)

    tenant.timezone = "Asia/Kolkata"  # rules with a time window read it
    tenant.save()

    assert rule_reads(tenant) == 1


def test_rules_read_before_a_change_commits_are_forgotten_when_it_commits(tenant, make_rule):
    rule = make_rule(tenant, "Everyone", extension="1093")
    with transaction.atomic(), tenant_scope(tenant):
        routing_rule_update(rule=rule, extension="1200")
        # Read (as another process would, the old rows) before the change commits.
        rule_reads(tenant)

    assert rule_reads(tenant) == 1


def test_a_flushed_redis_forgets_every_remembered_rule(settings, tenant, make_rule):
    settings.GENERATION_LISTENER = False  # a listener hears changes, not flushes
    make_rule(tenant, "Everyone", extension="1093")
    rule_reads(tenant)

    redis_client().flushdb()

    assert rule_reads(tenant) == 1


def test_it_remembers_nothing_without_redis(settings, tenant, make_rule):
    make_rule(tenant, "Everyone", extension="1093")
    settings.REDIS_URL = ""

    assert [rule_reads(tenant) for _ in range(2)] == [1, 1]


def test_it_reads_the_rules_when_redis_is_unreachable(settings, tenant, make_rule):
    make_rule(tenant, "Everyone", extension="1093")
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    redis_client_forget()
    try:
        reads = [rule_reads(tenant) for _ in range(2)]
    finally:
        redis_client_forget()

    assert reads == [1, 1]
