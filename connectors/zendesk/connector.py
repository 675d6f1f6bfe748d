"""Zendesk Support: end-users synced and found by phone, calls as private ticket comments.

Reference: ../shared/reference/crm-apis.md section 5 and crm-apis-more.md section 5. The sync
reads the cursor users export (10 requests a minute, the last minute withheld: the stored
`after_cursor` picks those up next run); the full diff lists active end-users. A call is a
private comment on the caller's latest open ticket, or the first comment of a ticket opened
for it; comments cannot be edited, so a later change is another comment. A missed call opens a
ticket whose external_id is our call id (the ticket app's ticket for the call, if any, is
that one). UNVERIFIED: whether the export sends deleted users (active:false rows are skipped;
the full diff removes them either way), `sort_by`/`sort_order` on a user's requested tickets
(the newest open one is also picked here), and how soon search finds a new tag.

OAuth (Zendesk's "Using OAuth authentication with your application" and "OAuth Tokens for Grant
Types"): the admin grants `read write` on `https://{subdomain}.zendesk.com/oauth/authorizations/new`,
the code is traded at `/oauth/tokens`, and the token is sent as Bearer. Tokens without
`expires_in` do not expire: a 401 then means reconnect. An answer with `expires_in` and a
`refresh_token` (expiring tokens, which the client must ask for) is refreshed before it expires.
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Iterator, Mapping
from typing import Any

from connectors import pacing, record_fields
from connectors.client import (
    CrmClient,
    CrmResponse,
    send_with_fresh_token,
)
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
from connectors.oauth import AuthorizationCodeFlow, OAuthApp, status_and, token_answer
from connectors.pacing import RateLimit
from connectors.zendesk import mapping
from core import phone_numbers

SUBDOMAIN = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
SEARCH_PAGE_SIZE = 100  # the search APIs' maximum per_page
LIST_PAGE_SIZE = 100  # page[size] and per_page maximum of the list endpoints
CREATE_ATTEMPTS = 3
EXPORT_PATH = "/api/v2/incremental/users/cursor.json"
EXPORT_WITHHELD_SECONDS = 60  # the export leaves out the last minute and refuses it as start
OPEN_STATUSES = frozenset({"new", "open", "pending", "hold"})
# Requests a minute by plan (Team 200, Growth and Professional 400, Enterprise 700, High Volume
# 2,500: settings.rate_limits names the account's), and the incremental exports' own 10 a minute
# (30 with High Volume), both answered 429 + Retry-After [crm-apis.md 5.3, 5.6].
# https://developer.zendesk.com/api-reference/introduction/rate-limits/
RATE_LIMITS = {"requests": RateLimit(200, 60), "incremental": RateLimit(10, 60)}


class ZendeskConnector:
    credential_keys = frozenset(
        {"subdomain", "email", "api_token", "access_token", "base_url"}
        | {"client_id", "client_secret", "refresh_token", "expires_at"}
    )
    required_credentials = (
        frozenset({"subdomain", "email", "api_token"}),
        frozenset({"subdomain", "access_token"}),
        frozenset({"subdomain", "client_id", "client_secret"}),
    )
    # Organizations have no phone field: they are synced only as their users' company name.
    syncable_objects = ("contacts",)
    own_settings = False

    def __init__(self, config: ConnectionConfig, save_credentials: CredentialsSaver) -> None:
        self.credentials = dict(config.credentials)
        self.settings = config.settings
        self.client = CrmClient(
            connection_id=config.connection_id,
            rate_limits=pacing.rate_limits(config.settings, RATE_LIMITS),
        )
        self.oauth = AuthorizationCodeFlow(
            oauth_app, self.credentials, self.client, save_credentials
        )
        subdomain = str(self.credentials.get("subdomain") or "")
        self.app_url = mapping.app_url(subdomain)
        self.base_url = str(self.credentials.get("base_url") or self.app_url).rstrip("/")
        self._users: list[CrmUser] | None = None
        self._organization_names: dict[int, str] = {}

    @staticmethod
    def check_config(credentials: Mapping[str, Any], settings: Mapping[str, Any]) -> None:
        """Refuse credentials that cannot authenticate."""
        if not SUBDOMAIN.match(str(credentials.get("subdomain") or "")):
            raise ConfigError(
                "credentials", "subdomain: the account's name in https://<subdomain>.zendesk.com."
            )
        api_token = credentials.get("email") and credentials.get("api_token")
        oauth_app = credentials.get("client_id") and credentials.get("client_secret")
        if not api_token and not credentials.get("access_token") and not oauth_app:
            raise ConfigError(
                "credentials",
                "Give email and api_token (an agent's API token), access_token, or client_id and "
                "client_secret (an OAuth client, to connect through OAuth).",
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
            if record_fields.has_number(record, e164, region):
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
        tickets = self._tickets_with_external_id(external_id)
        if not tickets:
            return None
        oldest = min(tickets, key=lambda t: t.get("id") or 0)
        return mapping.ticket_ref(oldest, base=self.app_url, created=False)

    def _tickets_with_external_id(self, external_id: str) -> list[dict[str, Any]]:
        # List Tickets filters on external_id directly: no search index to lag behind.
        params = {"external_id": external_id}
        body = self._json("GET", "/api/v2/tickets.json", params=params)
        return [t for t in body.get("tickets") or [] if isinstance(t, dict)]

    def create_ticket(self, ticket: TicketRequest) -> TicketRef:
        return self._create_ticket(mapping.ticket_body(ticket), ticket.external_id)

    def _create_ticket(self, ticket: dict[str, Any], external_id: str) -> TicketRef:
        """Open the ticket; after a failure that may have created it, look before trying again."""
        for attempt in range(1, CREATE_ATTEMPTS + 1):
            try:
                body = self._json(
                    "POST", "/api/v2/tickets.json", json_body=ticket, idempotent=False
                )
                return mapping.ticket_ref(body.get("ticket"), base=self.app_url, created=True)
            except mapping.UnreadableRecord as error:
                raise ConnectorError(f"Zendesk created a ticket it cannot show: {error}") from None
            except ConnectorError as error:
                # retry_after: the client already waited out its 429s; leave the rest for later.
                if error.permanent or error.retry_after is not None or attempt == CREATE_ATTEMPTS:
                    raise
            time.sleep(attempt)
            found = self.find_ticket(external_id)
            if found is not None:
                return found
        raise AssertionError("unreachable")

    # ----- sync
    def object_types(self) -> tuple[str, ...]:
        wanted = self.settings.get("objects") or ["contacts"]
        return ("contacts",) if "contacts" in wanted else ()

    def changed_since(self, object_type: str, cursor: Cursor) -> Page:
        """One page of the cursor users export: from start_time once, then its after_cursor.

        The export withholds users changed in the last minute; they come after the cursor we
        keep, so the next run reads them. A user edited while we page comes again later.
        """
        if cursor.after:
            params: dict[str, Any] = {"cursor": cursor.after}
        else:  # a start_time in the last minute is refused (the "Test connection" asks for now)
            params = {
                "start_time": min(
                    cursor.since_ms // 1000, int(time.time()) - EXPORT_WITHHELD_SECONDS
                )
            }
        body = self._json("GET", EXPORT_PATH, params=params)
        users = [u for u in body.get("users") or [] if mapping.in_phonebook(u)]
        companies = self._organizations(users)
        records, invalid = [], 0
        for user in users:
            company = companies.get(mapping.organization_id(user) or 0, "")
            try:
                records.append(mapping.record_from_user(user, base=self.app_url, company=company))
            except mapping.UnreadableRecord:
                invalid += 1
        after = body.get("after_cursor") or cursor.after
        next_cursor = Cursor(since_ms=cursor.since_ms, after=str(after) if after else None)
        return Page(tuple(records), next_cursor, bool(body.get("end_of_stream")), invalid)

    def all_ids(self, object_type: str) -> Iterator[list[str]]:
        """Active end-users with a phone: a deleted user, or one without a phone, is gone."""
        for users in self._user_pages({"role": "end-user"}):
            if any(not isinstance(u, dict) or not isinstance(u.get("id"), int) for u in users):
                raise ConnectorError("Zendesk sent a users page with a user without an id.")
            yield [str(u["id"]) for u in users if mapping.in_phonebook(u)]

    def users(self) -> list[CrmUser]:
        """Agents and admins (read once): the call note's author, found by email."""
        if self._users is None:
            self._users = [
                CrmUser(str(u["id"]), str(u.get("email") or ""), str(u.get("name") or ""))
                for users in self._user_pages({"role[]": ["agent", "admin"]})
                for u in users
                if isinstance(u, dict) and isinstance(u.get("id"), int)
            ]
        return list(self._users)

    def find_user(self, email: str) -> CrmUser | None:
        wanted = email.strip().casefold()
        return next((u for u in self.users() if u.email.casefold() == wanted), None)

    def _user_pages(self, params: dict[str, Any]) -> Iterator[list[Any]]:
        """GET /api/v2/users with cursor paging: page[size], then meta.after_cursor."""
        after = None
        while True:
            page = {**params, "page[size]": LIST_PAGE_SIZE}
            if after:
                page["page[after]"] = after
            body = self._json("GET", "/api/v2/users.json", params=page)
            yield list(body.get("users") or [])
            meta = body.get("meta")
            if (
                not isinstance(meta, dict)
                or not meta.get("has_more")
                or not meta.get("after_cursor")
            ):
                return
            after = meta["after_cursor"]

    def _organizations(self, users: list[dict[str, Any]]) -> dict[int, str]:
        """The names of these users' organizations (organizations/show_many, 100 a request)."""
        wanted = sorted(
            {mapping.organization_id(u) or 0 for u in users} - {0} - set(self._organization_names)
        )
        for start in range(0, len(wanted), LIST_PAGE_SIZE):
            ids = ",".join(str(i) for i in wanted[start : start + LIST_PAGE_SIZE])
            body = self._json("GET", "/api/v2/organizations/show_many.json", params={"ids": ids})
            for org in body.get("organizations") or []:
                if isinstance(org, dict) and isinstance(org.get("id"), int):
                    self._organization_names[org["id"]] = str(org.get("name") or "")
        return self._organization_names

    # ----- call logging
    def log_call(self, entry: CallLogEntry) -> str:
        """A private comment on the caller's latest open ticket, else a ticket for the call."""
        ticket_id = self._latest_open_ticket(entry.contact_external_id)
        if ticket_id is None:
            return self._create_ticket(
                mapping.call_ticket(self._checked(entry)), entry.call_id
            ).remote_id
        tags = (mapping.call_tag(entry.call_id),)
        self._comment(ticket_id, mapping.comment_update(entry, mapping.call_note(entry), tags=tags))
        return ticket_id

    def update_call_log(self, remote_id: str, entry: CallLogEntry) -> None:
        """Comments cannot be edited: add "Update to CallBridge call <id>: ..." to the ticket."""
        self._comment(remote_id, mapping.comment_update(entry, mapping.update_note(entry)))

    def create_task(self, entry: CallLogEntry) -> str:
        """A ticket for the missed call, unless one with our call id is there (the ticket app's)."""
        found = self.find_ticket(entry.call_id)
        if found is not None:
            return found.remote_id
        ticket = mapping.missed_call_ticket(self._checked(entry))
        return self._create_ticket(ticket, entry.call_id).remote_id

    def find_logged(self, call_id: str, *, task: bool = False) -> str | None:
        """The ticket our call id is on: by external_id (opened for it), else by the call's tag."""
        tickets = self._tickets_with_external_id(call_id)
        if task:
            return str(min(t["id"] for t in tickets)) if tickets else None
        tag = mapping.call_tag(call_id)
        tagged = [t for t in tickets if tag in (t.get("tags") or [])]
        if not tagged:
            query = {"query": f"type:ticket tags:{tag}"}
            body = self._json("GET", "/api/v2/search.json", params=query)
            tagged = [
                t
                for t in body.get("results") or []
                if isinstance(t, dict) and tag in (t.get("tags") or [])
            ]
        return str(min(t["id"] for t in tagged)) if tagged else None

    def _latest_open_ticket(self, user_id: str | None) -> str | None:
        if not user_id:
            return None
        params = {"sort_by": "updated_at", "sort_order": "desc", "per_page": LIST_PAGE_SIZE}
        path = f"/api/v2/users/{_numeric(user_id)}/tickets/requested.json"
        tickets = [
            t
            for t in self._json("GET", path, params=params).get("tickets") or []
            if isinstance(t, dict)
            and isinstance(t.get("id"), int)
            and t.get("status") in OPEN_STATUSES
        ]
        if not tickets:
            return None
        return str(max(tickets, key=lambda t: (str(t.get("updated_at") or ""), t["id"]))["id"])

    def _comment(self, ticket_id: str, body: dict[str, Any]) -> None:
        # Not idempotent: a comment sent again is a second comment.
        path = f"/api/v2/tickets/{_numeric(ticket_id)}.json"
        self._json("PUT", path, json_body=body, idempotent=False)

    def _checked(self, entry: CallLogEntry) -> CallLogEntry:
        if entry.contact_external_id:
            _numeric(entry.contact_external_id)
        return entry

    # ----- OAuth
    def authorization_url(self, *, state: str, redirect_uri: str) -> str:
        return self.oauth.authorization_url(state=state, redirect_uri=redirect_uri)

    def connect(self, *, code: str, redirect_uri: str) -> None:
        self.oauth.connect(code=code, redirect_uri=redirect_uri)

    # ----- HTTP and auth
    def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        def send() -> CrmResponse:
            return self.client.send(
                method,
                self.base_url + path,
                headers={"Authorization": self._authorization(), "Accept": "application/json"},
                # The scarcer first: a wait for it does not hold a place in the other.
                limit=("incremental", "requests") if "/incremental/" in path else "requests",
                **kwargs,
            )

        # Only expiring tokens (with a refresh token) are refreshed; the others last until
        # revoked, and their 401 is permanent (reconnect).
        refreshable = not self.credentials.get("api_token") and self.credentials.get(
            "refresh_token"
        )
        expires_at = float(self.credentials.get("expires_at") or 0) if refreshable else None
        response = send_with_fresh_token(send, expires_at=expires_at, refresh=self.oauth.refresh)
        if response.status_code >= 400:
            raise _error(response, f"{method} {path}", oauth=self._oauth_connected())
        body = response.json()
        if not isinstance(body, dict):
            raise ConnectorError(f"Zendesk answered {method} {path} with something not an object.")
        return body

    def _authorization(self) -> str:
        """API token: Basic `{email}/token:{api_token}`; else the OAuth access token."""
        if self.credentials.get("api_token"):
            pair = f"{self.credentials.get('email')}/token:{self.credentials['api_token']}"
            return "Basic " + base64.b64encode(pair.encode()).decode()
        if not self.credentials.get("access_token"):
            raise ConnectorError(
                "Zendesk Support is not connected yet: connect it through OAuth, or give email "
                "and api_token.",
                permanent=True,
            )
        return f"Bearer {self.credentials['access_token']}"

    def _oauth_connected(self) -> bool:
        """A token from our OAuth flow (not an API token nor an access_token typed in)."""
        return not self.credentials.get("api_token") and bool(self.credentials.get("client_id"))


def oauth_app(credentials: Mapping[str, Any]) -> OAuthApp:
    """Zendesk's flow: on the account's own host, `read write`, the client in the form."""
    subdomain = str(credentials.get("subdomain") or "")
    base = str(credentials.get("base_url") or mapping.app_url(subdomain)).rstrip("/")
    return OAuthApp(
        crm="Zendesk Support",
        authorize_url=base + "/oauth/authorizations/new",
        token_url=base + "/oauth/tokens",
        authorize_params={"response_type": "code", "scope": "read write"},
        token_params={"scope": "read write"},
        refusal=status_and(_token_refusal),
        reconnect="reconnect Zendesk Support",
        missing_hint=" (or give email and api_token)",
        # No expires_in: the token lasts until revoked (a 401 then means reconnect).
        expires_in=10 * 365 * 86_400,
    )


def _token_refusal(response: CrmResponse) -> str:
    answer = token_answer(response)
    error = str(answer.get("error") or "")
    description = str(answer.get("error_description") or "")
    return f"{error}: {description}"[:300] if description else error[:300]


def _numeric(zendesk_id: str) -> int:
    """A Zendesk user or ticket id (an integer), else a permanent error."""
    if not str(zendesk_id).isdigit():
        raise ConnectorError(f"{zendesk_id!r} is not a Zendesk id.", permanent=True)
    return int(zendesk_id)


def _error(response: CrmResponse, what: str, *, oauth: bool = False) -> ConnectorError:
    try:
        message = mapping.error_message(response.json())
    except ConnectorError:
        message = response.body[:200].decode("utf-8", "replace")
    status = response.status_code
    if status == 401:
        advice = "; reconnect Zendesk Support" if oauth else ""
        return ConnectorError(
            f"Zendesk rejected the connection's credentials (401): {message}{advice}",
            permanent=True,
        )
    # 4xx other than 429 will not heal by sending the same request again.
    return ConnectorError(
        f"Zendesk answered {status} to {what}: {message}",
        permanent=400 <= status < 500 and status != 429,
    )
