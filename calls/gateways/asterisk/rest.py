"""Asterisk's REST Interface (https://docs.asterisk.org/Asterisk_22_Documentation/API_Documentation/Asterisk_REST_Interface/).

Requests with HTTP Basic (an `ari.conf` user) through our one HTTP client (core/http.py:
deadline, SSRF guard), parameters in the query string as ARI takes them. Errors are
`{"message": ...}`.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from calls.gateways.base import GatewayUnavailable
from core import http

DEADLINE_SECONDS = 5.0


@dataclass(frozen=True)
class AriServer:
    base_url: str  # http(s)://host:port, where /ari/... is served
    username: str
    password: str

    @property
    def authorization(self) -> str:
        pair = f"{self.username}:{self.password}".encode()
        return f"Basic {base64.b64encode(pair).decode()}"

    def events_url(self, app: str) -> str:
        """The events WebSocket: the same host and port, ws(s)."""
        url = urlsplit(self.base_url)
        scheme = "wss" if url.scheme == "https" else "ws"
        query = urlencode({"app": app, "subscribeAll": "false"})
        return f"{scheme}://{url.netloc}{url.path.rstrip('/')}/ari/events?{query}"


class AriError(GatewayUnavailable):
    """Asterisk refused or did not answer; `status` is its HTTP status (0: no answer)."""

    def __init__(self, message: str, *, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


def ari_request(
    server: AriServer, method: str, path: str, params: dict[str, str] | None = None
) -> dict[str, Any]:
    """One ARI request; its JSON answer ({} for a 204). Raises AriError on anything but 2xx."""
    query = f"?{urlencode(params)}" if params else ""
    url = f"{server.base_url.rstrip('/')}/ari/{path}{query}"
    try:
        response = http.request(
            method,
            url,
            deadline_seconds=DEADLINE_SECONDS,
            headers={"Authorization": server.authorization, "Accept": "application/json"},
            secret_headers=("Authorization",),
        )
    except http.HttpError as error:
        raise AriError(f"Asterisk did not answer: {error}") from error
    try:
        answer = json.loads(response.body) if response.body else {}
    except ValueError:
        answer = {}
    if not 200 <= response.status_code < 300:
        message = answer.get("message") if isinstance(answer, dict) else None
        raise AriError(
            f"Asterisk answered {response.status_code}: {message or response.excerpt}",
            status=response.status_code,
        )
    return answer if isinstance(answer, dict) else {"items": answer}


def channel_path(channel_id: str) -> str:
    return f"channels/{quote(channel_id, safe='')}"
