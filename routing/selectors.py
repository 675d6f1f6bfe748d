"""Reads for routing: the tenant's rules, decisions and dry runs."""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from contacts import phone_numbers
from contacts.selectors import CallerCard, caller_card
from routing import rules
from routing.conditions import parse_conditions
from routing.models import RoutingRule
from tenants.models import Tenant

# Longer than any real number with an extension; anything longer is not worth parsing.
MAX_CALLER_LENGTH = 64


@dataclass(frozen=True)
class DryRun:
    decision: rules.Decision
    call: rules.Call | None  # None when the caller is not a phone number
    results: tuple[rules.RuleResult, ...]


def routing_rules(*, tenant: Tenant) -> list[rules.Rule]:
    """The tenant's enabled rules in order, with their agents: one query."""
    rows = (
        RoutingRule.objects.filter(tenant_id=tenant.pk, is_enabled=True)
        .select_related("agent")
        .order_by("position", "id")
    )
    return [rule_of(row) for row in rows]


def rule_of(row: RoutingRule) -> rules.Rule:
    agent = row.agent
    return rules.Rule(
        id=row.pk,
        name=row.name,
        conditions=parse_conditions(row.conditions),
        action=row.action,
        extension=row.extension,
        queue=row.queue,
        agent_extension=agent.extension if agent is not None and agent.is_active else "",
    )


def routing_decide(
    *, tenant: Tenant, caller: object, now: datetime | None = None
) -> rules.Decision:
    """Where to send a call from `caller` (anything a phone system may send); never raises.

    Bad or missing numbers get the fallback with the reason. Must run inside tenant_scope(tenant).
    """
    number, problem = _caller_number(tenant, caller)
    if problem:
        return rules.fallback(tenant.routing_fallback_extension, problem)
    tenant_rules = routing_rules(tenant=tenant)
    if not tenant_rules:  # nothing to evaluate: spare the phonebook lookup
        return rules.fallback(tenant.routing_fallback_extension, "no rules enabled")
    call = _call(tenant, caller_card(tenant=tenant, number=number), now)
    return rules.decide(tenant_rules, call, fallback_extension=tenant.routing_fallback_extension)


def routing_dry_run(*, tenant: Tenant, caller: str, at: datetime | None = None) -> DryRun:
    """Which rule would route a call from `caller` at `at` (default now), and why each did not."""
    number, problem = _caller_number(tenant, caller)
    if problem:
        return DryRun(rules.fallback(tenant.routing_fallback_extension, problem), None, ())
    call = _call(tenant, caller_card(tenant=tenant, number=number), at)
    decision, results = rules.explain(
        routing_rules(tenant=tenant), call, fallback_extension=tenant.routing_fallback_extension
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
    e164 = phone_numbers.normalize(caller, tenant.default_region).e164
    if e164 is None:
        return "", f"caller {caller!r} is not a phone number"
    return e164, ""


def _call(tenant: Tenant, card: CallerCard, at: datetime | None) -> rules.Call:
    local_now = (at or timezone.now()).astimezone(zoneinfo.ZoneInfo(tenant.timezone))
    return rules.Call(card=card, country=phone_numbers.region_of(card.number), now=local_now)
