"""CRM calls over the one HTTP client (core/http.py): retries, Retry-After, request budgets.

Each client keeps a guarded session alive (same SSRF guard, deadline watchdog and redaction as
every outbound request) and reads whole bodies up to MAX_BODY_BYTES with their headers.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from connectors import pacing
from connectors.interface import ConnectorError, CredentialsSaver
from connectors.pacing import RateLimit
from core import http

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 16 * 1024 * 1024
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
# OAuth access tokens are refreshed this long before they expire (every provider).
REFRESH_MARGIN_SECONDS = 60
# Background syncs stop at this share of a daily allocation (Salesforce's): call logging and the
# account's other integrations keep the rest.
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
    """Requests for one connection: paced under its CRM's rate limits, retries, Retry-After.

    Every client of a connection shares its limits (connectors.pacing): each request waits for
    a free place under the limit it spends ("requests" unless the connector names another, e.g.
    HubSpot's "search"), so syncs and call logging take turns instead of a sync spending a
    window and call logging waiting it out.
    """

    def __init__(
        self,
        *,
        connection_id: int,
        deadline_seconds: float = 30.0,
        max_attempts: int = 5,
        max_wait_seconds: float = 60.0,
        rate_limits: Mapping[str, RateLimit] | None = None,
    ) -> None:
        self.connection_id = connection_id
        self.deadline_seconds = deadline_seconds
        self.max_attempts = max_attempts
        self.max_wait_seconds = max_wait_seconds
        self.rate_limits = dict(rate_limits or pacing.rate_limits({}))
        self.rate_limit_waits = 0  # answers that said to wait (429), and waits connectors add
        # Kept alive between requests (a TCP connect each was a third of a sync page's cost);
        # urllib3's pool is thread-safe, so a sync's fetch thread shares it.
        self._session = http.new_session()

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
        limit: str | tuple[str, ...] = "requests",
    ) -> CrmResponse:
        """Send, retrying network errors, 429 and 5xx; return any other response as it is.

        A create (`idempotent=False`) is retried only when the CRM surely did not take it (a
        429, a refused connection): after a 5xx or a lost answer it may have stored the record,
        so the response or error goes back to the caller, who looks for it before creating again.
        `limit` names the rate limit the request spends (self.rate_limits), or several.
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
            for name in (limit,) if isinstance(limit, str) else limit:
                self._pace(name)
            try:
                answer = http.request(
                    method,
                    url,
                    deadline_seconds=self.deadline_seconds,
                    headers=headers,
                    body=body,
                    secret_headers=("Authorization", "OAuth-Token"),  # OAuth-Token: SugarCRM
                    max_body_bytes=MAX_BODY_BYTES,
                    session=self._session,
                )
            except http.HttpError as error:
                if error.error_class in ("blocked_ip", "invalid_url"):
                    raise ConnectorError(str(error), permanent=True) from None
                unsent = error.error_class == "connect_refused"
                if attempt == self.max_attempts or not (idempotent or unsent):
                    raise ConnectorError(str(error)) from None
                self._pause(_backoff(attempt))
                continue
            response = CrmResponse(answer.status_code, answer.headers, answer.body)
            if response.status_code not in RETRYABLE_STATUSES or (
                not idempotent and response.status_code != 429
            ):
                return response
            wait = (retry_after_of(response) if retry_after_of else None) or retry_after(response)
            wait = wait if wait is not None else _backoff(attempt)
            if attempt == self.max_attempts or wait > self.max_wait_seconds:
                raise ConnectorError(
                    f"{method} {http.display_url(url)} answered {response.status_code} "
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

    def _pace(self, limit: str) -> None:
        """Wait for a free place under this rate limit of the connection, and take it."""
        while (wait := pacing.take(self.connection_id, limit, self.rate_limits[limit])) > 0:
            self._pause(wait)


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


def credential_asked_once(
    credentials: dict[str, Any], name: str, ask: Callable[[], str], save: CredentialsSaver
) -> str:
    """credentials[name], else what `ask` reads from the CRM, then kept with the credentials.

    For what only record links need (a portal or organization id, a company domain): a CRM that
    cannot say is logged and answers "" (no link), and the next run asks again.
    """
    known = str(credentials.get(name) or "")
    if known:
        return known
    try:
        value = ask()
    except ConnectorError as error:
        logger.warning("Could not read %s for record links: %s", name, error)
        return ""
    if value:
        credentials[name] = value
        save(dict(credentials))
    return value


def retry_after(response: CrmResponse) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), if any."""
    return http.retry_after_seconds(response.headers)


def _backoff(attempt: int) -> float:
    return min(30.0, 0.5 * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)  # noqa: S311
