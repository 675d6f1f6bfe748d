"""Copper: people and companies by modification time, phone search, Phone Call activities.

Reference: ../shared/reference/crm-apis-more.md section 3, and the 2019 copy of Copper's API
docs it cites [CP2]. UNVERIFIED there, and so here: `minimum_modified_date` (integrators use
it, the 2019 docs do not list it) and whether it is inclusive; how the phone filter matches
today (the 2019 docs: digits only, "partial" = the stored number ends in them); the verb of
an activity update (PUT, as integrators name it); whether `user_id` may be set on a new
activity (the agent is also named in its details); whether OAuth requests need
`X-PW-Application` (sent anyway); the error bodies; any search index lag (the next run
re-reads the last 30 s); record links (`https://app.copper.com/companies/<account id>/app#`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote

from connectors import pacing, record_fields
from connectors.client import CrmClient, CrmResponse, credential_asked_once
from connectors.copper import mapping
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
    contact_needed,
)
from connectors.oauth import AuthorizationCodeFlow, OAuthApp, status_and, token_answer
from connectors.pacing import RateLimit
from core import phone_numbers

DEFAULT_BASE_URL = "https://api.copper.com"
API_PATH = "/developer_api/v1"
OAUTH_BASE_URL = "https://app.copper.com"
APP_URL = "https://app.copper.com"
PAGE_SIZE = 200  # the search endpoints' maximum page_size
ENDPOINTS = {"contacts": "people", "companies": "companies"}
# Copper's search may lag its writes (UNVERIFIED): the next run re-reads the last 30 s.
OVERLAP_MS = 30_000
# 180 requests a minute per account, rolling [CP1]: the client paces every request under it.
RATE_LIMITS = {"requests": RateLimit(180, 60)}
# find_logged reads the newest 1,000 Phone Call activities (or tasks) for our call id.
LOOKBACK_PAGES = 5


class CopperConnector:
    credential_keys = frozenset(
        {"api_key", "user_email", "client_id", "client_secret", "access_token", "expires_at"}
        | {"account_id", "base_url", "oauth_base_url"}
    )
    required_credentials = (
        frozenset({"api_key", "user_email"}),
        frozenset({"client_id", "client_secret"}),
    )
    syncable_objects = ("contacts", "companies")
    own_settings = False

    @staticmethod
    def check_config(credentials: Mapping[str, Any], settings: Mapping[str, Any]) -> None:
        """Custom fields are named by their custom_field_definition_id."""
        names = settings.get("custom_fields", [])
        if not isinstance(names, list) or not all(str(n).isdigit() for n in names):
            raise ConfigError("settings", "custom_fields: a list of custom field definition ids.")

    def __init__(self, config: ConnectionConfig, save_credentials: CredentialsSaver) -> None:
        self.credentials = dict(config.credentials)
        self.save_credentials = save_credentials
        self.settings = config.settings
        self.connection_id = config.connection_id
        self.client = CrmClient(
            connection_id=config.connection_id,
            rate_limits=pacing.rate_limits(config.settings, RATE_LIMITS),
        )
        self.oauth = AuthorizationCodeFlow(
            oauth_app, self.credentials, self.client, save_credentials
        )
        self.custom_fields = tuple(str(n) for n in self.settings.get("custom_fields") or ())
        self._app_url: str | None = None
        self._users: list[CrmUser] | None = None
        self._phone_call_type: int | None = None

    @property
    def rate_limit_waits(self) -> int:
        return self.client.rate_limit_waits

    def object_types(self) -> tuple[str, ...]:
        wanted = self.settings.get("objects") or ["contacts", "companies"]
        return tuple(t for t in ("contacts", "companies") if t in wanted)

    # ----- read side
    def changed_since(self, object_type: str, cursor: Cursor) -> Page:
        rows, next_cursor, done = self._listing_page(object_type, "date_modified", cursor)
        records, invalid = [], 0
        for row in rows:
            try:
                records.append(self._record(object_type, row))
            except mapping.UnreadableRecord:
                invalid += 1
        return Page(tuple(records), next_cursor, done, invalid)

    def all_ids(self, object_type: str) -> Iterator[list[str]]:
        # Keyset on creation time, so a record deleted while we list shifts no offsets.
        prefix = mapping.COMPANY_ID_PREFIX if object_type == "companies" else ""
        cursor, done = Cursor(), False
        while not done:
            rows, cursor, done = self._listing_page(object_type, "date_created", cursor)
            if any(not isinstance(r, dict) or not isinstance(r.get("id"), int) for r in rows):
                raise ConnectorError(f"Copper sent a {object_type} page with a record without id.")
            yield [prefix + str(row["id"]) for row in rows]

    def _listing_page(
        self, object_type: str, field: str, cursor: Cursor
    ) -> tuple[list[Any], Cursor, bool]:
        """One page sorted by `field` (unix seconds) from the cursor on, and where to go next.

        Each page is a new search from the last time seen (keyset: a record edited while we
        page moves ahead of us instead of shifting page numbers under us). Only a page-full of
        one second (a bulk edit) is paged by page_number, in a search of that second alone;
        a record of that second edited meanwhile may shift a neighbour past a page boundary.
        """
        second = cursor.since_ms // 1000
        bound = field.removeprefix("date_")
        body: dict[str, Any] = {
            "page_size": PAGE_SIZE,
            "page_number": int(cursor.after or 1),
            "sort_by": field,
            "sort_direction": "asc",
            f"minimum_{bound}_date": second,
        }
        if cursor.after:
            body[f"maximum_{bound}_date"] = second
        rows = self._search(ENDPOINTS[object_type], body)
        times = []
        for row in rows:
            try:
                times.append(mapping.unix_seconds(row, field))
            except mapping.UnreadableRecord:
                continue  # counted as invalid by the caller's mapping
        first, last = min(times, default=second), max(times, default=second)
        max_seen = max(cursor.max_seen_ms, last * 1000)
        if len(rows) < PAGE_SIZE and not cursor.after:
            since = max(0, max_seen - OVERLAP_MS) if max_seen else cursor.since_ms
            return rows, Cursor(since_ms=since, max_seen_ms=max_seen), True
        if len(rows) < PAGE_SIZE:  # that second is read: go on after it
            return rows, Cursor(since_ms=(second + 1) * 1000, max_seen_ms=max_seen), False
        if first < last and not cursor.after:
            return rows, Cursor(since_ms=last * 1000, max_seen_ms=max_seen), False
        page = int(cursor.after or 1) + 1
        next_cursor = Cursor(
            since_ms=last * 1000 if not cursor.after else cursor.since_ms,
            after=str(page),
            seen_in_window=cursor.seen_in_window + len(rows),
            max_seen_ms=max_seen,
        )
        return rows, next_cursor, False

    def find_by_phone(self, e164: str) -> list[SourceRecord]:
        # The phone filter compares digits (a "partial" match: the stored number ends in them,
        # per the 2019 docs; UNVERIFIED today): search the digits of each way people store the
        # number, then keep only what really is this number.
        region = phone_numbers.region_of(e164)
        found: dict[str, SourceRecord] = {}
        forms = dict.fromkeys(re.sub(r"\D", "", f) for f in phone_numbers.stored_forms(e164))
        for digits in forms:
            body = {"phone_number": {"value": digits, "match": "partial"}, "page_size": PAGE_SIZE}
            for row in self._search("people", body):
                try:
                    record = self._record("contacts", row)
                except mapping.UnreadableRecord:
                    continue
                if record_fields.has_number(record, e164, region):
                    found.setdefault(record.external_id, record)
        return list(found.values())

    def _record(self, object_type: str, row: Any) -> SourceRecord:
        read = (
            mapping.record_from_company
            if object_type == "companies"
            else mapping.record_from_person
        )
        return read(row, app_url=self.app_url, custom_fields=self.custom_fields)

    @property
    def app_url(self) -> str:
        """Where records open: https://app.copper.com/companies/<account id>/app# (asked once)."""
        if self._app_url is None:
            account = credential_asked_once(
                self.credentials, "account_id", self._read_account_id, self.save_credentials
            )
            self._app_url = f"{APP_URL}/companies/{account}/app#" if account else ""
        return self._app_url

    def _read_account_id(self) -> str:
        account = self._json("GET", "/account")
        return str(account.get("id") or "") if isinstance(account, dict) else ""

    # ----- users
    def users(self) -> list[CrmUser]:
        if self._users is None:
            users, page = [], 1
            while True:
                rows = self._search("users", {"page_number": page, "page_size": PAGE_SIZE})
                users += [
                    CrmUser(str(u["id"]), str(u.get("email") or ""), str(u.get("name") or ""))
                    for u in rows
                    if isinstance(u, dict) and isinstance(u.get("id"), int)
                ]
                if len(rows) < PAGE_SIZE:
                    break
                page += 1
            self._users = users
        return list(self._users)

    def find_user(self, email: str) -> CrmUser | None:
        wanted = email.strip().casefold()
        return next((u for u in self.users() if u.email.casefold() == wanted), None)

    # ----- write side
    def log_call(self, entry: CallLogEntry) -> str:
        body = mapping.activity_body(
            self._checked(entry), phone_call_type=self.phone_call_type(), agent=self._agent(entry)
        )
        if body["parent"] is None:
            raise contact_needed("Copper activities")
        return self._created("/activities", body)

    def update_call_log(self, remote_id: str, entry: CallLogEntry) -> None:
        body = mapping.activity_body(
            self._checked(entry), phone_call_type=self.phone_call_type(), agent=self._agent(entry)
        )
        del body["parent"], body["type"]  # the same activity, on the same record
        self._json("PUT", f"/activities/{quote(remote_id, safe='')}", json_body=body)

    def create_task(self, entry: CallLogEntry) -> str:
        return self._created("/tasks", mapping.task_body(self._checked(entry)))

    def find_logged(self, call_id: str, *, task: bool = False) -> str | None:
        # Neither activities nor tasks have a field of ours: the id is the details' last line.
        # Only the newest LOOKBACK_PAGES pages are read (activities come newest first).
        body: dict[str, Any] = {"page_size": PAGE_SIZE}
        if task:
            path = "tasks"
            body.update(sort_by="date_created", sort_direction="desc")
        else:
            path = "activities"
            body["activity_types"] = [{"id": self.phone_call_type(), "category": "user"}]
        marker = mapping.call_marker(call_id)
        for page in range(1, LOOKBACK_PAGES + 1):
            rows = self._search(path, {**body, "page_number": page})
            for row in rows:
                if isinstance(row, dict) and marker in str(row.get("details") or "").splitlines():
                    return str(row["id"])
            if len(rows) < PAGE_SIZE:
                break
        return None

    def create_contact(self, *, e164: str, name: str = "") -> SourceRecord:
        person = self._json("POST", "/people", json_body=mapping.person_body(e164=e164, name=name))
        try:
            return self._record("contacts", person)
        except mapping.UnreadableRecord as error:
            raise ConnectorError(f"Copper created a person it cannot show: {error}") from None

    def phone_call_type(self) -> int:
        """The account's `Phone Call` activity type: its id differs per account [CP2]."""
        if self._phone_call_type is None:
            types = self._json("GET", "/activity_types")
            user_types = types.get("user") if isinstance(types, dict) else None
            for kind in user_types if isinstance(user_types, list) else []:
                if (
                    isinstance(kind, dict)
                    and str(kind.get("name") or "").casefold() == "phone call"
                    and not kind.get("is_disabled")
                    and isinstance(kind.get("id"), int)
                ):
                    self._phone_call_type = int(kind["id"])
                    break
            else:
                raise ConnectorError(
                    "Copper has no enabled Phone Call activity type to log calls as.",
                    permanent=True,
                )
        return self._phone_call_type

    def _agent(self, entry: CallLogEntry) -> str:
        """The agent as the details name them (Copper may keep the key's user as the author)."""
        if not entry.owner_user_id:
            return ""
        user = next((u for u in self.users() if u.external_id == entry.owner_user_id), None)
        return f"{user.name} <{user.email}>" if user else ""

    def _checked(self, entry: CallLogEntry) -> CallLogEntry:
        try:
            mapping.parent_of(entry.contact_external_id)
        except ValueError as error:
            raise ConnectorError(str(error), permanent=True) from None
        return entry

    def _created(self, path: str, body: dict[str, Any]) -> str:
        created = self._json("POST", path, json_body=body, idempotent=False)
        if not isinstance(created, dict) or not isinstance(created.get("id"), int):
            raise ConnectorError(f"Copper answered POST {path} without the new record's id.")
        return str(created["id"])

    # ----- HTTP, auth and limits
    def _search(self, resource: str, body: dict[str, Any]) -> list[Any]:
        rows = self._json("POST", f"/{resource}/search", json_body=body)
        if not isinstance(rows, list):
            raise ConnectorError(f"Copper answered a {resource} search with something not a list.")
        return rows

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._send(method, path, **kwargs)
        if response.status_code >= 400:
            raise _error(response, f"{method} {path}", oauth=not self.credentials.get("api_key"))
        return response.json()

    def _send(self, method: str, path: str, **kwargs: Any) -> CrmResponse:
        return self.client.send(
            method,
            str(self.credentials.get("base_url") or DEFAULT_BASE_URL).rstrip("/") + API_PATH + path,
            headers={**self._auth_headers(), "Content-Type": "application/json"},
            **kwargs,
        )

    def _auth_headers(self) -> dict[str, str]:
        # An API key goes with its owner's email; OAuth tokens are Bearer [CP1, CP4].
        headers = {"X-PW-Application": "developer_api", "Accept": "application/json"}
        if self.credentials.get("api_key"):
            headers["X-PW-AccessToken"] = str(self.credentials["api_key"])
            headers["X-PW-UserEmail"] = str(self.credentials.get("user_email") or "")
        elif self.credentials.get("access_token"):
            headers["Authorization"] = f"Bearer {self.credentials['access_token']}"
        else:
            raise ConnectorError(
                "Copper needs an api_key and user_email, or a connection through OAuth.",
                permanent=True,
            )
        return headers

    def authorization_url(self, *, state: str, redirect_uri: str) -> str:
        return self.oauth.authorization_url(state=state, redirect_uri=redirect_uri)

    def connect(self, *, code: str, redirect_uri: str) -> None:
        self.oauth.connect(code=code, redirect_uri=redirect_uri)


def oauth_app(credentials: Mapping[str, Any]) -> OAuthApp:
    """Copper's flow [CP4]: one scope, the client in the form, a token with no refresh token."""
    base = str(credentials.get("oauth_base_url") or OAUTH_BASE_URL).rstrip("/")
    return OAuthApp(
        crm="Copper",
        authorize_url=base + "/oauth/authorize",
        token_url=base + "/oauth/token",
        authorize_params={"response_type": "code", "scope": "developer/v1/all"},
        refusal=status_and(lambda response: str(token_answer(response).get("error") or "")),
        reconnect="reconnect Copper",
        missing_hint=" (or give an api_key and user_email)",
        # No expires_in and no refresh token: the token lasts until revoked (a 401).
        expires_in=10 * 365 * 86_400,
    )


def _message(response: CrmResponse) -> str:
    try:
        body = response.json() if response.body else {}
    except ConnectorError:
        return response.body[:200].decode("utf-8", "replace")
    if isinstance(body, dict):
        return str(body.get("message") or body.get("error") or "")[:300]
    return ""


def _error(response: CrmResponse, what: str, *, oauth: bool) -> ConnectorError:
    status = response.status_code
    if status in (401, 403):
        advice = "reconnect Copper" if oauth else "check the api_key and user_email"
        return ConnectorError(
            f"Copper refused {what} ({status}: {_message(response)}); {advice}.", permanent=True
        )
    # Other 4xx (422 validation, 404) will not heal by sending the same request again.
    return ConnectorError(
        f"Copper answered {status} to {what}: {_message(response)}",
        permanent=400 <= status < 500 and status != 429,
    )
