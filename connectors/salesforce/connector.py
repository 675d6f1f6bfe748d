"""Salesforce REST: SOQL on SystemModstamp with queryMore, SOSL phone search, Tasks, OAuth.

Reference: ../shared/reference/crm-apis.md section 2.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from connectors import pacing, record_fields
from connectors.client import (
    SYNC_BUDGET_SHARE,
    CrmClient,
    CrmResponse,
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
    SourcePhone,
    SourceRecord,
)
from connectors.oauth import AuthorizationCodeFlow
from connectors.salesforce import mapping
from connectors.salesforce.oauth import oauth_app
from core import phone_numbers

API_VERSION = "59.0"  # simple-salesforce's default; every call below exists since v31
BATCH_SIZE = 2000  # the query API's largest batch (Sforce-Query-Options: batchSize)
# SystemModstamp is stamped when a transaction starts, and a transaction may run for up to
# 10 minutes before it commits: the next run re-reads that long before the last change seen.
COMMIT_LAG_OVERLAP_MS = 600_000
# A sync stops once the org has spent this share of its rolling 24 h API allocation
# (Sforce-Limit-Info), leaving the rest to call logging and the org's other integrations.
SYNC_DAILY_SHARE = SYNC_BUDGET_SHARE
DAILY_LIMIT_WAIT_SECONDS = 3600.0
CONCURRENT_LIMIT_WAIT_SECONDS = 30.0


_QUERY_LOCATOR_PATH = re.compile(rf"/services/data/v{re.escape(API_VERSION)}/query/[\w-]+")


class SalesforceConnector:
    credential_keys = frozenset(
        {"client_id", "client_secret", "access_token", "refresh_token", "expires_at"}
        | {"instance_url", "login_url"}
    )
    required_credentials = (frozenset({"client_id", "client_secret"}),)
    syncable_objects = ("contacts", "accounts", "leads")
    own_settings = False

    def __init__(self, config: ConnectionConfig, save_credentials: CredentialsSaver) -> None:
        self.credentials = dict(config.credentials)
        self.settings = config.settings
        self.background = config.background
        self.client = CrmClient(
            connection_id=config.connection_id,
            rate_limits=pacing.rate_limits(config.settings),
        )
        self.oauth = AuthorizationCodeFlow(
            oauth_app, self.credentials, self.client, save_credentials
        )
        self.custom_fields = tuple(self.settings.get("custom_fields") or ())
        self.api_limit_hits = 0
        self.api_usage: tuple[int, int] | None = None  # the org's last Sforce-Limit-Info

    @property
    def rate_limit_waits(self) -> int:
        return self.client.rate_limit_waits + self.api_limit_hits

    @property
    def instance_url(self) -> str:
        return str(self.credentials.get("instance_url") or "").rstrip("/")

    def object_types(self) -> tuple[str, ...]:
        wanted = self.settings.get("objects") or ["contacts", "accounts"]
        return tuple(t for t in mapping.SOBJECTS if t in wanted)

    # ----- reading
    def changed_since(self, object_type: str, cursor: Cursor) -> Page:
        if cursor.after:
            data = self._query_more(cursor.after)
            if data is None:  # the query locator expired: query again from the last change seen
                return self.changed_since(
                    object_type, Cursor(since_ms=cursor.max_seen_ms or cursor.since_ms)
                )
        else:
            data = self._query(self._changed_soql(object_type, cursor.since_ms))
        records, invalid, times = [], 0, [cursor.max_seen_ms]
        for obj in _records(data, object_type):
            try:
                times.append(mapping.modstamp_ms(obj))
                records.append(self._record(object_type, obj))
            except mapping.UnreadableRecord:
                invalid += 1
        max_seen = max(times)
        if data.get("done") is False and data.get("nextRecordsUrl"):
            next_cursor = Cursor(
                since_ms=cursor.since_ms, after=str(data["nextRecordsUrl"]), max_seen_ms=max_seen
            )
            return Page(tuple(records), next_cursor, done=False, invalid=invalid)
        start = max(cursor.since_ms, max_seen - COMMIT_LAG_OVERLAP_MS)
        return Page(tuple(records), Cursor(since_ms=start, max_seen_ms=max_seen), True, invalid)

    def _changed_soql(self, object_type: str, since_ms: int) -> str:
        fields = ", ".join(mapping.fields_to_select(object_type, self.custom_fields))
        conditions = [f"SystemModstamp >= {mapping.soql_datetime(since_ms)}"]
        if object_type == "leads":
            conditions.append("IsConverted = false")  # a converted lead lives on as a contact
        sobject, where = mapping.SOBJECTS[object_type], " AND ".join(conditions)
        return f"SELECT {fields} FROM {sobject} WHERE {where} ORDER BY SystemModstamp, Id"  # noqa: S608 - SOQL of checked names

    def all_ids(self, object_type: str) -> Iterator[list[str]]:
        prefix = mapping.ACCOUNT_ID_PREFIX if object_type == "accounts" else ""
        soql = "SELECT Id FROM " + mapping.SOBJECTS[object_type]  # noqa: S608 - a fixed name
        if object_type == "leads":
            soql += " WHERE IsConverted = false"
        data = self._query(soql + " ORDER BY Id")
        while True:
            records = _records(data, object_type)
            if any(not isinstance(r, dict) or not r.get("Id") for r in records):
                raise ConnectorError(f"Salesforce sent an unreadable {object_type} Id page.")
            yield [prefix + str(r["Id"]) for r in records]
            if data.get("done") is not False:
                return
            more = self._query_more(str(data.get("nextRecordsUrl") or ""))
            if more is None:  # a partial listing must not look complete: the diff deletes nothing
                raise ConnectorError("The Salesforce query locator expired during the Id listing.")
            data = more

    def find_by_phone(self, e164: str) -> list[SourceRecord]:
        # How SOSL matches formatted numbers is unverified: ask for each format people store
        # (E.164, international, national, digits), then keep only the records one of whose
        # numbers really is e164.
        find = " OR ".join(mapping.sosl_phrase(t) for t in phone_numbers.stored_forms(e164))
        types = list(self.object_types())
        returning = ", ".join(
            f"{mapping.SOBJECTS[t]}({', '.join(mapping.fields_to_select(t, self.custom_fields))})"
            for t in types
        )
        sosl = f"FIND {{{find}}} IN PHONE FIELDS RETURNING {returning}"
        data = self._json("GET", "/search/", params={"q": sosl})
        by_sobject = {mapping.SOBJECTS[t]: t for t in types}
        found = []
        for obj in (data.get("searchRecords") if isinstance(data, dict) else None) or []:
            object_type = by_sobject.get(((obj or {}).get("attributes") or {}).get("type"))
            if object_type is None:
                continue
            try:
                record = self._record(object_type, obj)
            except mapping.UnreadableRecord:
                continue
            region = record.country or None
            if record_fields.has_number(record, e164, region):
                found.append(record)
        return found

    def find_user(self, email: str) -> CrmUser | None:
        email_is = "Email = " + mapping.soql_string(email)
        data = self._query(
            f"SELECT Id, Name, Email FROM User WHERE {email_is} AND IsActive = true LIMIT 1"  # noqa: S608 - escaped
        )
        users = _records(data, "users")
        if not users:
            return None
        user = users[0]
        name = user.get("Name") or ""
        return CrmUser(str(user["Id"]), email=user.get("Email") or email, name=name)

    def users(self) -> list[CrmUser]:
        data = self._query("SELECT Id, Name, Email FROM User WHERE IsActive = true ORDER BY Id")
        found = []
        while True:
            found += [
                CrmUser(str(user["Id"]), email=user.get("Email") or "", name=user.get("Name") or "")
                for user in _records(data, "users")
                if isinstance(user, dict) and user.get("Id")
            ]
            if data.get("done") is not False:
                return found
            more = self._query_more(str(data.get("nextRecordsUrl") or ""))
            if more is None:
                raise ConnectorError("The Salesforce query locator expired listing users.")
            data = more

    # ----- writing
    def log_call(self, entry: CallLogEntry) -> str:
        return self._create("Task", mapping.task_fields(entry))

    def find_logged(self, call_id: str, *, task: bool = False) -> str | None:
        # Both the call's Task and a missed call's Task carry our id in CallObject.
        call_object = "CallObject = " + mapping.soql_string(call_id[:255])
        data = self._query(f"SELECT Id FROM Task WHERE {call_object} LIMIT 1")  # noqa: S608 - escaped
        tasks = _records(data, "Task")
        return str(tasks[0]["Id"]) if tasks else None

    def update_call_log(self, remote_id: str, entry: CallLogEntry) -> None:
        path = f"/sobjects/Task/{quote(remote_id, safe='')}"
        self._json("PATCH", path, json_body=mapping.task_fields(entry, update=True))

    def create_task(self, entry: CallLogEntry) -> str:
        return self._create("Task", mapping.missed_call_task_fields(entry))

    def create_contact(self, *, e164: str, name: str = "") -> SourceRecord:
        first, _, last = name.strip().rpartition(" ")
        fields = {"FirstName": first[:40], "LastName": (last or e164)[:80], "Phone": e164}
        salesforce_id = self._create("Contact", fields)
        return SourceRecord(
            external_id=salesforce_id,
            first_name=fields["FirstName"],
            last_name=fields["LastName"],
            crm_url=f"{self.instance_url}/lightning/r/Contact/{salesforce_id}/view",
            phones=(SourcePhone(e164, "work"),),
        )

    def _create(self, sobject: str, fields: dict[str, Any]) -> str:
        data = self._json("POST", f"/sobjects/{sobject}", json_body=fields, idempotent=False)
        if not isinstance(data, dict) or not data.get("success") or not data.get("id"):
            raise ConnectorError(f"Salesforce did not confirm creating a {sobject}: {data!r}"[:300])
        return str(data["id"])

    def _record(self, object_type: str, obj: Any) -> SourceRecord:
        return mapping.record_from_sobject(
            object_type, obj, instance_url=self.instance_url, custom_fields=self.custom_fields
        )

    # ----- HTTP
    def _query(self, soql: str) -> dict[str, Any]:
        return self._json("GET", "/query", params={"q": soql}, batch=True)

    def _query_more(self, next_records_url: str) -> dict[str, Any] | None:
        """The next batch of a query, or None when Salesforce dropped its locator (15 min idle)."""
        if not _QUERY_LOCATOR_PATH.fullmatch(next_records_url):
            return None  # saved by another API version, or not a locator: query again
        response = self._authorized("GET", next_records_url, batch=True)
        if response.status_code == 400 and _error_code(response) == "INVALID_QUERY_LOCATOR":
            return None
        return self._checked(response, "GET query locator")

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        full = f"/services/data/v{API_VERSION}{path}"
        return self._checked(self._authorized(method, full, **kwargs), f"{method} {path}")

    def _checked(self, response: CrmResponse, what: str) -> Any:
        self.api_usage = _api_usage(response.headers.get("sforce-limit-info", "")) or self.api_usage
        if response.status_code >= 400:
            raise self._error(response, what)
        return response.json() if response.body else None

    def _authorized(self, method: str, path: str, **kwargs: Any) -> CrmResponse:
        self._check_daily_usage()
        # A 401 (INVALID_SESSION_ID) before the assumed 2 h: the org's session timeout is shorter.
        response = send_with_fresh_token(
            lambda: self._send(method, path, **kwargs),
            expires_at=float(self.credentials.get("expires_at") or 0),
            refresh=self.oauth.refresh,
        )
        if response.status_code == 401:
            raise ConnectorError(
                f"Salesforce rejected the session (401 {_error_code(response)}): "
                f"{_message(response)}",
                permanent=True,
            )
        return response

    def _send(self, method: str, path: str, *, batch: bool = False, **kwargs: Any) -> CrmResponse:
        if not self.instance_url:
            raise ConnectorError(
                "The Salesforce connection has no instance_url: connect it through OAuth.",
                permanent=True,
            )
        headers = {
            "Authorization": f"Bearer {self.credentials.get('access_token')}",
            "Accept": "application/json",
        }
        if batch:
            headers["Sforce-Query-Options"] = f"batchSize={BATCH_SIZE}"
        return self.client.send(method, self.instance_url + path, headers=headers, **kwargs)

    def _check_daily_usage(self) -> None:
        """Stop a sync near the org's daily API allocation (Sforce-Limit-Info: api-usage=N/M)."""
        usage = self.api_usage
        if self.background and usage and usage[0] >= usage[1] * SYNC_DAILY_SHARE:
            self.api_limit_hits += 1
            raise ConnectorError(
                f"The Salesforce org has used {usage[0]} of its {usage[1]} daily API requests; "
                "the sync waits so call logging keeps working.",
                retry_after=DAILY_LIMIT_WAIT_SECONDS,
            )

    def _error(self, response: CrmResponse, what: str) -> ConnectorError:
        status, code = response.status_code, _error_code(response)
        message = f"Salesforce answered {status} {code} to {what}: {_message(response)}"
        if status == 403 and code == "REQUEST_LIMIT_EXCEEDED":
            # Salesforce's rate limit is a 403, not a 429: the daily allocation ("TotalRequests
            # Limit exceeded") or too many concurrent long requests. Both heal with time.
            self.api_limit_hits += 1
            daily = "TotalRequests" in _message(response)
            wait = DAILY_LIMIT_WAIT_SECONDS if daily else CONCURRENT_LIMIT_WAIT_SECONDS
            return ConnectorError(message, retry_after=wait)
        return ConnectorError(message, permanent=400 <= status < 500)

    # ----- OAuth 2.0 web server flow
    def authorization_url(self, *, state: str, redirect_uri: str) -> str:
        return self.oauth.authorization_url(state=state, redirect_uri=redirect_uri)

    def connect(self, *, code: str, redirect_uri: str) -> None:
        self.oauth.connect(code=code, redirect_uri=redirect_uri)


def _records(data: Any, object_type: str) -> list[Any]:
    records = data.get("records") if isinstance(data, dict) else None
    if not isinstance(records, list):
        raise ConnectorError(f"Salesforce sent a {object_type} query page without records.")
    return records


def _api_usage(header: str) -> tuple[int, int] | None:
    """`api-usage=18/5000[, per-app-api-usage=17/250(appName=...)]` -> (18, 5000)."""
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        used, _, limit = value.partition("/")
        if name == "api-usage" and used.isdigit() and limit.isdigit() and int(limit) > 0:
            return int(used), int(limit)
    return None


def _errors(response: CrmResponse) -> list[dict[str, Any]]:
    """Salesforce's error body: a JSON list of {message, errorCode, fields}."""
    try:
        body = response.json()
    except ConnectorError:
        return []
    return [e for e in body if isinstance(e, dict)] if isinstance(body, list) else []


def _error_code(response: CrmResponse) -> str:
    errors = _errors(response)
    return str(errors[0].get("errorCode") or "") if errors else ""


def _message(response: CrmResponse) -> str:
    errors = _errors(response)
    if not errors:
        return response.body[:200].decode("utf-8", "replace")
    return "; ".join(str(e.get("message") or e.get("errorCode")) for e in errors)[:300]
