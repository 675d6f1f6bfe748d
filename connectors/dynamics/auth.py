"""Entra ID client credentials for a Dataverse environment (crm-apis.md section 6.1).

The app is an application user of the environment: its security role, not OAuth scopes, says
what it may read and write, so the token asks for the environment's `.default` scope.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from connectors.client import CrmClient
from connectors.interface import ConnectorError
from connectors.oauth import token_answer

DEFAULT_AUTHORITY_URL = "https://login.microsoftonline.com"
DEFAULT_TOKEN_SECONDS = 3600


def token_url(credentials: Mapping[str, Any]) -> str:
    """The v2.0 token endpoint of the connection's directory (tenant)."""
    authority = str(credentials.get("authority_url") or DEFAULT_AUTHORITY_URL).rstrip("/")
    return f"{authority}/{quote(str(credentials['tenant_id']), safe='')}/oauth2/v2.0/token"


def client_credentials_token(client: CrmClient, credentials: Mapping[str, Any]) -> dict[str, Any]:
    """A new access token for `org_url`, and when it expires: {access_token, expires_at}."""
    missing = [n for n in ("tenant_id", "client_id", "client_secret") if not credentials.get(n)]
    if missing:
        raise ConnectorError(
            f"The Dynamics 365 connection needs {', '.join(missing)}.", permanent=True
        )
    form = {
        "grant_type": "client_credentials",
        "client_id": str(credentials["client_id"]),
        "client_secret": str(credentials["client_secret"]),
        "scope": f"{str(credentials.get('org_url') or '').rstrip('/')}/.default",
    }
    response = client.send(
        "POST", token_url(credentials), headers={"Accept": "application/json"}, form=form
    )
    tokens = token_answer(response)
    if response.status_code != 200 or not tokens.get("access_token"):
        # Entra ID refuses with {"error": "invalid_client", "error_description": "AADSTS…"}
        refusal = f"{tokens.get('error')}: {tokens.get('error_description')}"[:300]
        raise ConnectorError(
            f"Entra ID refused the client credentials ({response.status_code} {refusal}).",
            permanent=400 <= response.status_code < 500,
        )
    seconds = float(tokens.get("expires_in") or DEFAULT_TOKEN_SECONDS)
    return {"access_token": str(tokens["access_token"]), "expires_at": time.time() + seconds}
