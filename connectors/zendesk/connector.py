"""Zendesk Support as a helpdesk: end-users by phone, new requesters, tickets once per call.

Reference: ../shared/reference/crm-apis.md section 5. Contact sync and call logging are not
built for Zendesk: those methods raise a permanent ConnectorError saying so.
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Iterator, Mapping
from typing import Any, NoReturn

from connectors.client import SYNC_BUDGET_SHARE, CrmClient, CrmResponse
from connectors.interface import (
    CallLogEntry,
    ConfigError,
    ConnectionConfig,
    ConnectorError,
    CredentialsSaver,
    CrmUser,
    Cursor,
    Page,
    SourceRecord,
    TicketRef,
    TicketRequest,
)
from connectors.zendesk import mapping
from core import phone_numbers

SUBDOMAIN = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
SEARCH_PAGE_SIZE = 100  # the search APIs' maximum per_page
CREATE_ATTEMPTS = 3


class ZendeskConnector:
    credential_keys = frozenset({"subdomain", "email", "api_token", "access_token", "base_url"})
    required_credentials = (
        frozenset({"subdomain", "email", "api_token"}),
        frozenset({"subdomain", "access_token"}),
    )
    syncable_objects: tuple[str, ...] = ()  # it syncs nothing (object_types is empty)
    own_settings = False

    def __init__(self, config: ConnectionConfig, save_credentials: CredentialsSaver) -> None:
        self.credentials = dict(config.credentials)
        self.settings = config.settings
        share = SYNC_BUDGET_SHARE if config.background else 1.0
        self.client = CrmClient(connection_id=config.connection_id, budget_share=share)
        subdomain = str(self.credentials.get("subdomain") or "")
        self.app_url = mapping.app_url(subdomain)
        self.base_url = str(self.credentials.get("base_url") or self.app_url).rstrip("/")

    @staticmethod
    def check_config(credentials: Mapping[str, Any], settings: Mapping[str, Any]) -> None:
        """Refuse credentials that cannot authenticate, and call logging (not built yet)."""
        if ((settings or {}).get("call_logging") or {}).get("enabled"):
            raise ConfigError(
                "settings",
                "call_logging is not built for Zendesk connections yet: turn it off (calls open "
                "tickets through the ticket app).",
            )
        if not SUBDOMAIN.match(str(credentials.get("subdomain") or "")):
            raise ConfigError(
                "credentials", "subdomain: the account's name in https://<subdomain>.zendesk.com."
            )
        api_token = credentials.get("email") and credentials.get("api_token")
        if not api_token and not credentials.get("access_token"):
            raise ConfigError(
                "credentials", "Give email and api_token (an agent's API token), or access_token."
            )

    @property
    def rate_limit_waits(self) -> int:
        return self.client.rate_limit_waits

    # ----- users
    def find_by_phone(self, e164: str) -> list[SourceRecord]:
        params = {"query": mapping.phone_query(e164), "per_page": SEARCH_PAGE_SIZE}
        body = self._json("GET", "/api/v2/users/search.json", params=params)
        region = phone_numbers.region_of(e164)
        found = []
        for user in body.get("users") or []:
            try:
                record = mapping.record_from_user(user, base=self.app_url)
            except mapping.UnreadableRecord:
                continue
            # The wildcard matches on the last digits only: keep what really is this number.
            if any(phone_numbers.normalize(p.number, region).e164 == e164 for p in record.phones):
                found.append(record)
        return found

    def create_contact(self, *, e164: str, name: str = "") -> SourceRecord:
        """A new end-user for an unknown caller (the ticket's requester)."""
        body = self._json(
            "POST", "/api/v2/users.json", json_body=mapping.user_body(e164=e164, name=name)
        )
        try:
            return mapping.record_from_user(body.get("user"), base=self.app_url)
        except mapping.UnreadableRecord as error:
            raise ConnectorError(f"Zendesk created a user it cannot show: {error}") from None

    # ----- tickets
    def find_ticket(self, external_id: str) -> TicketRef | None:
        # List Tickets filters on external_id directly: no search index to lag behind.
        params = {"external_id": external_id}
        body = self._json("GET", "/api/v2/tickets.json", params=params)
        tickets = [t for t in body.get("tickets") or [] if isinstance(t, dict)]
        if not tickets:
            return None
        oldest = min(tickets, key=lambda t: t.get("id") or 0)
        return mapping.ticket_ref(oldest, base=self.app_url, created=False)

    def create_ticket(self, ticket: TicketRequest) -> TicketRef:
        """Open the ticket; after a failure that may have created it, look before trying again."""
        for attempt in range(1, CREATE_ATTEMPTS + 1):
            try:
                body = self._json(
                    "POST",
                    "/api/v2/tickets.json",
                    json_body=mapping.ticket_body(ticket),
                    idempotent=False,
                )
                return mapping.ticket_ref(body.get("ticket"), base=self.app_url, created=True)
            except mapping.UnreadableRecord as error:
                raise ConnectorError(f"Zendesk created a ticket it cannot show: {error}") from None
            except ConnectorError as error:
                # retry_after: the client already waited out its 429s; leave the rest for later.
                if error.permanent or error.retry_after is not None or attempt == CREATE_ATTEMPTS:
                    raise
            time.sleep(attempt)
            found = self.find_ticket(ticket.external_id)
            if found is not None:
                return found
        raise AssertionError("unreachable")

    # ----- not built for Zendesk
    def object_types(self) -> tuple[str, ...]:
        return ()  # a helpdesk connection syncs nothing into the phonebook (yet)

    def changed_since(self, object_type: str, cursor: Cursor) -> Page:
        _not_built("Contact sync")

    def all_ids(self, object_type: str) -> Iterator[list[str]]:
        _not_built("Contact sync")

    def users(self) -> list[CrmUser]:
        _not_built("Contact sync")

    def authorization_url(self, *, state: str, redirect_uri: str) -> str:
        _not_built("The OAuth flow")

    def connect(self, *, code: str, redirect_uri: str) -> None:
        _not_built("The OAuth flow")

    def find_user(self, email: str) -> CrmUser | None:
        _not_built("Call logging")

    def log_call(self, entry: CallLogEntry) -> str:
        _not_built("Call logging")

    def update_call_log(self, remote_id: str, entry: CallLogEntry) -> None:
        _not_built("Call logging")

    def create_task(self, entry: CallLogEntry) -> str:
        _not_built("Call logging")

    def find_logged(self, call_id: str, *, task: bool = False) -> str | None:
        _not_built("Call logging")

    # ----- HTTP and auth
    def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = self.client.send(
            method,
            self.base_url + path,
            headers={"Authorization": self._authorization(), "Accept": "application/json"},
            **kwargs,
        )
        if response.status_code >= 400:
            raise _error(response, f"{method} {path}")
        body = response.json()
        if not isinstance(body, dict):
            raise ConnectorError(f"Zendesk answered {method} {path} with something not an object.")
        return body

    def _authorization(self) -> str:
        """API token: Basic `{email}/token:{api_token}`; else the OAuth access token."""
        if self.credentials.get("api_token"):
            pair = f"{self.credentials.get('email')}/token:{self.credentials['api_token']}"
            return "Basic " + base64.b64encode(pair.encode()).decode()
        return f"Bearer {self.credentials.get('access_token')}"


def _not_built(what: str) -> NoReturn:
    raise ConnectorError(
        f"{what} is not built for Zendesk connections: give email + api_token (or an OAuth "
        "access_token) in the credentials; they open tickets through the ticket app.",
        permanent=True,
    )


def _error(response: CrmResponse, what: str) -> ConnectorError:
    try:
        message = mapping.error_message(response.json())
    except ConnectorError:
        message = response.body[:200].decode("utf-8", "replace")
    status = response.status_code
    if status == 401:
        return ConnectorError(
            f"Zendesk rejected the connection's credentials (401): {message}", permanent=True
        )
    # 4xx other than 429 will not heal by sending the same request again.
    return ConnectorError(
        f"Zendesk answered {status} to {what}: {message}",
        permanent=400 <= status < 500 and status != 429,
    )
