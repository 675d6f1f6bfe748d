"""Salesforce OAuth 2.0 web-server flow and refresh-token grant (crm-apis.md section 2.1)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from connectors.client import CrmResponse
from connectors.interface import ConnectorError
from connectors.oauth import OAuthApp, status_and

DEFAULT_LOGIN_URL = "https://login.salesforce.com"  # sandboxes: https://test.salesforce.com
# The token answer has no expires_in: a session lives as long as the org's session timeout
# (2 hours by default). Refresh before that; a shorter org timeout is caught by the 401 retry.
SESSION_SECONDS = 7200


def oauth_app(credentials: Mapping[str, Any]) -> OAuthApp:
    login_url = str(credentials.get("login_url") or DEFAULT_LOGIN_URL).rstrip("/")
    return OAuthApp(
        crm="Salesforce",
        authorize_url=login_url + "/services/oauth2/authorize",
        token_url=login_url + "/services/oauth2/token",
        authorize_params={"response_type": "code", "scope": "api refresh_token"},
        refusal=status_and(_message),
        reconnect="reconnect Salesforce",
        more_credentials=_session,
    )


def _session(tokens: Mapping[str, Any], credentials: Mapping[str, Any]) -> dict[str, Any]:
    """The org's instance_url, and when the session ends (counted from when it was issued)."""
    instance_url = str(tokens.get("instance_url") or credentials.get("instance_url") or "")
    if not instance_url:
        raise ConnectorError("Salesforce's token endpoint answered without an instance_url.")
    issued = float(tokens.get("issued_at") or time.time() * 1000) / 1000
    return {
        "instance_url": instance_url.rstrip("/"),
        "expires_at": min(issued, time.time()) + SESSION_SECONDS,
    }


def _message(response: CrmResponse) -> str:
    """The token endpoint's own error shape: {error, error_description}."""
    try:
        body = response.json()
    except ConnectorError:
        return response.body[:200].decode("utf-8", "replace")
    if isinstance(body, dict):
        return f"{body.get('error')}: {body.get('error_description')}"[:300]
    return ""
