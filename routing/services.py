"""Writes for routing: rules and the tenant's routing URL token."""

from django.db import transaction

from core.url_tokens import url_token_issue, url_token_url
from routing.models import RoutingRule, RoutingToken
from tenants.models import Tenant

TOKEN_TAG = "cbr"  # noqa: S105 - the visible tag of routing tokens, not a secret
ROUTING_URL_NAME = "routing-decide-by-token"


def routing_rule_create(*, tenant: Tenant, **fields: object) -> RoutingRule:
    rule = RoutingRule(tenant=tenant, **fields)
    rule.full_clean()
    rule.save()
    return rule


def routing_rule_update(*, rule: RoutingRule, **fields: object) -> RoutingRule:
    for name, value in fields.items():
        setattr(rule, name, value)
    rule.full_clean()
    rule.save()
    return rule


def routing_rule_delete(*, rule: RoutingRule) -> None:
    rule.delete()


@transaction.atomic
def routing_rule_move(*, rule: RoutingRule, offset: int) -> None:
    """Move a rule `offset` places (-1: tried one earlier); positions become 10, 20, 30..."""
    ordered = list(RoutingRule.objects.select_for_update().order_by("position", "id"))
    index = next(i for i, other in enumerate(ordered) if other.pk == rule.pk)
    ordered.insert(max(0, min(len(ordered) - 1, index + offset)), ordered.pop(index))
    for number, other in enumerate(ordered, start=1):
        if other.position != number * 10:
            other.position = number * 10
            other.save(update_fields=["position", "updated_at"])


def routing_token_regenerate(*, tenant: Tenant) -> tuple[RoutingToken, str]:
    """Replace the tenant's routing token; return it with its plaintext, never shown again."""
    return url_token_issue(RoutingToken, tenant=tenant, tag=TOKEN_TAG)


def routing_url(plaintext: str) -> str:
    """The URL a phone system is given: it carries the token, so treat it as a secret."""
    return url_token_url(ROUTING_URL_NAME, plaintext)
