"""SugarCRM sessions: the OAuth 2.0 password grant, renewed with the refresh_token grant.

`POST /rest/v11/oauth2/token` with a JSON body (crm-apis-more.md section 2.1 [SG1][T SG2]).
A session is per user and platform: a second login on the same platform logs the first one out
[T SG3], so we log in on our own platform (`callbridge` unless the credentials name another),
which the Sugar admin registers (Admin > Configure API Platforms: unknown platforms are refused
since Winter '18) and renew by refresh token rather than logging in again.
"""

from __future__ import annotations

import re
import time
from typing import Any

from connectors.client import CrmClient, CrmResponse
from connectors.interface import ConnectorError, CredentialsSaver

DEFAULT_PLATFORM = "callbridge"
DEFAULT_CLIENT_ID = "sugar"  # Sugar's own OAuth client, with an empty secret
TOKEN_PATH = "/rest/v11/oauth2/token"  # noqa: S105 - a path, not a secret
EXPIRES_IN = 3600  # when the answer has no expires_in
# Sugar's rule for platform names (Sugar developer blog, "Unknown platforms to be restricted").
PLATFORM_NAME = re.compile(r"^[A-Za-z0-9_-]{1,127}$")


class PasswordGrant:
    """The session of one connection; `credentials` is the connector's dict, updated in place."""

    def __init__(
        self, credentials: dict[str, Any], client: CrmClient, save_credentials: CredentialsSaver
    ) -> None:
        self.credentials = credentials
        self.client = client
        self.save_credentials = save_credentials

    @property
    def instance_url(self) -> str:
        return str(self.credentials.get("instance_url") or "").rstrip("/")

    def renew(self) -> None:
        """A new access token: by refresh token when there is one, else (or refused) by login."""
        if self.credentials.get("refresh_token"):
            response = self._token_request(
                {"grant_type": "refresh_token", "refresh_token": self.credentials["refresh_token"]}
            )
            if response.status_code == 200:
                return self._keep(response)
            if response.status_code >= 500:
                raise _refused(response, "Refreshing the SugarCRM session", permanent=False)
            # Refresh tokens expire (two weeks by default) or were rotated by another worker.
        response = self._token_request(
            {
                "grant_type": "password",
                "username": str(self.credentials.get("username") or ""),
                "password": str(self.credentials.get("password") or ""),
            }
        )
        if response.status_code != 200:
            raise _refused(response, "Logging in to SugarCRM", permanent=response.status_code < 500)
        self._keep(response)

    def _token_request(self, grant: dict[str, str]) -> CrmResponse:
        body = {
            **grant,
            "client_id": str(self.credentials.get("client_id") or DEFAULT_CLIENT_ID),
            "client_secret": str(self.credentials.get("client_secret") or ""),
            "platform": str(self.credentials.get("platform") or DEFAULT_PLATFORM),
        }
        headers = {"Accept": "application/json"}
        return self.client.send(
            "POST", self.instance_url + TOKEN_PATH, headers=headers, json_body=body
        )

    def _keep(self, response: CrmResponse) -> None:
        tokens = response.json()
        if not isinstance(tokens, dict) or not tokens.get("access_token"):
            raise ConnectorError("SugarCRM's token endpoint answered without an access_token.")
        self.credentials.update(
            {
                "access_token": tokens["access_token"],
                "refresh_token": tokens.get("refresh_token")
                or self.credentials.get("refresh_token"),
                "expires_at": time.time() + float(tokens.get("expires_in") or EXPIRES_IN),
            }
        )
        self.save_credentials(dict(self.credentials))


def error_of(response: CrmResponse) -> str:
    """Sugar's `{error, error_message}` as "label: message" (or the HTTP status)."""
    try:
        body = response.json() if response.body else {}
    except ConnectorError:
        body = {}
    if not isinstance(body, dict) or not body.get("error"):
        return f"HTTP {response.status_code}"
    return f"{body['error']}: {body.get('error_message') or ''}".strip(" :")[:300]


def _refused(response: CrmResponse, what: str, *, permanent: bool) -> ConnectorError:
    advice = "; check the username, password and platform" if permanent else ""
    return ConnectorError(
        f"{what} failed ({response.status_code} {error_of(response)}){advice}.",
        permanent=permanent,
    )
