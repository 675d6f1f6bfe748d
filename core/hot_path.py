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
from typing import Any, cast

from django.conf import settings
from django.core.handlers.exception import convert_exception_to_response
from django.core.handlers.wsgi import WSGIHandler, WSGIRequest, get_path_info, get_script_name
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.middleware.common import CommonMiddleware
from django.urls import Resolver404, resolve, set_script_prefix
from django.utils.log import log_response
from django.utils.module_loading import import_string
from rest_framework import exceptions
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from core.errors import api_exception_handler
from core.scoping import request_scope

HotPath = Callable[..., HttpResponse | None]
MIDDLEWARE = "core.hot_path.HotPathMiddleware"
_renderer = JSONRenderer()


class HotPathApplication:
    """The WSGI application (config/wsgi.py): hot paths answered below Django's handler.

    Django's handler around a lookup cost as much as the rest of its Python but the query
    (bench/README.md): request_started and request_finished (each checking every database
    connection), a wrapper per middleware, the response's closing. A request for a view with a
    hot path goes instead through the middlewares above HotPathMiddleware in settings (the
    security headers and HTTPS redirect, by the same classes) and HotPathMiddleware itself, with
    Django's housekeeping for the one connection it uses. Whatever the hot path declines goes to
    Django's handler as it came.
    """

    def __init__(self, django_application: WSGIHandler) -> None:
        self.django_application = django_application
        # HotPathMiddleware and the middlewares above it in settings, wrapped as Django wraps them.
        chain = convert_exception_to_response(_declined_by_hot_path)
        above = settings.MIDDLEWARE[: settings.MIDDLEWARE.index(MIDDLEWARE)]
        for path in reversed([*above, MIDDLEWARE]):
            chain = convert_exception_to_response(import_string(path)(chain))
        self.chain = cast(Callable[[HttpRequest], HttpResponse], chain)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if _hot_path(get_path_info(environ)) is None:
            return self.django_application(environ, start_response)
        set_script_prefix(get_script_name(environ))
        # What request_started's close_old_connections does, for the connection used here.
        connection.close_if_unusable_or_obsolete()
        request = WSGIRequest(environ)
        response = self.chain(request)
        if isinstance(response, _Declined):
            return self.django_application(environ, start_response)
        if response.status_code >= 400:  # as Django's handler logs them (django.request)
            log_response(
                "%s: %s", response.reason_phrase, request.path, response=response, request=request
            )
        status = f"{response.status_code} {response.reason_phrase}"
        headers = [
            *response.items(),
            *(("Set-Cookie", cookie.output(header="")) for cookie in response.cookies.values()),
        ]
        start_response(status, headers)
        return HotPathBody(response)


class HotPathBody(list[bytes]):
    """A hot path's answer as the web server sends it; `response` is the HttpResponse (tests)."""

    def __init__(self, response: HttpResponse) -> None:
        super().__init__([response.content])
        self.response = response


class _Declined(HttpResponse):
    """What HotPathMiddleware's "rest of the stack" answers in HotPathApplication."""


def _declined_by_hot_path(request: HttpRequest) -> HttpResponse:
    return _Declined()


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
