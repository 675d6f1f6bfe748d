"""Sending webhook apps over real HTTP to a receiver on 127.0.0.1."""

import base64
import json
import socket
import time

import pytest
from django.core.cache import cache

from automations.webhooks import client
from automations.webhooks.config import WebhookConfig
from automations.webhooks.send import webhook_send
from tests.automations.receiver import CLIENT_ID, CLIENT_SECRET, Answer

CONTEXT = {
    "event": {
        "calling_number": "+1 (555) 123-4567",
        "called_number": "+442045205757",
        "calling_name": 'Zoë "Z" O\'Brien\r\nX-Injected: 1',
        "duration": 42,
    },
    "contact": {"first_name": "Ada"},
    "app_data": {"crm": {"data": {"customer_id": "CUST-12345", "vip": True}}},
}


def config(receiver, **settings) -> WebhookConfig:
    settings.setdefault("url", f"{receiver.url}/hook")
    settings.setdefault("retry_delay", 0.05)
    return WebhookConfig.from_settings(settings)


def oauth(receiver, **auth) -> dict:
    return {
        "kind": "oauth2_client_credentials",
        "token_url": f"{receiver.url}/token",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        **auth,
    }


def test_a_post_sends_the_rendered_json_body_and_keeps_the_json_answer(receiver):
    receiver.script = [Answer(200, {"customer_id": "CUST-9", "vip": True, "tier": "Gold"})]
    body = {
        "phone": "{{ event.calling_number }}",
        "name": "{{ event.calling_name }}",
        "duration": "{{ event.duration }}",
        "vip": "{{ app_data.crm.data.vip }}",
        "summary": "{{ contact.first_name }} talked {{ event.duration }} s",
    }

    result = webhook_send(config(receiver, body=body), CONTEXT)

    assert result.succeeded
    (got,) = receiver.received
    assert (got.method, got.path) == ("POST", "/hook")
    assert got.headers["content-type"] == "application/json"
    assert got.json() == {
        "phone": "+1 (555) 123-4567",
        "name": CONTEXT["event"]["calling_name"],
        "duration": 42,
        "vip": True,
        "summary": "Ada talked 42 s",
    }
    assert result.data == {"customer_id": "CUST-9", "vip": True, "tier": "Gold"}
    assert result.status_code == 200
    (attempt,) = result.attempts
    assert (attempt.number, attempt.status_code, attempt.error_class) == (1, 200, None)
    assert json.loads(json.dumps(result.as_json()))["attempts"][0]["status_code"] == 200


def test_a_get_url_encodes_the_url_and_query_parameters(receiver):
    settings = {
        "method": "GET",
        "url": f"{receiver.url}/contacts/{{{{ event.calling_number }}}}/details",
        "query_params": [
            {"key": "phone", "value": "{{ event.calling_number }}"},
            {"key": "missing", "value": "{{ app_data.nothing.data.x }}"},
        ],
    }

    result = webhook_send(config(receiver, **settings), CONTEXT)

    assert result.succeeded
    (got,) = receiver.received
    assert got.method == "GET"
    assert got.path == (
        "/contacts/%2B1%20%28555%29%20123-4567/details?phone=%2B1%20%28555%29%20123-4567&missing="
    )
    assert got.body == b""


def test_custom_headers_are_rendered_and_cannot_inject_headers(receiver):
    headers = [
        {"key": "X-Caller", "value": "{{ event.calling_name }}"},
        {"key": "Content-Type", "value": "application/vnd.api+json"},
    ]

    webhook_send(config(receiver, headers=headers, body={"a": 1}), CONTEXT)

    (got,) = receiver.received
    assert "x-injected" not in got.headers
    assert got.headers["x-caller"].startswith("Zo")
    assert got.headers["content-type"] == "application/vnd.api+json"


def test_basic_auth_is_sent_and_never_shown(receiver):
    auth = {"kind": "basic", "username": "callbridge", "password": "pässw0rd-s3cr3t"}
    receiver.script = [Answer(200, body="echo: pässw0rd-s3cr3t".encode())]

    result = webhook_send(config(receiver, auth=auth), CONTEXT)

    (got,) = receiver.received
    scheme, _, encoded = got.headers["authorization"].partition(" ")
    assert (scheme, base64.b64decode(encoded).decode()) == ("Basic", "callbridge:pässw0rd-s3cr3t")
    assert result.request.headers["Authorization"] == "Basic [redacted]"
    assert "s3cr3t" not in json.dumps(result.as_json())


def test_bearer_auth_is_sent(receiver):
    result = webhook_send(config(receiver, auth={"kind": "bearer", "token": "tok-s3cr3t"}), CONTEXT)

    assert receiver.received[0].headers["authorization"] == "Bearer tok-s3cr3t"
    assert "s3cr3t" not in json.dumps(result.as_json())


@pytest.mark.parametrize("client_auth", ["basic", "body"])
def test_oauth2_fetches_one_token_and_reuses_it_from_the_cache(receiver, client_auth):
    receiver.require_token = True
    settings = {"auth": oauth(receiver, client_auth=client_auth, scope="calls.write")}

    first = webhook_send(config(receiver, **settings), CONTEXT)
    second = webhook_send(config(receiver, **settings), CONTEXT)

    assert first.succeeded and second.succeeded
    assert len(receiver.to("/token")) == 1
    assert "scope=calls.write" in receiver.to("/token")[0].body.decode()
    assert [r.headers["authorization"] for r in receiver.to("/hook")] == ["Bearer tok-1"] * 2
    assert [a.target for a in first.attempts] == ["token", "webhook"]
    assert [a.target for a in second.attempts] == ["webhook"]
    assert "tok-1" not in json.dumps(first.as_json())
    assert "tok-1" not in str(cache.get(client._token_key(config(receiver, **settings).auth)))


def test_oauth2_refetches_once_when_the_cached_token_is_refused(receiver):
    receiver.require_token = True
    settings = {"auth": oauth(receiver)}
    webhook_send(config(receiver, **settings), CONTEXT)
    receiver.revoked.add("tok-1")

    result = webhook_send(config(receiver, **settings), CONTEXT)

    assert result.succeeded
    assert [(a.target, a.status_code) for a in result.attempts] == [
        ("webhook", 401),
        ("token", 200),
        ("webhook", 200),
    ]
    assert receiver.to("/hook")[-1].headers["authorization"] == "Bearer tok-2"


def test_oauth2_gives_up_after_one_refetch_when_every_token_is_refused(receiver):
    receiver.script = [Answer(401, {"error": "invalid_token"})] * 3

    result = webhook_send(config(receiver, auth=oauth(receiver)), CONTEXT)

    assert (result.outcome, result.reason, result.status_code) == ("failed", "rejected", 401)
    assert len(receiver.to("/token")) == 2
    assert len(receiver.to("/hook")) == 2


def test_a_token_about_to_expire_is_not_reused(receiver):
    receiver.token_lifetime = 1  # less than a second left once the margin is taken off

    webhook_send(config(receiver, auth=oauth(receiver)), CONTEXT)
    webhook_send(config(receiver, auth=oauth(receiver)), CONTEXT)

    assert len(receiver.to("/token")) == 2


def test_refused_client_credentials_fail_without_calling_the_webhook(receiver):
    settings = {"auth": oauth(receiver, client_secret="wrong-s3cr3t")}

    result = webhook_send(config(receiver, **settings), CONTEXT)

    assert (result.outcome, result.reason) == ("failed", "oauth_invalid_client")
    assert len(receiver.to("/token")) == 1
    assert receiver.to("/hook") == []


def test_a_failing_token_endpoint_is_retried_like_the_webhook(receiver):
    receiver.token_script = [Answer(503), Answer(200, body=b"not json")]

    result = webhook_send(config(receiver, auth=oauth(receiver)), CONTEXT)

    assert (result.outcome, result.reason) == ("failed", "oauth_invalid_response")
    assert [(a.target, a.status_code) for a in result.attempts] == [("token", 503), ("token", 200)]
    assert receiver.to("/hook") == []


def test_a_dry_run_with_oauth2_fetches_no_token(receiver):
    result = webhook_send(config(receiver, auth=oauth(receiver)), CONTEXT, dry_run=True)

    assert result.request.headers["Authorization"] == "Bearer [redacted]"
    assert receiver.received == []


def test_it_retries_5xx_after_a_doubling_delay(receiver):
    receiver.script = [Answer(500), Answer(503), Answer(200, {"ok": True})]

    result = webhook_send(config(receiver, retry_delay=0.2), CONTEXT)

    assert result.succeeded
    first, second, third = (r.at for r in receiver.received)
    assert 0.2 <= second - first < 0.35
    assert 0.4 <= third - second < 0.55
    assert [a.status_code for a in result.attempts] == [500, 503, 200]


def test_it_stops_after_the_retry_count(receiver):
    receiver.script = [Answer(502)] * 5

    result = webhook_send(config(receiver, retry_count=2), CONTEXT)

    assert (result.outcome, result.reason, result.status_code) == (
        "failed",
        "retries_exhausted",
        502,
    )
    assert len(receiver.received) == 3


@pytest.mark.parametrize("status", [400, 404, 422])
def test_4xx_is_not_retried(receiver, status):
    receiver.script = [Answer(status, {"error": "bad phone"})]

    result = webhook_send(config(receiver), CONTEXT)

    assert (result.outcome, result.reason, result.status_code) == ("failed", "rejected", status)
    assert len(receiver.received) == 1
    assert "bad phone" in result.attempts[0].response_excerpt


def test_429_waits_for_retry_after(receiver):
    receiver.script = [Answer(429, headers={"Retry-After": "1"}), Answer(200, {})]

    result = webhook_send(config(receiver, retry_delay=0.05), CONTEXT)

    assert result.succeeded
    first, second = (r.at for r in receiver.received)
    assert 1.0 <= second - first < 1.3


def test_a_retry_after_past_the_deadline_stops_at_once(receiver):
    receiver.script = [Answer(429, headers={"Retry-After": "30"})]
    started = time.monotonic()

    result = webhook_send(config(receiver), CONTEXT, deadline_seconds=5)

    assert (result.outcome, result.reason, result.retry_after) == ("failed", "deadline", 30)
    assert len(receiver.received) == 1
    assert time.monotonic() - started < 1


def test_the_total_deadline_bounds_every_retry(receiver):
    receiver.script = [Answer(500)] * 10
    started = time.monotonic()

    result = webhook_send(
        config(receiver, retry_count=10, retry_delay=0.2), CONTEXT, deadline_seconds=0.5
    )

    assert (result.outcome, result.reason, result.retry_after) == ("failed", "deadline", 0.4)
    assert len(receiver.received) == 2  # at 0 s and 0.2 s; the next would be at 0.6 s
    assert time.monotonic() - started < 0.5


def test_a_slow_receiver_times_out_and_is_retried(receiver):
    receiver.script = [Answer(200, delay=2), Answer(200, {"late": False})]
    started = time.monotonic()

    result = webhook_send(config(receiver, timeout=0.3), CONTEXT)

    assert result.succeeded
    assert [a.error_class for a in result.attempts] == ["timeout", None]
    assert result.attempts[0].status_code is None
    assert time.monotonic() - started < 1


def test_network_errors_are_retried(settings):
    settings.ALLOW_PRIVATE_URLS = True
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings_ = {"url": f"http://127.0.0.1:{port}/hook", "retry_count": 2, "retry_delay": 0.05}

    result = webhook_send(WebhookConfig.from_settings(settings_), CONTEXT)

    assert (result.outcome, result.reason) == ("failed", "retries_exhausted")
    assert [a.error_class for a in result.attempts] == ["connect_refused"] * 3


def test_a_redirect_is_not_followed(receiver):
    receiver.script = [Answer(302, headers={"Location": f"{receiver.url}/redirected"})]

    result = webhook_send(config(receiver), CONTEXT)

    assert (result.outcome, result.reason, result.status_code) == ("failed", "redirected", 302)
    assert [r.path for r in receiver.received] == ["/hook"]


def test_a_private_address_is_refused_at_send_time(receiver, settings):
    saved = config(receiver)  # saved while private URLs were allowed
    settings.ALLOW_PRIVATE_URLS = False

    result = webhook_send(saved, CONTEXT)

    assert (result.outcome, result.reason) == ("failed", "blocked_ip")
    assert result.attempts[0].error_class == "blocked_ip"
    assert receiver.received == []


def test_a_dry_run_renders_the_request_with_secrets_redacted_and_sends_nothing(receiver):
    settings = {
        "auth": {"kind": "bearer", "token": "tok-s3cr3t"},
        "headers": [
            {"key": "X-Api-Key", "value": "key-s3cr3t"},
            {"key": "X-Tier", "value": "gold"},
        ],
        "query_params": [
            {"key": "token", "value": "q-s3cr3t"},
            {"key": "n", "value": "{{ event.called_number }}"},
        ],
        "body": {"phone": "{{ event.calling_number }}", "vip": "{{ app_data.crm.data.vip }}"},
    }

    result = webhook_send(config(receiver, **settings), CONTEXT, dry_run=True)

    assert receiver.received == []
    assert (result.outcome, result.attempts) == ("dry_run", ())
    assert result.request.method == "POST"
    assert result.request.url == f"{receiver.url}/hook?token=%5Bredacted%5D&n=%2B442045205757"
    assert result.request.headers == {
        "Content-Type": "application/json",
        "X-Api-Key": "[redacted]",
        "X-Tier": "gold",
        "Authorization": "Bearer [redacted]",
    }
    assert result.request.body == {"phone": "+1 (555) 123-4567", "vip": True}
    assert "s3cr3t" not in json.dumps(result.as_json())


def test_a_long_answer_is_kept_as_a_4_kib_excerpt_with_secrets_scrubbed(receiver):
    receiver.script = [Answer(500, body=b"Bearer tok-s3cr3t " + b"x" * 10_000)]

    result = webhook_send(
        config(receiver, auth={"kind": "bearer", "token": "tok-s3cr3t"}, retry_count=0), CONTEXT
    )

    excerpt = result.attempts[0].response_excerpt
    assert excerpt.startswith("Bearer [redacted] xxx")
    assert len(excerpt) <= 4096


def test_an_answer_that_is_not_json_succeeds_with_no_data(receiver):
    receiver.script = [Answer(204, body=b""), Answer(200, body=b"<html>ok</html>")]

    assert webhook_send(config(receiver), CONTEXT).data is None
    assert webhook_send(config(receiver), CONTEXT).data is None
