"""Server-key authentication, scopes and per-key rate limits for /api/v1/."""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from core.scoping import enter_tenant_scope
from core.shared_redis import BatchedCounters
from tenants import key_cache
from tenants.models import ApiKey, Tenant
from tenants.selectors import api_key_find

if TYPE_CHECKING:
    from rest_framework.views import APIView

LAST_USED_RESOLUTION = timedelta(minutes=1)
AUTHENTICATE_HEADER = 'Bearer realm="api"'


class KeyHolder:
    """The caller of an API request: whoever holds this key, acting for its tenant."""

    is_authenticated = True

    def __init__(self, api_key: ApiKey) -> None:
        self.api_key = api_key
        self.tenant: Tenant = api_key.tenant


def client_ip(request: HttpRequest | Request) -> str:
    """The caller's address; behind N trusted proxies, the Nth X-Forwarded-For hop from the end."""
    forwarded = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    if settings.NUM_PROXIES and len(forwarded) >= settings.NUM_PROXIES:
        return forwarded[-settings.NUM_PROXIES]
    return request.META.get("REMOTE_ADDR", "")


def ip_allowed(api_key: ApiKey, ip: str) -> bool:
    if not api_key.allowed_cidrs:
        return True
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(cidr) for cidr in api_key.allowed_cidrs)


def server_key_check(request: HttpRequest | Request, *, shared: bool = False) -> ApiKey | None:
    """Return the request's server key, checked, or None when it sends no Authorization header.

    Raises AuthenticationFailed or PermissionDenied. `shared`: the request only reads the key,
    its tenant and settings (key_cache.KeyCache.find).
    """
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if not header:
        return None
    scheme, _, plaintext = header.partition(" ")
    if scheme.lower() != "bearer" or not plaintext.strip():
        raise exceptions.AuthenticationFailed(
            "Send the server key as 'Authorization: Bearer <key>'."
        )
    plaintext = plaintext.strip()
    api_key = api_key_find(plaintext, shared=shared)
    if api_key is None:
        raise exceptions.AuthenticationFailed("Unknown API key.")
    if api_key.is_revoked:
        raise exceptions.AuthenticationFailed(
            f"API key {api_key.prefix}… was revoked; use the key that replaced it."
        )
    if not api_key.tenant.is_active:
        raise exceptions.PermissionDenied("This tenant is deactivated; contact support.")
    if api_key.kind != ApiKey.Kind.SERVER:
        raise exceptions.PermissionDenied(
            "Browser keys only open the launch URL; use a server key for the REST API.",
            code="wrong_key_kind",
        )
    ip = client_ip(request)
    if not ip_allowed(api_key, ip):
        raise exceptions.PermissionDenied(
            f"Requests from {ip or 'an unknown address'} are not allowed for this key.",
            code="ip_not_allowed",
        )
    enter_tenant_scope(api_key.tenant_id)
    _touch(plaintext, api_key)
    return api_key


def scope_check(api_key: ApiKey | None, *, resource: str | None, access: str) -> None:
    """Raise unless there is a server key holding "<resource>:<access>" (or any scope)."""
    if api_key is None:
        raise exceptions.NotAuthenticated(
            "Authentication required: send 'Authorization: Bearer <server key>'."
        )
    if not api_key.scopes or resource is None:
        return
    needed = f"{resource}:{access}"
    if needed in api_key.scopes or f"{resource}:write" in api_key.scopes:
        return
    raise exceptions.PermissionDenied(f"This key lacks the '{needed}' scope.", code="missing_scope")


# Counted in each process and sent to Redis in batches, exactly from half the limit on: a key's
# limit shared by all processes is exceeded by at most BATCH_SECONDS (0.1 s) of each other
# process's requests with that key, never by more than half the limit per process.
rate_counters = BatchedCounters()


def rate_limit_wait(api_key: ApiKey) -> int | None:
    """Count the request; seconds until the key may call again when it is over its limit."""
    window = RateWindow.now()
    limit = api_key.rate_limit_per_minute or settings.API_KEY_RATE_LIMIT_PER_MINUTE
    count = rate_counters.hit(window.counter(api_key), exact_from=limit // 2)
    return window.retry_after if count > limit else None


class ServerKeyAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[KeyHolder, ApiKey] | None:
        api_key = server_key_check(request)
        return None if api_key is None else (KeyHolder(api_key), api_key)

    def authenticate_header(self, request: Request) -> str:
        return AUTHENTICATE_HEADER


def _touch(plaintext: str, api_key: ApiKey) -> None:
    now = timezone.now()
    if api_key.last_used_at is None or now - api_key.last_used_at > LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
        key_cache.keys.note_use(plaintext, api_key)


class ServerKeyScheme(OpenApiAuthenticationExtension):
    target_class = ServerKeyAuthentication
    name = "serverKey"

    def get_security_definition(self, auto_schema: object) -> dict:
        return {"type": "http", "scheme": "bearer", "description": "A server key (cbs_…)."}


class HasServerKey(BasePermission):
    """A server key is required, and it must hold the view's scope (`api_scope`) if it has any.

    Safe methods need "<scope>:read", others "<scope>:write", unless the view says otherwise with
    `api_scope_access` (a POST that only answers a question, such as routing's decide, reads).
    """

    def has_permission(self, request: Request, view: APIView) -> bool:
        api_key = request.auth if isinstance(request.auth, ApiKey) else None
        access = api_access(view, request.method)
        scope_check(api_key, resource=getattr(view, "api_scope", None), access=access)
        return True


def api_access(view: APIView | type[APIView], method: str | None) -> str:
    """The access ("read" or "write") a view's method needs from a key's scope."""
    access = getattr(view, "api_scope_access", None)
    return access or ("read" if method in SAFE_METHODS else "write")


@dataclass(frozen=True)
class RateWindow:
    """One fixed minute of a key's rate limit."""

    number: int
    retry_after: int  # seconds until the next window

    @classmethod
    def now(cls) -> RateWindow:
        now = time.time()
        window = int(now // 60)
        return cls(window, int((window + 1) * 60 - now) + 1)

    def counter(self, api_key: ApiKey) -> str:
        return f"ratelimit:apikey:{api_key.pk}:{self.number}"


class ApiKeyRateThrottle(BaseThrottle):
    """Fixed one-minute windows per key, counted in the shared cache (atomic INCR on Redis)."""

    def allow_request(self, request: Request, view: APIView) -> bool:
        api_key = request.auth
        if not isinstance(api_key, ApiKey):
            return True
        self.retry_after = rate_limit_wait(api_key)
        return self.retry_after is None

    def wait(self) -> float | None:
        return self.retry_after


def server_key_holder(request: HttpRequest, view: type[APIView]) -> KeyHolder:
    """Authenticate, authorize and rate-limit the request as `view` does under DRF.

    For the hot paths (core/hot_path.py), which only read the key and its tenant.
    """
    api_key = server_key_check(request, shared=True)
    resource = getattr(view, "api_scope", None)
    scope_check(api_key, resource=resource, access=api_access(view, request.method))
    assert isinstance(api_key, ApiKey)  # scope_check raises without one
    # What DRF's request would carry, on the plain request the hot path answers (even when
    # throttled, as under DRF).
    request.user = holder = KeyHolder(api_key)  # type: ignore[assignment]
    request.auth = api_key  # type: ignore[attr-defined]
    if ApiKeyRateThrottle in view.throttle_classes:
        wait = rate_limit_wait(api_key)
        if wait is not None:
            raise exceptions.Throttled(wait)
    return holder
