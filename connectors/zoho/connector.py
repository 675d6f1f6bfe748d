"""Zoho CRM v8: If-Modified-Since listings with page tokens, phone search, Calls, OAuth per DC.

Reference: ../shared/reference/crm-apis.md section 4.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from connectors import pacing, record_fields
from connectors.client import (
    CrmClient,
    CrmResponse,
    credential_asked_once,
    send_with_fresh_token,
)
from connectors.interface import (
    CallLogEntry,
    ConnectionConfig,
    ConnectorError,
    CredentialsSaver,
    CrmUser,
    Cursor,
    Page,
    SourceRecord,
)
from connectors.oauth import AuthorizationCodeFlow
from connectors.zoho import mapping
from connectors.zoho.oauth import crm_base_url, oauth_app

DEFAULT_API_DOMAIN = "https://www.zohoapis.com"
PAGE_SIZE = 200  # per_page maximum of GET /{module}, search and users
# Modified_Time has one-second precision: the next listing starts one second before the last
# change seen, so records written in that same second after we read it are not missed.
OVERLAP_MS = 1000
# Page tokens expire, and reach at most 100,000 records per listing: both restart the listing
# from the last modification time seen (the records before it are in already).
_RESTART_CODES = {"EXPIRED_VALUE", "PAGINATION_LIMIT_EXCEEDED"}


class ZohoConnector:
    credential_keys = frozenset(
        {"client_id", "client_secret", "refresh_token", "access_token", "expires_at"}
        | {"accounts_url", "api_domain"}
    )
    required_credentials = (frozenset({"client_id", "client_secret"}),)
    syncable_objects = ("contacts", "accounts", "leads")
    own_settings = False

    def __init__(self, config: ConnectionConfig, save_credentials: CredentialsSaver) -> None:
        self.credentials = dict(config.credentials)
        self.save_credentials = save_credentials  # for credentials asked once (org_id)
        self.settings = config.settings
        self.client = CrmClient(
            connection_id=config.connection_id,
            rate_limits=pacing.rate_limits(config.settings),
        )
        self.oauth = AuthorizationCodeFlow(
            oauth_app, self.credentials, self.client, save_credentials
        )
        self.custom_fields = tuple(str(n) for n in self.settings.get("custom_fields") or ())
        self._org_id: str | None = None

    @property
    def rate_limit_waits(self) -> int:
        return self.client.rate_limit_waits

    @property
    def org_id(self) -> str:
        """The organization id (zgid) record URLs carry: from settings, else asked once."""
        if self._org_id is None:
            self._org_id = str(self.settings.get("org_id") or "") or credential_asked_once(
                self.credentials, "org_id", self._read_org_id, self.save_credentials
            )
        return self._org_id

    def _read_org_id(self) -> str:
        body = self._json(self._authorized("GET", "/crm/v8/org"), "GET /crm/v8/org")
        orgs = body.get("org")
        first = orgs[0] if isinstance(orgs, list) and orgs and isinstance(orgs[0], dict) else {}
        return str(first.get("zgid") or "")

    @property
    def api_domain(self) -> str:
        return str(self.credentials.get("api_domain") or DEFAULT_API_DOMAIN).rstrip("/")

    def object_types(self) -> tuple[str, ...]:
        wanted = self.settings.get("objects") or ["contacts", "accounts", "leads"]
        return tuple(t for t in mapping.MODULES if t in wanted)

    # ----- reading
    def changed_since(self, object_type: str, cursor: Cursor) -> Page:
        records, invalid = [], 0
        rows, next_cursor, done = self._listing_page(
            mapping.MODULES[object_type], self._fields(object_type), cursor
        )
        for row in rows:
            try:
                records.append(self._record(object_type, row))
            except mapping.UnreadableRecord:
                invalid += 1
        return Page(tuple(records), next_cursor, done, invalid)

    def all_ids(self, object_type: str) -> Iterator[list[str]]:
        prefix = mapping.ID_PREFIXES[object_type]
        cursor, done = Cursor(), False
        while not done:
            rows, cursor, done = self._listing_page(
                mapping.MODULES[object_type], ["Modified_Time"], cursor
            )
            if any(not isinstance(row, dict) or not row.get("id") for row in rows):
                raise ConnectorError(f"Zoho sent a {object_type} page with a record without id.")
            yield [prefix + str(row["id"]) for row in rows]

    def _listing_page(
        self, module: str, fields: list[str], cursor: Cursor
    ) -> tuple[list[dict[str, Any]], Cursor, bool]:
        """One page of module sorted by Modified_Time since the cursor, and where to go on."""
        params: dict[str, Any] = {
            "fields": ",".join(fields),
            "sort_by": "Modified_Time",
            "sort_order": "asc",
            "per_page": PAGE_SIZE,
        }
        if cursor.after:
            params["page_token"] = cursor.after
        headers = (
            {"If-Modified-Since": mapping.zoho_time(cursor.since_ms)} if cursor.since_ms else {}
        )
        response = self._authorized("GET", f"/crm/v8/{module}", params=params, headers=headers)
        if response.status_code == 400 and cursor.after and _code(response) in _RESTART_CODES:
            restart = _window_end(cursor)
            if (
                _code(response) == "PAGINATION_LIMIT_EXCEEDED"
                and restart.since_ms <= cursor.since_ms
            ):
                raise ConnectorError(
                    f"More than one listing's worth of Zoho {module} share one second of "
                    f"Modified_Time ({_code(response)}); the API cannot page past them.",
                    permanent=True,
                )
            return self._listing_page(module, fields, restart)
        # Nothing (more) modified since the cursor: 204, or 304 Not Modified to If-Modified-Since.
        # https://www.zoho.com/crm/developer/docs/api/v8/status-codes.html
        if response.status_code in (204, 304):
            return [], _window_end(cursor), True
        data = self._json(response, f"GET /crm/v8/{module}")
        rows, info = data.get("data"), data.get("info")
        if not isinstance(rows, list) or not isinstance(info, dict):
            raise ConnectorError(f"Zoho sent a {module} page without data and info.")
        times = [cursor.max_seen_ms]
        for row in rows:
            try:
                times.append(mapping.modified_ms(row))
            except (mapping.UnreadableRecord, AttributeError):
                continue  # counted as invalid by the caller's mapping
        seen = Cursor(
            since_ms=cursor.since_ms,
            seen_in_window=cursor.seen_in_window + len(rows),
            max_seen_ms=max(times),
        )
        token = info.get("next_page_token")
        if info.get("more_records") and token:
            # Page tokens, not `page` numbers, from the first page on: discrete pages stop at
            # 2,000 records and shift when a record is edited while we page.
            return rows, Cursor(**{**seen.as_json(), "after": str(token)}), False
        return rows, _window_end(seen), True

    def find_by_phone(self, e164: str) -> list[SourceRecord]:
        # `phone=` searches every phone field of the module, but only as the number is stored:
        # keep what really is this number once read with the record's country.
        found = []
        for object_type in ("contacts", "leads"):
            if object_type == "leads" and "leads" not in self.object_types():
                continue
            module = mapping.MODULES[object_type]
            params = {
                "phone": e164,
                "fields": ",".join(self._fields(object_type)),
                "per_page": PAGE_SIZE,
            }
            response = self._authorized("GET", f"/crm/v8/{module}/search", params=params)
            if response.status_code == 204:
                continue
            for row in self._json(response, f"GET /crm/v8/{module}/search").get("data") or []:
                try:
                    record = self._record(object_type, row)
                except mapping.UnreadableRecord:
                    continue
                region = record.country or None
                if record_fields.has_number(record, e164, region):
                    found.append(record)
            if found:
                return found
        return found

    def users(self) -> list[CrmUser]:
        return []  # records carry their owner's email (Owner.email)

    def find_user(self, email: str) -> CrmUser | None:
        wanted = email.strip().casefold()
        page = 1
        while True:
            params = {"type": "ActiveUsers", "page": page, "per_page": PAGE_SIZE}
            response = self._authorized("GET", "/crm/v8/users", params=params)
            if response.status_code == 204:
                return None
            data = self._json(response, "GET /crm/v8/users")
            for user in data.get("users") or []:
                if str(user.get("email") or "").casefold() == wanted:
                    return CrmUser(
                        external_id=str(user["id"]),
                        email=str(user["email"]),
                        name=str(user.get("full_name") or ""),
                    )
            if not (data.get("info") or {}).get("more_records"):
                return None
            page += 1

    # ----- writing
    def log_call(self, entry: CallLogEntry) -> str:
        return self._create("Calls", mapping.call_fields(entry))

    def find_logged(self, call_id: str, *, task: bool = False) -> str | None:
        # Calls and Tasks have no field of ours: the id is in Description ("CallBridge call
        # <id>"). `word=` searches a module's text; re-checked here, as it matches loosely.
        # https://www.zoho.com/crm/developer/docs/api/v8/search-records.html
        module = "Tasks" if task else "Calls"
        params = {"word": call_id, "fields": "Description", "per_page": 10}
        response = self._authorized("GET", f"/crm/v8/{module}/search", params=params)
        if response.status_code == 204:
            return None
        marker = mapping.call_marker(call_id)
        for row in self._json(response, f"GET /crm/v8/{module}/search").get("data") or []:
            if marker in str(row.get("Description") or "").splitlines():
                return str(row["id"])
        return None

    def update_call_log(self, remote_id: str, entry: CallLogEntry) -> None:
        path = f"/crm/v8/Calls/{quote(remote_id, safe='')}"
        response = self._authorized("PUT", path, json_body={"data": [mapping.call_fields(entry)]})
        self._written(response, f"PUT {path}")

    def create_task(self, entry: CallLogEntry) -> str:
        return self._create("Tasks", mapping.task_fields(entry))

    def create_contact(self, *, e164: str, name: str = "") -> SourceRecord:
        fields = mapping.contact_fields(e164=e164, name=name)
        zoho_id = self._create("Contacts", fields)
        return self._record("contacts", {**fields, "id": zoho_id})

    def _create(self, module: str, fields: dict[str, Any]) -> str:
        path = f"/crm/v8/{module}"
        response = self._authorized("POST", path, json_body={"data": [fields]}, idempotent=False)
        return self._written(response, f"POST {path}")

    def _written(self, response: CrmResponse, what: str) -> str:
        """The id of the one record a write answered for, or the error inside its data[]."""
        if response.status_code == 401 or response.status_code >= 500:
            raise _error(response, what)
        body = response.json() if response.body else {}
        results = body.get("data") if isinstance(body, dict) else None
        result = results[0] if isinstance(results, list) and results else body
        if not isinstance(result, dict) or result.get("status") != "success":
            raise ConnectorError(
                f"Zoho refused {what} ({response.status_code}): {_describe(result)}",
                permanent=400 <= response.status_code < 500,
            )
        return str((result.get("details") or {}).get("id") or "")

    # ----- plumbing
    def _custom_fields(self, object_type: str) -> list[str]:
        """The custom fields of this module: "Field" (every module) or "Leads.Field" (one)."""
        module = mapping.MODULES[object_type]
        return [
            name.rpartition(".")[2]
            for name in self.custom_fields
            if "." not in name or name.startswith(module + ".")
        ]

    def _fields(self, object_type: str) -> list[str]:
        try:
            return mapping.fields_to_request(object_type, self._custom_fields(object_type))
        except ValueError as error:
            raise ConnectorError(str(error), permanent=True) from None

    def _record(self, object_type: str, row: Any) -> SourceRecord:
        return mapping.record_from_zoho(
            object_type,
            row,
            crm_base_url=crm_base_url(self.credentials),
            org_id=self.org_id,
            custom_fields=self._custom_fields(object_type),
        )

    def _json(self, response: CrmResponse, what: str) -> dict[str, Any]:
        if response.status_code >= 400:
            raise _error(response, what)
        data = response.json()
        if not isinstance(data, dict):
            raise ConnectorError(f"Zoho answered {what} with something other than an object.")
        return data

    def _authorized(self, method: str, path: str, **kwargs: Any) -> CrmResponse:
        # INVALID_TOKEN before expiry: revoked (Zoho keeps at most 30 live tokens per user).
        response = send_with_fresh_token(
            lambda: self._send(method, path, **kwargs),
            expires_at=float(self.credentials.get("expires_at") or 0),
            refresh=self.oauth.refresh,
            rejected=lambda r: r.status_code == 401 and _code(r) == "INVALID_TOKEN",
        )
        if response.status_code == 401:
            raise ConnectorError(
                f"Zoho rejected the OAuth access token (401 {_describe(_body(response))}); "
                "reconnect Zoho CRM.",
                permanent=True,
            )
        return response

    def _send(
        self, method: str, path: str, *, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> CrmResponse:
        return self.client.send(
            method,
            self.api_domain + path,
            # Zoho's own scheme, not Bearer (though the token response says token_type Bearer).
            headers={
                "Authorization": f"Zoho-oauthtoken {self.credentials.get('access_token')}",
                "Accept": "application/json",
                **(headers or {}),
            },
            retry_after_of=_rate_limit_wait,
            **kwargs,
        )

    def authorization_url(self, *, state: str, redirect_uri: str) -> str:
        return self.oauth.authorization_url(state=state, redirect_uri=redirect_uri)

    def connect(self, *, code: str, redirect_uri: str) -> None:
        self.oauth.connect(code=code, redirect_uri=redirect_uri)


def _window_end(cursor: Cursor) -> Cursor:
    """The next listing: from one second before the last change seen (never going back)."""
    since = max(cursor.since_ms, cursor.max_seen_ms - OVERLAP_MS)
    return Cursor(since_ms=since, max_seen_ms=cursor.max_seen_ms)


def _rate_limit_wait(response: CrmResponse) -> float | None:
    """Zoho's 429 TOO_MANY_REQUESTS carries details.retry_after (seconds) in its body."""
    if response.status_code != 429:
        return None
    value = (_body(response).get("details") or {}).get("retry_after")
    return float(value) if isinstance(value, int | float) else None


def _body(response: CrmResponse) -> dict[str, Any]:
    try:
        body = response.json() if response.body else {}
    except ConnectorError:
        return {}
    return body if isinstance(body, dict) else {}


def _code(response: CrmResponse) -> str:
    return str(_body(response).get("code") or "")


def _describe(body: Any) -> str:
    if not isinstance(body, dict):
        return ""
    parts = [str(body.get(k)) for k in ("code", "message") if body.get(k)]
    details = body.get("details")
    if isinstance(details, dict) and details.get("api_name"):
        parts.append(f"field {details['api_name']}")
    return " ".join(parts)[:300]


def _error(response: CrmResponse, what: str) -> ConnectorError:
    status = response.status_code
    return ConnectorError(
        f"Zoho answered {status} to {what}: {_describe(_body(response))}",
        permanent=400 <= status < 500 and status != 429,
    )
