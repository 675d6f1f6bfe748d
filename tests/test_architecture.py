"""Structural rules: tenant scoping cannot be forgotten, and every endpoint is isolation-tested."""

import ast
import importlib
from pathlib import Path

import pytest
from django.apps import apps
from django.urls import URLPattern, URLResolver, get_resolver

from tenants.scoping import TenantOwnedModel, TenantScopedManager, TenantScopeMissing

ROOT = Path(__file__).resolve().parent.parent
APP_PACKAGES = ["tenants", "contacts", "calls", "routing", "connectors", "automations", "dashboard"]
ESCAPE_HATCH = "across_all_tenants"


def tenant_owned_models() -> list[type]:
    return [m for m in apps.get_models() if issubclass(m, TenantOwnedModel)]


def test_there_are_tenant_owned_models():
    assert len(tenant_owned_models()) >= 4


@pytest.mark.parametrize("model", tenant_owned_models(), ids=lambda m: m.__name__)
def test_every_tenant_owned_model_is_scoped_by_default(model):
    assert isinstance(model._default_manager, TenantScopedManager)
    with pytest.raises(TenantScopeMissing):
        model._default_manager.all()


def api_modules() -> list[Path]:
    found = []
    for package in APP_PACKAGES:
        for name in ("api.py", "views.py", "urls.py", "serializers.py"):
            found += (ROOT / package).glob(f"**/{name}")
        found += (ROOT / package).glob("api/**/*.py")
        found += (ROOT / package).glob("views/**/*.py")
    return found


def test_api_code_never_lifts_tenant_scoping():
    offenders = []
    for path in api_modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Name | ast.Attribute | ast.alias):
                name = getattr(node, "id", None) or getattr(node, "attr", None) or node.name
                if name == ESCAPE_HATCH:
                    offenders.append(str(path.relative_to(ROOT)))
    assert api_modules(), "no API modules found: the check would pass vacuously"
    assert offenders == []


def routes_under(mount: str, resolver: URLResolver | None = None, prefix: str = "") -> set[str]:
    """Every URL route under `mount` ("api/v1/"), without the mount."""
    routes = set()
    for pattern in (resolver or get_resolver()).url_patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            routes |= routes_under(mount, pattern, route)
        elif isinstance(pattern, URLPattern) and route.startswith(mount):
            routes.add(route.removeprefix(mount))
    return routes


def api_routes() -> set[str]:
    return routes_under("api/v1/")


def test_every_api_route_has_a_tenant_isolation_test():
    covered = set()
    for path in (ROOT / "tests").glob("*/test_isolation.py"):
        module = importlib.import_module(f"tests.{path.parent.name}.test_isolation")
        covered |= module.ISOLATED_ROUTES
    routes = api_routes()

    assert routes, "no API routes found"
    assert sorted(routes - covered) == []


def declared_dashboard_routes(name: str) -> set[str]:
    """The union of `name` (ISOLATED_ROUTES or PUBLIC_ROUTES) over tests/dashboard/test_*.py."""
    declared = set()
    for path in (ROOT / "tests" / "dashboard").glob("test_*.py"):
        module = importlib.import_module(f"tests.dashboard.{path.stem}")
        declared |= getattr(module, name, set())
    return declared


def test_every_dashboard_route_has_a_tenant_isolation_test():
    """Each /app/ route is in some tests/dashboard module's ISOLATED_ROUTES (a member of another
    tenant gets 404 or sees nothing of this tenant), or in PUBLIC_ROUTES (no tenant data: the
    sign-in pages); and every declared route exists, so the lists cannot go stale."""
    isolated = declared_dashboard_routes("ISOLATED_ROUTES")
    public = declared_dashboard_routes("PUBLIC_ROUTES")
    routes = routes_under("app/")

    assert routes, "no dashboard routes found"
    assert sorted(routes - isolated - public) == []
    assert sorted((isolated | public) - routes) == []
