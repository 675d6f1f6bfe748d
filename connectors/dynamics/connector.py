"""Microsoft Dynamics 365 / Dataverse Web API v9.2: change tracking, phone filters, phonecalls.

Reference: ../shared/reference/crm-apis.md section 6 and crm-apis-more.md section 1.
Verified in Microsoft's docs (learn.microsoft.com): change tracking with
`Prefer: odata.track-changes` and delta links; paging with `odata.maxpagesize` and nextLink;
a create answers 204 with the new row's URI in `OData-EntityId`; `If-Match: *` keeps a PATCH
from creating the row (PATCH is an upsert otherwise).
UNVERIFIED: the status of an expired delta link (410 assumed, as Business Central answers, and
as integrators report); `directioncode` true = Outgoing; whether `contains()` reads the memo
column `description` on every org (find_logged relies on it); the 2,000-character default of
activity descriptions; that a completed activity is read-only (phonecalls are left open, as
later notes PATCH them); the delegated scope `<org URL>/user_impersonation` (the
authorization-code flow, `auth: "authorization_code"`, asks for it; see auth.py).
Deleted rows in a delta are skipped (the sync interface takes no deletions): the full diff
deletes them.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote, urlsplit

from connectors import pacing, record_fields
from connectors.client import CrmClient, CrmResponse, send_with_fresh_token
from connectors.dynamics import auth, mapping
from connectors.dynamics.auth import oauth_app
from connectors.interface import (
    CallLogEntry,
    ConfigError,
    ConnectionConfig,
    ConnectorError,
    CredentialsSaver,
    CrmUser,
    Cursor,
    Page,
    SourcePhone,
    SourceRecord,
)
from connectors.oauth import AuthorizationCodeFlow
from connectors.pacing import RateLimit
from core import phone_numbers

logger = logging.getLogger(__name__)

API_PATH = "/api/data/v9.2"
PAGE_SIZE = 1000  # Prefer: odata.maxpagesize (Dataverse allows up to 5,000)
ID_PAGE_SIZE = 5000  # the full diff reads only keys: the largest page
SEARCH_PAGE_SIZE = 50
# Service protection: 6,000 requests per user in a sliding 5 minutes, then 429 + Retry-After
# (also 20 minutes of execution time and 52 at once, which one request at a time stays under).
# https://learn.microsoft.com/power-apps/developer/data-platform/api-limits
RATE_LIMITS = {"requests": RateLimit(6000, 300)}
# Sent on every request, as Microsoft's samples do.
ODATA_HEADERS = {"OData-MaxVersion": "4.0", "OData-Version": "4.0", "Accept": "application/json"}
# Lookup display names (the contact's company) come as annotations only when asked for.
ANNOTATIONS = 'odata.include-annotations="OData.Community.Display.V1.FormattedValue"'
# A delta link the service no longer knows: start a new baseline (UNVERIFIED status, see above).
EXPIRED_LINK_STATUSES = frozenset({410})
_TENANT = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]{0,252}")  # a directory GUID or domain name
_ENTITY_ID = re.compile(r"\(([0-9a-fA-F-]{36})\)\s*$")


class DynamicsConnector:
    credential_keys = frozenset(
        {"org_url", "tenant_id", "client_id", "client_secret", "authority_url", "auth"}
        | {"access_token", "refresh_token", "expires_at"}
    )
    required_credentials = (frozenset({"org_url", "tenant_id", "client_id", "client_secret"}),)
    # The OAuth app's id and secret also sign in with client credentials: only these mark an
    # OAuth (authorization-code) connection (the dashboard's mode_of reads them).
    oauth_credentials = {"auth": auth.DELEGATED}
    syncable_objects = ("contacts", "accounts")
    own_settings = False

    def __init__(self, config: ConnectionConfig, save_credentials: CredentialsSaver) -> None:
        self.credentials = dict(config.credentials)
        self.save_credentials = save_credentials
        self.settings = config.settings
        self.client = CrmClient(
            connection_id=config.connection_id,
            rate_limits=pacing.rate_limits(config.settings, RATE_LIMITS),
        )
        self.oauth = AuthorizationCodeFlow(
            oauth_app, self.credentials, self.client, save_credentials
        )
        self.custom_fields = tuple(str(n) for n in self.settings.get("custom_fields") or ())

    @staticmethod
    def check_config(credentials: Mapping[str, Any], settings: Mapping[str, Any]) -> None:
        """Refuse an org URL with a path, a malformed tenant, custom fields that are not names."""
        org_url = urlsplit(str(credentials.get("org_url") or ""))
        if not org_url.scheme or not org_url.netloc or org_url.path not in ("", "/"):
            raise ConfigError(
                "credentials", "org_url: the environment's URL, https://<org>.crm.dynamics.com."
            )
        if not _TENANT.fullmatch(str(credentials.get("tenant_id") or "")):
            raise ConfigError(
                "credentials", "tenant_id: the Entra ID directory (tenant) GUID or domain."
            )
        if credentials.get("auth", auth.AUTH_MODES[0]) not in auth.AUTH_MODES:
            raise ConfigError(
                "credentials",
                f"auth: {' or '.join(auth.AUTH_MODES)} (client_credentials if unset).",
            )
        for name in (settings or {}).get("custom_fields") or []:
            table, _, column = str(name).rpartition(".")
            known_table = table in ("", *mapping.TABLES.values())
            if not (known_table and mapping.COLUMN_NAME.fullmatch(column)):
                raise ConfigError(
                    "settings",
                    f"custom_fields: {name!r} is not a column logical name (new_tier, "
                    "contact.new_tier).",
                )

    @property
    def rate_limit_waits(self) -> int:
        return self.client.rate_limit_waits

    @property
    def org_url(self) -> str:
        return str(self.credentials.get("org_url") or "").rstrip("/")

    def object_types(self) -> tuple[str, ...]:
        wanted = self.settings.get("objects") or ["contacts", "accounts"]
        return tuple(t for t in mapping.ENTITY_SETS if t in wanted)

    # ----- reading
    def changed_since(self, object_type: str, cursor: Cursor) -> Page:
        """A page of the change-tracking baseline or delta (or of `modifiedon ge` since_ms).

        The cursor's `after` is the link to read next: a nextLink while paging, the deltaLink
        once a listing is done. Deleted rows in a delta are skipped: the sync interface takes
        no deletions, so the 24 h full diff removes them.
        """
        link = cursor.after if cursor.after and self._is_own_link(cursor.after) else None
        tracked = not cursor.since_ms
        if link:
            response = self._authorized("GET", link, headers=self._prefer(tracked, PAGE_SIZE))
            if response.status_code in EXPIRED_LINK_STATUSES and tracked:
                logger.warning("Dataverse %s delta link expired: new baseline", object_type)
                return self.changed_since(object_type, Cursor())
        else:
            params = {"$select": ",".join(self._columns(object_type))}
            if not tracked:  # a since_ms without a link: one listing of rows modified since
                params["$filter"] = f"modifiedon ge {mapping.odata_datetime(cursor.since_ms)}"
            response = self._authorized(
                "GET",
                self._entity_set_url(object_type),
                params=params,
                headers=self._prefer(tracked, PAGE_SIZE),
            )
        body = self._json(response, f"GET {mapping.ENTITY_SETS[object_type]}")
        records, invalid = [], 0
        for row in _rows(body, object_type):
            if mapping.is_deleted_row(row):
                continue
            try:
                records.append(self._record(object_type, row))
            except mapping.UnreadableRecord:
                invalid += 1
        next_link, delta_link = body.get("@odata.nextLink"), body.get("@odata.deltaLink")
        if next_link:
            after = Cursor(since_ms=cursor.since_ms, after=self._checked_link(next_link))
            return Page(tuple(records), after, False, invalid)
        if delta_link:
            return Page(tuple(records), Cursor(after=self._checked_link(delta_link)), True, invalid)
        if tracked:
            table = mapping.TABLES[object_type]
            raise ConnectorError(
                f"Dataverse listed {table} rows without a delta link: turn on Track changes for "
                f"the {table} table (Power Apps, table properties, Advanced options).",
                permanent=True,
            )
        return Page(tuple(records), Cursor(), True, invalid)

    def all_ids(self, object_type: str) -> Iterator[list[str]]:
        key, prefix = mapping.PRIMARY_KEYS[object_type], mapping.ID_PREFIXES[object_type]
        url: str | None = self._entity_set_url(object_type)
        params: dict[str, str] | None = {"$select": key}
        while url:
            response = self._authorized(
                "GET", url, params=params, headers=self._prefer(False, ID_PAGE_SIZE, False)
            )
            body = self._json(response, f"GET {mapping.ENTITY_SETS[object_type]} keys")
            rows = _rows(body, object_type)
            if any(not isinstance(row, dict) or not row.get(key) for row in rows):
                raise ConnectorError(f"Dataverse sent a {object_type} page with a row without id.")
            yield [prefix + str(row[key]).lower() for row in rows]
            next_link = body.get("@odata.nextLink")
            url, params = (self._checked_link(next_link), None) if next_link else (None, None)

    def find_by_phone(self, e164: str) -> list[SourceRecord]:
        # `eq` compares the stored text: ask for each way people type the number, then keep
        # only rows one of whose numbers really is e164 once read with the row's country.
        forms = phone_numbers.stored_forms(e164)
        found = []
        for object_type in self.object_types():
            params = {
                "$select": ",".join(self._columns(object_type)),
                "$filter": mapping.phone_filter(object_type, forms),
            }
            response = self._authorized(
                "GET",
                self._entity_set_url(object_type),
                params=params,
                headers=self._prefer(False, SEARCH_PAGE_SIZE),
            )
            for row in _rows(self._json(response, "GET phone search"), object_type):
                try:
                    record = self._record(object_type, row)
                except mapping.UnreadableRecord:
                    continue
                region = record.country or None
                if record_fields.has_number(record, e164, region):
                    found.append(record)
        return found

    def users(self) -> list[CrmUser]:
        """Enabled systemusers: records name their owner by `_ownerid_value` only."""
        return self._users("isdisabled eq false")

    def find_user(self, email: str) -> CrmUser | None:
        wanted = email.strip().casefold()
        address = mapping.odata_string(email.strip())
        users = self._users(f"internalemailaddress eq {address} and isdisabled eq false")
        return next((u for u in users if u.email.casefold() == wanted), None)

    def _users(self, condition: str) -> list[CrmUser]:
        url: str | None = self._api_url("systemusers")
        params: dict[str, str] | None = {
            "$select": "systemuserid,fullname,internalemailaddress",
            "$filter": condition,
        }
        found = []
        while url:
            response = self._authorized(
                "GET", url, params=params, headers=self._prefer(False, PAGE_SIZE, False)
            )
            body = self._json(response, "GET systemusers")
            found += [
                CrmUser(
                    external_id=str(row["systemuserid"]).lower(),
                    email=str(row.get("internalemailaddress") or ""),
                    name=str(row.get("fullname") or ""),
                )
                for row in _rows(body, "systemusers")
                if isinstance(row, dict) and row.get("systemuserid")
            ]
            next_link = body.get("@odata.nextLink")
            url, params = (self._checked_link(next_link), None) if next_link else (None, None)
        return found

    # ----- writing
    def log_call(self, entry: CallLogEntry) -> str:
        return self._create("phonecalls", mapping.phonecall_columns(entry))

    def find_logged(self, call_id: str, *, task: bool = False) -> str | None:
        # Activities have no column of ours: the id is the last line of `description`.
        marker = mapping.call_marker(call_id)
        params = {
            "$select": "activityid,description",
            "$filter": f"contains(description,{mapping.odata_string(marker)})",
        }
        entity_set = "tasks" if task else "phonecalls"
        response = self._authorized(
            "GET", self._api_url(entity_set), params=params, headers=self._prefer(False, 10, False)
        )
        for row in _rows(self._json(response, f"GET {entity_set}"), entity_set):
            if marker in str(row.get("description") or "").splitlines():
                return str(row["activityid"]).lower()
        return None

    def update_call_log(self, remote_id: str, entry: CallLogEntry) -> None:
        path = f"phonecalls({quote(remote_id, safe='')})"
        response = self._authorized(
            "PATCH",
            self._api_url(path),
            json_body=mapping.phonecall_columns(entry),
            headers={"If-Match": "*"},  # update only: a PATCH would otherwise create the row
        )
        self._json(response, f"PATCH {path}")

    def create_task(self, entry: CallLogEntry) -> str:
        return self._create("tasks", mapping.task_columns(entry))

    def create_contact(self, *, e164: str, name: str = "") -> SourceRecord:
        columns = mapping.contact_columns(e164=e164, name=name)
        guid = self._create("contacts", columns)
        return SourceRecord(
            external_id=guid,
            first_name=columns["firstname"],
            last_name=columns["lastname"],
            crm_url=mapping.record_url(self.org_url, "contact", guid),
            phones=(SourcePhone(e164, "mobile"),),
        )

    def _create(self, entity_set: str, columns: dict[str, Any]) -> str:
        """POST a row; Dataverse answers 204 with its URI in OData-EntityId."""
        response = self._authorized(
            "POST", self._api_url(entity_set), json_body=columns, idempotent=False
        )
        self._json(response, f"POST {entity_set}")
        found = _ENTITY_ID.search(response.headers.get("odata-entityid", ""))
        if not found:
            raise ConnectorError(f"Dataverse created a {entity_set} row without naming it.")
        return found.group(1).lower()

    # ----- plumbing
    def _columns(self, object_type: str) -> list[str]:
        return mapping.columns_to_select(object_type, self.custom_fields)

    def _record(self, object_type: str, row: Any) -> SourceRecord:
        return mapping.record_from_row(
            object_type, row, org_url=self.org_url, custom_fields=self.custom_fields
        )

    def _api_url(self, path: str) -> str:
        if not self.org_url:
            raise ConnectorError("The Dynamics 365 connection has no org_url.", permanent=True)
        return f"{self.org_url}{API_PATH}/{path}"

    def _entity_set_url(self, object_type: str) -> str:
        return self._api_url(mapping.ENTITY_SETS[object_type])

    def _is_own_link(self, url: str) -> bool:
        """A link on the org's host under the Web API path (else it would get our token)."""
        theirs, ours = urlsplit(url), urlsplit(self.org_url)
        same_host = (theirs.scheme, theirs.netloc.lower()) == (ours.scheme, ours.netloc.lower())
        return same_host and theirs.path.startswith(API_PATH + "/")

    def _checked_link(self, url: Any) -> str:
        if not isinstance(url, str) or not self._is_own_link(url):
            raise ConnectorError(
                "Dataverse sent a next or delta link away from the org's Web API.", permanent=True
            )
        return url

    @staticmethod
    def _prefer(tracked: bool, page_size: int, annotations: bool = True) -> dict[str, str]:
        preferences = [f"odata.maxpagesize={page_size}"]
        if tracked:
            preferences.insert(0, "odata.track-changes")
        if annotations:
            preferences.append(ANNOTATIONS)
        return {"Prefer": ",".join(preferences)}

    def _json(self, response: CrmResponse, what: str) -> dict[str, Any]:
        """The answer's JSON object ({} for a 204), or the error Dataverse described."""
        if response.status_code >= 400:
            raise _error(response, what)
        if not response.body:
            return {}
        body = response.json()
        if not isinstance(body, dict):
            raise ConnectorError(f"Dataverse answered {what} with something other than an object.")
        return body

    def _authorized(self, method: str, url: str, **kwargs: Any) -> CrmResponse:
        """Send with a fresh token; a 401 fetches one more token once, then is permanent."""
        response = send_with_fresh_token(
            lambda: self._send(method, url, **kwargs),
            expires_at=float(self.credentials.get("expires_at") or 0),
            refresh=self._fetch_token,
        )
        if response.status_code == 401:
            advice = (
                "reconnect Dynamics 365 as a user of the environment"
                if auth.is_delegated(self.credentials)
                else "check that the app is an application user of the environment"
            )
            raise ConnectorError(
                f"Dataverse rejected the access token (401 {_describe(response)}); {advice}.",
                permanent=True,
            )
        return response

    def _send(
        self, method: str, url: str, *, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> CrmResponse:
        token = self.credentials.get("access_token")
        return self.client.send(
            method,
            url,
            headers={**ODATA_HEADERS, "Authorization": f"Bearer {token}", **(headers or {})},
            **kwargs,
        )

    def _fetch_token(self) -> None:
        """A new token, kept (encrypted) with the credentials until expiry: refreshed for a
        delegated connection, else a new client-credentials token."""
        if auth.is_delegated(self.credentials):
            self.oauth.refresh()
            return
        self.credentials.update(auth.client_credentials_token(self.client, self.credentials))
        self.save_credentials(dict(self.credentials))

    # ----- the consent flow: delegated connections only
    def authorization_url(self, *, state: str, redirect_uri: str) -> str:
        self._require_delegated()
        return self.oauth.authorization_url(state=state, redirect_uri=redirect_uri)

    def connect(self, *, code: str, redirect_uri: str) -> None:
        self._require_delegated()
        self.oauth.connect(code=code, redirect_uri=redirect_uri)

    def _require_delegated(self) -> None:
        if not auth.is_delegated(self.credentials):
            raise ConnectorError(
                "This Dynamics 365 connection signs in with client credentials (an application "
                "user of the environment), not through a consent page; set auth to "
                '"authorization_code" to connect as a user.',
                permanent=True,
            )


def _rows(body: Mapping[str, Any], what: str) -> list[Any]:
    rows = body.get("value")
    if not isinstance(rows, list):
        raise ConnectorError(f"Dataverse sent a {what} page without a value list.")
    return rows


def _describe(response: CrmResponse) -> str:
    """Dataverse's error: {"error": {"code": "0x8006088a", "message": "..."}}."""
    try:
        body = response.json() if response.body else {}
    except ConnectorError:
        return response.body[:200].decode("utf-8", "replace")
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return ""
    return " ".join(str(error[k]) for k in ("code", "message") if error.get(k))[:300]


def _error(response: CrmResponse, what: str) -> ConnectorError:
    status = response.status_code
    return ConnectorError(
        f"Dataverse answered {status} to {what}: {_describe(response)}",
        permanent=400 <= status < 500 and status != 429,
    )
