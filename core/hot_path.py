"""The real-time endpoints (caller lookup, routing decide) answered without DRF.

Phone systems ask these while a caller waits, and the rest of the middleware stack with DRF cost
more than the lookup itself (bench/README.md). A DRF view opts in with a `hot_path` function
that answers the plain request a phone system sends, or returns None to leave anything else
(other methods, formats, content types) to the view. Both share the checks below and the same
services, so they answer alike: same bodies, errors and headers (the security headers come from
the middleware above this one).
"""

from __future__ import annotations

import functools
import select
from collections.abc import Callable
from typing import Any

from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.middleware.common import CommonMiddleware
from django.urls import Resolver404, resolve
from rest_framework import exceptions
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from core.errors import api_exception_handler
from core.scoping import request_scope

HotPath = Callable[..., HttpResponse | None]
_renderer = JSONRenderer()


class HotPathMiddleware:
    """Hand the requests of views with a `hot_path` to it; the rest go down the stack."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        # What the stack below checks before any view: the Host header (ALLOWED_HOSTS), user
        # agents and redirects, with CommonMiddleware's own code.
        self.common = CommonMiddleware(get_response)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        found = _hot_path(request.path_info)
        if found is not None and self.common.process_request(request) is None:
            hot_path, kwargs = found
            check_connection()
            with request_scope(request):
                response = hot_path(request, **kwargs)
            if response is not None:
                return response
        return self.get_response(request)


@functools.lru_cache(maxsize=1024)
def _hot_path(path: str) -> tuple[HotPath, dict[str, Any]] | None:
    try:
        match = resolve(path)
    except Resolver404:
        return None
    hot_path = getattr(getattr(match.func, "view_class", None), "hot_path", None)
    return (hot_path, match.kwargs) if hot_path is not None else None


def check_connection() -> None:
    """Do Django's connection health check (CONN_HEALTH_CHECKS) without its round trip.

    Django sends SELECT 1 before a request's first query, which cost these endpoints as much as
    their own query (bench/README.md). A connection the server has closed (a restart, an idle
    timeout, pg_terminate_backend) has said so on its socket, so look there instead.
    """
    raw = connection.connection
    # django-stubs lacks Django 5.1's health-check attributes.
    checked = connection.health_check_done  # type: ignore[attr-defined]
    if raw is None or not connection.health_check_enabled or checked:  # type: ignore[attr-defined]
        return
    if connection.vendor == "postgresql":
        poll = select.poll()
        poll.register(raw.fileno(), select.POLLIN)
        # An idle connection has nothing to read unless the server is saying goodbye.
        if raw.closed or raw.broken or poll.poll(0):
            connection.close()
        connection.health_check_done = True  # type: ignore[attr-defined]


def json_response(
    data: Any, view: type[APIView], status: int = 200, headers: dict[str, str] | None = None
) -> HttpResponse:
    """`data` rendered as DRF renders it for `view`, with the headers DRF and Django add."""
    body = _renderer.render(data)
    response = HttpResponse(body, content_type="application/json", status=status, headers=headers)
    response["Allow"] = _allow(view)
    response["Content-Length"] = str(len(body))
    return response


def error_response(error: Exception, view: type[APIView], request: HttpRequest) -> HttpResponse:
    """The error answer DRF gives for `error` (unexpected errors included: logged, 500)."""
    if isinstance(error, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        # The challenge DRF sends: the one of the view's first authenticator.
        authenticator = view.authentication_classes[0]()
        error.auth_header = authenticator.authenticate_header(Request(request))  # type: ignore[union-attr]  # read by DRF's handler
    answer = api_exception_handler(error, {"view": view})
    headers = {name: value for name, value in answer.items() if name != "Content-Type"}
    return json_response(answer.data, view, answer.status_code, headers)


_allows: dict[type[APIView], str] = {}


def _allow(view: type[APIView]) -> str:
    """The view's Allow header, as DRF sets it."""
    if view not in _allows:
        instance = view()
        instance.setup(HttpRequest())  # adds HEAD where there is GET, as for a request
        _allows[view] = ", ".join(instance.allowed_methods)
    return _allows[view]
