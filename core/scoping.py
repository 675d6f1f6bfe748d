"""The one place that scopes tenant-owned querysets.

Every tenant-owned model's default manager filters by the tenant of the current scope, and raises
when there is none, so forgetting to scope is an error rather than a data leak. Code enters a scope
with `tenant_scope(tenant)` (the API does it after authentication; tasks do it from the tenant id
they receive). Crossing tenants needs `across_all_tenants()`: for the admin, auth lookups,
migrations and ops commands only; API modules may not use it (tests/test_architecture.py).
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from django.db import models
from django.http import HttpRequest, HttpResponse

Model = TypeVar("Model", bound=models.Model)

_ALL_TENANTS = object()
_current_scope: contextvars.ContextVar[Any] = contextvars.ContextVar("tenant_scope", default=None)


class TenantScopeMissing(RuntimeError):
    pass


@contextmanager
def tenant_scope(tenant: models.Model | int) -> Iterator[None]:
    """Scope tenant-owned querysets to one tenant for the duration of the block."""
    tenant_id = tenant if isinstance(tenant, int) else tenant.pk
    token = _current_scope.set(tenant_id)
    try:
        yield
    finally:
        _current_scope.reset(token)


@contextmanager
def across_all_tenants() -> Iterator[None]:
    """Lift tenant scoping: admin, auth lookups and ops commands only, never API code."""
    token = _current_scope.set(_ALL_TENANTS)
    try:
        yield
    finally:
        _current_scope.reset(token)


def current_tenant_id() -> int | None:
    scope = _current_scope.get()
    return None if scope is None or scope is _ALL_TENANTS else scope


def enter_tenant_scope(tenant_id: int) -> None:
    """Scope the rest of the current request (called by API authentication)."""
    _current_scope.set(tenant_id)


class TenantScopedManager(models.Manager[Model]):
    def get_queryset(self) -> models.QuerySet[Model]:
        scope = _current_scope.get()
        queryset = super().get_queryset()
        if scope is _ALL_TENANTS:
            return queryset
        if scope is None:
            raise TenantScopeMissing(
                f"{self.model.__name__} queried outside a tenant scope: wrap the code in "
                "tenant_scope(tenant) (or across_all_tenants() in admin/ops code)."
            )
        return queryset.filter(tenant_id=scope)


class TenantOwnedModel(models.Model):
    """Base of every row that belongs to one tenant."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")

    objects = TenantScopedManager()

    class Meta:
        abstract = True


class TenantScopeMiddleware:
    """Start each request unscoped and restore that afterwards, so a scope never leaks.

    Staff in the Django admin see every tenant: that is what the admin is for.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with request_scope(request):
            return self.get_response(request)


@contextmanager
def request_scope(request: HttpRequest) -> Iterator[None]:
    """Start a request unscoped (staff in the admin: every tenant) and restore the scope after."""
    # Not copy_context().run(): Django keeps per-context state too (the cache connections), and
    # a throwaway context would reconnect to Redis on every request.
    staff_in_admin = request.path.startswith("/admin/") and request.user.is_staff
    token = _current_scope.set(_ALL_TENANTS if staff_in_admin else None)
    try:
        yield
    finally:
        _current_scope.reset(token)
