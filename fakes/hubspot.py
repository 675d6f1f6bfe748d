"""A strict fake HubSpot CRM v3 on 127.0.0.1: a real HTTP server for tests and demos.

At least as strict as the real API (../shared/reference/crm-apis.md section 1): Bearer tokens
checked (private-app tokens and expiring OAuth access tokens), search `limit` <= 200 and at most
10,000 results per query (paging past it is a 400), list `limit` <= 100, 5 filter groups / 10
filters per group / 25 filters, opaque `after` cursors, HubSpot's error bodies, a ten-second
burst limit answered with 429 + X-HubSpot-RateLimit-* + Retry-After, search's own limit of 5
requests a second outside that bucket (rolling; 429 too), search that can lag writes
(`search_lag_seconds`), and injectable faults.
"""

from __future__ import annotations

import bisect
import html
import json
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode

from fakes.hubspot_data import (
    BASE_MS,
    FakeObject,
    generate_companies,
    generate_contacts,
    iso,
)
from fakes.server import FakeServer, JsonHandler

SEARCH_MAX_LIMIT = 200
LIST_MAX_LIMIT = 100
SEARCH_RESULT_CAP = 10_000
OPERATORS = {
    "EQ", "NEQ", "LT", "LTE", "GT", "GTE", "BETWEEN", "IN", "NOT_IN",
    "HAS_PROPERTY", "NOT_HAS_PROPERTY", "CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN",
}  # fmt: skip
MODIFIED = {"contacts": "lastmodifieddate", "companies": "hs_lastmodifieddate"}
CREATED = {"contacts": "createdate", "companies": "createdate"}
DEFAULT_PROPERTIES = {
    "contacts": ["firstname", "lastname", "email"],
    "companies": ["name", "domain"],
}
DATE_PROPERTIES = {"lastmodifieddate", "hs_lastmodifieddate", "createdate"}
OWNERS_MAX_LIMIT = 500
# Writable properties per object type, with the allowed options of the enumerations
# (https://developers.hubspot.com/docs/guides/api/crm/engagements/calls, .../tasks).
CALL_STATUSES = {
    "BUSY", "CALLING_CRM_USER", "CANCELED", "COMPLETED", "CONNECTING", "FAILED", "IN_PROGRESS",
    "NO_ANSWER", "QUEUED", "RINGING",
}  # fmt: skip
WRITABLE: dict[str, dict[str, set[str] | None]] = {
    "calls": {
        "hs_timestamp": None, "hs_call_title": None, "hs_call_body": None,
        "hs_call_direction": {"INBOUND", "OUTBOUND"}, "hs_call_duration": None,
        "hs_call_from_number": None, "hs_call_to_number": None, "hs_call_recording_url": None,
        "hs_call_status": CALL_STATUSES, "hs_call_disposition": None, "hubspot_owner_id": None,
        "hs_call_callee_object_id": None, "hs_call_callee_object_type": None,
        "hs_call_external_id": None, "hs_call_external_account_id": None,
    },
    "tasks": {
        "hs_timestamp": None, "hs_task_subject": None, "hs_task_body": None,
        "hs_task_status": {"NOT_STARTED", "IN_PROGRESS", "WAITING", "COMPLETED", "DEFERRED"},
        "hs_task_priority": {"LOW", "MEDIUM", "HIGH", "NONE"},
        "hs_task_type": {"CALL", "EMAIL", "TODO", "LINKED_IN"}, "hubspot_owner_id": None,
    },
    "contacts": {
        "firstname": None, "lastname": None, "email": None, "phone": None, "mobilephone": None,
        "company": None, "country": None, "lifecyclestage": None, "hubspot_owner_id": None,
    },
}  # fmt: skip
REQUIRED = {"calls": {"hs_timestamp"}, "tasks": {"hs_timestamp"}, "contacts": set()}
# The same associations read from the record's side (v4 association reads): typeId and label.
REVERSE_ASSOCIATION_TYPES = {
    ("contacts", "calls"): 193,
    ("companies", "calls"): 181,
    ("contacts", "tasks"): 203,
    ("companies", "tasks"): 191,
}
# HUBSPOT_DEFINED association type ids a create may carry: (from, typeId) -> to.
ASSOCIATION_TYPES = {
    ("calls", 194): "contacts",
    ("calls", 182): "companies",
    ("tasks", 204): "contacts",
    ("tasks", 192): "companies",
}
# The default call outcomes of a new account (GET /calling/v1/dispositions).
DEFAULT_DISPOSITIONS = [
    {"id": "f240bbac-87c9-4f6e-bf70-924b57d47db7", "label": "Connected", "deleted": False},
    {"id": "9d9162e7-6cf3-4944-bf63-4dff82258764", "label": "Busy", "deleted": False},
    {"id": "73a0d17f-1163-4015-bdd5-ec830791da20", "label": "No answer", "deleted": False},
    {"id": "b2cf5968-551e-4856-9783-52b3da59a7d0", "label": "Left voicemail", "deleted": False},
    {"id": "a4c4c377-d246-4b32-a13b-75a56a4cd0ff", "label": "Left live message", "deleted": False},
    {"id": "17b47fee-58de-441e-a44c-c6300d46f273", "label": "Wrong number", "deleted": False},
]


class ApiError(Exception):
    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None):
        self.status, self.body, self.headers = status, body, headers or {}


def hubspot_error(status: int, category: str, message: str, **extra: Any) -> ApiError:
    body = {"status": "error", "message": message, "correlationId": str(uuid.uuid4())}
    return ApiError(status, {**body, "category": category, **extra})


@dataclass
class Fault:
    """Answer the next `times` matching requests with this instead of the real thing."""

    kind: str  # "status", "slow", "malformed", "lost_answer" (a write is stored, then `status`)
    times: int
    path_contains: str = ""
    status: int = 500
    retry_after: str | None = "1"
    seconds: float = 0.0
    policy: str = "TEN_SECONDLY_ROLLING"  # a 429's policyName: or DAILY
    skip: int = 0  # matching requests let through first


class FakeHubSpot(FakeServer):
    def __init__(
        self,
        *,
        contacts: int = 0,
        companies: int = 0,
        private_app_token: str = "pat-na1-fake-token",  # noqa: S107 - a fake
        burst_limit: int = 190,
        search_per_second: int = 5,
        search_lag_seconds: float = 0.0,
    ) -> None:
        # Search sees a record this long after it was written (HubSpot: seconds, more under
        # load; "wait 10 s after a create" [crm-apis.md 1.3]). Lists and gets see it at once.
        self.search_lag_seconds = search_lag_seconds
        self.objects = {
            "contacts": {o.id: o for o in generate_contacts(contacts)},
            "companies": {o.id: o for o in generate_companies(companies)},
        }
        self.private_app_tokens = {private_app_token}
        self.access_tokens: dict[str, float] = {}  # token -> expiry (epoch s)
        self.refresh_tokens: set[str] = set()
        self.authorization_codes: dict[str, str] = {}  # code -> the redirect_uri it was given for
        self.hub_id = 4212
        self.clients = {"fake-client-id": "fake-client-secret"}
        self.burst_limit = burst_limit
        self.search_per_second = search_per_second
        self.rate_limited = 0  # requests answered 429 for a limit (not for an injected fault)
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str]] = []
        self.owners: list[dict[str, Any]] = []
        self.dispositions = [dict(d) for d in DEFAULT_DISPOSITIONS]
        # What the write side stored: calls and tasks by id, as {"properties", "associations"}.
        self.written: dict[str, dict[str, dict[str, Any]]] = {"calls": {}, "tasks": {}}
        # Properties the account created (HubSpot refuses writes to a property that does not
        # exist: PROPERTY_DOESNT_EXIST), by object type.
        self.custom_properties: dict[str, set[str]] = {"contacts": set(), "companies": set()}
        self._next_id = 90_000_000
        self._calls: dict[str, deque[float]] = {}
        self._searches: deque[float] = deque()  # search's limit is per account
        # Indexes of live records, rebuilt after a change: by modification time, and ids by state.
        self._sorted: dict[str, list[tuple[int, int]]] = {}
        self._ids: dict[tuple[str, bool], list[int]] = {}
        self.lock = threading.RLock()

    # ----- test controls
    def issue_oauth_tokens(self, expires_in: float = 1800) -> dict[str, Any]:
        access, refresh = f"oauth-{uuid.uuid4().hex}", f"refresh-{uuid.uuid4().hex}"
        self.access_tokens[access] = time.time() + expires_in
        self.refresh_tokens.add(refresh)
        return {"access_token": access, "refresh_token": refresh, "expires_in": int(expires_in)}

    def touch(self, object_type: str, ids: list[int], *, at_ms: int | None = None) -> None:
        """Modify records now (or at at_ms), as a user editing them in HubSpot would."""
        with self.lock:
            for object_id in ids:
                record = self.objects[object_type][object_id]
                record.modified_ms = at_ms or int(time.time() * 1000)
                record.properties["lastname"] = f"Edited {record.modified_ms}"
            self._reindex(object_type)

    def archive(self, object_type: str, ids: list[int]) -> None:
        with self.lock:
            for object_id in ids:
                record = self.objects[object_type][object_id]
                record.archived, record.archived_ms = True, int(time.time() * 1000)
            self._reindex(object_type)

    def add_owner(self, email: str, first_name: str = "", last_name: str = "") -> str:
        """A HubSpot user who can own records (what GET /crm/v3/owners lists)."""
        with self.lock:
            self._next_id += 1
            owner_id = str(self._next_id)
            self.owners.append(
                {
                    "id": owner_id,
                    "email": email,
                    "type": "PERSON",
                    "firstName": first_name,
                    "lastName": last_name,
                    "userId": self._next_id + 1,
                    "createdAt": iso(BASE_MS),
                    "updatedAt": iso(BASE_MS),
                    "archived": False,
                }
            )
        return owner_id

    def set_owner(
        self, object_type: str, ids: list[int], owner_id: str | None, *, at_ms: int | None = None
    ) -> None:
        """Give records an owner (hubspot_owner_id), as a user reassigning them would."""
        with self.lock:
            for object_id in ids:
                record = self.objects[object_type][object_id]
                record.properties["hubspot_owner_id"] = owner_id
                record.modified_ms = at_ms or int(time.time() * 1000)
            self._reindex(object_type)

    def paths(self, method: str | None = None) -> list[str]:
        return [p for m, p in self.requests if method in (None, m)]

    # ----- the API
    def handle(
        self, method: str, path: str, query: dict[str, list[str]], headers: Any, body: bytes
    ):
        with self.lock:
            self.requests.append((method, path))
            fault = self._take_fault(path)
        if fault and fault.kind == "slow":
            time.sleep(fault.seconds)
        if path == "/oauth/v1/token" and method == "POST":
            return 200, self._token(headers, body), {}
        if path == "/oauth/authorize" and method == "GET":
            return 200, self._consent_page(query), {"Content-Type": "text/html; charset=utf-8"}
        token = self._authenticate(headers)
        limits = self._rate_limit(token, search=path.endswith("/search"))
        if fault and fault.kind == "status":
            extra = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            if fault.status == 429:
                raise ApiError(429, _rate_limit_body(fault.policy), {**limits, **extra})
            error = hubspot_error(fault.status, "INTERNAL_ERROR", "internal error")
            raise ApiError(fault.status, error.body, extra)
        parts = path.strip("/").split("/")
        if method == "GET" and parts == ["crm", "v3", "owners"]:
            return 200, self._owners(query), limits
        if method == "GET" and path == "/calling/v1/dispositions":
            return 200, self.dispositions, limits
        if method == "GET" and path == "/account-info/v3/details":
            return 200, self._account_details(), limits
        # /crm/v4/objects/{contacts|companies}/{id}/associations/{calls|tasks}
        if method == "GET" and parts[:3] == ["crm", "v4", "objects"] and len(parts) == 7:
            return 200, self._associations(parts[3], parts[4], parts[5:]), limits
        # /crm/v3/objects/{type}[/...]; the dated family /crm/objects/2026-03/{type} too.
        version_ok = len(parts) >= 4 and (
            parts[:3] == ["crm", "v3", "objects"] or parts[:3] == ["crm", "objects", "2026-03"]
        )
        if not version_ok or parts[3] not in {*self.objects, *self.written}:
            raise hubspot_error(404, "OBJECT_NOT_FOUND", f"No route for {method} {path}")
        object_type, rest = parts[3], parts[4:]
        readable = object_type in self.objects
        if method == "POST" and rest == ["search"] and readable:
            result = self._search(object_type, _json_body(body))
        elif method == "POST" and rest == ["search"] and object_type == "calls":
            result = self._search_calls(_json_body(body))
        elif method == "GET" and not rest and readable:
            result = self._list(object_type, query)
        elif method == "POST" and not rest and object_type in WRITABLE:
            created = self._create(object_type, _json_body(body))
            if fault and fault.kind == "lost_answer":
                raise hubspot_error(fault.status, "INTERNAL_ERROR", "internal error")
            return 201, created, limits
        elif method == "GET" and len(rest) <= 1 and object_type in self.written:
            result = self._read_written(object_type, rest[0] if rest else None, query)
        elif method == "PATCH" and len(rest) == 1 and readable:
            return 200, self._update_synced(object_type, rest[0], _json_body(body)), limits
        elif method == "PATCH" and len(rest) == 1 and object_type in self.written:
            return 200, self._update(object_type, rest[0], _json_body(body)), limits
        else:
            raise hubspot_error(
                405 if not rest else 404, "NOT_FOUND", f"No route for {method} {path}"
            )
        if fault and fault.kind == "malformed":
            return 200, {"results": "oops", "paging": None}, limits
        return 200, result, limits

    def _take_fault(self, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.times > 0 and fault.path_contains in path:
                if fault.skip > 0:
                    fault.skip -= 1
                    return None
                fault.times -= 1
                return fault
        return None

    def _authenticate(self, headers: Any) -> str:
        value = headers.get("Authorization") or ""
        if not value.startswith("Bearer "):
            raise hubspot_error(
                401, "INVALID_AUTHENTICATION", "Authentication credentials not found."
            )
        token = value.removeprefix("Bearer ")
        if token in self.private_app_tokens:
            return token
        expiry = self.access_tokens.get(token)
        if expiry is None:
            raise hubspot_error(401, "INVALID_AUTHENTICATION", "The access token is not valid.")
        if expiry < time.time():
            raise hubspot_error(
                401, "EXPIRED_AUTHENTICATION", "The OAuth token used to make this call expired."
            )
        return token

    def _rate_limit(self, token: str, *, search: bool) -> dict[str, str]:
        now = time.monotonic()
        with self.lock:
            calls = self._calls.setdefault(token, deque())
            while calls and calls[0] < now - 10:
                calls.popleft()
            if not search:  # search is exempt from the ten-secondly bucket
                calls.append(now)
            headers = {
                "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
                "X-HubSpot-RateLimit-Max": str(self.burst_limit),
                "X-HubSpot-RateLimit-Remaining": str(max(0, self.burst_limit - len(calls))),
            }
            if len(calls) > self.burst_limit:
                self.rate_limited += 1
                wait = max(1, int(calls[0] + 10 - now) + 1)
                raise ApiError(429, _rate_limit_body(), {**headers, "Retry-After": str(wait)})
            if search:
                searches = self._searches
                while searches and searches[0] < now - 1:
                    searches.popleft()
                searches.append(now)
                if len(searches) > self.search_per_second:
                    self.rate_limited += 1
                    raise ApiError(
                        429, _rate_limit_body("SECONDLY"), {**headers, "Retry-After": "1"}
                    )
        return headers

    def _consent_page(self, query: dict[str, list[str]]) -> str:
        """HubSpot's "Connect app" page: granting sends the browser back with a code and state."""
        params = {name: values[0] for name, values in query.items()}
        missing = [n for n in ("client_id", "redirect_uri", "state") if not params.get(n)]
        if missing or params["client_id"] not in self.clients:
            problem = f"missing {', '.join(missing)}" if missing else "unknown client_id"
            raise ApiError(400, {"status": "error", "message": f"Bad authorize request: {problem}"})
        redirect_uri, state = params["redirect_uri"], params["state"]
        granted = urlencode({"code": self.authorize(redirect_uri), "state": state})
        denied = urlencode({"error": "access_denied", "state": state})
        return (
            '<!doctype html><title>Connect app - HubSpot</title><link rel="icon" href="data:,">'
            f"<h1>Connect app to account {self.hub_id}</h1>"
            f"<p>Scopes: {html.escape(params.get('scope', ''))}</p>"
            f'<a id="grant" href="{html.escape(redirect_uri + "?" + granted)}">Connect app</a> '
            f'<a id="deny" href="{html.escape(redirect_uri + "?" + denied)}">Cancel</a>'
        )

    def _token(self, headers: Any, body: bytes) -> dict[str, Any]:
        if not (headers.get("Content-Type") or "").startswith("application/x-www-form-urlencoded"):
            raise ApiError(415, {"status": "error", "message": "Send the form url-encoded."})
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        if self.clients.get(form.get("client_id", "")) != form.get("client_secret"):
            raise ApiError(
                400, {"status": "BAD_CLIENT_ID", "message": "missing or unknown client id"}
            )
        grant = form.get("grant_type")
        if grant == "authorization_code":
            # A code is single-use and bound to the redirect_uri it was issued for.
            issued_for = self.authorization_codes.pop(form.get("code", ""), None)
            if issued_for is None or issued_for != form.get("redirect_uri"):
                raise ApiError(
                    400, {"status": "BAD_AUTH_CODE", "message": "missing or unknown auth code"}
                )
            refresh = f"refresh-{uuid.uuid4().hex}"
            self.refresh_tokens.add(refresh)
            form["refresh_token"] = refresh
        elif grant != "refresh_token":
            raise ApiError(400, {"status": "BAD_GRANT_TYPE", "message": "unsupported grant_type"})
        if form.get("refresh_token") not in self.refresh_tokens:
            raise ApiError(
                400, {"status": "BAD_REFRESH_TOKEN", "message": "missing or unknown refresh token"}
            )
        access = f"oauth-{uuid.uuid4().hex}"
        self.access_tokens[access] = time.time() + 1800
        return {
            "access_token": access,
            "refresh_token": form["refresh_token"],
            "expires_in": 1800,
            "token_type": "bearer",
            "token_use": "access_token",
            "hub_id": self.hub_id,
        }

    def _search(self, object_type: str, request: Any) -> dict[str, Any]:
        if not isinstance(request, dict):
            raise _invalid("The request body must be a JSON object.")
        unknown = set(request) - {"filterGroups", "sorts", "query", "properties", "limit", "after"}
        if unknown:
            raise _invalid(f"Unrecognized field(s): {sorted(unknown)}")
        limit = request.get("limit", 10)
        if not isinstance(limit, int) or not 1 <= limit <= SEARCH_MAX_LIMIT:
            raise _invalid(f"limit must be between 1 and {SEARCH_MAX_LIMIT}, got {limit!r}.")
        offset = _offset(request.get("after"))
        if offset + limit > SEARCH_RESULT_CAP:
            raise _invalid(f"Search can page through at most {SEARCH_RESULT_CAP} results.")
        groups = request.get("filterGroups") or []
        _check_filters(groups)
        sort = _sort(request.get("sorts") or [])
        with self.lock:
            total, page = self._matching(object_type, groups, sort, offset, limit)
        names = request.get("properties") or DEFAULT_PROPERTIES[object_type]
        result: dict[str, Any] = {
            "total": total,
            "results": [_as_json(object_type, o, names, search=True) for o in page],
        }
        if offset + limit < total:
            after = str(offset + limit)
            result["paging"] = {"next": {"after": after, "link": f"?after={after}"}}
        return result

    def _search_calls(self, request: Any) -> dict[str, Any]:
        """Calls logged through the API, found by EQ filters on their properties."""
        if not isinstance(request, dict) or set(request) - {"filterGroups", "properties", "limit"}:
            raise _invalid("The fake searches calls with filterGroups, properties and limit only.")
        groups = request.get("filterGroups") or []
        _check_filters(groups)
        if any(f.get("operator") != "EQ" for g in groups for f in g["filters"]):
            raise _invalid("The fake searches calls with EQ filters only.")
        indexed_until = self._indexed_until_ms()
        with self.lock:
            found = [
                _written_json(
                    int(call_id), stored["properties"], stored["created_ms"], stored["modified_ms"]
                )
                for call_id, stored in self.written["calls"].items()
                if stored["created_ms"] <= indexed_until
                and any(
                    all(
                        stored["properties"].get(f["propertyName"]) == f["value"]
                        for f in g["filters"]
                    )
                    for g in groups
                )
            ]
        limit = request.get("limit", 10)
        return {"total": len(found), "results": found[:limit]}

    def _matching(
        self,
        object_type: str,
        groups: list,
        sort: tuple[str, bool] | None,
        offset: int,
        limit: int,
    ) -> tuple[int, list[FakeObject]]:
        """How many records match, and the page of them from offset."""
        live = self._by_modified(object_type)
        single = groups[0]["filters"] if len(groups) == 1 else []
        if (
            len(single) == 1
            and single[0]["propertyName"] == MODIFIED[object_type]
            and single[0]["operator"] == "GTE"
            and sort in (None, (MODIFIED[object_type], True))
        ):
            # The sync's query: slice the page from the sorted index instead of every match.
            indexed_until = self._indexed_until_ms()
            live = live[: bisect.bisect_right(live, (indexed_until, float("inf")))]
            start = bisect.bisect_left(live, (_ms(single[0].get("value")), 0))
            page = live[start + offset : start + offset + limit]
            return len(live) - start, [self.objects[object_type][i] for _, i in page]
        indexed_until = self._indexed_until_ms()
        candidates = [
            o for _, i in live if (o := self.objects[object_type][i]).modified_ms <= indexed_until
        ]
        found = [
            o
            for o in candidates
            if not groups or any(_group_matches(object_type, o, g) for g in groups)
        ]
        if sort:
            found.sort(
                key=lambda o: (_value(object_type, o, sort[0]) or "", o.id), reverse=not sort[1]
            )
        return len(found), found[offset : offset + limit]

    def _indexed_until_ms(self) -> float:
        """Search sees what was written up to then (all of it without a lag: times may be ahead)."""
        if not self.search_lag_seconds:
            return float("inf")
        return (time.time() - self.search_lag_seconds) * 1000

    def _by_modified(self, object_type: str) -> list[tuple[int, int]]:
        if object_type not in self._sorted:
            self._sorted[object_type] = sorted(
                (o.modified_ms, o.id) for o in self.objects[object_type].values() if not o.archived
            )
        return self._sorted[object_type]

    def _by_id(self, object_type: str, archived: bool) -> list[int]:
        key = (object_type, archived)
        if key not in self._ids:
            objects = self.objects[object_type]
            self._ids[key] = sorted(i for i, o in objects.items() if o.archived == archived)
        return self._ids[key]

    def _reindex(self, object_type: str) -> None:
        self._sorted.pop(object_type, None)
        self._ids.pop((object_type, False), None)
        self._ids.pop((object_type, True), None)

    def _list(self, object_type: str, query: dict[str, list[str]]) -> dict[str, Any]:
        raw_limit = (query.get("limit") or ["10"])[0]
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= LIST_MAX_LIMIT:
            raise _invalid(f"limit must be between 1 and {LIST_MAX_LIMIT}, got {raw_limit!r}.")
        limit = int(raw_limit)
        archived = (query.get("archived") or ["false"])[0]
        if archived not in ("true", "false"):
            raise _invalid("archived must be true or false.")
        after = (query.get("after") or [None])[0]
        start_id = _offset(after)
        names = (
            ",".join(query.get("properties") or []).split(",") if query.get("properties") else []
        )
        with self.lock:
            ids = self._by_id(object_type, archived == "true")
            start = bisect.bisect_right(ids, start_id)
            page = [self.objects[object_type][i] for i in ids[start : start + limit]]
        result: dict[str, Any] = {
            "results": [
                _as_json(object_type, o, names or DEFAULT_PROPERTIES[object_type]) for o in page
            ]
        }
        if len(ids) - start > limit:
            after = str(page[-1].id)
            result["paging"] = {"next": {"after": after, "link": f"?after={after}"}}
        return result

    def _owners(self, query: dict[str, list[str]]) -> dict[str, Any]:
        raw_limit = (query.get("limit") or ["100"])[0]
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= OWNERS_MAX_LIMIT:
            raise _invalid(f"limit must be between 1 and {OWNERS_MAX_LIMIT}, got {raw_limit!r}.")
        archived = (query.get("archived") or ["false"])[0]
        if archived not in {"true", "false"}:
            raise _invalid(f"archived must be true or false, got {archived!r}.")
        email = (query.get("email") or [""])[0].lower()
        found = [
            o
            for o in self.owners
            if (not email or o["email"].lower() == email) and str(o["archived"]).lower() == archived
        ]
        start, limit = _offset((query.get("after") or [None])[0]), int(raw_limit)
        result: dict[str, Any] = {"results": found[start : start + limit]}
        if len(found) > start + limit:
            after = str(start + limit)
            result["paging"] = {"next": {"after": after, "link": f"?after={after}"}}
        return result

    def _create(self, object_type: str, request: Any) -> dict[str, Any]:
        if not isinstance(request, dict) or set(request) - {"properties", "associations"}:
            raise _invalid("The body is {properties, associations}.")
        properties = self._checked_properties(object_type, request.get("properties"))
        missing = sorted(REQUIRED[object_type] - set(properties))
        if missing:
            raise _property_errors(
                [(name, "REQUIRED_PROPERTY", f"{name} is required") for name in missing]
            )
        links = self._checked_associations(object_type, request.get("associations") or [])
        with self.lock:
            self._next_id += 1
            object_id, now = self._next_id, int(time.time() * 1000)
            if object_type == "contacts":
                stored = FakeObject(object_id, dict(properties), now, now)
                self.objects["contacts"][object_id] = stored
                self._reindex("contacts")
                return _as_json("contacts", stored, list(properties)) | {"url": None}
            self.written[object_type][str(object_id)] = {
                "properties": properties,
                "associations": links,
                "created_ms": now,
                "modified_ms": now,
            }
        return _written_json(object_id, properties, now, now)

    def _update(self, object_type: str, object_id: str, request: Any) -> dict[str, Any]:
        if not isinstance(request, dict) or set(request) != {"properties"}:
            raise _invalid("The body is {properties}.")
        properties = self._checked_properties(object_type, request["properties"])
        with self.lock:
            stored = self.written[object_type].get(object_id)
            if stored is None:
                raise hubspot_error(
                    404,
                    "OBJECT_NOT_FOUND",
                    "Object not found.  objectId are usually numeric.",
                    context={"id": [object_id]},
                )
            stored["properties"].update(properties)
            stored["modified_ms"] = int(time.time() * 1000)
            return _written_json(
                int(object_id), stored["properties"], stored["created_ms"], stored["modified_ms"]
            )

    def _update_synced(self, object_type: str, object_id: str, request: Any) -> dict[str, Any]:
        """PATCH /crm/v3/objects/{contacts|companies}/{id}: properties of a record, which is
        modified by it (lastmodifieddate moves, as in HubSpot)."""
        if not isinstance(request, dict) or set(request) != {"properties"}:
            raise _invalid("The body is {properties}.")
        properties = self._checked_properties(object_type, request["properties"])
        with self.lock:
            record = self.objects[object_type].get(int(object_id)) if object_id.isdigit() else None
            if record is None or record.archived:
                raise hubspot_error(404, "OBJECT_NOT_FOUND", "Object not found.")
            record.properties.update(properties)
            record.modified_ms = int(time.time() * 1000)
            self._reindex(object_type)
            return _as_json(object_type, record, list(properties))

    def _account_details(self) -> dict[str, Any]:
        """GET /account-info/v3/details: the portal (hub) id record URLs carry, and its domain."""
        return {
            "portalId": self.hub_id,
            "accountType": "STANDARD",
            "timeZone": "US/Eastern",
            "companyCurrency": "USD",
            "additionalCurrencies": [],
            "utcOffset": "-05:00",
            "utcOffsetMilliseconds": -18_000_000,
            "uiDomain": "app.hubspot.com",
            "dataHostingLocation": "na1",
        }

    def _read_written(
        self, object_type: str, object_id: str | None, query: dict[str, list[str]]
    ) -> dict[str, Any]:
        """GET the calls or tasks written: one by id, or a page of them by id, as HubSpot does.

        Only the properties asked for (`properties=a,b`) come back beside the default stamps;
        `associations=contacts` adds the records each is associated with.
        """
        names = [n for n in ",".join(query.get("properties") or []).split(",") if n]
        wanted = {a for a in ",".join(query.get("associations") or []).split(",") if a}

        def as_json(written_id: str, stored: dict[str, Any]) -> dict[str, Any]:
            properties = {name: stored["properties"].get(name) for name in names}
            result = _written_json(
                int(written_id), properties, stored["created_ms"], stored["modified_ms"]
            )
            links: dict[str, list[dict[str, str]]] = {}
            for link in stored["associations"]:
                if link["to"] in wanted:
                    kind = f"{object_type[:-1]}_to_{link['to'][:-1]}"
                    links.setdefault(link["to"], []).append({"id": link["id"], "type": kind})
            if links:
                result["associations"] = {to: {"results": found} for to, found in links.items()}
            return result

        with self.lock:
            written = dict(self.written[object_type])
        if object_id is not None:
            if object_id not in written:
                raise hubspot_error(
                    404, "OBJECT_NOT_FOUND", "Object not found.  objectId are usually numeric."
                )
            return as_json(object_id, written[object_id])
        raw_limit = (query.get("limit") or ["10"])[0]
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= LIST_MAX_LIMIT:
            raise _invalid(f"limit must be between 1 and {LIST_MAX_LIMIT}, got {raw_limit!r}.")
        limit, start_id = int(raw_limit), _offset((query.get("after") or [None])[0])
        ids = sorted(int(i) for i in written if int(i) > start_id)
        result: dict[str, Any] = {
            "results": [as_json(str(i), written[str(i)]) for i in ids[:limit]]
        }
        if len(ids) > limit:
            after = str(ids[limit - 1])
            result["paging"] = {"next": {"after": after, "link": f"?after={after}"}}
        return result

    def _associations(self, from_type: str, from_id: str, rest: list[str]) -> dict[str, Any]:
        """GET /crm/v4/objects/{from}/{id}/associations/{to}: the calls or tasks of a record."""
        to_type = rest[1] if rest[0] == "associations" else ""
        type_id = REVERSE_ASSOCIATION_TYPES.get((from_type, to_type))
        if type_id is None:
            raise hubspot_error(404, "NOT_FOUND", f"No associations from {from_type} to {to_type}")
        with self.lock:
            linked = [
                int(written_id)
                for written_id, stored in self.written[to_type].items()
                if any(
                    link["to"] == from_type and link["id"] == from_id
                    for link in stored["associations"]
                )
            ]
        kind = {"category": "HUBSPOT_DEFINED", "typeId": type_id, "label": None}
        return {"results": [{"toObjectId": i, "associationTypes": [kind]} for i in sorted(linked)]}

    def _checked_properties(self, object_type: str, properties: Any) -> dict[str, str]:
        """HubSpot's property validation: unknown names, unknown options, malformed values."""
        if not isinstance(properties, dict):
            raise _invalid("properties must be an object of property name -> value.")
        known = {
            **WRITABLE.get(object_type, {}),
            **dict.fromkeys(self.custom_properties.get(object_type, ())),
        }
        errors: list[tuple[str, str, str]] = []
        for name, value in properties.items():
            if name not in known:
                errors.append((name, "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist'))
            elif not isinstance(value, str | int | float | bool) and value is not None:
                errors.append((name, "INVALID_VALUE", f"{value!r} is not a valid value"))
            elif (options := known[name]) is not None and str(value) not in options:
                message = f"{value} was not one of the allowed options: {sorted(options)}"
                errors.append((name, "INVALID_OPTION", message))
            elif error := self._bad_value(name, str(value) if value is not None else ""):
                errors.append((name, "INVALID_VALUE", error))
        if errors:
            raise _property_errors(errors)
        return {name: str(value) if value is not None else "" for name, value in properties.items()}

    def _bad_value(self, name: str, value: str) -> str | None:
        if name in ("hs_timestamp", "hs_call_duration") and not value.isdigit():
            return f"{value!r} is not a number (epoch milliseconds / milliseconds)"
        if name == "hs_call_recording_url" and value and not value.startswith("https://"):
            return "The recording URL must use HTTPS."
        if name == "hs_call_disposition" and value not in {d["id"] for d in self.dispositions}:
            return f"{value} is not a call outcome of this account"
        if name == "hubspot_owner_id" and value and value not in {o["id"] for o in self.owners}:
            return f"{value} is not a valid owner id"
        return None

    def _checked_associations(self, object_type: str, associations: Any) -> list[dict[str, Any]]:
        if not isinstance(associations, list):
            raise _invalid("associations must be a list.")
        links = []
        shape = "Each association is {to: {id}, types: [{associationCategory, associationTypeId}]}."
        for item in associations:
            to = item.get("to") if isinstance(item, dict) else None
            types = item.get("types") if isinstance(item, dict) else None
            if (
                not isinstance(to, dict)
                or not to.get("id")
                or not isinstance(types, list)
                or not types
            ):
                raise _invalid(shape)
            to_id = str(to["id"])
            for spec in types:
                if not isinstance(spec, dict):
                    raise _invalid(shape)
                target = ASSOCIATION_TYPES.get((object_type, spec.get("associationTypeId")))
                if spec.get("associationCategory") != "HUBSPOT_DEFINED" or target is None:
                    raise _invalid(f"{spec} is not a valid association type from {object_type}.")
                record = self.objects[target].get(int(to_id)) if to_id.isdigit() else None
                if record is None or record.archived:
                    raise _invalid(f"No {target[:-1]} with id {to_id} to associate to.")
                links.append({"to": target, "id": to_id, "typeId": spec["associationTypeId"]})
        return links


class _Handler(JsonHandler):
    api_error = ApiError
    content_type = "application/json;charset=utf-8"


def _rate_limit_body(policy: str = "TEN_SECONDLY_ROLLING") -> dict[str, Any]:
    limit = {"DAILY": "daily", "SECONDLY": "secondly"}.get(policy, "ten secondly")
    return {
        "status": "error",
        "message": f"You have reached your {limit} limit.",
        "errorType": "RATE_LIMIT",
        "correlationId": str(uuid.uuid4()),
        "policyName": policy,
        "requestId": str(uuid.uuid4()),
    }


def _property_errors(errors: list[tuple[str, str, str]]) -> ApiError:
    """HubSpot's 400 for bad property values: the per-property details inside the message."""
    details = [
        {"isValid": False, "message": message, "error": code, "name": name}
        for name, code, message in errors
    ]
    return hubspot_error(
        400, "VALIDATION_ERROR", f"Property values were not valid: {json.dumps(details)}"
    )


def _written_json(
    object_id: int, properties: dict[str, Any], created_ms: int, modified_ms: int
) -> dict[str, Any]:
    stamps = {"hs_createdate": iso(created_ms), "hs_lastmodifieddate": iso(modified_ms)}
    return {
        "id": str(object_id),
        "properties": {**properties, **stamps, "hs_object_id": str(object_id)},
        "createdAt": iso(created_ms),
        "updatedAt": iso(modified_ms),
        "archived": False,
    }


def _invalid(message: str) -> ApiError:
    return hubspot_error(
        400,
        "VALIDATION_ERROR",
        message,
        links={"knowledge-base": "https://www.hubspot.com/products/service/knowledge-base"},
    )


def _json_body(body: bytes) -> Any:
    try:
        return json.loads(body or b"null")
    except ValueError as error:
        raise _invalid("Invalid input JSON on line 1") from error


def _offset(after: Any) -> int:
    if after in (None, ""):
        return 0
    if not isinstance(after, str) or not after.isdigit():
        raise _invalid(f"after must be a cursor this API returned, got {after!r}.")
    return int(after)


def _check_filters(groups: Any) -> None:
    if not isinstance(groups, list) or len(groups) > 5:
        raise _invalid("At most 5 filterGroups are allowed.")
    total = 0
    for group in groups:
        filters = group.get("filters") if isinstance(group, dict) else None
        if not isinstance(filters, list) or len(filters) > 10:
            raise _invalid("Each filterGroup needs a filters list of at most 10 filters.")
        total += len(filters)
        for item in filters:
            if not isinstance(item, dict) or not item.get("propertyName"):
                raise _invalid("Each filter needs a propertyName.")
            if item.get("operator") not in OPERATORS:
                raise _invalid(f"Unknown operator {item.get('operator')!r}.")
            if item["propertyName"] in DATE_PROPERTIES and "value" in item:
                _ms(item["value"])
    if total > 25:
        raise _invalid("At most 25 filters are allowed in total.")


def _sort(sorts: Any) -> tuple[str, bool] | None:
    if not isinstance(sorts, list) or len(sorts) > 1:
        raise _invalid("At most one sort is allowed.")
    if not sorts:
        return None
    sort = sorts[0]
    if not isinstance(sort, dict) or sort.get("direction") not in ("ASCENDING", "DESCENDING"):
        raise _invalid("A sort is {propertyName, direction: ASCENDING|DESCENDING}.")
    return sort["propertyName"], sort["direction"] == "ASCENDING"


def _ms(value: Any) -> int:
    if not isinstance(value, str) or not value.isdigit():
        raise _invalid(f"Date filter values are epoch milliseconds as strings, got {value!r}.")
    return int(value)


def _value(object_type: str, record: FakeObject, name: str) -> str | None:
    if name == MODIFIED[object_type]:
        return iso(record.modified_ms)
    if name == CREATED[object_type]:
        return iso(record.created_ms)
    if name == "hs_object_id":
        return str(record.id)
    return record.properties.get(name)


def _group_matches(object_type: str, record: FakeObject, group: dict) -> bool:
    return all(_filter_matches(object_type, record, f) for f in group["filters"])


def _filter_matches(object_type: str, record: FakeObject, item: dict) -> bool:
    name, operator, wanted = item["propertyName"], item["operator"], item.get("value")
    if name in DATE_PROPERTIES:
        value: Any = record.modified_ms if name == MODIFIED[object_type] else record.created_ms
        wanted = _ms(wanted) if wanted is not None else None
    else:
        value = _value(object_type, record, name)
    if operator == "HAS_PROPERTY":
        return value not in (None, "")
    if operator == "NOT_HAS_PROPERTY":
        return value in (None, "")
    if value is None:
        return False
    if operator == "CONTAINS_TOKEN":
        return str(wanted).lower() in str(value).lower().replace("-", " ").split()
    comparisons = {
        "EQ": lambda: (
            str(value).lower() == str(wanted).lower()
            if not isinstance(value, int)
            else value == wanted
        ),
        "NEQ": lambda: value != wanted,
        "GT": lambda: value > wanted,
        "GTE": lambda: value >= wanted,
        "LT": lambda: value < wanted,
        "LTE": lambda: value <= wanted,
        "IN": lambda: value in (item.get("values") or []),
    }
    if operator not in comparisons:
        raise _invalid(f"The fake does not implement {operator} yet.")
    return comparisons[operator]()


def _as_json(
    object_type: str, record: FakeObject, names: list[str], *, search: bool = False
) -> dict:
    wanted = set(names) | (
        {"hs_object_id", CREATED[object_type], MODIFIED[object_type]} if search else set()
    )
    wanted.add("hs_object_id")
    result = {
        "id": str(record.id),
        "properties": {name: _value(object_type, record, name) for name in sorted(wanted)},
        "createdAt": iso(record.created_ms),
        "updatedAt": iso(record.modified_ms),
        "archived": record.archived,
    }
    if record.archived_ms:
        result["archivedAt"] = iso(record.archived_ms)
    return result


FakeHubSpot.handler_class = _Handler


def serve_demo(options: dict[str, Any]) -> tuple[FakeHubSpot, str, dict[str, Any]]:
    """Start the fake for `manage.py fakecrm`; answer it, a description, the connection JSON."""
    fake = FakeHubSpot(contacts=options["contacts"], companies=options["companies"])
    owner_ids = [fake.add_owner(email) for email in options["owners"]]
    for n, owner_id in enumerate(owner_ids):  # every third contact, in turn
        fake.set_owner(
            "contacts", list(fake.objects["contacts"])[n :: 3 * len(owner_ids)], owner_id
        )
    url = fake.start(port=options["port"])
    token = next(iter(fake.private_app_tokens))
    return (
        fake,
        f"Fake HubSpot at {url} with {options['contacts']} contacts and "
        f"{options['companies']} companies",
        {"credentials": {"private_app_token": token, "base_url": url}},
    )
