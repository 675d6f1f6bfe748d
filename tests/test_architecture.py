"""Structural rules: tenant scoping cannot be forgotten, every endpoint is isolation-tested,
imports run down the layers only, and product code never imports test code."""

import ast
import importlib
import sys
from pathlib import Path

import pytest
from django.apps import apps
from django.urls import URLPattern, URLResolver, get_resolver

from core.scoping import TenantOwnedModel, TenantScopedManager, TenantScopeMissing
from tests.python_source import syntax_tree

ROOT = Path(__file__).resolve().parent.parent
APP_PACKAGES = [
    "core",
    "tenants",
    "contacts",
    "calls",
    "routing",
    "connectors",
    "automations",
    "dashboard",
]
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
    found: list[Path] = []
    for package in APP_PACKAGES:
        for name in ("api.py", "views.py", "urls.py", "serializers.py"):
            found += (ROOT / package).glob(f"**/{name}")
        found += (ROOT / package).glob("api/**/*.py")
        found += (ROOT / package).glob("views/**/*.py")
    return found


def test_api_code_never_lifts_tenant_scoping():
    offenders = []
    for path in api_modules():
        for node in ast.walk(syntax_tree(path)):
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
    declared: set[str] = set()
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


# Each app may import its own layer's lower neighbours only: core <- tenants <- contacts <-
# connectors <- calls <- routing, automations <- dashboard. Apps on one level do not import each
# other. `config` (settings, URLs, the Celery app) wires them together, above them all.
LAYERS = {
    "core": 0,
    "tenants": 1,
    "contacts": 2,
    "connectors": 3,
    "calls": 4,
    "routing": 5,
    "automations": 5,
    "dashboard": 6,
}
# What the project ships (pyproject's packages): the fakes serve the demo, so they ship too.
PRODUCT_PACKAGES = [*LAYERS, "config", "fakes"]


def product_modules() -> list[Path]:
    return [path for package in PRODUCT_PACKAGES for path in (ROOT / package).glob("**/*.py")]


def imported_modules(path: Path, *, at_run_time: bool = False) -> list[tuple[str, int]]:
    """Every module the file imports, with its line; `at_run_time` skips `if TYPE_CHECKING:`."""
    tree = syntax_tree(path)
    type_only: set[int] = set()
    if at_run_time:
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING"):
                type_only |= {id(child) for child in ast.walk(node)}
    found = []
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, node.lineno))
    return found


def upward_imports(path: Path) -> list[str]:
    package = path.relative_to(ROOT).parts[0]
    if package not in LAYERS:
        return []
    offenders = []
    for module, line in imported_modules(path, at_run_time=True):
        target = module.split(".")[0]
        if target in LAYERS and target != package and LAYERS[target] >= LAYERS[package]:
            offenders.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    return offenders


def test_imports_only_run_down_the_layers():
    assert len(product_modules()) > 100, "product modules not found: the check would pass vacuously"
    assert [offence for path in product_modules() for offence in upward_imports(path)] == []


def test_the_layer_check_catches_an_upward_import(tmp_path, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    (tmp_path / "core").mkdir()
    upward = tmp_path / "core" / "bad.py"
    upward.write_text("from typing import TYPE_CHECKING\nfrom contacts import services\n")
    typed = tmp_path / "core" / "typed.py"
    typed.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import contacts\n")

    assert upward_imports(upward) == ["core/bad.py:2 imports contacts"]
    assert upward_imports(typed) == []


def test_product_code_never_imports_tests():
    offenders = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in product_modules()
        for module, line in imported_modules(path)
        if module.split(".")[0] == "tests"
    ]
    assert offenders == []


def test_fakes_stand_alone():
    """The fakes play vendors: they share nothing with the product they are tested against."""
    offenders = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in (ROOT / "fakes").glob("**/*.py")
        for module, line in imported_modules(path)
        if module.split(".")[0] in LAYERS
    ]
    assert list((ROOT / "fakes").glob("*.py")), "no fakes found"
    assert offenders == []
