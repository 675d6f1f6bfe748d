"""Keap (Infusionsoft) REST v2: contacts by update time, companies, phone search, Call notes.

Reference: ../shared/reference/crm-apis-more.md section 7 and Keap's v2 OpenAPI
(infusionsoft/keap-sdk `sdks/v2/swagger.yml`, [KP1]). Personal Access Tokens and Service
Account Keys go in `X-Keap-API-Key` (Keap's API-key help page and a Keap staff answer on
integration.keap.com); OAuth tokens are Bearer. UNVERIFIED, and so assumed here and in the
fake: whether `start_update_time` is inclusive (the boundary is re-read either way); whether
page tokens survive edits (only used inside one millisecond); whether the phone filter matches
the typed number or its E.164 form (each stored form is asked for); the 429 header values
(`x-keap-product-throttle-*`, `-quota-expiry-time`); the client auth of the token endpoint
(HTTP Basic, as Keap's refresh example shows).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote

from connectors import pacing, record_fields
from connectors.client import CrmClient, CrmResponse, send_with_fresh_token
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
from connectors.keap import mapping
from connectors.oauth import AuthorizationCodeFlow, OAuthApp, status_and, token_answer
from connectors.pacing import RateLimit
from core import phone_numbers

DEFAULT_BASE_URL = "https://api.infusionsoft.com/crm/rest"
AUTHORIZE_URL = "https://accounts.infusionsoft.com/app/oauth/authorize"
TOKEN_URL = "https://api.infusionsoft.com/token"  # noqa: S105 (a URL, not a secret)
ACCESS_TOKEN_SECONDS = 86_400  # 24 h [KP5]
PAGE_SIZE = 1000  # contacts, companies, notes and tasks: page_size maximum [KP1]
USERS_PAGE_SIZE = 100
PHONE_FIELDS = "PHONE1,PHONE2,PHONE3,PHONE4,PHONE5"  # required beside phone_number [KP1]
ENDPOINTS = {"contacts": "/v2/contacts", "companies": "/v2/companies"}
# The next run re-reads the last 30 s: a change committed late with an earlier update_time.
OVERLAP_MS = 30_000
# find_logged reads the newest 1,000 notes (or tasks): a lost create is retried within hours.
LOOKBACK = 1000
# A PAT or SAK allows 10 requests a second and 240 a minute per tenant [KP4]: the client paces
# such requests under both (OAuth apps are told their quota in headers, read below).
RATE_LIMITS = {"key_second": RateLimit(10, 1), "key_minute": RateLimit(240, 60)}
SECONDS_PER_UNIT = {"second": 1.0, "minute": 60.0, "hour": 3600.0, "day": 86_400.0}


class KeapConnector:
    credential_keys = frozenset(
        {"api_key", "client_id", "client_secret", "access_token", "refresh_token", "expires_at"}
        | {"base_url", "oauth_base_url"}
    )
    required_credentials = (frozenset({"api_key"}), frozenset({"client_id", "client_secret"}))
    syncable_objects = ("contacts", "companies")
    own_settings = False

    @staticmethod
    def check_config(credentials: Mapping[str, Any], settings: Mapping[str, Any]) -> None:
        """Custom fields are named by their Keap custom field id."""
        names = settings.get("custom_fields", [])
        if not isinstance(names, list) or not all(str(n).isdigit() for n in names):
            raise ConfigError("settings", "custom_fields: a list of Keap custom field ids.")

    def __init__(self, config: ConnectionConfig, save_credentials: CredentialsSaver) -> None:
        self.credentials = dict(config.credentials)
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
        self._users: list[CrmUser] | None = None
        self._admins: list[str] = []

    @property
    def rate_limit_waits(self) -> int:
        return self.client.rate_limit_waits

    def object_types(self) -> tuple[str, ...]:
        wanted = self.settings.get("objects") or ["contacts", "companies"]
        return tuple(t for t in ("contacts", "companies") if t in wanted)

    # ----- read side
    def changed_since(self, object_type: str, cursor: Cursor) -> Page:
        if object_type == "companies":
            rows, next_cursor, done = self._companies_page(cursor)
        else:
            rows, next_cursor, done = self._contacts_page(cursor)
        records, invalid = [], 0
        for row in rows:
            try:
                records.append(self._record(object_type, row))
            except mapping.UnreadableRecord:
                invalid += 1
        return Page(tuple(records), next_cursor, done, invalid)

    def _contacts_page(self, cursor: Cursor) -> tuple[list[Any], Cursor, bool]:
        """One page of contacts by update_time from the cursor on, and where to go next.

        Each page is a new query from the last update_time seen (keyset: a contact edited
        while we page moves ahead of us and is read again, never skipped by shifted offsets);
        only a page-full of one millisecond is paged on with its page_token.
        """
        params = {
            "filter": f"start_update_time=={mapping.keap_time(cursor.since_ms)}",
            "order_by": "update_time asc",
            "page_size": PAGE_SIZE,
            "fields": ",".join(mapping.CONTACT_FIELDS),
        }
        if cursor.after:
            params["page_token"] = cursor.after
        data = self._json("GET", "/v2/contacts", params=params)
        rows, token = _rows(data, "contacts"), data.get("next_page_token")
        times = _times(rows)
        max_seen = max([cursor.max_seen_ms, *times])
        if len(rows) < PAGE_SIZE or not token:
            since = max(cursor.since_ms, max_seen - OVERLAP_MS)
            return rows, Cursor(since_ms=since, max_seen_ms=max_seen), True
        last = max(times, default=cursor.since_ms)
        if last > cursor.since_ms:
            return rows, Cursor(since_ms=last, max_seen_ms=max_seen), False
        seen = cursor.seen_in_window + len(rows)
        return rows, Cursor(cursor.since_ms, str(token), seen, max_seen), False

    def _companies_page(self, cursor: Cursor) -> tuple[list[Any], Cursor, bool]:
        """One page of companies updated since the cursor, by id with page tokens.

        Companies cannot be ordered by update time [KP1]: a company edited while we page may
        sit behind us, so the next listing starts no later than this one began (kept with the
        page token in `Cursor.after`).
        """
        paging = json.loads(cursor.after) if cursor.after else {"started_ms": _now_ms()}
        params = {
            "filter": f"since_time=={mapping.keap_time(cursor.since_ms)}",
            "order_by": "id asc",
            "page_size": PAGE_SIZE,
            "fields": ",".join(mapping.COMPANY_FIELDS),
        }
        if paging.get("page_token"):
            params["page_token"] = paging["page_token"]
        data = self._json("GET", "/v2/companies", params=params)
        rows, token = _rows(data, "companies"), data.get("next_page_token")
        max_seen = max([cursor.max_seen_ms, *_times(rows)])
        if len(rows) == PAGE_SIZE and token:
            after = json.dumps({**paging, "page_token": str(token)})
            return rows, Cursor(cursor.since_ms, after, 0, max_seen), False
        since = max(cursor.since_ms, min(max_seen, paging["started_ms"]) - OVERLAP_MS)
        return rows, Cursor(since_ms=since, max_seen_ms=max_seen), True

    def all_ids(self, object_type: str) -> Iterator[list[str]]:
        # Keyset on id (`contact_id>N`, `company_id>N`), so a record deleted while we list
        # shifts no page and no live record is missed (and deleted by the diff).
        prefix = mapping.COMPANY_ID_PREFIX if object_type == "companies" else ""
        key = "company_id" if object_type == "companies" else "contact_id"
        last = 0
        while True:
            params = {
                "filter": f"{key}>{last}",
                "order_by": "id asc",
                "page_size": PAGE_SIZE,
                "fields": "id",
            }
            rows = _rows(self._json("GET", ENDPOINTS[object_type], params=params), object_type)
            ids = [str(r.get("id") or "") if isinstance(r, dict) else "" for r in rows]
            if not all(i.isdigit() for i in ids):
                raise ConnectorError(f"Keap sent a {object_type} page with a record without id.")
            yield [prefix + i for i in ids]
            if len(rows) < PAGE_SIZE:
                return
            last = max(int(i) for i in ids)

    def find_by_phone(self, e164: str) -> list[SourceRecord]:
        # Whether Keap matches the typed text or its E.164 reading is unverified: ask for each
        # form people type, then keep only what really is this number.
        region = phone_numbers.region_of(e164)
        found: dict[str, SourceRecord] = {}
        for form in phone_numbers.stored_forms(e164):
            params = {
                "filter": f"phone_number=={form};phone_fields=={PHONE_FIELDS}",
                "page_size": 100,
                "fields": ",".join(mapping.CONTACT_FIELDS),
            }
            for row in _rows(self._json("GET", "/v2/contacts", params=params), "contacts"):
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
            else mapping.record_from_contact
        )
        return read(row, custom_fields=self.custom_fields)

    # ----- users
    def users(self) -> list[CrmUser]:
        if self._users is None:
            users, admins, token = [], [], None
            while True:
                params: dict[str, Any] = {"page_size": USERS_PAGE_SIZE}
                if token:
                    params["page_token"] = token
                data = self._json("GET", "/v2/users", params=params)
                for row in _rows(data, "users"):
                    if not isinstance(row, dict) or row.get("status", "ACTIVE") != "ACTIVE":
                        continue
                    user_id = str(row.get("id") or "")
                    name = f"{row.get('given_name') or ''} {row.get('family_name') or ''}"
                    users.append(CrmUser(user_id, mapping.user_email(row), name.strip()))
                    if row.get("admin"):
                        admins.append(user_id)
                token = data.get("next_page_token")
                if not token:
                    break
            self._users, self._admins = users, admins
        return list(self._users)

    def find_user(self, email: str) -> CrmUser | None:
        wanted = email.strip().casefold()
        return next((u for u in self.users() if u.email.casefold() == wanted), None)

    def _writer(self, entry: CallLogEntry) -> str:
        """The Keap user a note or task is written as: the agent's, else the first admin."""
        if entry.owner_user_id:
            return entry.owner_user_id
        users = self.users()
        writer = next(iter(self._admins), users[0].external_id if users else None)
        if writer is None:
            raise ConnectorError("Keap has no active user to write the note as.", permanent=True)
        return writer

    # ----- write side
    def log_call(self, entry: CallLogEntry) -> str:
        contact_id = self._contact_id(entry)
        body = mapping.note_body(entry, user_id=self._writer(entry))
        return self._created(f"/v2/contacts/{quote(contact_id, safe='')}/notes", body)

    def update_call_log(self, remote_id: str, entry: CallLogEntry) -> None:
        contact_id = self._contact_id(entry)
        body = mapping.note_body(entry, user_id=self._writer(entry))
        path = f"/v2/contacts/{quote(contact_id, safe='')}/notes/{quote(remote_id, safe='')}"
        # The mask keeps the note's author and type as first written.
        self._json("PATCH", path, params={"update_mask": ["title", "text"]}, json_body=body)

    def create_task(self, entry: CallLogEntry) -> str:
        try:
            body = mapping.task_body(entry, user_id=self._writer(entry))
        except ValueError as error:
            raise ConnectorError(str(error), permanent=True) from None
        return self._created("/v2/tasks", body)

    def find_logged(self, call_id: str, *, task: bool = False) -> str | None:
        # Notes and tasks have no field of ours: the call id is the text's last line. Only the
        # newest LOOKBACK are read (we are only told the call id, not the contact).
        path, key, text = (
            ("/v2/tasks", "tasks", "description") if task else ("/v2/notes", "notes", "text")
        )
        params = {"order_by": "create_time desc", "page_size": LOOKBACK}
        marker = mapping.call_marker(call_id)
        for row in _rows(self._json("GET", path, params=params), key):
            if isinstance(row, dict) and marker in str(row.get(text) or "").splitlines():
                return str(row.get("id"))
        return None

    def create_contact(self, *, e164: str, name: str = "") -> SourceRecord:
        body = mapping.contact_body(e164=e164, name=name)
        created = self._json("POST", "/v2/contacts", json_body=body, idempotent=False)
        try:
            return self._record("contacts", created)
        except mapping.UnreadableRecord as error:
            raise ConnectorError(f"Keap created a contact it cannot show: {error}") from None

    def _contact_id(self, entry: CallLogEntry) -> str:
        try:
            contact_id = mapping.contact_id_of(entry.contact_external_id)
        except ValueError as error:
            raise ConnectorError(str(error), permanent=True) from None
        if contact_id is None:
            raise contact_needed("Keap call notes")
        return contact_id

    def _created(self, path: str, body: dict[str, Any]) -> str:
        created = self._json("POST", path, json_body=body, idempotent=False)
        if not isinstance(created, dict) or not str(created.get("id") or "").isdigit():
            raise ConnectorError(f"Keap answered POST {path} without the new record's id.")
        return str(created["id"])

    # ----- HTTP, auth and limits
    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._authorized(method, path, **kwargs)
        if response.status_code >= 400:
            raise _error(response, f"{method} {path}", oauth=not self.credentials.get("api_key"))
        return response.json() if response.body else {}

    def _authorized(self, method: str, path: str, **kwargs: Any) -> CrmResponse:
        if self.credentials.get("api_key"):
            return self._send(method, path, **kwargs)
        if not self.credentials.get("access_token"):
            raise ConnectorError(
                "Keap needs an api_key (a Personal Access Token or Service Account Key), or a "
                "connection through OAuth.",
                permanent=True,
            )
        return send_with_fresh_token(
            lambda: self._send(method, path, **kwargs),
            expires_at=float(self.credentials.get("expires_at") or 0),
            refresh=self.oauth.refresh,
        )

    def _send(self, method: str, path: str, **kwargs: Any) -> CrmResponse:
        limit: str | tuple[str, ...] = "requests"
        if self.credentials.get("api_key"):
            limit = ("key_second", "key_minute")
            auth = {"X-Keap-API-Key": str(self.credentials["api_key"])}
        else:
            auth = {"Authorization": f"Bearer {self.credentials.get('access_token')}"}
        base = str(self.credentials.get("base_url") or DEFAULT_BASE_URL).rstrip("/")
        return self.client.send(
            method,
            base + path,
            headers={**auth, "Accept": "application/json"},
            retry_after_of=rate_limit_wait,
            limit=limit,
            **kwargs,
        )

    def authorization_url(self, *, state: str, redirect_uri: str) -> str:
        return self.oauth.authorization_url(state=state, redirect_uri=redirect_uri)

    def connect(self, *, code: str, redirect_uri: str) -> None:
        self.oauth.connect(code=code, redirect_uri=redirect_uri)


def oauth_app(credentials: Mapping[str, Any]) -> OAuthApp:
    """Keap's flow [KP2]: scope `full`, 24 h tokens, a new refresh token at every refresh."""
    base = str(credentials.get("oauth_base_url") or "").rstrip("/")
    return OAuthApp(
        crm="Keap",
        authorize_url=base + "/app/oauth/authorize" if base else AUTHORIZE_URL,
        token_url=base + "/token" if base else TOKEN_URL,
        authorize_params={"response_type": "code", "scope": "full"},
        refusal=status_and(_token_refusal),
        reconnect="reconnect Keap",
        basic_auth=True,
        missing_hint=" (or give an api_key)",
        expires_in=ACCESS_TOKEN_SECONDS,
    )


def rate_limit_wait(response: CrmResponse) -> float | None:
    """How long a 429 asks us to wait, from the x-keap-* quota and throttle headers [KP7]."""
    if response.status_code != 429:
        return None
    headers = response.headers
    if headers.get("x-keap-product-quota-available") == "0":  # the daily quota: until reset
        reset = _moment_seconds(headers.get("x-keap-product-quota-expiry-time"))
        if reset is not None:
            return max(1.0, reset - time.time())
    for kind in ("product", "tenant"):
        if headers.get(f"x-keap-{kind}-throttle-available") == "0":
            unit = SECONDS_PER_UNIT.get(
                str(headers.get(f"x-keap-{kind}-throttle-time-unit") or "").lower()
            )
            interval = _number(headers.get(f"x-keap-{kind}-throttle-interval")) or 1.0
            if unit is not None:
                return unit * interval
    return None


def _moment_seconds(value: str | None) -> float | None:
    """An expiry time as epoch seconds: ISO-8601, or epoch ms (the format is unverified)."""
    number = _number(value)
    if number is not None:
        return number / 1000 if number > 10**11 else number
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _now_ms() -> int:
    return int(time.time() * 1000)


def _rows(data: Any, key: str) -> list[Any]:
    rows = data.get(key) if isinstance(data, dict) else None
    if not isinstance(rows, list):
        raise ConnectorError(f"Keap answered a {key} listing without a {key} list.")
    return rows


def _times(rows: list[Any]) -> list[int]:
    times = []
    for row in rows:
        try:
            times.append(mapping.update_ms(row))
        except mapping.UnreadableRecord:
            continue  # counted as invalid by the caller's mapping
    return times


def _body(response: CrmResponse) -> dict[str, Any]:
    try:
        body = response.json() if response.body else {}
    except ConnectorError:
        return {}
    return body if isinstance(body, dict) else {}


def _message(response: CrmResponse) -> str:
    """The API's `{code, message, status}` or the gateway's `{"fault": {"faultstring"}}`."""
    body = _body(response)
    fault = body.get("fault")
    if isinstance(fault, dict):
        return str(fault.get("faultstring") or "")[:300]
    return str(body.get("message") or body.get("status") or "")[:300]


def _token_refusal(response: CrmResponse) -> str:
    tokens = token_answer(response)
    return str(tokens.get("error_description") or tokens.get("error") or "")


def _error(response: CrmResponse, what: str, *, oauth: bool) -> ConnectorError:
    status = response.status_code
    if status in (401, 403):
        advice = "reconnect Keap" if oauth else "check the api_key"
        return ConnectorError(
            f"Keap refused {what} ({status}: {_message(response)}); {advice}.", permanent=True
        )
    # Other 4xx (400 bad filter or field, 404) will not heal by sending the same request again.
    return ConnectorError(
        f"Keap answered {status} to {what}: {_message(response)}",
        permanent=400 <= status < 500 and status != 429,
    )
