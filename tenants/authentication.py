"""Server-key authentication, scopes and per-key rate limits for /api/v1/."""

from __future__ import annotations

import functools
import ipaddress
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

import redis
from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from tenants import key_cache
from tenants.models import ApiKey, Tenant
from tenants.scoping import enter_tenant_scope
from tenants.selectors import api_key_find, api_key_find_with

if TYPE_CHECKING:
    from rest_framework.views import APIView

LAST_USED_RESOLUTION = timedelta(minutes=1)
AUTHENTICATE_HEADER = 'Bearer realm="api"'
# Seconds a rate counter outlives its one-minute window.
COUNTER_TTL = 120
REDIS_TIMEOUT = 0.5


class KeyHolder:
    """The caller of an API request: whoever holds this key, acting for its tenant."""

    is_authenticated = True

    def __init__(self, api_key: ApiKey) -> None:
        self.api_key = api_key
        self.tenant: Tenant = api_key.tenant


def client_ip(request: Request) -> str:
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


RateHits = tuple["RateWindow", int]  # the window a request was counted in, and its count


def server_key_check(
    request: HttpRequest | Request, *, counted: bool
) -> tuple[ApiKey, RateHits | None] | None:
    """Return the request's server key, checked, or None when it sends no Authorization header.

    Raises AuthenticationFailed or PermissionDenied. With `counted`, the request is counted for
    the key's rate limit in the same round trip to Redis (the hits, when it could be).
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
    hits = None
    if counted:
        window = RateWindow.now()
        api_key, counts = api_key_find_with(
            plaintext, lambda pipeline, key: queue_hit(pipeline, window.counter(key))
        )
        hits = (window, counts[0]) if counts else None
    else:
        api_key = api_key_find(plaintext)
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
    return api_key, hits


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


def rate_limit_wait(api_key: ApiKey, hits: RateHits | None) -> int | None:
    """Seconds until the key may call again when this request is over its limit, else None.

    Counts the request unless `hits` says authentication already did.
    """
    window, count = hits if hits else (RateWindow.now(), None)
    if count is None:
        count = count_hit(window.counter(api_key))
    limit = api_key.rate_limit_per_minute or settings.API_KEY_RATE_LIMIT_PER_MINUTE
    return window.retry_after if count > limit else None


class ServerKeyAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[KeyHolder, ApiKey] | None:
        view = request.parser_context.get("view")
        counted = ApiKeyRateThrottle in getattr(view, "throttle_classes", ())
        found = server_key_check(request, counted=counted)
        if found is None:
            return None
        api_key, request.api_key_hits = found
        return KeyHolder(api_key), api_key

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


def api_access(view: APIView | type[APIView], method: str) -> str:
    """The access ("read" or "write") a view's method needs from a key's scope."""
    access = getattr(view, "api_scope_access", None)
    return access or ("read" if method in SAFE_METHODS else "write")


@functools.cache
def _counters() -> redis.Redis:
    # One client per process: Django's cache builds a new client object for every operation.
    # Short timeouts: a Redis that stopped answering must not hold requests (key_cache.outage).
    return redis.Redis.from_url(
        settings.REDIS_URL, socket_connect_timeout=REDIS_TIMEOUT, socket_timeout=REDIS_TIMEOUT
    )


def count_hit(counter: str, ttl: int = COUNTER_TTL) -> int:
    """Add one to a shared counter that expires after ttl seconds; return the new count.

    While Redis is down nothing is counted (0): limits fail open rather than refuse everyone.
    """
    if settings.REDIS_URL:
        if key_cache.outage.active():
            return 0
        # One round trip: Django's cache.incr() costs two (EXISTS, INCRBY) plus add()'s SET NX.
        pipeline = _counters().pipeline(transaction=False)
        queue_hit(pipeline, counter, ttl)
        try:
            return pipeline.execute()[0]
        except redis.RedisError as error:
            key_cache.outage.report(error)
            return 0
    if cache.add(counter, 1, timeout=ttl):
        return 1
    try:
        return cache.incr(counter)
    except ValueError:  # expired between add and incr
        cache.set(counter, 1, timeout=ttl)
        return 1


def queue_hit(pipeline: redis.client.Pipeline, counter: str, ttl: int = COUNTER_TTL) -> None:
    """Queue count_hit's commands on a Redis pipeline (the count is the first result)."""
    pipeline.incr(f"callbridge:{counter}")
    pipeline.expire(f"callbridge:{counter}", ttl, nx=True)


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
        self.retry_after = rate_limit_wait(api_key, getattr(request, "api_key_hits", None))
        return self.retry_after is None

    def wait(self) -> float:
        return self.retry_after
