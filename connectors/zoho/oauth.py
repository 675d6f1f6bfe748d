"""Zoho OAuth 2.0 through the data centre's accounts server: consent, code, refresh.

https://www.zoho.com/crm/developer/docs/api/v8/oauth-overview.html (crm-apis.md section 4.1).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from connectors.client import CrmResponse
from connectors.oauth import OAuthApp, token_answer

DEFAULT_ACCOUNTS_URL = "https://accounts.zoho.com"
# Every scope a code path uses (the fake refuses what was not granted, as Zoho does):
# listings, searches, Calls and Tasks written and searched, a contact created, users read.
SCOPES = ",".join(
    [
        "ZohoCRM.modules.contacts.ALL",
        "ZohoCRM.modules.accounts.READ",
        "ZohoCRM.modules.leads.READ",
        "ZohoCRM.modules.calls.ALL",
        "ZohoCRM.modules.tasks.CREATE",
        "ZohoCRM.modules.tasks.READ",  # find_logged looks for a task a lost answer hid from us
        "ZohoCRM.users.READ",
        "ZohoSearch.securesearch.READ",  # the search API needs it besides the module scope
    ]
)


def accounts_url(credentials: Mapping[str, Any]) -> str:
    return str(credentials.get("accounts_url") or DEFAULT_ACCOUNTS_URL).rstrip("/")


def crm_base_url(credentials: Mapping[str, Any]) -> str:
    """The web app of the same data centre: accounts.zoho.eu -> https://crm.zoho.eu."""
    host = urlsplit(accounts_url(credentials)).hostname or ""
    if host.startswith("accounts.zoho."):
        return "https://crm." + host.removeprefix("accounts.")
    return "https://crm.zoho.com"


def oauth_app(credentials: Mapping[str, Any]) -> OAuthApp:
    """Offline access: the code also brings a refresh token, and the data centre's api_domain."""
    return OAuthApp(
        crm="Zoho",
        authorize_url=accounts_url(credentials) + "/oauth/v2/auth",
        token_url=accounts_url(credentials) + "/oauth/v2/token",
        authorize_params={
            "scope": SCOPES,
            "response_type": "code",
            "access_type": "offline",
            "prompt": "consent",
        },
        refusal=_refusal,
        reconnect="reconnect Zoho CRM",
        more_credentials=lambda tokens, credentials: {
            "api_domain": tokens.get("api_domain") or credentials.get("api_domain")
        },
    )


def _refusal(response: CrmResponse) -> str:
    return str(token_answer(response).get("error") or f"HTTP {response.status_code}")
