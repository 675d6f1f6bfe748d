"""The real-time endpoints (caller lookup, routing decide) answered without DRF.

Phone systems ask these while a caller waits, and the rest of the middleware stack with DRF cost
more than the lookup itself (bench/README.md). A DRF view opts in with a `hot_path` function
that answers the plain request a phone system sends, or returns None to leave anything else
(other methods, formats, content types) to the view. Both share the checks below and the same
services, so they answer alike: same bodies, errors and headers.
"""

from __future__ import annotations

import functools
import io
import select
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.client import responses
from typing import Any, cast
from urllib.parse import parse_qsl, unquote_plus

import psycopg
from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.core.handlers.exception import response_for_exception
from django.core.handlers.wsgi import WSGIHandler, WSGIRequest, get_path_info
from django.db import DEFAULT_DB_ALIAS, connections
from django.http import HttpRequest, HttpResponse
from django.middleware.common import CommonMiddleware
from django.urls import Resolver404, resolve
from django.utils.log import log_response
from django.utils.module_loading import import_string
from psycopg.types.datetime import TimestamptzLoader
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.views import APIView

from core.errors import api_exception_handler
from core.parsers import JSONParser
from core.renderers import json_bytes
from core.scoping import request_scope

MIDDLEWARE = "core.hot_path.HotPathMiddleware"


@dataclass
class Answer:
    """A hot path's response as the web server sends it, but for the security headers."""

    status_code: int
    content: bytes
    headers: list[tuple[str, str]] = field(default_factory=list)

    def get(self, name: str, default: str = "") -> str:
        return next((v for n, v in self.headers if n.lower() == name.lower()), default)

    def http_response(self) -> HttpResponse:
        response = HttpResponse(self.content, status=self.status_code)
        for name, value in self.headers:
            response[name] = value
        return response

    @classmethod
    def of(cls, response: HttpResponse) -> Answer:
        cookies = (("Set-Cookie", cookie.output(header="")) for cookie in response.cookies.values())
        return cls(response.status_code, response.content, [*response.items(), *cookies])


HotPath = Callable[..., Answer | HttpResponse | None]
Found = tuple[HotPath, dict[str, Any]]


class HotPathApplication:
    """The WSGI application (config/wsgi.py): hot paths answered below Django's handler.

    Django's handler, its middlewares and its request and response objects cost a lookup more
    than its own work (bench/README.md). A request for a view with a hot path is answered here
    from the WSGI environ, with the checks the middlewares above the view would make and the
    security headers they would add (computed once, by the same classes), and Django's
    housekeeping for the one connection it uses. Whatever this layer does not answer itself (a
    Host not allowed, a redirect to HTTPS, what the hot path declines) goes to Django's handler
    as it came, which answers it as before.
    """

    def __init__(self, django_application: WSGIHandler) -> None:
        self.django_application = django_application
        self.security_headers: dict[bool, list[tuple[str, str]]] = {}

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        found = _hot_path(get_path_info(environ))
        if found is None:
            return self.django_application(environ, start_response)
        request = WSGIRequest(environ)
        secure = request.is_secure()
        try:
            answer = self._answer(request, found, secure)
        except Exception as error:  # as Django's handler: logged, the API's JSON 500
            answer = response_for_exception(request, error)
        if answer is None:
            return self.django_application(environ, start_response)
        if answer.status_code >= 400:  # as Django's handler logs them (django.request)
            reason = _reason(answer.status_code)
            log_response("%s: %s", reason, request.path, response=answer, request=request)  # type: ignore[arg-type]  # reads status_code only
        if isinstance(answer, HttpResponse):
            answer = Answer.of(answer)
        start_response(_status_line(answer.status_code), [*answer.headers, *self._headers(secure)])
        return [answer.content]

    def _answer(
        self, request: WSGIRequest, found: Found, secure: bool
    ) -> Answer | HttpResponse | None:
        # What SecurityMiddleware and CommonMiddleware would check before any view, left to them.
        if not secure and settings.SECURE_SSL_REDIRECT:
            return None
        if settings.DISALLOWED_USER_AGENTS or settings.PREPEND_WWW:
            return None
        if not _host_allowed(request):
            return None
        # What request_started's close_old_connections does, for the connection used here.
        connections[DEFAULT_DB_ALIAS].close_if_unusable_or_obsolete()
        return answer(request, found)

    def _headers(self, secure: bool) -> list[tuple[str, str]]:
        if secure not in self.security_headers:
            self.security_headers[secure] = _headers_added_above(secure)
        return self.security_headers[secure]


def _headers_added_above(secure: bool) -> list[tuple[str, str]]:
    """The headers the middlewares above HotPathMiddleware add to an answer, by running them."""
    above = settings.MIDDLEWARE[: settings.MIDDLEWARE.index(MIDDLEWARE)]
    chain: Callable[[HttpRequest], HttpResponse] = lambda request: HttpResponse()  # noqa: E731
    for path in reversed(above):
        chain = import_string(path)(chain)
    environ = {"REQUEST_METHOD": "GET", "wsgi.input": io.BytesIO(), "SERVER_NAME": "probe"}
    probe = WSGIRequest({**environ, "wsgi.url_scheme": "https" if secure else "http"})
    added = chain(probe)
    return [(name, value) for name, value in added.items() if name not in HttpResponse()]


class HotPathMiddleware:
    """Hand the requests of views with a `hot_path` to it; the rest go down the stack.

    For requests through Django's handler (the test client, ASGI); config.wsgi answers them
    below it (HotPathApplication).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        # What the stack below checks before any view: the Host header (ALLOWED_HOSTS), user
        # agents and redirects, with CommonMiddleware's own code.
        self.common = CommonMiddleware(get_response)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        found = _hot_path(request.path_info)
        if found is not None and self.common.process_request(request) is None:
            response = answer(request, found)
            if response is not None:
                return response.http_response() if isinstance(response, Answer) else response
        return self.get_response(request)


def _host_allowed(request: HttpRequest) -> bool:
    """Whether request.get_host() accepts the request's host (ALLOWED_HOSTS), remembered per
    host: the check cost a lookup 5 %."""
    host = request._get_raw_host()  # type: ignore[attr-defined]  # what get_host checks
    return _host_checked(host, tuple(settings.ALLOWED_HOSTS), settings.DEBUG)


@functools.lru_cache(maxsize=64)
def _host_checked(host: str, allowed_hosts: tuple[str, ...], debug: bool) -> bool:
    probe = HttpRequest()
    probe.META = {"HTTP_HOST": host}
    try:
        probe.get_host()
    except DisallowedHost:
        return False
    return True


def answer(request: HttpRequest, found: Found) -> Answer | HttpResponse | None:
    """The hot path's answer to the request, or None when it leaves it to the view."""
    hot_path, kwargs = found
    check_connection()
    with request_scope(request):
        return hot_path(request, **kwargs)


@functools.lru_cache(maxsize=1024)
def _hot_path(path: str) -> Found | None:
    try:
        match = resolve(path)
    except Resolver404:
        return None
    hot_path = getattr(getattr(match.func, "view_class", None), "hot_path", None)
    return (hot_path, match.kwargs) if hot_path is not None else None


@functools.cache
def _status_line(status: int) -> str:
    return f"{status} {_reason(status)}"


def _reason(status: int) -> str:
    return responses.get(status, "Unknown Status Code")  # as HttpResponse.reason_phrase


def check_connection() -> None:
    """Do Django's connection health check (CONN_HEALTH_CHECKS) without its round trip.

    Django sends SELECT 1 before a request's first query, which cost these endpoints as much as
    their own query (bench/README.md). A connection the server has closed (a restart, an idle
    timeout, pg_terminate_backend) has said so on its socket, so look there instead.
    """
    database = connections[DEFAULT_DB_ALIAS]  # once: each use of the proxy looks it up
    raw = database.connection
    # django-stubs lacks Django 5.1's health-check attributes.
    checked = database.health_check_done  # type: ignore[attr-defined]
    if raw is None or not database.health_check_enabled or checked:  # type: ignore[attr-defined]
        return
    if database.vendor == "postgresql":
        poll = select.poll()
        poll.register(raw.fileno(), select.POLLIN)
        # An idle connection has nothing to read unless the server is saying goodbye.
        if raw.closed or raw.broken or poll.poll(0):
            database.close()
        database.health_check_done = True  # type: ignore[attr-defined]


def fetch_all(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    """The rows of one query on the default connection, without Django's cursor around it.

    The cursor wrapper cost a lookup a third of psycopg's own execute (bench/README.md). This
    keeps what it does that matters here: connecting, Django's database errors (which mark the
    connection for its check at the next request), and the queries log while one is kept
    (DEBUG, assertNumQueries). On PostgreSQL the connection keeps one cursor for these reads.
    """
    database = connections[DEFAULT_DB_ALIAS]  # once: each use of the proxy looks it up
    if database.queries_logged:
        with database.cursor() as logged:
            logged.execute(sql, params)
            return cast(list[tuple[Any, ...]], logged.fetchall())
    if database.connection is None:
        database.ensure_connection()
    with database.wrap_database_errors:
        if database.vendor != "postgresql":  # SQLite's cursor is not a context manager (the demo)
            cursor = database.create_cursor()
            try:
                cursor.execute(sql, params)
                return cast(list[tuple[Any, ...]], cursor.fetchall())
            finally:
                cursor.close()
        cursor = getattr(database.connection, "hot_path_cursor", None)
        if cursor is None:
            cursor = database.connection.hot_path_cursor = _hot_path_cursor(database.connection)
        cursor.execute(sql, params)
        return cast(list[tuple[Any, ...]], cursor.fetchall())


def _hot_path_cursor(connection: psycopg.Connection) -> psycopg.Cursor:
    """A cursor for fetch_all, kept with its connection: psycopg's cursors run one query after
    another, and a new one each time cost a lookup as much as reading its row.

    It reads times with psycopg's own loader (in C) instead of the Python one Django registers,
    which cost a lookup 6 %: they come back aware, in the connection's time zone, which Django
    sets to UTC. Everything else reads as through Django's cursor (JSON as text, for the
    fields' converters).
    """
    cursor = connection.cursor()
    cursor.adapters.register_loader("timestamptz", TimestamptzLoader)
    return cursor


def query_params(request: HttpRequest) -> Mapping[str, str]:
    """The request's query: none or a lone field as a dict, as QueryDict reads it; else request.GET.

    Building a QueryDict cost as much as the rest of the request's parsing.
    """
    query = request.META.get("QUERY_STRING", "")
    if query.isascii():
        if "&" not in query:  # as parse_qsl reads one field, without its loop
            name, _, value = query.partition("=")
            return {unquote_plus(name): unquote_plus(value)} if query else {}
        fields = parse_qsl(query, keep_blank_values=True)
        if len(fields) <= 1:
            return dict(fields)
    return request.GET


def json_data(request: HttpRequest) -> Any:
    """The request's JSON body as DRF's `request.data` reads it ({} when empty); ParseError if
    it is not JSON (core.parsers' depth check included)."""
    if not request.body:
        return {}
    context = {"encoding": request.encoding or settings.DEFAULT_CHARSET}
    return JSONParser().parse(io.BytesIO(request.body), parser_context=context)


def json_response(
    data: Any, view: type[APIView], status: int = 200, headers: dict[str, str] | None = None
) -> Answer:
    """`data` rendered as DRF renders it for `view`, with the headers DRF and Django add."""
    body = json_bytes(data)
    return Answer(
        status,
        body,
        [
            ("Content-Type", "application/json"),
            *(headers or {}).items(),
            ("Allow", _allow(view)),
            ("Content-Length", str(len(body))),
        ],
    )


def error_response(error: Exception, view: type[APIView], request: HttpRequest) -> Answer:
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
