"""Authentication by the secret token in a tenant's routing URL (phone systems given a URL)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from routing.models import RoutingToken
from routing.selectors import routing_token_find
from tenants.models import Tenant
from tenants.scoping import enter_tenant_scope

if TYPE_CHECKING:
    from rest_framework.views import APIView


class RoutingTokenHolder:
    """Whoever was given the tenant's routing URL: may ask for routing decisions only."""

    is_authenticated = True

    def __init__(self, token: RoutingToken) -> None:
        self.token = token
        self.tenant: Tenant = token.tenant


class RoutingTokenAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[RoutingTokenHolder, RoutingToken]:
        plaintext = str(request.parser_context["kwargs"].get("token", ""))
        token = routing_token_find(plaintext)
        if token is None or not token.tenant.is_active:
            # Unknown, replaced or deactivated: the URL does not exist (no hint which).
            raise exceptions.NotFound("No routing URL like this; ask for the current one.")
        enter_tenant_scope(token.tenant_id)
        return RoutingTokenHolder(token), token


class HoldsRoutingToken(BasePermission):
    def has_permission(self, request: Request, view: APIView) -> bool:
        return isinstance(request.auth, RoutingToken)
