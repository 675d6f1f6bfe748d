"""A strict fake Zoho CRM v8 (and its accounts server) on 127.0.0.1 for tests and demos.

At least as strict as the real API (../shared/reference/crm-apis.md section 4):
`Authorization: Zoho-oauthtoken` only (Bearer is refused), 1 h access tokens answered with 401
INVALID_TOKEN once expired, `fields` mandatory on listings (at most 50), `per_page` <= 200,
`page` 1-10 only (DISCRETE_PAGINATION_LIMIT_EXCEEDED past 2,000 records), page tokens bound to
their query that expire (EXPIRED_VALUE) and stop at 100,000 records (PAGINATION_LIMIT_EXCEEDED),
`If-Modified-Since` (records modified strictly after it; 304 when none was), 204 with no body
for empty results, OAuth scopes checked per endpoint (401 OAUTH_SCOPE_MISMATCH),
Zoho's error bodies ({code, details, message, status}; inside data[] for record writes), 429
TOO_MANY_REQUESTS with details.retry_after (past `requests_per_minute`, or once the
organization's API credits for a rolling 24 h are spent: a credit a call), writes that validate
mandatory fields, formats and lookups and keep what was written. The accounts server answers
refused codes with 200 and {"error": "invalid_code"}, as Zoho's does. Search can lag writes
(`search_lag_seconds`). Faults are injectable per test.
"""

from __future__ import annotations

import bisect
import json
import re
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from math import inf
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fakes.server import FakeServer, JsonHandler
from fakes.zoho_data import ID_BASES, USERS, FakeRecord, generate, zoho_time

PER_PAGE_MAX = 200
DISCRETE_PAGES = 10  # `page` 1..10: the first 2,000 records
PAGE_TOKEN_CAP = 100_000
FIELDS_MAX = 50
WRITE_MAX = 100
SYSTEM_FIELDS = {"id", "Owner", "Created_Time", "Modified_Time", "Created_By", "Modified_By"}
MODULE_FIELDS = {
    "Contacts": {
        "First_Name", "Last_Name", "Email", "Account_Name", "Phone", "Mobile", "Home_Phone",
        "Other_Phone", "Asst_Phone", "Mailing_Country", "Lead_Source",
    },
    "Accounts": {"Account_Name", "Phone", "Billing_Country", "Website"},
    "Leads": {
        "First_Name", "Last_Name", "Company", "Email", "Phone", "Mobile", "Country", "Lead_Status",
    },
    "Calls": {
        "Subject", "Call_Type", "Call_Start_Time", "Call_Duration", "Who_Id", "What_Id",
        "$se_module", "Description", "Call_Purpose", "Call_Result", "Outbound_Call_Status",
        "Billable",
    },
    "Tasks": {
        "Subject", "Due_Date", "Status", "Priority", "Who_Id", "What_Id", "$se_module",
        "Description",
    },
}  # fmt: skip
MANDATORY = {
    "Contacts": ("Last_Name",),
    "Leads": ("Last_Name",),
    "Accounts": ("Account_Name",),
    "Calls": ("Subject", "Call_Type", "Call_Start_Time", "Call_Duration"),
    "Tasks": ("Subject",),
}
PICKLISTS = {
    "Call_Type": {"Outbound", "Inbound", "Missed"},
    "Outbound_Call_Status": {"Completed", "Scheduled"},
    "Status": {"Not Started", "Deferred", "In Progress", "Completed", "Waiting for input"},
    "Priority": {"Highest", "High", "Normal", "Low", "Lowest"},
}
# Zoho datetimes: yyyy-MM-ddTHH:mm:ss with an offset; no fraction, no "Z".
ZOHO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}$")
PATTERNS = {
    "Call_Start_Time": (ZOHO_DATETIME, "datetime"),
    "Call_Duration": (re.compile(r"^\d{1,4}:[0-5]\d$"), "text (mm:ss)"),
    "Due_Date": (re.compile(r"^\d{4}-\d{2}-\d{2}$"), "date"),
}  # fmt: skip
USER_TYPES = {"ActiveUsers", "AllUsers", "CurrentUser", "AdminUsers", "ActiveConfirmedUsers"}
# What a token is granted unless a test says otherwise (a self-client given every scope).
ALL_SCOPES = "ZohoCRM.modules.ALL,ZohoCRM.users.ALL,ZohoSearch.securesearch.READ"
# Scope operation types per method; WRITE is v2's create-or-update, still accepted.
# https://www.zoho.com/crm/developer/docs/api/v8/scopes.html
SCOPE_OPERATIONS = {"GET": ("READ",), "POST": ("CREATE", "WRITE"), "PUT": ("UPDATE", "WRITE")}


class ApiError(Exception):
    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None):
        self.status, self.body, self.headers = status, body, headers or {}


def zoho_error(status: int, code: str, message: str, **details: Any) -> ApiError:
    return ApiError(
        status, {"code": code, "details": details, "message": message, "status": "error"}
    )


@dataclass
class Fault:
    """Answer the next `times` matching requests with this instead of the real thing."""

    kind: str  # "status", "slow", "malformed"
    times: int
    path_contains: str = ""
    status: int = 500
    retry_after: int = 1  # a 429's details.retry_after
    seconds: float = 0.0


@dataclass
class _PageToken:
    query: tuple
    last: tuple[int, int]  # the sort key of the last record served
    served: int
    expires: float


class FakeZoho(FakeServer):
    authorization_code_prefix = "1000."

    def __init__(
        self,
        *,
        contacts: int = 0,
        accounts: int = 0,
        leads: int = 0,
        requests_per_minute: int = 1000,
        daily_credits: int = 50_000 + 1_000 * 10,  # Enterprise with 10 user licences
        page_token_cap: int = PAGE_TOKEN_CAP,
        page_token_seconds: float = 86_400,
        search_lag_seconds: float = 0.0,
    ) -> None:
        # /search sees a record this long after it was written ("near real-time" [crm-apis.md
        # 4.3]; integrators report about a minute). Listings see it at once.
        self.search_lag_seconds = search_lag_seconds
        self.records: dict[str, dict[int, FakeRecord]] = {
            "Contacts": {r.id: r for r in generate("Contacts", contacts)},
            "Accounts": {r.id: r for r in generate("Accounts", accounts)},
            "Leads": {r.id: r for r in generate("Leads", leads)},
            "Calls": {},
            "Tasks": {},
        }
        self.users = [dict(u) for u in USERS]
        self.zgid = "20071234"  # the organization: record URLs are .../crm/org<zgid>/tab/...
        self.clients = {"1000.FAKECLIENTID": "fake-client-secret"}
        self.access_tokens: dict[str, float] = {}  # token -> expiry (epoch s)
        self.refresh_tokens: dict[str, frozenset[str]] = {}  # token -> the scopes it grants
        self.scopes: dict[str, frozenset[str]] = {}  # access token or code -> its scopes
        self.authorization_codes: dict[str, str] = {}  # code -> the redirect_uri it was given for
        self.requests_per_minute = requests_per_minute
        self.daily_credits = daily_credits
        self.credits_spent = 0  # every call costs one credit here (some cost more at Zoho)
        self.rate_limited = 0  # requests answered 429 for a limit (not for an injected fault)
        self.page_token_cap = page_token_cap
        self.page_token_seconds = page_token_seconds
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str, dict[str, list[str]]]] = []
        self._page_tokens: dict[str, _PageToken] = {}
        self._calls: dict[str, deque[float]] = {}
        self._sorted: dict[str, list[tuple[int, int]]] = {}
        self.lock = threading.RLock()

    def _organization(self) -> dict[str, Any]:
        """GET /crm/v8/org's one organization: its zgid is what record URLs carry."""
        return {
            "id": f"{self.zgid}000000000001",
            "zgid": self.zgid,
            "domain_name": f"org{self.zgid}",
            "company_name": "Fake Co",
        }

    # ----- test controls
    def issue_tokens(self, expires_in: float = 3600, scope: str = ALL_SCOPES) -> dict[str, Any]:
        """Tokens as a self-client or a finished consent would give them."""
        access, refresh = f"1000.{uuid.uuid4().hex}", f"1000.{uuid.uuid4().hex}"
        self.access_tokens[access] = time.time() + expires_in
        self.refresh_tokens[refresh] = self.scopes[access] = _scopes(scope)
        return {"access_token": access, "refresh_token": refresh, "expires_in": int(expires_in)}

    def authorize(self, redirect_uri: str, scope: str = ALL_SCOPES) -> str:
        code = super().authorize(redirect_uri)
        self.scopes[code] = _scopes(scope)
        return code

    def accept(self, authorization_url: str) -> str:
        """The user accepted this consent page: the code for its redirect_uri and its scopes."""
        query = {k: v[0] for k, v in parse_qs(urlsplit(authorization_url).query).items()}
        return self.authorize(query["redirect_uri"], query["scope"])

    def touch(self, module: str, ids: list[int], *, at_s: int | None = None) -> None:
        """Modify records now (or at at_s), as a user editing them in Zoho would."""
        with self.lock:
            for record_id in ids:
                record = self.records[module][record_id]
                record.modified_s = at_s or int(time.time())
                name = "Account_Name" if module == "Accounts" else "Last_Name"
                record.fields[name] = f"Edited {record.modified_s}"
            self._sorted.pop(module, None)

    def delete(self, module: str, ids: list[int]) -> None:
        with self.lock:
            for record_id in ids:
                del self.records[module][record_id]
            self._sorted.pop(module, None)

    def paths(self, method: str | None = None) -> list[str]:
        return [p for m, p, _ in self.requests if method in (None, m)]

    def ids(self, module: str, index: slice | int) -> list[int]:
        """Record ids by generation order (ids[0] is the first generated record)."""
        ordered = sorted(self.records[module])
        return ordered[index] if isinstance(index, slice) else [ordered[index]]

    # ----- the API
    def handle(
        self, method: str, path: str, query: dict[str, list[str]], headers: Any, body: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        with self.lock:
            self.requests.append((method, path, query))
            fault = self._take_fault(path)
        if fault and fault.kind == "slow":
            time.sleep(fault.seconds)
        if path == "/oauth/v2/token" and method == "POST":
            return 200, self._token(query, headers, body), {}
        token = self._authenticate(headers)
        self._rate_limit(token)
        if fault and fault.kind == "status":
            if fault.status == 429:
                raise self._too_many(fault.retry_after)
            raise zoho_error(fault.status, "INTERNAL_ERROR", "Internal Server Error")
        parts = path.strip("/").split("/")
        if parts[:2] != ["crm", "v8"] or len(parts) < 3:
            raise zoho_error(
                404,
                "INVALID_URL_PATTERN",
                "Please check if the URL trying to access is a correct one",
            )
        rest = parts[2:]
        self._check_scope(token, method, rest)
        if rest == ["users"] and method == "GET":
            result = self._users(query)
        elif rest == ["org"] and method == "GET":
            result = {"org": [self._organization()]}
        elif rest[0] not in self.records:
            raise zoho_error(
                400,
                "INVALID_MODULE",
                "the module name given seems to be invalid",
                resource_path_index=0,
            )
        elif len(rest) == 1 and method == "GET":
            result = self._list(rest[0], query, headers)
        elif rest[1:] == ["search"] and method == "GET":
            result = self._search(rest[0], query)
        elif len(rest) == 1 and method == "POST":
            return self._create(rest[0], _json_body(body))
        elif len(rest) == 2 and method == "PUT":
            return self._update(rest[0], rest[1], _json_body(body))
        else:
            raise zoho_error(
                404,
                "INVALID_URL_PATTERN",
                "Please check if the URL trying to access is a correct one",
            )
        if result is None:
            return 204, b"", {}
        if fault and fault.kind == "malformed":
            return 200, {"data": "oops", "info": None}, {}
        return 200, result, {}

    def _take_fault(self, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.times > 0 and fault.path_contains in path:
                fault.times -= 1
                return fault
        return None

    def _authenticate(self, headers: Any) -> str:
        value = headers.get("Authorization") or ""
        if not value.startswith("Zoho-oauthtoken "):
            # Zoho wants its own scheme; "Bearer <token>" is not read as a token at all.
            raise zoho_error(401, "AUTHENTICATION_FAILURE", "Authentication failed")
        token = value.removeprefix("Zoho-oauthtoken ")
        if self.access_tokens.get(token, 0) < time.time():
            raise zoho_error(401, "INVALID_TOKEN", "invalid oauth token")
        return token

    def _check_scope(self, token: str, method: str, rest: list[str]) -> None:
        """401 OAUTH_SCOPE_MISMATCH unless the token was granted what this endpoint needs."""
        if rest == ["users"]:
            needed = [{"zohocrm.users.all", "zohocrm.users.read"}]
        elif rest[0] in self.records:
            module = rest[0].lower()
            operations = SCOPE_OPERATIONS.get(method, ())
            needed = [
                {
                    "zohocrm.modules.all",
                    f"zohocrm.modules.{module}.all",
                    *(f"zohocrm.modules.{module}.{op.lower()}" for op in operations),
                }
            ]
            if rest[1:] == ["search"]:  # the search API also needs ZohoSearch's own scope
                needed.append({"zohosearch.securesearch.read", "zohosearch.securesearch.all"})
        else:
            return  # an unknown module or URL gets its own error
        granted = self.scopes.get(token, frozenset())
        if not all(granted & options for options in needed):
            raise zoho_error(401, "OAUTH_SCOPE_MISMATCH", "invalid oauth scope to access this URL")

    def _rate_limit(self, token: str) -> None:
        now = time.monotonic()
        with self.lock:
            calls = self._calls.setdefault(token, deque())
            while calls and calls[0] < now - 60:
                calls.popleft()
            calls.append(now)
            if len(calls) > self.requests_per_minute:
                self.rate_limited += 1
                raise self._too_many(max(1, int(calls[0] + 60 - now) + 1))
            self.credits_spent += 1
            if self.credits_spent > self.daily_credits:
                self.rate_limited += 1
                raise self._too_many(3600)  # the answer to spent credits is UNVERIFIED

    def _too_many(self, retry_after: int) -> ApiError:
        return zoho_error(
            429,
            "TOO_MANY_REQUESTS",
            "Rate limit exceeded. Please retry after the specified time.",
            trace_id=str(uuid.uuid4()),
            retry_after=retry_after,
            limit=self.requests_per_minute,
            window=60,
        )

    def _token(self, query: dict[str, list[str]], headers: Any, body: bytes) -> dict[str, Any]:
        # Zoho reads the parameters from the query string or a form body.
        form = {k: v[0] for k, v in query.items()}
        if body:
            if not (headers.get("Content-Type") or "").startswith(
                "application/x-www-form-urlencoded"
            ):
                return {"error": "invalid_request"}
            form.update({k: v[0] for k, v in parse_qs(body.decode()).items()})
        if self.clients.get(form.get("client_id", "")) != form.get("client_secret"):
            return {"error": "invalid_client"}
        grant = form.get("grant_type")
        result: dict[str, Any] = {}
        if grant == "authorization_code":
            # A code is single-use and bound to the redirect_uri it was issued for.
            code = form.get("code", "")
            issued_for = self.authorization_codes.pop(code, None)
            if issued_for is None or issued_for != form.get("redirect_uri"):
                return {"error": "invalid_code"}
            scopes = self.scopes.pop(code, frozenset())
            result["refresh_token"] = f"1000.{uuid.uuid4().hex}"
            self.refresh_tokens[result["refresh_token"]] = scopes
        elif grant == "refresh_token":
            if form.get("refresh_token") not in self.refresh_tokens:
                return {"error": "invalid_code"}
            scopes = self.refresh_tokens[form["refresh_token"]]  # a refresh never adds scopes
        else:
            return {"error": "unsupported_grant_type"}
        access = f"1000.{uuid.uuid4().hex}"
        self.access_tokens[access] = time.time() + 3600
        self.scopes[access] = scopes
        return {
            **result,
            "access_token": access,
            "api_domain": self.url,  # the data centre's API host (zohoapis.com, .eu, ...)
            "token_type": "Bearer",
            "expires_in": 3600,
            "scope": " ".join(sorted(scopes)),
        }

    # ----- reads
    def _fields(self, module: str, query: dict[str, list[str]], *, required: bool) -> list[str]:
        raw = (query.get("fields") or [""])[0]
        if not raw:
            if required:
                raise zoho_error(
                    400, "REQUIRED_PARAM_MISSING", "required param is missing", param_name="fields"
                )
            return sorted(MODULE_FIELDS[module] | SYSTEM_FIELDS)
        names = [n for n in raw.split(",") if n]
        if len(names) > FIELDS_MAX:
            raise zoho_error(
                400, "LIMIT_EXCEEDED", "limit exceeded", limit=FIELDS_MAX, param_name="fields"
            )
        for name in names:
            if name not in MODULE_FIELDS[module] | SYSTEM_FIELDS:
                raise zoho_error(
                    400, "INVALID_DATA", "invalid data", param_name="fields", api_name=name
                )
        return names

    def _list(
        self, module: str, query: dict[str, list[str]], headers: Any
    ) -> dict[str, Any] | None:
        fields = self._fields(module, query, required=True)
        per_page = _int_param(query, "per_page", PER_PAGE_MAX, maximum=PER_PAGE_MAX)
        sort_by = (query.get("sort_by") or ["id"])[0]
        if sort_by not in ("id", "Created_Time", "Modified_Time"):
            raise zoho_error(
                400, "INVALID_DATA", "invalid data", param_name="sort_by",
                supported_values=["id", "Created_Time", "Modified_Time"],
            )  # fmt: skip
        sort_order = (query.get("sort_order") or ["desc"])[0]
        if sort_order not in ("asc", "desc"):
            raise zoho_error(
                400,
                "INVALID_DATA",
                "invalid data",
                param_name="sort_order",
                supported_values=["asc", "desc"],
            )
        since = _since(headers.get("If-Modified-Since"))
        key = (module, tuple(fields), sort_by, sort_order, since)
        with self.lock:
            keys = self._matching(module, sort_by, since)
            if sort_order == "desc":
                keys = keys[::-1]
            token = (query.get("page_token") or [None])[0]
            if token:
                start, served = self._resume(token, key, keys, descending=sort_order == "desc")
                page = 1
            else:
                page = _int_param(query, "page", 1, maximum=None)
                if page > DISCRETE_PAGES:
                    raise zoho_error(
                        400, "DISCRETE_PAGINATION_LIMIT_EXCEEDED",
                        "You can only get the first 2000 records without using page_token param",
                        limit=DISCRETE_PAGES * PER_PAGE_MAX,
                    )  # fmt: skip
                start = served = (page - 1) * per_page
            if since is not None and not keys:
                raise ApiError(304, b"")  # "Not Modified": nothing changed since the header's time
            chunk = keys[start : start + per_page]
            if not chunk:
                return None
            more = start + per_page < len(keys)
            next_token, expiry = None, None
            if more:
                next_token = uuid.uuid4().hex[:40]
                expires = time.time() + self.page_token_seconds
                self._page_tokens[next_token] = _PageToken(
                    key, chunk[-1], served + len(chunk), expires
                )
                expiry = zoho_time(int(expires))
            rows = [self._as_json(self.records[module][i], fields) for _, i in chunk]
        return {
            "data": rows,
            "info": {
                "call": False,
                "per_page": per_page,
                "next_page_token": next_token,
                "count": len(rows),
                "sort_by": sort_by,
                "page": page,
                "page_token_expiry": expiry,
                "sort_order": sort_order,
                "email": False,
                "more_records": more,
                "previous_page_token": None,
            },
        }

    def _resume(self, token: str, key: tuple, keys: list, *, descending: bool) -> tuple[int, int]:
        """Where a page token continues: after the last record it served (keyset, not offset)."""
        if len(token) > 96 or token not in self._page_tokens:
            raise zoho_error(400, "INVALID_DATA", "invalid data", param_name="page_token")
        state = self._page_tokens[token]
        if state.expires < time.time():
            raise zoho_error(
                400,
                "EXPIRED_VALUE",
                "Page token expired",
                api_name="page_token",
                json_path="$.query.page_token",
            )
        if state.query != key:
            raise zoho_error(
                400, "TOKEN_BOUND_DATA_MISMATCH", "the given page token does not match the request",
                param_name="page_token",
            )  # fmt: skip
        if state.served >= self.page_token_cap:
            raise zoho_error(
                400, "PAGINATION_LIMIT_EXCEEDED",
                f"You can only get upto {self.page_token_cap} records using page_token param",
                param_name="page_token",
            )  # fmt: skip
        if descending:
            ascending = keys[::-1]
            return len(keys) - bisect.bisect_left(ascending, state.last), state.served
        return bisect.bisect_right(keys, state.last), state.served

    def _matching(self, module: str, sort_by: str, since: int | None) -> list[tuple[int, int]]:
        if sort_by != "Modified_Time":
            attr = "created_s" if sort_by == "Created_Time" else "id"
            keys = sorted(
                (getattr(r, attr), r.id)
                for r in self.records[module].values()
                if since is None or r.modified_s > since
            )
            return keys
        if module not in self._sorted:
            self._sorted[module] = sorted(
                (r.modified_s, r.id) for r in self.records[module].values()
            )
        keys = self._sorted[module]
        if since is None:
            return keys
        return keys[bisect.bisect_right(keys, (since, float("inf"))) :]

    def _search(self, module: str, query: dict[str, list[str]]) -> dict[str, Any] | None:
        given = [name for name in ("criteria", "email", "phone", "word") if query.get(name)]
        if len(given) != 1:
            raise zoho_error(
                400, "REQUIRED_PARAM_MISSING", "required param is missing", param_name="criteria"
            )
        if given == ["criteria"]:
            raise zoho_error(400, "INVALID_QUERY", "the fake does not implement criteria searches")
        fields = self._fields(module, query, required=False)
        per_page = _int_param(query, "per_page", PER_PAGE_MAX, maximum=PER_PAGE_MAX)
        page = _int_param(query, "page", 1, maximum=DISCRETE_PAGES)
        wanted = query[given[0]][0]
        # Without a lag search sees everything (a test may set modification times ahead).
        indexed_until = time.time() - self.search_lag_seconds if self.search_lag_seconds else inf
        with self.lock:
            found = [
                r
                for _, r in sorted(self.records[module].items())
                if r.modified_s <= indexed_until and _matches(module, r, given[0], wanted)
            ]
            chunk = found[(page - 1) * per_page : page * per_page]
            rows = [self._as_json(r, fields) for r in chunk]
        if not rows:
            return None
        more = page * per_page < len(found)
        return {
            "data": rows,
            "info": {"per_page": per_page, "count": len(rows), "page": page, "more_records": more},
        }

    def _users(self, query: dict[str, list[str]]) -> dict[str, Any] | None:
        kind = (query.get("type") or ["AllUsers"])[0]
        if kind not in USER_TYPES:
            raise zoho_error(400, "INVALID_DATA", "invalid data", param_name="type")
        per_page = _int_param(query, "per_page", PER_PAGE_MAX, maximum=PER_PAGE_MAX)
        page = _int_param(query, "page", 1, maximum=None)
        users = self.users[:1] if kind == "CurrentUser" else self.users
        chunk = users[(page - 1) * per_page : page * per_page]
        if not chunk:
            return None
        rows = [
            {
                **u,
                "first_name": u["full_name"].split()[0],
                "last_name": u["full_name"].split()[-1],
                "status": "active",
                "confirm": True,
                "role": {"name": "CEO", "id": "4150868000000026005"},
                "profile": {"name": "Administrator", "id": "4150868000000026011"},
            }
            for u in chunk
        ]
        more = page * per_page < len(users)
        return {
            "users": rows,
            "info": {"per_page": per_page, "count": len(rows), "page": page, "more_records": more},
        }

    def _as_json(self, record: FakeRecord, fields: list[str]) -> dict[str, Any]:
        result: dict[str, Any] = {"id": str(record.id)}
        for name in fields:
            if name in ("Owner", "Created_By", "Modified_By"):
                owner = record.owner
                result[name] = {
                    "name": owner["full_name"],
                    "id": owner["id"],
                    "email": owner["email"],
                }
            elif name in ("Modified_Time", "Created_Time"):
                result[name] = zoho_time(
                    record.modified_s if name == "Modified_Time" else record.created_s
                )
            elif name != "id":
                result[name] = record.fields.get(name)
        return result

    # ----- writes
    def _create(self, module: str, body: Any) -> tuple[int, Any, dict[str, str]]:
        rows = self._write_rows(body)
        results, created = [], 0
        with self.lock:
            for index, row in enumerate(rows):
                try:
                    self._validate(module, row, index, creating=True)
                except ApiError as error:
                    results.append(error.body)
                    continue
                record_id = ID_BASES[module] + len(self.records[module]) + 1
                while record_id in self.records[module]:
                    record_id += 1
                now = int(time.time())
                owner = self._owner(row) or dict(self.users[0])
                fields = {k: v for k, v in row.items() if k != "Owner"}
                self.records[module][record_id] = FakeRecord(record_id, fields, now, now, owner)
                self._sorted.pop(module, None)
                created += 1
                results.append(_success("record added", record_id, now, owner))
        status = 201 if created == len(rows) else (207 if created else 400)
        return status, {"data": results}, {}

    def _update(self, module: str, raw_id: str, body: Any) -> tuple[int, Any, dict[str, str]]:
        rows = self._write_rows(body)
        if len(rows) != 1:
            raise zoho_error(
                400, "INVALID_DATA", "only one record can be updated by id", api_name="data"
            )
        with self.lock:
            record = self.records[module].get(int(raw_id)) if raw_id.isdigit() else None
            if record is None:
                error = zoho_error(
                    400, "INVALID_DATA", "the id given seems to be invalid", id=raw_id
                )
                return 400, {"data": [error.body]}, {}
            try:
                self._validate(module, rows[0], 0, creating=False)
            except ApiError as error:
                return 400, {"data": [error.body]}, {}
            owner = self._owner(rows[0])
            if owner:
                record.owner = owner
            record.fields.update({k: v for k, v in rows[0].items() if k not in ("Owner", "id")})
            record.modified_s = int(time.time())
            self._sorted.pop(module, None)
            return (
                200,
                {"data": [_success("record updated", record.id, record.modified_s, record.owner)]},
                {},
            )

    def _write_rows(self, body: Any) -> list[dict[str, Any]]:
        rows = body.get("data") if isinstance(body, dict) else None
        if not isinstance(rows, list) or not rows:
            raise zoho_error(
                400,
                "MANDATORY_NOT_FOUND",
                "required field not found",
                api_name="data",
                json_path="$.data",
            )
        if len(rows) > WRITE_MAX:
            raise zoho_error(
                400, "LIMIT_EXCEEDED", "limit exceeded", limit=WRITE_MAX, api_name="data"
            )
        return rows

    def _validate(self, module: str, row: Any, index: int, *, creating: bool) -> None:
        path = f"$.data[{index}]"
        if not isinstance(row, dict):
            raise zoho_error(400, "INVALID_DATA", "invalid data", json_path=path)
        for name in MANDATORY[module] if creating else ():
            if row.get(name) in (None, ""):
                raise zoho_error(
                    400,
                    "MANDATORY_NOT_FOUND",
                    "required field not found",
                    api_name=name,
                    json_path=f"{path}.{name}",
                )
        for name, value in row.items():
            where = {"api_name": name, "json_path": f"{path}.{name}"}
            if name not in MODULE_FIELDS[module] | {"Owner", "id"}:
                raise zoho_error(400, "INVALID_DATA", "invalid data", **where)
            if value is None:
                if name in MANDATORY[module]:
                    raise zoho_error(
                        400, "MANDATORY_NOT_FOUND", "required field not found", **where
                    )
                continue
            if name in PICKLISTS and value not in PICKLISTS[name]:
                raise zoho_error(
                    400, "INVALID_DATA", "invalid data", expected_data_type="picklist", **where
                )
            if name in PATTERNS and not (isinstance(value, str) and PATTERNS[name][0].match(value)):
                raise zoho_error(
                    400,
                    "INVALID_DATA",
                    "invalid data",
                    expected_data_type=PATTERNS[name][1],
                    **where,
                )
        if row.get("Who_Id") is not None and not self._exists("Contacts", row["Who_Id"]):
            raise zoho_error(
                400,
                "INVALID_DATA",
                "the related id given seems to be invalid",
                api_name="Who_Id",
                json_path=f"{path}.Who_Id",
            )
        if ("What_Id" in row) != ("$se_module" in row):
            raise zoho_error(
                400,
                "MANDATORY_NOT_FOUND",
                "What_Id needs $se_module",
                api_name="$se_module",
                json_path=f"{path}.$se_module",
            )
        if row.get("What_Id") is not None and not self._exists(
            str(row.get("$se_module")), row["What_Id"]
        ):
            raise zoho_error(
                400,
                "INVALID_DATA",
                "the related id given seems to be invalid",
                api_name="What_Id",
                json_path=f"{path}.What_Id",
            )
        if row.get("Call_Type") != "Outbound" and "Outbound_Call_Status" in row:
            raise zoho_error(
                400,
                "INVALID_DATA",
                "invalid data",
                api_name="Outbound_Call_Status",
                json_path=f"{path}.Outbound_Call_Status",
            )
        if "Owner" in row and self._owner(row) is None:
            raise zoho_error(
                400, "INVALID_DATA", "invalid data", api_name="Owner", json_path=f"{path}.Owner"
            )

    def _exists(self, module: str, lookup: Any) -> bool:
        raw = str(lookup.get("id") or "") if isinstance(lookup, dict) else ""
        return module in self.records and raw.isdigit() and int(raw) in self.records[module]

    def _owner(self, row: dict[str, Any]) -> dict[str, str] | None:
        owner = row.get("Owner")
        wanted = owner.get("id") if isinstance(owner, dict) else None
        return next((dict(u) for u in self.users if u["id"] == wanted), None)


class _Handler(JsonHandler):
    api_error = ApiError
    content_type = "application/json;charset=utf-8"


def _success(message: str, record_id: int, at_s: int, owner: dict[str, str]) -> dict[str, Any]:
    user = {"name": owner["full_name"], "id": owner["id"]}
    return {
        "code": "SUCCESS",
        "details": {
            "Modified_Time": zoho_time(at_s),
            "Modified_By": user,
            "Created_Time": zoho_time(at_s),
            "id": str(record_id),
            "Created_By": user,
        },
        "message": message,
        "status": "success",
    }


def _scopes(scope: str) -> frozenset[str]:
    """Scopes as granted: comma-separated, compared without case."""
    return frozenset(s.strip().casefold() for s in scope.split(",") if s.strip())


def _json_body(body: bytes) -> Any:
    try:
        return json.loads(body or b"null")
    except ValueError as error:
        raise zoho_error(400, "INVALID_DATA", "body is not valid JSON") from error


def _int_param(query: dict[str, list[str]], name: str, default: int, *, maximum: int | None) -> int:
    raw = (query.get(name) or [str(default)])[0]
    if not raw.isdigit() or int(raw) < 1 or (maximum is not None and int(raw) > maximum):
        raise zoho_error(400, "INVALID_DATA", "invalid data", param_name=name, maximum=maximum)
    return int(raw)


def _since(value: str | None) -> int | None:
    """If-Modified-Since: ISO 8601 with an offset, e.g. 2019-07-25T15:26:49+05:30."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise zoho_error(400, "INVALID_DATA", "invalid data", param_name="If-Modified-Since")
    return int(moment.timestamp())


def _matches(module: str, record: FakeRecord, param: str, wanted: str) -> bool:
    if param == "email":
        return str(record.fields.get("Email") or "").lower() == wanted.lower()
    if param == "word":
        return any(
            wanted.lower() in str(v).lower() for v in record.fields.values() if isinstance(v, str)
        )
    # phone= searches every phone field, comparing digits only: "+44 20 7946 0018" is found by
    # +442079460018, "020 7946 0018" is not.
    digits = re.sub(r"\D", "", wanted)
    phone_fields = [n for n in MODULE_FIELDS[module] if "Phone" in n or n == "Mobile"]
    return bool(digits) and any(
        re.sub(r"\D", "", str(record.fields.get(n) or "")) == digits for n in phone_fields
    )


FakeZoho.handler_class = _Handler


def serve_demo(options: dict[str, Any]) -> tuple[FakeZoho, str, dict[str, Any]]:
    """Start the fake for `manage.py fakecrm`; answer it, a description, the connection JSON."""
    fake = FakeZoho(
        contacts=options["contacts"], accounts=options["companies"], leads=options["leads"]
    )
    url = fake.start(port=options["port"])
    refresh = fake.issue_tokens()["refresh_token"]
    client_id, secret = next(iter(fake.clients.items()))
    credentials = {
        "client_id": client_id,
        "client_secret": secret,
        "refresh_token": refresh,
        "accounts_url": url,
        "api_domain": url,
    }
    return (
        fake,
        f"Fake Zoho CRM at {url} with {options['contacts']} contacts, "
        f"{options['companies']} accounts and {options['leads']} leads",
        {"credentials": credentials},
    )
