"""Lookup and decide answered without DRF (core/hot_path.py) answer exactly as through DRF."""

import re
import time
from collections.abc import Callable

import psycopg
import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections, connection, connections
from django.http import HttpResponse
from django.test import Client

from config.wsgi import application
from core import hot_path
from core.hot_path import HotPathApplication
from core.scoping import current_tenant_id
from tenants.models import ApiKey, Tenant
from tenants.services import api_key_create, api_key_revoke

# Decisions run on pool threads with their own database connections: the data must be committed.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("unhurried")]

NUMBER = "+442045205757"  # known to the `routed` tenant (conftest.py): extension 1093
NUMBER_IN_QUERY = "%2B442045205757"  # a bare '+' in a query string reads as a space
# Not what a phone system sends (it sends */* or nothing): the DRF view answers instead.
THROUGH_DRF = {"HTTP_ACCEPT": "application/json, */*"}
SECURITY_HEADERS = {
    "X-Frame-Options",
    "X-Content-Type-Options",
    "Referrer-Policy",
    "Cross-Origin-Opener-Policy",
    "Strict-Transport-Security",
}


def key(tenant: Tenant, **options) -> str:
    options.setdefault("kind", ApiKey.Kind.SERVER)
    return api_key_create(tenant=tenant, **options)[1]


def revoked_key(tenant: Tenant) -> str:
    api_key, plaintext = api_key_create(tenant=tenant, kind=ApiKey.Kind.SERVER)
    api_key_revoke(api_key=api_key)
    return plaintext


def deactivated_tenants_key(tenant: Tenant) -> str:
    plaintext = key(tenant)
    tenant.is_active = False
    tenant.save()
    return plaintext


CREDENTIALS: dict[str, Callable[[Tenant], str]] = {
    "server key": key,
    "no key": lambda tenant: "",
    "not bearer": lambda tenant: "Basic abc",
    "unknown key": lambda tenant: "cbs_Unknown1_nothing-like-it",
    "revoked key": revoked_key,
    "browser key": lambda tenant: key(tenant, kind=ApiKey.Kind.BROWSER),
    "deactivated tenant": deactivated_tenants_key,
    "missing scope": lambda tenant: key(tenant, scopes=["contacts:read"]),
    "address not allowed": lambda tenant: key(tenant, allowed_cidrs=["203.0.113.0/24"]),
}


def authorization(tenant: Tenant, credential: str) -> dict:
    plaintext = CREDENTIALS[credential](tenant)
    if credential == "not bearer":
        return {"HTTP_AUTHORIZATION": plaintext}
    return {"HTTP_AUTHORIZATION": f"Bearer {plaintext}"} if plaintext else {}


class WsgiClient(Client):
    """The test client, but through config.wsgi's application as the web server calls it, so the
    hot paths are answered below Django's handler (core/hot_path.py's HotPathApplication)."""

    def __init__(self, app=application, **options) -> None:
        super().__init__(**options)
        self.app = app
        self.handler = self.call  # type: ignore[assignment]  # the application, not ClientHandler

    def call(self, environ: dict):
        started: list[tuple] = []
        body = self.app(environ, lambda *start: started.append(start))
        content = b"".join(body)
        getattr(body, "close", lambda: None)()  # as a web server does: request_finished
        # What the web server was given, whoever answered: Django's handler returns its
        # HttpResponse, the hot path a list.
        ((status, headers, *_),) = started
        response = HttpResponse(content, status=int(status.split()[0]))
        del response["Content-Type"]
        for name, value in headers:
            response[name] = value
        response.below_django = isinstance(body, list)
        response.wsgi_request = getattr(body, "wsgi_request", None)
        return response


def answer(response) -> tuple[int, bytes, dict]:
    return response.status_code, response.content, dict(response.items())


def hot(response) -> bool:
    """Whether the hot path answered, below Django's handler (DRF's responses go through it)."""
    return response.below_django


def lookup(headers: dict, query: str = f"number={NUMBER_IN_QUERY}", **extra):
    return WsgiClient().get(f"/api/v1/lookup?{query}", secure=True, **headers, **extra)


def decide(headers: dict, body: str = f'{{"caller": "{NUMBER}"}}', path: str = "", **extra):
    return WsgiClient().post(
        path or "/api/v1/routing/decide",
        body,
        content_type="application/json",
        secure=True,
        **headers,
        **extra,
    )


@pytest.mark.parametrize("credential", CREDENTIALS)
@pytest.mark.parametrize(
    "query",
    [
        f"number={NUMBER_IN_QUERY}",
        f"number={NUMBER}",  # unencoded: both answer the same 400
        "number=%2B442079460099",
        "number=not-a-number",
        "number=1&x=2",
    ],
)
def test_lookup_answers_as_the_drf_view_does(routed, credential, query):
    headers = authorization(routed, credential)

    fast, slow = lookup(headers, query), lookup(headers, query, **THROUGH_DRF)

    assert hot(fast) and not hot(slow)
    assert answer(fast) == answer(slow)
    assert set(fast.headers) >= SECURITY_HEADERS


@pytest.mark.parametrize("credential", CREDENTIALS)
@pytest.mark.parametrize("body", [f'{{"caller": "{NUMBER}"}}', '{"caller": "nope"}', "[1]", "{"])
def test_decide_answers_as_the_drf_view_does(routed, credential, body):
    headers = authorization(routed, credential)

    fast, slow = decide(headers, body), decide(headers, body, **THROUGH_DRF)

    assert hot(fast) and not hot(slow)
    assert answer(fast) == answer(slow)
    if credential == "server key":
        assert set(fast.headers) >= SECURITY_HEADERS


@pytest.mark.parametrize("token", ["current", "unknown"])
def test_decide_by_routing_url_answers_as_the_drf_view_does(routed, make_token, token):
    plaintext = make_token(routed) if token == "current" else "cbr_Unknown1_nothing-like-it"
    path = f"/api/v1/routing/decide/{plaintext}"

    fast, slow = decide({}, path=path), decide({}, path=path, **THROUGH_DRF)

    assert hot(fast) and not hot(slow)
    assert answer(fast) == answer(slow)


def without_digits(response) -> tuple[int, str, dict]:
    """The answer with its seconds blanked: Retry-After counts down between two requests."""
    headers = {name: re.sub(r"\d+", "N", value) for name, value in response.items()}
    return response.status_code, re.sub(r"\d+", "N", response.content.decode()), headers


def test_the_rate_limit_answers_as_the_drf_view_does(routed):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key(routed, rate_limit_per_minute=1)}"}
    assert lookup(headers).status_code == 200

    fast, slow = lookup(headers), lookup(headers, **THROUGH_DRF)

    assert hot(fast) and fast.status_code == 429 and fast.headers["Retry-After"]
    assert without_digits(fast) == without_digits(slow)


@pytest.mark.parametrize("through", ["hot path", "DRF"])
def test_decide_over_its_rate_limit_answers_the_fallback_saying_when_to_ask_again(routed, through):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key(routed, rate_limit_per_minute=1)}"}
    extra = THROUGH_DRF if through == "DRF" else {}
    assert decide(headers, **extra).json()["extension"] == "1093"

    limited = decide(headers, **extra)

    # Never an error: the tenant's fallback, saying why and when to ask again.
    assert limited.status_code == 200
    assert 0 < int(limited.headers["Retry-After"]) <= 61
    body = limited.json()
    assert (body["extension"], body["rule"]) == ("1000", None)
    assert body["reason"].startswith("fallback: rate_limited")


def test_a_host_that_is_not_allowed_is_refused_as_below(routed):
    headers = {**authorization(routed, "server key"), "HTTP_HOST": "evil.example.com"}

    fast, slow = lookup(headers), lookup(headers, **THROUGH_DRF)

    assert fast.status_code == slow.status_code == 400
    assert decide(headers).status_code == 400


@pytest.mark.parametrize("through", ["hot path", "DRF"])
def test_a_refused_lookup_is_logged_as_below(routed, caplog, through):
    extra = THROUGH_DRF if through == "DRF" else {}

    with caplog.at_level("WARNING", logger="django.request"):
        response = lookup(authorization(routed, "unknown key"), **extra)

    logged = [record.getMessage() for record in caplog.records if record.name == "django.request"]
    assert hot(response) == (through == "hot path")
    assert logged == ["Unauthorized: /api/v1/lookup"]


def test_a_lookup_leaves_no_tenant_scope_behind(routed):
    response = lookup(authorization(routed, "server key"))

    assert hot(response) and response.json()["known"]
    assert current_tenant_id() is None


def test_other_methods_and_formats_still_reach_the_view(routed):
    headers = authorization(routed, "server key")

    head = WsgiClient().head(f"/api/v1/lookup?number={NUMBER_IN_QUERY}", secure=True, **headers)
    options = WsgiClient().options("/api/v1/routing/decide", secure=True, **headers)
    form = WsgiClient().post("/api/v1/routing/decide", {"caller": NUMBER}, secure=True, **headers)

    assert (head.status_code, options.status_code) == (200, 200)
    assert form.json()["extension"] == "1093"
    assert not any(hot(response) for response in (head, options, form))


def test_a_lookup_reconnects_when_the_server_has_closed_the_connection(routed, monkeypatch):
    # A persistent connection, health-checked at the start of each request (production settings).
    monkeypatch.setitem(connections["default"].settings_dict, "CONN_MAX_AGE", None)
    monkeypatch.setitem(connections["default"].settings_dict, "CONN_HEALTH_CHECKS", True)
    connection.close()
    headers = authorization(routed, "server key")
    assert lookup(headers).status_code == 200
    backend = connection.connection.info.backend_pid

    with psycopg.connect(**connection.get_connection_params(), autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [backend])
    time.sleep(0.2)  # the server's goodbye reaches the socket
    close_old_connections()  # what Django does as the next request starts

    response = lookup(headers)
    assert response.status_code == 200 and response.json()["known"]
    assert connection.connection.info.backend_pid != backend


def test_a_plain_http_request_is_redirected_to_https_as_below(routed, settings):
    settings.SECURE_SSL_REDIRECT = True
    redirecting = HotPathApplication(WSGIHandler())  # middlewares read settings when made
    headers = authorization(routed, "server key")
    path = f"/api/v1/lookup?number={NUMBER_IN_QUERY}"

    fast = WsgiClient(redirecting).get(path, **headers)
    slow = WsgiClient(redirecting).get(path, **headers, **THROUGH_DRF)

    assert fast.status_code == 301 and fast.headers["Location"].startswith("https://")
    assert answer(fast) == answer(slow)


def test_a_bug_below_djangos_handler_is_logged_and_answered_as_a_json_500(routed, monkeypatch):
    def bug() -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(hot_path, "check_connection", bug)

    client = WsgiClient(raise_request_exception=False)
    response = client.get(
        f"/api/v1/lookup?number={NUMBER_IN_QUERY}",
        secure=True,
        **authorization(routed, "server key"),
    )

    assert hot(response) and response.status_code == 500
    assert response.json()["error"]["code"] == "server_error"
