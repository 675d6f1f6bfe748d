"""A strict fake Salesforce REST API on 127.0.0.1: a real HTTP server for tests and demos.

At least as strict as the real API (../shared/reference/crm-apis.md section 2): the versioned
path /services/data/vXX.X/, Bearer sessions (401 INVALID_SESSION_ID when missing, unknown or
expired), OAuth web-server and refresh-token grants (optionally rotating refresh tokens), the
SOQL the connector sends and MALFORMED_QUERY for anything else, INVALID_FIELD for unknown
columns, query batches of at most 2,000 with nextRecordsUrl locators that expire, SOSL phone
search, Task and Contact writes validated field by field, errors as a JSON list of
{message, errorCode, fields}, Sforce-Limit-Info on every answer and 403 REQUEST_LIMIT_EXCEEDED
past the daily allocation, and injectable faults.

Stricter than documented where the docs are vague: a batchSize outside 200..2000 is refused
(Salesforce may silently clamp it), and datetime literals must be whole seconds.
"""

from __future__ import annotations

import bisect
import json
import re
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from urllib.parse import parse_qs, urlencode

from fakes import salesforce_data as data
from fakes.salesforce_soql import Condition, MalformedQuery, parse_soql, parse_sosl
from fakes.server import FakeServer, JsonHandler

SUPPORTED_VERSIONS = range(31, 63)  # v31.0 .. v62.0
MAX_BATCH_SIZE, MIN_BATCH_SIZE = 2000, 200
LOCATORS_PER_USER = 10  # opening an 11th query cursor drops the oldest
LOCATOR_IDLE_SECONDS = 15 * 60
SOSL_MAX_ROWS = 2000
_ANY = frozenset({"Id", "CreatedDate", "SystemModstamp", "LastModifiedDate", "IsDeleted"})
FIELDS: dict[str, frozenset[str]] = {
    "Contact": _ANY
    | {"FirstName", "LastName", "Name", "Email", "AccountId", "Account.Name", "Phone"}
    | {"MobilePhone", "HomePhone", "OtherPhone", "MailingCountry", "OwnerId", "Tier__c"}
    | {"Language__c"},
    "Account": _ANY | {"Name", "Phone", "BillingCountry", "OwnerId", "Tier__c"},
    "Lead": _ANY
    | {"FirstName", "LastName", "Name", "Company", "Email", "Phone", "MobilePhone", "Country"}
    | {"OwnerId", "Status", "IsConverted", "Language__c"},
    "User": _ANY | {"Name", "Email", "Username", "IsActive"},
    "Task": _ANY
    | {"Subject", "Status", "Priority", "ActivityDate", "Description", "WhoId", "WhatId"}
    | {"OwnerId", "TaskSubtype", "CallType", "CallDurationInSeconds", "CallDisposition"}
    | {"CallObject"},
}
PHONE_FIELDS = {
    "Contact": ("Phone", "MobilePhone", "HomePhone", "OtherPhone"),
    "Account": ("Phone",),
    "Lead": ("Phone", "MobilePhone"),
}
# Writable fields: (type, detail). Types: text (max length), int, date, picklist (values),
# reference (key prefixes). TaskSubtype can be set on create only.
WRITABLE: dict[str, dict[str, tuple[str, Any]]] = {
    "Task": {
        "Subject": ("text", 255),
        "Status": ("picklist", {"Not Started", "In Progress", "Completed", "Deferred"}),
        "Priority": ("picklist", {"High", "Normal", "Low"}),
        "ActivityDate": ("date", None),
        "Description": ("text", 32000),
        "WhoId": ("reference", ("003", "00Q")),
        "WhatId": ("reference", ("001", "006")),
        "OwnerId": ("reference", ("005",)),
        "TaskSubtype": ("picklist", {"Task", "Email", "ListEmail", "Cadence", "Call"}),
        "CallType": ("picklist", {"Inbound", "Internal", "Outbound"}),
        "CallDurationInSeconds": ("int", None),
        "CallDisposition": ("text", 255),
        "CallObject": ("text", 255),
    },
    "Contact": {
        "FirstName": ("text", 40),
        "LastName": ("text", 80),
        "Email": ("text", 80),
        "Phone": ("text", 40),
        "MobilePhone": ("text", 40),
        "MailingCountry": ("text", 80),
        "AccountId": ("reference", ("001",)),
        "OwnerId": ("reference", ("005",)),
    },
}
CREATE_ONLY = {"Task": {"TaskSubtype"}}
REQUIRED = {"Task": (), "Contact": ("LastName",)}
DEFAULTS = {"Task": {"Status": "Not Started", "Priority": "Normal"}, "Contact": {}}
_DATETIMES = {"systemmodstamp", "lastmodifieddate", "createddate"}
_ID = re.compile(r"[0-9A-Za-z]{15}(?:[0-9A-Za-z]{3})?")
LABELS = {"WhoId": "Name ID", "WhatId": "Related To ID", "OwnerId": "Assigned To ID"}


class ApiError(Exception):
    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self.status, self.body, self.headers = status, body, headers or {}


def sf_error(status: int, code: str, message: str, fields: list[str] | None = None) -> ApiError:
    """Salesforce's error body: a JSON list of {message, errorCode, fields}."""
    error: dict[str, Any] = {"message": message, "errorCode": code}
    if fields is not None:
        error["fields"] = fields
    return ApiError(status, [error])


@dataclass
class Fault:
    """Answer the next `times` matching requests with this instead of the real thing."""

    kind: str  # "status", "slow", "malformed", "request_limit" (a 403 REQUEST_LIMIT_EXCEEDED)
    times: int
    path_contains: str = ""
    status: int = 500
    retry_after: str | None = None
    seconds: float = 0.0


@dataclass
class Locator:
    sobject: str
    fields: tuple[str, ...]
    ids: list[str]
    batch_size: int
    version: str
    used: float


class FakeSalesforce(FakeServer):
    authorization_code_prefix = "aPrx"

    def __init__(
        self,
        *,
        contacts: int = 0,
        accounts: int = 0,
        leads: int = 0,
        users: int = 4,
        daily_limit: int = 100_000,
        rotate_refresh_tokens: bool = False,
    ) -> None:
        user_records = data.generate_users(users)
        user_ids = [u.id for u in user_records if u.fields["IsActive"]]
        account_records = data.generate_accounts(accounts, user_ids)
        self.records: dict[str, dict[str, data.SObjectRecord]] = {
            "User": {r.id: r for r in user_records},
            "Account": {r.id: r for r in account_records},
            "Contact": {
                r.id: r
                for r in data.generate_contacts(contacts, user_ids, [a.id for a in account_records])
            },
            "Lead": {r.id: r for r in data.generate_leads(leads, user_ids)},
            "Task": {},
        }
        self.session_user = user_ids[0] if user_ids else ""
        self.clients = {"fake-client-id": "fake-client-secret"}
        self.access_tokens: dict[str, float] = {}  # token -> expiry (epoch s)
        self.refresh_tokens: set[str] = set()
        self.authorization_codes: dict[str, str] = {}  # code -> the redirect_uri it was for
        self.rotate_refresh_tokens = rotate_refresh_tokens
        self.daily_limit, self.api_usage = daily_limit, 0
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str]] = []
        self.locators: OrderedDict[str, Locator] = OrderedDict()
        self._by_modified: dict[str, list[tuple[int, str]]] = {}
        self._created = 0
        self.lock = threading.RLock()

    # ----- test controls
    def ids(self, sobject: str) -> list[str]:
        return sorted(self.records[sobject])

    def issue_tokens(self, expires_in: float = 7200) -> dict[str, str]:
        access, refresh = self._new_access_token(expires_in), f"5Aep861{uuid.uuid4().hex}"
        self.refresh_tokens.add(refresh)
        return {"access_token": access, "refresh_token": refresh, "instance_url": self.url}

    def expire_query_locators(self) -> None:
        with self.lock:
            self.locators.clear()

    def touch(self, sobject: str, ids: list[str], *, at_ms: int | None = None) -> None:
        """Edit records now (or at at_ms), as a user would in Salesforce."""
        with self.lock:
            for record_id in ids:
                record = self.records[sobject][record_id]
                record.modified_ms = at_ms or int(time.time()) * 1000
                name = "Name" if sobject == "Account" else "LastName"
                record.fields[name] = f"Edited {record.modified_ms}"
            self._by_modified.pop(sobject, None)

    def delete(self, sobject: str, ids: list[str]) -> None:
        """Move records to the recycle bin (gone from query, still in queryAll)."""
        with self.lock:
            for record_id in ids:
                record = self.records[sobject][record_id]
                record.deleted, record.modified_ms = True, int(time.time()) * 1000
            self._by_modified.pop(sobject, None)

    def paths(self, method: str | None = None) -> list[str]:
        return [p for m, p in self.requests if method in (None, m)]

    # ----- the API
    def handle(
        self, method: str, path: str, query: dict[str, list[str]], headers: Any, body: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        with self.lock:
            self.requests.append((method, path + ("?" + urlencode(query, True) if query else "")))
            fault = self._take_fault(path)
        if fault and fault.kind == "slow":
            time.sleep(fault.seconds)
        if path == "/services/oauth2/token" and method == "POST":
            return 200, self._token(headers, body), {}
        if path == "/services/oauth2/authorize" and method == "GET":
            return 302, b"", {"Location": self._authorize_redirect(query)}
        match = re.fullmatch(r"/services/data/v(\d+)\.0(/.*)", path)
        if not match or int(match[1]) not in SUPPORTED_VERSIONS:
            raise sf_error(404, "NOT_FOUND", "The requested resource does not exist")
        version, route = f"{match[1]}.0", match[2]
        self._authenticate(headers)
        limits = self._spend_api_request()
        if fault and fault.kind == "request_limit":
            raise ApiError(
                403,
                [
                    {
                        "message": "ConcurrentPerOrgLongTxn Limit exceeded.",
                        "errorCode": "REQUEST_LIMIT_EXCEEDED",
                    }
                ],
                limits,
            )
        if fault and fault.kind == "status":
            extra = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            error = sf_error(fault.status, "UNKNOWN_EXCEPTION", "An unexpected error occurred.")
            raise ApiError(fault.status, error.body, {**limits, **extra})
        try:
            status, result = self._route(method, route, version, query, headers, body)
        except ApiError as error:
            error.headers = {**limits, **error.headers}
            raise
        if fault and fault.kind == "malformed":
            result = {"totalSize": 1, "done": True, "records": "oops"}
        return status, result, limits

    def _route(
        self, method: str, route: str, version: str, query: dict, headers: Any, body: bytes
    ) -> tuple[int, Any]:
        q = (query.get("q") or [None])[0]
        if route == "/query" and method == "GET":
            return 200, self._query(q, version, headers)
        more = re.fullmatch(r"/query/([0-9A-Za-z]+)-(\d+)", route)
        if more and method == "GET":
            return 200, self._query_more(more[1], int(more[2]))
        if route in ("/search", "/search/") and method == "GET":
            return 200, self._search(q, version)
        if route == "/limits" and method == "GET":
            remaining = max(0, self.daily_limit - self.api_usage)
            return 200, {"DailyApiRequests": {"Max": self.daily_limit, "Remaining": remaining}}
        write = re.fullmatch(r"/sobjects/(\w+)(?:/(\w+))?", route)
        if write and write[1] in WRITABLE:
            if method == "POST" and not write[2]:
                return 201, self._create(write[1], _json_body(headers, body), version)
            if method == "PATCH" and write[2]:
                self._update(write[1], write[2], _json_body(headers, body))
                return 204, b""
            if method == "GET" and write[2]:
                return 200, self._read(write[1], write[2], version)
        if write and write[1] in FIELDS:
            raise sf_error(405, "METHOD_NOT_ALLOWED", f"HTTP Method '{method}' not allowed.")
        raise sf_error(404, "NOT_FOUND", "The requested resource does not exist")

    def _take_fault(self, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.times > 0 and fault.path_contains in path:
                fault.times -= 1
                return fault
        return None

    def _authenticate(self, headers: Any) -> None:
        value = headers.get("Authorization") or ""
        scheme, _, token = value.partition(" ")
        expiry = self.access_tokens.get(token) if scheme in ("Bearer", "OAuth") else None
        if expiry is None or expiry < time.time():
            raise sf_error(401, "INVALID_SESSION_ID", "Session expired or invalid")

    def _spend_api_request(self) -> dict[str, str]:
        with self.lock:
            self.api_usage += 1
            usage = self.api_usage
        headers = {"Sforce-Limit-Info": f"api-usage={usage}/{self.daily_limit}"}
        if usage > self.daily_limit:
            raise ApiError(
                403,
                [
                    {
                        "message": "TotalRequests Limit exceeded.",
                        "errorCode": "REQUEST_LIMIT_EXCEEDED",
                    }
                ],
                headers,
            )
        return headers

    # ----- OAuth
    def _new_access_token(self, expires_in: float = 7200) -> str:
        token = f"00D8d0000000001!AQ{uuid.uuid4().hex}"
        self.access_tokens[token] = time.time() + expires_in
        return token

    def _authorize_redirect(self, query: dict[str, list[str]]) -> str:
        params = {k: v[0] for k, v in query.items()}
        if params.get("client_id") not in self.clients or params.get("response_type") != "code":
            raise ApiError(400, {"error": "invalid_client_id", "error_description": "bad client"})
        code = self.authorize(params.get("redirect_uri", ""))
        back = {"code": code, "state": params.get("state", "")}
        return f"{params.get('redirect_uri')}?{urlencode(back)}"

    def _token(self, headers: Any, body: bytes) -> dict[str, Any]:
        if not (headers.get("Content-Type") or "").startswith("application/x-www-form-urlencoded"):
            raise ApiError(400, {"error": "invalid_request", "error_description": "bad request"})
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        if form.get("client_id") not in self.clients:
            raise _oauth_error("invalid_client_id", "client identifier invalid")
        if self.clients[form["client_id"]] != form.get("client_secret"):
            raise _oauth_error("invalid_client", "invalid client credentials")
        grant = form.get("grant_type")
        result: dict[str, Any] = {}
        if grant == "authorization_code":
            issued_for = self.authorization_codes.pop(form.get("code", ""), None)
            if issued_for is None:
                raise _oauth_error("invalid_grant", "invalid authorization code")
            if issued_for != form.get("redirect_uri"):
                raise _oauth_error("redirect_uri_mismatch", "redirect_uri must match configuration")
            result["refresh_token"] = f"5Aep861{uuid.uuid4().hex}"
            self.refresh_tokens.add(result["refresh_token"])
        elif grant == "refresh_token":
            if form.get("refresh_token") not in self.refresh_tokens:
                raise _oauth_error("invalid_grant", "expired access/refresh token")
            if self.rotate_refresh_tokens:  # the old one stops working at once
                self.refresh_tokens.discard(form["refresh_token"])
                result["refresh_token"] = f"5Aep861{uuid.uuid4().hex}"
                self.refresh_tokens.add(result["refresh_token"])
        else:
            raise _oauth_error("unsupported_grant_type", "grant type not supported")
        return {
            "access_token": self._new_access_token(),
            **result,
            "signature": uuid.uuid4().hex,
            "scope": "refresh_token api",
            "instance_url": self.url,
            "id": f"https://login.salesforce.com/id/00D8d0000000001/{self.session_user}",
            "token_type": "Bearer",
            "issued_at": str(int(time.time() * 1000)),
        }

    # ----- SOQL
    def _query(self, soql: str | None, version: str, headers: Any) -> dict[str, Any]:
        batch_size = _batch_size(headers)
        if not soql:
            raise sf_error(400, "MALFORMED_QUERY", "A query string has to be specified")
        try:
            parsed = parse_soql(soql)
        except MalformedQuery as error:
            raise sf_error(400, "MALFORMED_QUERY", f"\n{soql}\n{error}") from None
        if parsed.sobject not in FIELDS:
            raise sf_error(
                400, "INVALID_TYPE", f"sObject type '{parsed.sobject}' is not supported."
            )
        known = {f.lower(): f for f in FIELDS[parsed.sobject]}
        for name in (
            *parsed.fields,
            *(c.field for c in parsed.conditions),
            *parsed.order_by,
        ):
            if name.lower() not in known:
                raise _no_such_column(name, parsed.sobject)
        for condition in parsed.conditions:
            if condition.field.lower() in _DATETIMES and not isinstance(condition.value, datetime):
                raise sf_error(
                    400,
                    "INVALID_FIELD",
                    f"value of filter criterion for field '{condition.field}' must be of type "
                    "dateTime and should not be enclosed in quotes",
                )
        fields = tuple(known[f.lower()] for f in parsed.fields)
        with self.lock:
            ids = self._matching(parsed.sobject, parsed.conditions, parsed.order_by)
            if parsed.limit is not None:
                ids = ids[: parsed.limit]
            locator_id = self._open_locator(
                Locator(parsed.sobject, fields, ids, batch_size, version, time.monotonic())
            )
        return self._batch(locator_id, 0)

    def _query_more(self, locator_id: str, offset: int) -> dict[str, Any]:
        with self.lock:
            locator = self.locators.get(locator_id)
            if locator and time.monotonic() - locator.used > LOCATOR_IDLE_SECONDS:
                del self.locators[locator_id]
                locator = None
            if locator is None or offset > len(locator.ids):
                raise sf_error(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
            locator.used = time.monotonic()
        return self._batch(locator_id, offset)

    def _open_locator(self, locator: Locator) -> str:
        locator_id = f"01g8d{uuid.uuid4().hex[:13]}"
        self.locators[locator_id] = locator
        while len(self.locators) > LOCATORS_PER_USER:
            self.locators.popitem(last=False)
        return locator_id

    def _batch(self, locator_id: str, offset: int) -> dict[str, Any]:
        with self.lock:
            locator = self.locators[locator_id]
            page_ids = locator.ids[offset : offset + locator.batch_size]
            table = self.records[locator.sobject]
            records = [
                self._as_json(locator.sobject, table[i], locator.fields, locator.version)
                for i in page_ids
            ]
        result: dict[str, Any] = {"totalSize": len(locator.ids), "done": True, "records": records}
        end = offset + len(page_ids)
        if end < len(locator.ids):
            result["done"] = False
            result["nextRecordsUrl"] = f"/services/data/v{locator.version}/query/{locator_id}-{end}"
        else:
            self.locators.pop(locator_id, None)  # a finished query's cursor is closed
        return result

    def _matching(
        self, sobject: str, conditions: tuple[Condition, ...], order_by: tuple[str, ...]
    ) -> list[str]:
        table = self.records[sobject]
        since = [
            c for c in conditions if c.field.lower() == "systemmodstamp" and c.operator == ">="
        ]
        if [o.lower() for o in order_by] == ["systemmodstamp", "id"] and len(since) == 1:
            index = self._modified_index(sobject)
            start = bisect.bisect_left(index, (int(since[0].value.timestamp() * 1000), ""))
            candidates = [i for _, i in index[start:]]
        else:
            candidates = [i for i, r in table.items() if not r.deleted]
            keys = [o.lower() for o in order_by]
            candidates.sort(key=lambda i: tuple(str(_value(sobject, table[i], k)) for k in keys))
        return [i for i in candidates if all(_holds(sobject, table[i], c) for c in conditions)]

    def _modified_index(self, sobject: str) -> list[tuple[int, str]]:
        if sobject not in self._by_modified:
            self._by_modified[sobject] = sorted(
                (r.modified_ms, r.id) for r in self.records[sobject].values() if not r.deleted
            )
        return self._by_modified[sobject]

    # ----- SOSL
    def _search(self, sosl: str | None, version: str) -> dict[str, Any]:
        try:
            search = parse_sosl(sosl or "")
        except MalformedQuery as error:
            raise sf_error(400, "MALFORMED_SEARCH", str(error)) from None
        found = []
        with self.lock:
            for sobject, names in search.returning:
                if sobject not in PHONE_FIELDS:
                    raise sf_error(
                        400, "INVALID_TYPE", f"sObject type '{sobject}' is not supported."
                    )
                known = {f.lower(): f for f in FIELDS[sobject]}
                for name in names:
                    if name.lower() not in known:
                        raise _no_such_column(name, sobject)
                fields = tuple(known[n.lower()] for n in names)
                for record in self.records[sobject].values():
                    if not record.deleted and _phone_matches(sobject, record, search.terms):
                        found.append(self._as_json(sobject, record, fields, version))
        return {"searchRecords": found[:SOSL_MAX_ROWS]}

    # ----- writes
    def _create(self, sobject: str, body: Any, version: str) -> dict[str, Any]:
        fields = self._validated(sobject, body, creating=True)
        missing = [n for n in REQUIRED[sobject] if not fields.get(n)]
        if missing:
            raise sf_error(
                400, "REQUIRED_FIELD_MISSING", f"Required fields are missing: {missing}", missing
            )
        with self.lock:
            self._created += 1
            record_id = data.salesforce_id(sobject, 900_000 + self._created)
            now = int(time.time()) * 1000
            fields = {**DEFAULTS[sobject], "OwnerId": self.session_user, **fields}
            self.records[sobject][record_id] = data.SObjectRecord(record_id, fields, now, now)
            self._by_modified.pop(sobject, None)
        return {"id": record_id, "success": True, "errors": []}

    def _update(self, sobject: str, record_id: str, body: Any) -> None:
        with self.lock:
            record = self.records[sobject].get(record_id)
            if record is None or record.deleted:
                raise sf_error(404, "NOT_FOUND", "The requested resource does not exist")
        fields = self._validated(sobject, body, creating=False)
        with self.lock:
            record.fields.update(fields)
            record.modified_ms = int(time.time()) * 1000
            self._by_modified.pop(sobject, None)

    def _read(self, sobject: str, record_id: str, version: str) -> dict[str, Any]:
        record = self.records[sobject].get(record_id)
        if record is None or record.deleted:
            raise sf_error(404, "NOT_FOUND", "The requested resource does not exist")
        fields = tuple(sorted(FIELDS[sobject] - {"Account.Name"}))
        return self._as_json(sobject, record, fields, version)

    def _validated(self, sobject: str, body: Any, *, creating: bool) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise sf_error(400, "JSON_PARSER_ERROR", "The request body must be a JSON object.")
        writable = WRITABLE[sobject]
        for name, value in body.items():
            if name not in writable:
                raise sf_error(
                    400,
                    "INVALID_FIELD",
                    f"No such column '{name}' on sobject of type {sobject}",
                    [],
                )
            if not creating and name in CREATE_ONLY.get(sobject, ()):
                raise sf_error(
                    400,
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    f"Unable to create/update fields: {name}. Please check the security "
                    "settings of this field and verify that it is read/write for your profile "
                    "or permission set.",
                    [name],
                )
            self._check_value(name, value, *writable[name])
        return dict(body)

    def _check_value(self, name: str, value: Any, kind: str, detail: Any) -> None:
        if value is None:
            return
        if kind == "text" and (not isinstance(value, str) or len(value) > detail):
            raise sf_error(
                400,
                "STRING_TOO_LONG",
                f"{name}: data value too large (max length={detail})",
                [name],
            )
        if kind == "int" and (isinstance(value, bool) or not isinstance(value, int)):
            raise sf_error(
                400, "JSON_PARSER_ERROR", f"Cannot deserialize instance of int from {value!r}"
            )
        if kind == "date":
            try:
                date.fromisoformat(str(value))
            except ValueError:
                raise sf_error(
                    400, "JSON_PARSER_ERROR", f"Cannot deserialize instance of date from {value!r}"
                ) from None
        if kind == "picklist" and value not in detail:
            raise sf_error(
                400,
                "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                f"{name}: bad value for restricted picklist field: {value}",
                [name],
            )
        if kind == "reference":
            label = LABELS.get(name, name)
            if not isinstance(value, str) or not _ID.fullmatch(value):
                raise sf_error(
                    400, "MALFORMED_ID", f"{label}: id value of incorrect type: {value}", [name]
                )
            if not value.startswith(detail) or not self._exists(value):
                raise sf_error(
                    400,
                    "INVALID_CROSS_REFERENCE_KEY",
                    f"{label}: id value of incorrect type: {value}",
                    [name],
                )

    def _exists(self, record_id: str) -> bool:
        return any(
            record_id in table and not table[record_id].deleted for table in self.records.values()
        )

    def _as_json(
        self, sobject: str, record: data.SObjectRecord, fields: tuple[str, ...], version: str
    ) -> dict[str, Any]:
        result: dict[str, Any] = {"attributes": _attributes(sobject, record.id, version)}
        for name in fields:
            if name == "Account.Name":
                account = self.records["Account"].get(record.fields.get("AccountId") or "")
                result["Account"] = (
                    {
                        "attributes": _attributes("Account", account.id, version),
                        "Name": account.fields["Name"],
                    }
                    if account
                    else None
                )
            else:
                result[name] = _value(sobject, record, name.lower())
        return result


def _attributes(sobject: str, record_id: str, version: str) -> dict[str, str]:
    return {"type": sobject, "url": f"/services/data/v{version}/sobjects/{sobject}/{record_id}"}


def _value(sobject: str, record: data.SObjectRecord, lowered: str) -> Any:
    if lowered == "id":
        return record.id
    if lowered in ("systemmodstamp", "lastmodifieddate"):
        return data.modstamp(record.modified_ms)
    if lowered == "createddate":
        return data.modstamp(record.created_ms)
    if lowered == "isdeleted":
        return record.deleted
    if lowered == "name" and sobject in ("Contact", "Lead"):
        first, last = record.fields.get("FirstName"), record.fields.get("LastName")
        return " ".join(p for p in (first, last) if p)
    for name, value in record.fields.items():
        if name.lower() == lowered:
            return value
    return None


def _holds(sobject: str, record: data.SObjectRecord, condition: Condition) -> bool:
    lowered = condition.field.lower()
    value: Any = _value(sobject, record, lowered)
    wanted = condition.value
    if isinstance(wanted, datetime):
        value = record.modified_ms if lowered != "createddate" else record.created_ms
        wanted = int(wanted.timestamp() * 1000)
    elif isinstance(wanted, str) and isinstance(value, str):
        value, wanted = value.lower(), wanted.lower()  # SOQL compares text case-insensitively
    elif isinstance(wanted, bool):
        value = bool(value)
    if condition.operator in ("=", "!="):
        return (value == wanted) == (condition.operator == "=")
    if value is None or wanted is None:
        return False
    return {
        ">": value > wanted,
        ">=": value >= wanted,
        "<": value < wanted,
        "<=": value <= wanted,
    }[condition.operator]


def _phone_matches(sobject: str, record: data.SObjectRecord, terms: tuple[str, ...]) -> bool:
    # The fake's model of phone search is the strictest one: a field matches a term only when
    # it holds exactly that text (a stored "020 7946 0018" is not found by 2079460018), so the
    # connector must ask for each format it needs. Salesforce's own tokenizing is unverified.
    wanted = {term.strip().casefold() for term in terms}
    return any(
        str(record.fields.get(name) or "").strip().casefold() in wanted
        for name in PHONE_FIELDS[sobject]
    )


def _batch_size(headers: Any) -> int:
    options = headers.get("Sforce-Query-Options") or ""
    match = re.fullmatch(r"\s*batchSize=(\d+)\s*", options) if options else None
    if options and not match:
        raise sf_error(400, "INVALID_QUERY_OPTIONS", f"Invalid Sforce-Query-Options: {options}")
    size = int(match[1]) if match else MAX_BATCH_SIZE
    if not MIN_BATCH_SIZE <= size <= MAX_BATCH_SIZE:
        raise sf_error(
            400,
            "INVALID_BATCH_SIZE",
            f"batchSize must be between {MIN_BATCH_SIZE} and {MAX_BATCH_SIZE}, got {size}",
        )
    return size


def _json_body(headers: Any, body: bytes) -> Any:
    if not (headers.get("Content-Type") or "").startswith("application/json"):
        raise sf_error(
            415, "UNSUPPORTED_MEDIA_TYPE", "Content type not supported: send application/json"
        )
    try:
        return json.loads(body or b"null")
    except ValueError:
        raise sf_error(400, "JSON_PARSER_ERROR", "Unexpected character in the JSON body") from None


def _no_such_column(name: str, sobject: str) -> ApiError:
    return sf_error(
        400,
        "INVALID_FIELD",
        f"No such column '{name}' on entity '{sobject}'. If you are attempting to use a custom "
        "field, be sure to append the '__c' after the custom field name.",
    )


def _oauth_error(error: str, description: str) -> ApiError:
    return ApiError(400, {"error": error, "error_description": description})


class _Handler(JsonHandler):
    api_error = ApiError
    content_type = "application/json;charset=UTF-8"


FakeSalesforce.handler_class = _Handler


def serve_demo(options: dict[str, Any]) -> tuple[FakeSalesforce, str, dict[str, Any]]:
    """Start the fake for `manage.py fakecrm`; answer it, a description, the connection JSON."""
    fake = FakeSalesforce(
        contacts=options["contacts"], accounts=options["companies"], leads=options["leads"]
    )
    url = fake.start(port=options["port"])
    credentials = {
        **fake.issue_tokens(),
        "client_id": "fake-client-id",
        "client_secret": "fake-client-secret",
        "login_url": url,
    }
    return (
        fake,
        f"Fake Salesforce at {url} with {options['contacts']} contacts, "
        f"{options['companies']} accounts and {options['leads']} leads",
        {"credentials": credentials},
    )
