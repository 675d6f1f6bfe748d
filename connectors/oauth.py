"""The OAuth 2.0 authorization-code flow, once for every CRM: consent URL, code grant, refresh.

Each CRM describes its endpoints and quirks in an `OAuthApp` (its folder's `oauth_app`); the
tokens go into the connection's credentials, saved encrypted through `save_credentials`.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from connectors.client import CrmClient, CrmResponse
from connectors.interface import ConnectorError, CredentialsSaver


@dataclass(frozen=True)
class OAuthApp:
    """One CRM's OAuth endpoints for a connection (they may depend on its credentials)."""

    crm: str  # in messages: "HubSpot OAuth needs ..."
    authorize_url: str
    token_url: str
    refusal: Callable[[CrmResponse], str]  # what a refused grant says, for the error message
    reconnect: str  # the advice after a refusal: "reconnect Salesforce"
    authorize_params: Mapping[str, str] = field(default_factory=dict)  # scope, access_type ...
    token_params: Mapping[str, str] = field(default_factory=dict)  # sent with every grant (scope)
    basic_auth: bool = False  # the client id and secret as HTTP Basic auth, else in the form
    missing_hint: str = ""  # after "needs client_id in the connection's credentials"
    expires_in: float = 3600  # when the token answer has no expires_in
    # Other credentials a token answer brings (HubSpot's hub_id, Zoho's api_domain, ...), from
    # the answer and the credentials before it.
    more_credentials: Callable[[Mapping[str, Any], Mapping[str, Any]], dict[str, Any]] = (
        lambda tokens, credentials: {}
    )


def status_and(message: Callable[[CrmResponse], str]) -> Callable[[CrmResponse], str]:
    """A refusal told as `<HTTP status>: <the token endpoint's message>`."""
    return lambda response: f"{response.status_code}: {message(response)}"


class AuthorizationCodeFlow:
    """The tokens of one connection; `credentials` is the connector's own dict, updated in place."""

    def __init__(
        self,
        app: Callable[[Mapping[str, Any]], OAuthApp],
        credentials: dict[str, Any],
        client: CrmClient,
        save_credentials: CredentialsSaver,
    ) -> None:
        self.app = app
        self.credentials = credentials
        self.client = client
        self.save_credentials = save_credentials

    def authorization_url(self, *, state: str, redirect_uri: str) -> str:
        """Where the CRM's admin grants access."""
        app = self.app(self.credentials)
        query = {
            "client_id": self._required(app)["client_id"],
            "redirect_uri": redirect_uri,
            **app.authorize_params,
            "state": state,
        }
        return f"{app.authorize_url}?{urlencode(query)}"

    def connect(self, *, code: str, redirect_uri: str) -> None:
        """Trade the authorization code from the callback for tokens, and save them."""
        self._token_request(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                **self.app(self.credentials).token_params,
            },
            failure="Connecting {crm} failed",
        )

    def refresh(self) -> None:
        """Trade the refresh token for a new access token, and save it."""
        self._required(self.app(self.credentials), "refresh_token")
        self._token_request(
            {"grant_type": "refresh_token", "refresh_token": self.credentials["refresh_token"]},
            failure="Refreshing the {crm} OAuth token failed",
        )

    def _required(self, app: OAuthApp, *names: str) -> dict[str, Any]:
        missing = [n for n in ("client_id", "client_secret", *names) if not self.credentials.get(n)]
        if missing:
            raise ConnectorError(
                f"{app.crm} OAuth needs {', '.join(missing)} in the connection's "
                f"credentials{app.missing_hint}.",
                permanent=True,
            )
        return self.credentials

    def _token_request(self, form: dict[str, str], *, failure: str) -> None:
        app = self.app(self.credentials)
        client_id, secret = self._required(app)["client_id"], self.credentials["client_secret"]
        headers = {"Accept": "application/json"}
        form = {**form, **app.token_params}
        if app.basic_auth:
            pair = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
            headers["Authorization"] = "Basic " + pair
        else:
            form = {**form, "client_id": client_id, "client_secret": secret}
        response = self.client.send("POST", app.token_url, headers=headers, form=form)
        tokens = token_answer(response)
        # Some token endpoints (Zoho's) refuse a code or refresh token with a 200 and an error.
        if response.status_code != 200 or "error" in tokens:
            raise ConnectorError(
                f"{failure.format(crm=app.crm)} ({app.refusal(response)}); {app.reconnect}.",
                permanent=response.status_code < 500,
            )
        if not tokens.get("access_token"):
            raise ConnectorError(f"{app.crm}'s token endpoint answered without an access_token.")
        self.credentials.update(
            {
                "access_token": tokens["access_token"],
                # With refresh-token rotation each refresh answers a new one, killing the old one.
                "refresh_token": tokens.get("refresh_token")
                or self.credentials.get("refresh_token"),
                "expires_at": time.time() + float(tokens.get("expires_in") or app.expires_in),
                **app.more_credentials(tokens, self.credentials),
            }
        )
        self.save_credentials(dict(self.credentials))


def token_answer(response: CrmResponse) -> dict[str, Any]:
    """The token endpoint's JSON object, or {} when it sent something else."""
    try:
        tokens = response.json() if response.body else {}
    except ConnectorError:
        return {}
    return tokens if isinstance(tokens, dict) else {}
