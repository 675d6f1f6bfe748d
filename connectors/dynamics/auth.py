"""Entra ID sign-in for a Dataverse environment (crm-apis.md section 6.1), two ways.

Client credentials (the default): the app is an application user of the environment; its
security role, not OAuth scopes, says what it may read and write, so the token asks for the
environment's `.default` scope.
Authorization code (`auth: "authorization_code"`): a Dataverse user consents once; the tokens
act as that user (the `user_impersonation` delegated permission), refreshed with the refresh
token (`oauth_app`, run by connectors.oauth.AuthorizationCodeFlow).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from connectors.client import CrmClient, CrmResponse
from connectors.interface import ConnectorError
from connectors.oauth import OAuthApp, status_and, token_answer

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


# ----- delegated access: the OAuth authorization-code flow, as a Dataverse user
# `auth` says how a connection signs in; without it, client credentials (as before).
AUTH_MODES = ("client_credentials", "authorization_code")
DELEGATED = "authorization_code"


def is_delegated(credentials: Mapping[str, Any]) -> bool:
    """Whether the connection acts as the user who consented (else as the application user)."""
    return credentials.get("auth") == DELEGATED


def authority(credentials: Mapping[str, Any]) -> str:
    """`{authority}/{tenant}/oauth2/v2.0`, the directory's OAuth endpoints."""
    return token_url(credentials).removesuffix("/token")


def delegated_scope(credentials: Mapping[str, Any]) -> str:
    """The environment's delegated permission, and a refresh token (offline_access)."""
    org_url = str(credentials.get("org_url") or "").rstrip("/")
    return f"{org_url}/user_impersonation offline_access"


def oauth_app(credentials: Mapping[str, Any]) -> OAuthApp:
    """Entra ID's v2.0 authorization-code flow for the environment's `user_impersonation`.

    The scope goes with the code and refresh grants too (Entra ID issues the refresh token for
    the scopes asked); a refresh may answer a new refresh token, which is kept.
    """
    missing = [n for n in ("tenant_id", "org_url") if not credentials.get(n)]
    if missing:
        raise ConnectorError(
            f"The Dynamics 365 connection needs {', '.join(missing)}.", permanent=True
        )
    scope = delegated_scope(credentials)
    return OAuthApp(
        crm="Dynamics 365",
        authorize_url=authority(credentials) + "/authorize",
        token_url=token_url(credentials),
        authorize_params={"response_type": "code", "response_mode": "query", "scope": scope},
        token_params={"scope": scope},
        refusal=status_and(_entra_message),
        reconnect="reconnect Dynamics 365",
        missing_hint=" (the Entra ID app's application (client) ID and a client secret)",
        expires_in=DEFAULT_TOKEN_SECONDS,
    )


def _entra_message(response: CrmResponse) -> str:
    """Entra ID's {"error": "invalid_grant", "error_description": "AADSTS…"}."""
    tokens = token_answer(response)
    return f"{tokens.get('error')}: {tokens.get('error_description')}"[:300]
