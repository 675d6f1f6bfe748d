"""CRM calls over the one HTTP client: whole bodies and headers, retries, Retry-After, budgets.

connectors/http.py answers a status and a 4 KB excerpt, enough for callbacks but not for a CRM
page of 200 records, and no headers (Retry-After, X-HubSpot-RateLimit-*). Until it grows a way to
return them, `_send` below drives a guarded session of http.py's (same SSRF guard, same deadline
watchdog, same redaction), kept alive per client, and keeps the headers and up to MAX_BODY_BYTES
of body.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlencode

from django.conf import settings

from connectors import http
from connectors.interface import ConnectorError
from tenants.authentication import count_hit

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 16 * 1024 * 1024
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
# OAuth access tokens are refreshed this long before they expire (every provider).
REFRESH_MARGIN_SECONDS = 60
# Background syncs stop at this share of a connection's request budget: call logging keeps the rest.
SYNC_BUDGET_SHARE = 0.8


@dataclass(frozen=True)
class CrmResponse:
    status_code: int
    headers: Mapping[str, str]  # lower-cased names
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError as error:
            raise ConnectorError(
                f"The CRM answered {self.status_code} with invalid JSON."
            ) from error


class CrmClient:
    """Requests for one connection: a request budget, retries with backoff, Retry-After.

    Every client of a connection spends one shared budget of requests per 10 s; a client with
    budget_share < 1 (background syncs) stops at that share of it, so the rest is always left
    for call logging.
    """

    def __init__(
        self,
        *,
        connection_id: int,
        deadline_seconds: float = 30.0,
        max_attempts: int = 5,
        max_wait_seconds: float = 60.0,
        budget_share: float = 1.0,
    ) -> None:
        self.connection_id = connection_id
        self.deadline_seconds = deadline_seconds
        self.max_attempts = max_attempts
        self.max_wait_seconds = max_wait_seconds
        self.budget_share = budget_share
        self.rate_limit_waits = 0
        # Kept alive between requests (a TCP connect each was a third of a sync page's cost);
        # urllib3's pool is thread-safe, so a sync's fetch thread shares it.
        self._session = http._session()

    def send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        form: Mapping[str, str] | None = None,
        retry_after_of: Callable[[CrmResponse], float | None] | None = None,
        idempotent: bool = True,
    ) -> CrmResponse:
        """Send, retrying network errors, 429 and 5xx; return any other response as it is.

        A create (`idempotent=False`) is retried only when the CRM surely did not take it (a
        429, a refused connection): after a 5xx or a lost answer it may have stored the record,
        so the response or error goes back to the caller, who looks for it before creating again.
        """
        headers = dict(headers or {})
        body = None
        if json_body is not None:
            body, headers["Content-Type"] = json.dumps(json_body).encode(), "application/json"
        elif form is not None:
            body = urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        if params:
            url = f"{url}?{urlencode(params, doseq=True)}"
        for attempt in range(1, self.max_attempts + 1):
            self._spend_budget()
            try:
                response = _send(
                    method, url, headers, body, self.deadline_seconds, session=self._session
                )
            except http.HttpError as error:
                if error.error_class in ("blocked_ip", "invalid_url"):
                    raise ConnectorError(str(error), permanent=True) from None
                unsent = error.error_class == "connect_refused"
                if attempt == self.max_attempts or not (idempotent or unsent):
                    raise ConnectorError(str(error)) from None
                self._pause(_backoff(attempt))
                continue
            if response.status_code not in RETRYABLE_STATUSES or (
                not idempotent and response.status_code != 429
            ):
                return response
            wait = (retry_after_of(response) if retry_after_of else None) or retry_after(response)
            wait = wait if wait is not None else _backoff(attempt)
            if attempt == self.max_attempts or wait > self.max_wait_seconds:
                raise ConnectorError(
                    f"{method} {http._display(url)} answered {response.status_code} "
                    f"(attempt {attempt}; next wait {wait:.0f} s).",
                    retry_after=wait,
                )
            if response.status_code == 429:
                self.rate_limit_waits += 1
            self._pause(wait)
        raise AssertionError("unreachable")

    def _pause(self, seconds: float) -> None:
        """Wait before trying again, unless that outlasts the web request's outbound budget."""
        left = http.budget_left()
        if left is not None and seconds >= left:
            raise ConnectorError(
                f"No time left to try again in this request (next wait {seconds:.1f} s).",
                retry_after=seconds,
            )
        time.sleep(seconds)

    def _spend_budget(self) -> None:
        """Keep this connection under CONNECTOR_REQUESTS_PER_10_SECONDS (shared by all workers)."""
        limit = max(1, int(settings.CONNECTOR_REQUESTS_PER_10_SECONDS * self.budget_share))
        while True:
            window = int(time.time() // 10)
            if count_hit(f"crm-budget:{self.connection_id}:{window}", ttl=20) <= limit:
                return
            self.rate_limit_waits += 1
            self._pause(max(0.05, (window + 1) * 10 - time.time()))


def send_with_fresh_token(
    send: Callable[[], CrmResponse],
    *,
    expires_at: float | None,
    refresh: Callable[[], None],
    rejected: Callable[[CrmResponse], bool] = lambda response: response.status_code == 401,
) -> CrmResponse:
    """Send with an OAuth token refreshed before it expires, and once more if it is rejected.

    `expires_at` None: not an OAuth token (a private-app or API token), sent as it is.
    """
    if expires_at is not None and expires_at < time.time() + REFRESH_MARGIN_SECONDS:
        refresh()
    response = send()
    if expires_at is not None and rejected(response):
        refresh()
        response = send()
    return response


def retry_after(response: CrmResponse) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), if any."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _backoff(attempt: int) -> float:
    return min(30.0, 0.5 * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)  # noqa: S311


def _send(
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes | None,
    deadline_seconds: float,
    session: Any = None,
) -> CrmResponse:
    """Send one request over session (kept alive) or a new one; keep the headers and the body."""
    http.check_url(url)
    deadline_seconds = http.within_budget(deadline_seconds)
    started = time.monotonic()
    try:
        with (
            http.deadline(deadline_seconds),
            contextlib.nullcontext(session) if session is not None else http._session() as sender,
        ):
            response = sender.request(
                method,
                url,
                headers=headers,
                data=body,
                timeout=(deadline_seconds, deadline_seconds),
                allow_redirects=False,
                stream=True,
            )
            with response:
                chunks, size = [], 0
                for chunk in response.iter_content(chunk_size=65536):
                    chunks.append(chunk)
                    size += len(chunk)
                    if size > MAX_BODY_BYTES:
                        raise http.HttpError("too_large", "The CRM's answer is too large.")
    except http.HttpError:
        raise
    except Exception as error:
        expired = time.monotonic() - started >= deadline_seconds - 0.01
        error_class = "timeout" if expired else http._error_class(error)
        message = http._redact(
            f"{method} {http._display(url)} failed: {type(error).__name__}: {error}", url
        )
        for secret in (headers.get("Authorization"),):
            if secret:
                message = message.replace(secret, "[redacted]")
        raise http.HttpError(error_class, message) from None
    lowered = {name.lower(): value for name, value in response.headers.items()}
    return CrmResponse(status_code=response.status_code, headers=lowered, body=b"".join(chunks))
