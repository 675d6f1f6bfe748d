"""Writes for routing: rules and the tenant's routing URL token."""

import secrets
import string

from django.conf import settings
from django.db import transaction
from django.urls import reverse

from routing.models import RoutingRule, RoutingToken
from tenants.models import Tenant
from tenants.services import hash_secret

TOKEN_TAG = "cbr"  # noqa: S105 - the visible tag of routing tokens, not a secret
TOKEN_PREFIX_LENGTH = 12  # "cbr_" + 8 random characters
_PREFIX_ALPHABET = string.ascii_letters + string.digits


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
def routing_token_regenerate(*, tenant: Tenant) -> tuple[RoutingToken, str]:
    """Replace the tenant's routing token; return it with its plaintext, never shown again."""
    RoutingToken.objects.filter(tenant=tenant).delete()
    random_part = "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(8))
    plaintext = f"{TOKEN_TAG}_{random_part}_{secrets.token_urlsafe(32)}"
    token = RoutingToken.objects.create(
        tenant=tenant, prefix=plaintext[:TOKEN_PREFIX_LENGTH], secret_hash=hash_secret(plaintext)
    )
    return token, plaintext


def routing_token_delete(*, tenant: Tenant) -> None:
    """Turn the routing URL off: it answers 404 from the next request on."""
    RoutingToken.objects.filter(tenant=tenant).delete()


def routing_url(plaintext: str) -> str:
    """The URL a phone system is given: it carries the token, so treat it as a secret."""
    path = reverse("routing-decide-by-token", kwargs={"token": plaintext})
    return f"{settings.PUBLIC_BASE_URL}{path}"
