"""core/http.py is the only module that sends HTTP with requests."""

import ast
from pathlib import Path

from tests.python_source import syntax_tree

ROOT = Path(__file__).resolve().parents[2]
APP_PACKAGES = [
    "config",
    "core",
    "tenants",
    "contacts",
    "calls",
    "routing",
    "connectors",
    "automations",
    "fakes",
]


def test_only_the_one_client_imports_requests():
    importers = []
    for package in APP_PACKAGES:
        for path in (ROOT / package).glob("**/*.py"):
            for node in ast.walk(syntax_tree(path)):
                names = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom):
                    names = [node.module or ""]
                if any(name == "requests" or name.startswith("requests.") for name in names):
                    importers.append(str(path.relative_to(ROOT)))

    assert sorted(set(importers)) == ["core/http.py"]
