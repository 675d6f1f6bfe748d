"""Twilio's REST API for calls (https://www.twilio.com/docs/voice/api/call-resource).

Form-encoded requests with HTTP Basic (AccountSid:AuthToken) through our one HTTP client
(core/http.py: deadline, SSRF guard). Errors are Twilio's JSON (`code`, `message`, `more_info`,
`status`); a 429 (code 20429) "is never processed and is always safe to retry".
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from calls.gateways.base import GatewayUnavailable
from core import http

API_BASE_URL = "https://api.twilio.com"
DEADLINE_SECONDS = 5.0


@dataclass(frozen=True)
class TwilioAccount:
    account_sid: str
    auth_token: str
    base_url: str = API_BASE_URL


class TwilioError(GatewayUnavailable):
    """Twilio refused or did not answer; `retryable` when the request was surely not processed."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


def call_create(account: TwilioAccount, fields: list[tuple[str, str]]) -> str:
    """Place a call; answer its CallSid. Never retried on a timeout: Twilio may have placed it."""
    answer = _send(account, "Calls.json", fields, expected=201)
    return str(answer["sid"])


def call_update(account: TwilioAccount, call_sid: str, fields: list[tuple[str, str]]) -> None:
    """Redirect a live call to new TwiML, or end it (Status=completed)."""
    _send(account, f"Calls/{call_sid}.json", fields, expected=200)


def _send(
    account: TwilioAccount, resource: str, fields: list[tuple[str, str]], *, expected: int
) -> dict[str, Any]:
    url = f"{account.base_url}/2010-04-01/Accounts/{account.account_sid}/{resource}"
    credentials = f"{account.account_sid}:{account.auth_token}".encode()
    try:
        response = http.post(
            url,
            deadline_seconds=DEADLINE_SECONDS,
            headers={
                "Authorization": f"Basic {base64.b64encode(credentials).decode()}",
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
            },
            body=urlencode(fields).encode(),
            secret_headers=("Authorization",),
        )
    except http.HttpError as error:
        # Refused before sending: safe to try again; anything later may have been processed.
        refused = error.error_class == "connect_refused"
        raise TwilioError(f"Twilio did not answer: {error}", retryable=refused) from error
    try:
        answer = json.loads(response.body or b"{}")
    except ValueError:
        answer = {}
    if response.status_code != expected:
        code, message = answer.get("code", ""), answer.get("message", response.excerpt)
        raise TwilioError(
            f"Twilio answered {response.status_code} (error {code}): {message}",
            retryable=response.status_code == 429,
        )
    return answer if isinstance(answer, dict) else {}
