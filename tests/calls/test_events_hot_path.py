"""Telephony events accepted without DRF (core/hot_path.py) answer exactly as through DRF."""

import json

import pytest

from calls import events
from calls.models import TelephonyEvent, TelephonyEventsToken
from core.scoping import tenant_scope
from core.url_tokens import url_token_issue
from tests.routing.test_hot_path import (
    CREDENTIALS,
    SECURITY_HEADERS,
    THROUGH_DRF,
    WsgiClient,
    answer,
    authorization,
    hot,
)

pytestmark = pytest.mark.django_db(transaction=True)


def event(n: int, **fields) -> str:
    return json.dumps({"id": f"end-{n}", "type": "call.end", "call_id": f"pbx-{n}",
                       "from": "+14152000001", "to": "+14155550100", **fields})  # fmt: skip


def post(headers: dict, body: str, path: str = "/api/v1/telephony/events", **extra):
    content_type = extra.pop("content_type", "application/json")
    return WsgiClient().post(path, body, content_type=content_type, secure=True, **headers, **extra)


def both(headers: dict, fast_body: str, slow_body: str = "", **extra) -> tuple:
    fast = post(headers, fast_body, **extra)
    slow = post(headers, slow_body or fast_body, **extra, **THROUGH_DRF)
    assert hot(fast) and not hot(slow)
    return fast, slow


@pytest.mark.parametrize("credential", CREDENTIALS)
def test_a_new_event_is_accepted_as_the_drf_view_accepts_it(tenant, credential):
    headers = authorization(tenant, credential)

    fast, slow = both(headers, event(1), event(2))

    status, content, headers = answer(slow)
    assert answer(fast) == (status, content.replace(b"end-2", b"end-1"), headers)
    if credential == "server key":
        assert fast.status_code == 202 and fast.json() == {"id": "end-1", "status": "accepted"}
        assert set(fast.headers) >= SECURITY_HEADERS
        with tenant_scope(tenant):
            assert TelephonyEvent.objects.count() == 2


@pytest.mark.parametrize(
    "second",
    [
        pytest.param(event(1), id="duplicate"),
        pytest.param(event(1, status="BUSY"), id="id reused for another event"),
        pytest.param(json.dumps({"id": "x", "type": "call.end"}), id="invalid event"),
        pytest.param("{", id="unreadable"),
        pytest.param("[1]", id="not an object"),
        pytest.param("", id="empty"),
        pytest.param("[" * 100 + "]" * 100, id="nested too deep"),
        pytest.param('{"id": "big", "note": "' + "x" * 300_000 + '"}', id="too large"),
    ],
)
def test_every_other_answer_is_the_drf_views(tenant, second):
    headers = authorization(tenant, "server key")
    assert post(headers, event(1)).status_code == 202

    fast, slow = both(headers, second)

    assert answer(fast) == answer(slow)
    assert fast.status_code in {200, 400, 409, 413, 415}


def test_a_form_body_is_refused_as_the_drf_view_refuses_it(tenant):
    headers = authorization(tenant, "server key")

    fast, slow = both(headers, "a=1", content_type="application/x-www-form-urlencoded")

    assert answer(fast) == answer(slow)
    assert fast.status_code == 415


@pytest.mark.parametrize("token", ["current", "unknown"])
def test_the_events_url_answers_as_the_drf_view_does(tenant, token):
    plaintext = "cbe_Unknown1_nothing-like-it"
    if token == "current":
        with tenant_scope(tenant):
            plaintext = url_token_issue(TelephonyEventsToken, tenant=tenant, tag=events.TOKEN_TAG)[
                1
            ]
    path = f"/api/v1/telephony/events/{plaintext}"

    fast, slow = both({}, event(1), event(2), path=path)

    assert answer(fast)[0] == answer(slow)[0] == (202 if token == "current" else 404)
    assert answer(fast)[2] == answer(slow)[2]
