"""Secret tokens carried in a tenant's URLs, for phone systems that can only be given a URL.

One mechanism for every such URL (routing decisions, telephony events): each use has its own
table extending `UrlToken` (one token per tenant), a visible tag (`cbr_`, `cbe_`) and the same
issue / find / authenticate code and view (show, regenerate, turn off). The plaintext is shown
once; only its SHA-256 is stored.
"""

from __future__ import annotations

import hmac
import secrets
import string
from collections.abc import Sequence
from typing import TYPE_CHECKING, TypeVar

from django.conf import settings
from django.db import models, transaction
from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.hashing import PREFIX_LENGTH, hash_secret
from core.scoping import TenantOwnedModel, across_all_tenants, enter_tenant_scope

if TYPE_CHECKING:
    from tenants.models import Tenant  # for type checking only: core never imports tenants

_PREFIX_ALPHABET = string.ascii_letters + string.digits


class UrlToken(TenantOwnedModel):
    """The secret in one of a tenant's URLs; subclasses add a one-per-tenant constraint."""

    # The visible part ("cbr_3kTq9ZpA"): tells tokens apart in logs and admin.
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    secret_hash = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self.prefix}…"


Token = TypeVar("Token", bound=UrlToken)


@transaction.atomic
def url_token_issue(model: type[Token], *, tenant: Tenant, tag: str) -> tuple[Token, str]:
    """Replace the tenant's token of this kind; return it with its plaintext, never shown again."""
    model.objects.filter(tenant=tenant).delete()
    random_part = "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(8))
    plaintext = f"{tag}_{random_part}_{secrets.token_urlsafe(32)}"
    token = model.objects.create(
        tenant=tenant, prefix=plaintext[:PREFIX_LENGTH], secret_hash=hash_secret(plaintext)
    )
    return token, plaintext


def url_token_delete(model: type[UrlToken], *, tenant: Tenant) -> None:
    """Turn the tenant's URL of this kind off: it answers 404 from the next request on."""
    model.objects.filter(tenant=tenant).delete()


def url_token_url(url_name: str, plaintext: str) -> str:
    """The URL a phone system is given: it carries the token, so treat it as a secret."""
    return f"{settings.PUBLIC_BASE_URL}{reverse(url_name, kwargs={'token': plaintext})}"


def url_token_find(model: type[Token], plaintext: str, related: Sequence[str] = ()) -> Token | None:
    """The token of this kind whose plaintext this is, with its tenant (and `related`), or None."""
    # The token arrives before we know its tenant: look it up by its globally unique prefix.
    with across_all_tenants():
        token: Token | None = (
            model.objects.select_related("tenant", *related)
            .filter(prefix=plaintext[:PREFIX_LENGTH])
            .first()
        )
    if token is None or not hmac.compare_digest(token.secret_hash, hash_secret(plaintext)):
        return None
    return token


class UrlTokenHolder:
    """Whoever was given the tenant's URL: may do what that URL is for, nothing else."""

    is_authenticated = True

    def __init__(self, token: UrlToken) -> None:
        self.token = token
        self.tenant: Tenant = token.tenant


class UrlTokenAuthentication(BaseAuthentication):
    """Authenticate by the `token` in the URL path, looked up in `token_model`."""

    token_model: type[UrlToken]
    not_found_message = "No URL like this; ask for the current one."
    # Rows the requests need with the tenant, read in the same query (the tenant's settings).
    related: Sequence[str] = ()

    def authenticate(self, request: Request) -> tuple[UrlTokenHolder, UrlToken]:
        holder = self.holder(str(request.parser_context["kwargs"].get("token", "")))
        return holder, holder.token

    @classmethod
    def holder(cls, plaintext: str) -> UrlTokenHolder:
        """Whoever holds this token of `token_model`, scoped to its tenant; else NotFound."""
        token = url_token_find(cls.token_model, plaintext, cls.related)
        if token is None or not token.tenant.is_active:
            # Unknown, replaced or deactivated: the URL does not exist (no hint which).
            raise exceptions.NotFound(cls.not_found_message)
        enter_tenant_scope(token.tenant_id)
        return UrlTokenHolder(token)


class HoldsUrlToken(BasePermission):
    def has_permission(self, request: Request, view: APIView) -> bool:
        return isinstance(request.auth, UrlToken)


class UrlTokenSerializer(serializers.Serializer[UrlToken]):
    prefix = serializers.CharField()
    created_at = serializers.DateTimeField()
    url = serializers.CharField(required=False, help_text="Only when just generated.")


class UrlTokenView(APIView):
    """The tenant's URL of one kind: see it exists, (re)generate it (shown once), or turn it off."""

    token_model: type[UrlToken]
    tag: str  # the plaintext's visible start ("cbr")
    url_name: str  # the route the URL leads to, whose `token` is the plaintext
    what: str  # "routing URL", in messages

    @extend_schema(responses=UrlTokenSerializer)
    def get(self, request: Request) -> Response:
        token = self.token_model.objects.first()
        if token is None:
            raise exceptions.NotFound(f"No {self.what} yet; POST here to generate one.")
        return Response(UrlTokenSerializer(token).data)

    @extend_schema(request=None, responses={201: UrlTokenSerializer})
    def post(self, request: Request) -> Response:
        tenant = request.user.tenant  # type: ignore[union-attr]
        token, plaintext = url_token_issue(self.token_model, tenant=tenant, tag=self.tag)
        body = {**UrlTokenSerializer(token).data, "url": url_token_url(self.url_name, plaintext)}
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={204: None})
    def delete(self, request: Request) -> Response:
        url_token_delete(self.token_model, tenant=request.user.tenant)  # type: ignore[union-attr]
        return Response(status=status.HTTP_204_NO_CONTENT)
