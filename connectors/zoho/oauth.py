"""Zoho OAuth 2.0 through the data centre's accounts server: consent, code, refresh.

https://www.zoho.com/crm/developer/docs/api/v8/oauth-overview.html (crm-apis.md section 4.1).
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlencode, urlsplit

from connectors.client import CrmClient
from connectors.interface import ConnectorError, CredentialsSaver

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


class ZohoAccounts:
    """The tokens of one connection: `credentials` is shared with (and updated for) its caller."""

    def __init__(
        self, credentials: dict[str, Any], client: CrmClient, save_credentials: CredentialsSaver
    ) -> None:
        self.credentials = credentials
        self.client = client
        self.save_credentials = save_credentials

    @property
    def url(self) -> str:
        return str(self.credentials.get("accounts_url") or DEFAULT_ACCOUNTS_URL).rstrip("/")

    @property
    def crm_base_url(self) -> str:
        """The web app of the same data centre: accounts.zoho.eu -> https://crm.zoho.eu."""
        host = urlsplit(self.url).hostname or ""
        if host.startswith("accounts.zoho."):
            return "https://crm." + host.removeprefix("accounts.")
        return "https://crm.zoho.com"

    def authorization_url(self, *, state: str, redirect_uri: str) -> str:
        """Zoho's consent page (offline access: the code also brings a refresh token)."""
        query = {
            "scope": SCOPES,
            "client_id": self._required()["client_id"],
            "response_type": "code",
            "access_type": "offline",
            "prompt": "consent",
            "redirect_uri": redirect_uri,
            "state": state,
        }
        return f"{self.url}/oauth/v2/auth?{urlencode(query)}"

    def connect(self, *, code: str, redirect_uri: str) -> None:
        """Trade the authorization code for tokens and the data centre's api_domain."""
        self._token_request(
            {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri},
            failure="Connecting Zoho CRM failed",
        )

    def refresh(self) -> None:
        self._required("refresh_token")
        self._token_request(
            {"grant_type": "refresh_token", "refresh_token": self.credentials["refresh_token"]},
            failure="Refreshing the Zoho OAuth token failed",
        )

    def _required(self, *names: str) -> dict[str, Any]:
        missing = [n for n in ("client_id", "client_secret", *names) if not self.credentials.get(n)]
        if missing:
            raise ConnectorError(
                "Zoho OAuth needs " + ", ".join(missing) + " in the connection's credentials.",
                permanent=True,
            )
        return self.credentials

    def _token_request(self, form: dict[str, str], *, failure: str) -> None:
        self._required()
        response = self.client.send(
            "POST",
            self.url + "/oauth/v2/token",
            form={
                **form,
                "client_id": self.credentials["client_id"],
                "client_secret": self.credentials["client_secret"],
            },
        )
        try:
            tokens = response.json() if response.body else {}
        except ConnectorError:
            tokens = {}
        tokens = tokens if isinstance(tokens, dict) else {}
        # Zoho answers a refused code or refresh token with 200 and {"error": "invalid_code"}.
        if response.status_code != 200 or "error" in tokens or not tokens.get("access_token"):
            reason = tokens.get("error") or f"HTTP {response.status_code}"
            raise ConnectorError(
                f"{failure} ({reason}); reconnect Zoho CRM.",
                permanent=response.status_code < 500,
            )
        self.credentials.update(
            access_token=tokens["access_token"],
            refresh_token=tokens.get("refresh_token") or self.credentials.get("refresh_token"),
            expires_at=time.time() + float(tokens.get("expires_in") or 3600),
            api_domain=tokens.get("api_domain") or self.credentials.get("api_domain"),
        )
        self.save_credentials(dict(self.credentials))
