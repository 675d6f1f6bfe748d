"""Salesforce OAuth 2.0 web-server flow and refresh-token grant (crm-apis.md section 2.1)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from connectors.client import CrmClient, CrmResponse
from connectors.interface import ConnectorError

DEFAULT_LOGIN_URL = "https://login.salesforce.com"  # sandboxes: https://test.salesforce.com
SCOPES = "api refresh_token"
# The token answer has no expires_in: a session lives as long as the org's session timeout
# (2 hours by default). Refresh before that; a shorter org timeout is caught by the 401 retry.
SESSION_SECONDS = 7200


def login_url(credentials: Mapping[str, Any]) -> str:
    return str(credentials.get("login_url") or DEFAULT_LOGIN_URL).rstrip("/")


def authorization_url(credentials: Mapping[str, Any], *, state: str, redirect_uri: str) -> str:
    """Where the org's admin grants access."""
    query = {
        "response_type": "code",
        "client_id": required(credentials)["client_id"],
        "redirect_uri": redirect_uri,
        "scope": SCOPES,
        "state": state,
    }
    return f"{login_url(credentials)}/services/oauth2/authorize?{urlencode(query)}"


def required(credentials: Mapping[str, Any], *names: str) -> Mapping[str, Any]:
    """The credentials, if they hold the client and `names`; else a permanent error."""
    missing = [n for n in ("client_id", "client_secret", *names) if not credentials.get(n)]
    if missing:
        raise ConnectorError(
            f"Salesforce OAuth needs {', '.join(missing)} in the connection's credentials.",
            permanent=True,
        )
    return credentials


def token_request(
    client: CrmClient, credentials: Mapping[str, Any], form: dict[str, str], *, failure: str
) -> dict[str, Any]:
    """POST the grant to the token endpoint; answer the credentials with the new session."""
    required(credentials)
    response = client.send(
        "POST",
        login_url(credentials) + "/services/oauth2/token",
        headers={"Accept": "application/json"},
        form={
            **form,
            "client_id": credentials["client_id"],
            "client_secret": credentials["client_secret"],
        },
    )
    if response.status_code != 200:
        raise ConnectorError(
            f"{failure} ({response.status_code}: {_message(response)}); reconnect Salesforce.",
            permanent=response.status_code < 500,
        )
    tokens = response.json()
    if not isinstance(tokens, dict) or not tokens.get("access_token"):
        raise ConnectorError("Salesforce's token endpoint answered without an access_token.")
    instance_url = str(tokens.get("instance_url") or credentials.get("instance_url") or "")
    if not instance_url:
        raise ConnectorError("Salesforce's token endpoint answered without an instance_url.")
    issued = float(tokens.get("issued_at") or time.time() * 1000) / 1000
    return {
        **credentials,
        "access_token": tokens["access_token"],
        # With refresh-token rotation each refresh answers a new one and kills the old one.
        "refresh_token": tokens.get("refresh_token") or credentials.get("refresh_token"),
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
