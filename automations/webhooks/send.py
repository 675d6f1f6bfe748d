"""Render a webhook app's request and send it (seed 004): auth, retries, a total deadline.

Retries only follow network errors and 5xx (and 429, waiting its Retry-After), after
retry_delay, doubling; any other answer is final: 2xx succeeds, 3xx (never followed) and 4xx
fail. Every request, token fetches included, is an attempt in the result; nothing waits past
the total deadline.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal
from urllib.parse import quote

from django.utils import timezone

from automations.webhooks import client
from automations.webhooks.config import WebhookConfig
from automations.webhooks.templates import render_text, render_url, render_value
from calls.signing import signature_header
from core import http

logger = logging.getLogger(__name__)

REDACTED = "[redacted]"
EXCERPT_BYTES = http.RESPONSE_EXCERPT_BYTES
MAX_DATA_BYTES = 1024 * 1024  # a larger answer is not parsed into app_data
# Errors where trying again cannot help: the URL is refused before anything is sent.
PERMANENT_ERRORS = frozenset({"blocked_ip", "invalid_url", "too_large", "deadline"})
MIN_ATTEMPT_SECONDS = 0.05
Target = Literal["webhook", "token"]


@dataclass(frozen=True)
class RenderedRequest:
    method: str
    url: str
    headers: dict[str, str]
    body: Any  # the rendered JSON value, None for no body
    secrets: tuple[str, ...] = field(default=(), repr=False)  # values to keep out of any record

    def encoded_body(self) -> bytes | None:
        if self.body is None:
            return None
        return json.dumps(self.body, ensure_ascii=False, allow_nan=False).encode()


@dataclass(frozen=True)
class Attempt:
    number: int
    target: Target
    started_at: datetime
    status_code: int | None
    error_class: str | None  # timeout, connect_refused, dns, blocked_ip, oauth_invalid_client...
    latency_ms: int
    response_excerpt: str  # first 4 KiB, secrets redacted


@dataclass(frozen=True)
class WebhookResult:
    outcome: Literal["succeeded", "failed", "dry_run"]
    request: RenderedRequest  # secrets redacted: safe to show in a call test
    attempts: tuple[Attempt, ...] = ()
    reason: str = ""  # why it failed: rejected, redirected, retries_exhausted, deadline, ...
    message: str = ""
    status_code: int | None = None  # of the webhook's last answer
    data: Any = None  # the successful answer's JSON (app_data.<slug>.data)
    retry_after: float | None = None  # stopped by the deadline: the wait that did not fit

    @property
    def succeeded(self) -> bool:
        return self.outcome == "succeeded"

    def as_json(self) -> dict[str, Any]:
        """Everything as plain JSON, for storing with the run."""
        result = asdict(self)
        result["request"].pop("secrets")
        for attempt in result["attempts"]:
            attempt["started_at"] = attempt["started_at"].isoformat()
        return result


def render_request(
    config: WebhookConfig, context: Mapping[str, Any], *, reveal: bool = True
) -> RenderedRequest:
    """Build the request from config and context; reveal=False shows secrets as [redacted]."""
    secrets = list(config.secret_values())
    url = render_url(config.url, context)
    query = []
    for param in config.query_params:
        value = render_text(param.value, context)
        if param.secret:
            secrets.append(value)
        shown = value if reveal or not param.secret else REDACTED
        query.append(f"{quote(param.key, safe='')}={quote(shown, safe='')}")
    if query:
        url += ("&" if "?" in url else "?") + "&".join(query)
    headers = {"Content-Type": "application/json"}
    for header in config.headers:
        value = _header_value(render_text(header.value, context))
        headers = {k: v for k, v in headers.items() if k.lower() != header.key.lower()}
        if header.secret:
            secrets.append(value)
        headers[header.key] = value if reveal or not header.secret else REDACTED
    authorization = _authorization(config)  # OAuth's is only known at send time
    secrets.append(authorization)
    if config.auth.kind != "none":
        shown = authorization if reveal and authorization else _redacted_authorization(config)
        headers["Authorization"] = shown
    body = render_value(config.body, context) if config.body is not None else None
    return RenderedRequest(config.method, url, headers, body, tuple(s for s in secrets if s))


@dataclass(frozen=True)
class Signing:
    """Standard Webhooks headers for every attempt: the same message id, a fresh timestamp."""

    secrets: tuple[str, ...]
    message_id: str

    def headers(self, body: bytes) -> dict[str, str]:
        timestamp = int(time.time())
        return {
            "webhook-id": self.message_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature_header(
                list(self.secrets), self.message_id, timestamp, body
            ),
        }


def webhook_send(
    config: WebhookConfig,
    context: Mapping[str, Any],
    *,
    dry_run: bool = False,
    deadline_seconds: float | None = None,
    signing: Signing | None = None,
) -> WebhookResult:
    """Send the webhook (dry_run: only render it) within deadline_seconds in all."""
    shown = render_request(config, context, reveal=False)
    if dry_run:
        return WebhookResult(outcome="dry_run", request=shown)
    request = render_request(config, context)
    seconds = deadline_seconds or config.deadline_seconds
    left = http.budget_left()  # a web request's budget (the call test) bounds retries too
    deadline = time.monotonic() + (seconds if left is None else min(seconds, left))
    return _Delivery(config, request, shown, deadline, signing).run()


class _Delivery:
    """One webhook send: its attempts so far and the decision after each."""

    def __init__(
        self,
        config: WebhookConfig,
        request: RenderedRequest,
        shown: RenderedRequest,
        deadline: float,
        signing: Signing | None = None,
    ) -> None:
        self.config, self.request, self.shown, self.deadline = config, request, shown, deadline
        self.signing = signing
        self.secrets = list(request.secrets)
        self.attempts: list[Attempt] = []
        self.retry_delays = list(config.retry_delays)
        self.oauth = config.auth.kind == "oauth2_client_credentials"

    def run(self) -> WebhookResult:
        refetched = False
        while True:
            target, answer = self._next_request()
            status = answer.status_code if isinstance(answer, client.Exchange) else None
            if target == "webhook" and status is not None and 200 <= status < 300:
                return self._result("succeeded", data=_data(answer))
            if target == "webhook" and status == 401 and self.oauth and not refetched:
                client.forget_token(self.config.auth)  # revoked or expired early: refetch once
                refetched = True
                continue
            if status is not None and status != 429 and status < 500:
                return self._result("failed", reason=self._final_reason(target, status))
            if isinstance(answer, http.HttpError) and (
                answer.error_class in PERMANENT_ERRORS or answer.error_class.startswith("oauth")
            ):
                return self._result("failed", reason=answer.error_class, message=str(answer))
            asked = answer.retry_after if isinstance(answer, client.Exchange) else None
            stop = self._wait(asked)
            if stop is not None:
                return stop

    def _next_request(self) -> tuple[Target, client.Exchange | http.HttpError]:
        """Send the webhook, first fetching an OAuth token if none is cached."""
        token = None
        if self.oauth:
            auth = self.config.auth
            token = client.cached_token(auth)
            if not token:
                headers, body = client.token_request(auth)
                answer = self._exchange("token", "POST", auth.token_url, headers, body)
                if not isinstance(answer, client.Exchange) or not 200 <= answer.status_code < 300:
                    return "token", answer
                try:
                    token = client.token_store(auth, answer)
                except client.TokenError as error:
                    self._mark_last("oauth_invalid_response")
                    return "token", http.HttpError("oauth_invalid_response", str(error))
            self.secrets.append(token)
        return "webhook", self._send(token)

    def _final_reason(self, target: Target, status: int) -> str:
        if target == "token":
            return self.attempts[-1].error_class or "oauth_rejected"
        return "redirected" if status < 400 else "rejected"

    def _wait(self, asked: float | None) -> WebhookResult | None:
        """Sleep before the next retry (Retry-After if given), or say why there is none."""
        if not self.retry_delays:
            return self._result("failed", reason="retries_exhausted")
        delay = self.retry_delays.pop(0)
        wait = delay if asked is None else asked
        if time.monotonic() + wait + MIN_ATTEMPT_SECONDS > self.deadline:
            return self._result("failed", reason="deadline", retry_after=wait)
        time.sleep(wait)
        return None

    def _send(self, token: str | None) -> client.Exchange | http.HttpError:
        headers = dict(self.request.headers)
        if token:
            headers["Authorization"] = f"Bearer {token}"
        body = self.request.encoded_body()
        if self.signing is not None:
            headers.update(self.signing.headers(body or b""))
        return self._exchange("webhook", self.request.method, self.request.url, headers, body)

    def _exchange(
        self,
        target: Target,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes | None,
    ) -> client.Exchange | http.HttpError:
        """Make one request and record it as an attempt."""
        started_at, started = timezone.now(), time.monotonic()
        remaining = self.deadline - started
        if remaining < MIN_ATTEMPT_SECONDS:
            return http.HttpError("deadline", "The total deadline ran out before this attempt.")
        try:
            timeout = min(self.config.timeout, remaining)
            answer = client.exchange(method, url, headers=headers, body=body, deadline=timeout)
        except http.HttpError as error:
            latency_ms = int((time.monotonic() - started) * 1000)
            self._record(target, started_at, None, error.error_class, latency_ms, str(error))
            return error
        error_class = None
        excerpt = answer.body[:EXCERPT_BYTES].decode("utf-8", errors="replace")
        if target == "token":
            error_class = _token_error_class(answer)
            excerpt = "" if 200 <= answer.status_code < 300 else excerpt  # it holds the token
        status, latency_ms = answer.status_code, answer.latency_ms
        self._record(target, started_at, status, error_class, latency_ms, excerpt)
        return answer

    def _record(
        self,
        target: Target,
        started_at: datetime,
        status_code: int | None,
        error_class: str | None,
        latency_ms: int,
        excerpt: str,
    ) -> None:
        self.attempts.append(
            Attempt(
                number=len(self.attempts) + 1,
                target=target,
                started_at=started_at,
                status_code=status_code,
                error_class=error_class,
                latency_ms=latency_ms,
                response_excerpt=self._scrub(excerpt),
            )
        )

    def _mark_last(self, error_class: str) -> None:
        self.attempts[-1] = dataclasses.replace(self.attempts[-1], error_class=error_class)

    def _scrub(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return text

    def _result(
        self,
        outcome: Literal["succeeded", "failed"],
        *,
        reason: str = "",
        message: str = "",
        data: Any = None,
        retry_after: float | None = None,
    ) -> WebhookResult:
        webhook_attempts = [a for a in self.attempts if a.target == "webhook"]
        status_code = webhook_attempts[-1].status_code if webhook_attempts else None
        if not message and outcome == "failed":
            message = _describe(reason, self.attempts[-1] if self.attempts else None)
        if outcome == "failed":
            logger.info("Webhook %s failed: %s", http.display_url(self.request.url), reason)
        return WebhookResult(
            outcome=outcome,
            request=self.shown,
            attempts=tuple(self.attempts),
            reason=reason,
            message=self._scrub(message),
            status_code=status_code,
            data=data,
            retry_after=retry_after,
        )


def _authorization(config: WebhookConfig) -> str:
    auth = config.auth
    if auth.kind == "basic":
        return client.basic_authorization(auth.username, auth.password)
    if auth.kind == "bearer":
        return f"Bearer {auth.token}"
    return ""  # OAuth tokens are fetched at send time


def _redacted_authorization(config: WebhookConfig) -> str:
    kind = config.auth.kind
    return f"Basic {REDACTED}" if kind == "basic" else f"Bearer {REDACTED}"


def _header_value(text: str) -> str:
    """A rendered value safe as a header: no control characters (no header injection), Latin-1."""
    clean = "".join(ch for ch in text if ch >= " " and ch != "\x7f").strip()
    return clean.encode("latin-1", errors="replace").decode("latin-1")


def _data(answer: client.Exchange) -> Any:
    """The answer's JSON for later apps; None when it is empty, too large or not JSON."""
    if not answer.body or len(answer.body) > MAX_DATA_BYTES:
        return None
    try:
        return json.loads(answer.body)
    except ValueError:
        return None


def _token_error_class(answer: client.Exchange) -> str | None:
    """Name a refused token request by its OAuth error (RFC 6749 §5.2): oauth_invalid_client."""
    if 200 <= answer.status_code < 300 or answer.status_code == 429 or answer.status_code >= 500:
        return None
    try:
        error = json.loads(answer.body).get("error")
    except (ValueError, AttributeError):
        error = None
    if isinstance(error, str) and error.replace("_", "").isalnum():
        return f"oauth_{error}"
    return "oauth_rejected"


def _describe(reason: str, last: Attempt | None) -> str:
    status = f" (HTTP {last.status_code})" if last and last.status_code else ""
    messages = {
        "rejected": "The receiver refused the request; it is not retried",
        "redirected": "The receiver answered with a redirect, which is never followed",
        "retries_exhausted": "Every attempt failed",
        "deadline": "The total deadline ran out before the next retry",
    }
    if reason.startswith("oauth"):
        return f"The OAuth token endpoint refused the client credentials{status}."
    return messages.get(reason, f"The request failed: {reason}") + f"{status}."
