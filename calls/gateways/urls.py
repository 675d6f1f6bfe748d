"""Each engine's own URLs (calls/gateways/<engine>/urls.py), under gateways/<engine>/."""

import importlib.util

from django.urls import URLPattern, URLResolver, include, path

from calls.gateways import ENGINES

urlpatterns: list[URLPattern | URLResolver] = [
    path(f"{engine}/", include(f"calls.gateways.{engine}.urls"))
    for engine in ENGINES
    if importlib.util.find_spec(f"calls.gateways.{engine}.urls") is not None
]
