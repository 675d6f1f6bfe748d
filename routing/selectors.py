"""Reads for routing: the tenant's rules, decisions and dry runs."""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import datetime

from django.db import connection
from django.db.models.signals import post_delete, post_save
from django.utils import timezone

from contacts.selectors import CallerCard, caller_card
from core import phone_numbers
from core.shared_redis import Generation
from routing import rules
from routing.conditions import parse_conditions
from routing.models import RoutingRule
from tenants.models import Agent, Tenant

# Longer than any real number with an extension; anything longer is not worth parsing.
MAX_CALLER_LENGTH = 64


@dataclass(frozen=True)
class DryRun:
    decision: rules.Decision
    call: rules.Call | None  # None when the caller is not a phone number
    results: tuple[rules.RuleResult, ...]


# Read on every routing decision, so written out like contacts.selectors' caller query: the ORM
# took longer to build it than PostgreSQL to answer it (bench/README.md).
_RULES_SQL = f"""
SELECT r.id, r.name, r.conditions, r.action, r.extension, r.queue, a.extension, a.is_active
FROM {RoutingRule._meta.db_table} r
LEFT JOIN {Agent._meta.db_table} a ON a.id = r.agent_id
WHERE r.tenant_id = %s AND r.is_enabled
ORDER BY r.position, r.id
"""  # noqa: S608 - only constants are formatted in
_CONDITIONS = RoutingRule._meta.get_field("conditions")
# Rules are remembered per process with the generation they were read in; saving or deleting a
# rule, an agent (its extension) or a tenant replaces it. QuerySet.update() sends no signal:
# call rules_generation.replace() after one.
rules_generation = Generation("callbridge:routing-rules-generation")
MAX_REMEMBERED_TENANTS = 10_000
_remembered_rules: dict[int, tuple[bytes, tuple[rules.Rule, ...]]] = {}


def routing_rules(*, tenant: Tenant) -> tuple[rules.Rule, ...]:
    """The tenant's enabled rules in order, with their agents' extensions.

    Remembered per process while no rule, agent or tenant changes (rules_generation), so a
    decision does not read them on every call.
    """
    generation = rules_generation.current()  # None while Redis is down: read, not remembered
    remembered = _remembered_rules.get(tenant.pk)
    if generation is not None and remembered is not None and remembered[0] == generation:
        return remembered[1]
    tenant_rules = _rules_load(tenant)
    if generation is not None:
        if len(_remembered_rules) >= MAX_REMEMBERED_TENANTS:
            _remembered_rules.clear()
        _remembered_rules[tenant.pk] = (generation, tenant_rules)
    return tenant_rules


def _rules_load(tenant: Tenant) -> tuple[rules.Rule, ...]:
    with connection.cursor() as cursor:
        cursor.execute(_RULES_SQL, [tenant.pk])
        rows = cursor.fetchall()
    return tuple(
        rules.Rule(
            id=pk,
            name=name,
            # The expression is unused when reading a value (django-stubs asks for one).
            conditions=parse_conditions(
                _CONDITIONS.from_db_value(conditions, None, connection)  # type: ignore[arg-type]
            ),
            action=action,
            extension=extension,
            queue=queue,
            agent_extension=agent_extension if agent_is_active else "",
        )
        for pk, name, conditions, action, extension, queue, agent_extension, agent_is_active in rows
    )


def routing_decide(
    *, tenant: Tenant, caller: object, now: datetime | None = None
) -> rules.Decision:
    """Where to send a call from `caller` (anything a phone system may send); never raises.

    Bad or missing numbers get the fallback with the reason. Must run inside tenant_scope(tenant).
    """
    number, problem = _caller_number(tenant, caller)
    if problem:
        return rules.fallback(tenant.routing_settings.fallback_extension, problem)
    tenant_rules = routing_rules(tenant=tenant)
    if not tenant_rules:  # nothing to evaluate: spare the phonebook lookup
        return rules.fallback(tenant.routing_settings.fallback_extension, "no rules enabled")
    call = _call(tenant, caller_card(tenant=tenant, number=number), now)
    return rules.decide(
        tenant_rules, call, fallback_extension=tenant.routing_settings.fallback_extension
    )


def routing_dry_run(*, tenant: Tenant, caller: str, at: datetime | None = None) -> DryRun:
    """Which rule would route a call from `caller` at `at` (default now), and why each did not."""
    number, problem = _caller_number(tenant, caller)
    if problem:
        return DryRun(rules.fallback(tenant.routing_settings.fallback_extension, problem), None, ())
    call = _call(tenant, caller_card(tenant=tenant, number=number), at)
    decision, results = rules.explain(
        routing_rules(tenant=tenant),
        call,
        fallback_extension=tenant.routing_settings.fallback_extension,
    )
    return DryRun(decision, call, results)


def caller_problem(tenant: Tenant, caller: object) -> str:
    """Why `caller` cannot be routed as a phone number ("" when it can)."""
    return _caller_number(tenant, caller)[1]


def _caller_number(tenant: Tenant, caller: object) -> tuple[str, str]:
    """(E.164 number, "") or ("", why the caller is not a phone number)."""
    if caller is None or caller == "":
        return "", "no caller number (withheld or missing)"
    if not isinstance(caller, str):
        return "", f"caller must be a string, not {type(caller).__name__}"
    if len(caller) > MAX_CALLER_LENGTH:
        return "", f"caller is not a phone number ({len(caller)} characters)"
    e164 = phone_numbers.e164_of(caller, tenant.default_region)
    if e164 is None:
        return "", f"caller {caller!r} is not a phone number"
    return e164, ""


def _call(tenant: Tenant, card: CallerCard, at: datetime | None) -> rules.Call:
    local_now = (at or timezone.now()).astimezone(zoneinfo.ZoneInfo(tenant.timezone))
    return rules.Call(card=card, now=local_now)


def _on_change(sender: type, **kwargs: object) -> None:
    rules_generation.replace()


def connect_signals() -> None:
    """Forget remembered rules when a rule, agent or tenant is saved or deleted (RoutingConfig)."""
    for model in (RoutingRule, Agent, Tenant):
        uid = f"routing_rules_{model.__name__}"
        post_save.connect(_on_change, sender=model, dispatch_uid=uid)
        post_delete.connect(_on_change, sender=model, dispatch_uid=f"{uid}_d")
