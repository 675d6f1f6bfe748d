"""A strict fake Pipedrive on 127.0.0.1: a real HTTP server for tests and demos.

At least as strict as the real API (../shared/reference/crm-apis.md section 3): `x-api-token`
(or `api_token=`) and expiring OAuth Bearer tokens, 401 `unauthorized access`; v2 lists with
`updated_since`, `sort_by`, keyset `cursor`/`next_cursor` and `limit` <= 500 (search <= 100);
unknown query parameters refused; v1 call logs with their required fields and outcome enum;
v2 activities refusing `person_id` with Pipedrive's exact message; call logs for another user
refused (403) unless the token's user is an admin, and answered without the optional
`activity_id`; the {success, data,
additional_data} envelope and {success: false, error, error_info} errors; a 2-second burst limit
per token (10 for the search endpoints) answered with 429 and x-ratelimit-* headers; the
company's daily token budget, each request costing tokens by endpoint; injectable faults.
Unverified details (the 429 and OAuth error bodies, loose phone search, token costs) are noted
where used.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import json
import re
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from fakes.pipedrive_data import (
    USERS,
    FakeRecord,
    generate_organizations,
    generate_persons,
    rfc3339,
)
from fakes.server import FakeServer, JsonHandler

LIST_MAX_LIMIT = 500
SEARCH_MAX_LIMIT = 100
IDS_MAX = 100
BURST_WINDOW_SECONDS = 2
SEARCH_BURST_LIMIT = 10  # per token and 2 s window on every plan
# The daily token budget is 30,000 x the plan's multiplier (1 to 7) x seats; each endpoint's
# cost is its OAS x-token-cost. The costs below are UNVERIFIED figures of that shape: v2 costs
# less than v1, a list more than one record, a search most [crm-apis.md 3.5].
TOKENS_PER_SEAT = 30_000
LIST_PARAMS = {
    "filter_id", "ids", "owner_id", "org_id", "deal_id", "updated_since", "updated_until",
    "sort_by", "sort_direction", "include_fields", "custom_fields", "include_option_labels",
    "include_labels", "limit", "cursor",
}  # fmt: skip
SEARCH_PARAMS = {"term", "fields", "exact_match", "organization_id", "include_fields", "limit"}
SEARCH_FIELDS = {"custom_fields", "email", "notes", "phone", "name"}
CALL_LOG_OUTCOMES = {
    "connected", "no_answer", "left_message", "left_voicemail", "wrong_number", "busy",
}  # fmt: skip
CALL_LOG_FIELDS = {
    "user_id", "activity_id", "subject", "duration", "outcome", "from_phone_number",
    "to_phone_number", "start_time", "end_time", "person_id", "org_id", "deal_id", "lead_id",
    "note",
}  # fmt: skip
ACTIVITY_FIELDS = {
    "subject", "type", "owner_id", "deal_id", "lead_id", "org_id", "project_id", "due_date",
    "due_time", "duration", "busy", "done", "location", "participants", "attendees",
    "public_description", "priority", "note",
}  # fmt: skip
ACTIVITY_TYPES = {"call", "meeting", "task", "deadline", "email", "lunch"}
ACTIVITY_FILTERS = ("owner_id", "person_id", "org_id")
ACTIVITY_LIST_PARAMS = {*ACTIVITY_FILTERS, "updated_since", "limit", "cursor"}
PERSON_FIELDS = {
    "name", "owner_id", "org_id", "add_time", "update_time", "emails", "phones", "visible_to",
    "label_ids", "marketing_status", "custom_fields",
}  # fmt: skip
READ_ONLY_PERSON_ID = (
    "'person_id' is a read-only field. Add a primary participant to set 'person_id' instead."
)
ERROR_INFO = "Please check developers.pipedrive.com for more information about Pipedrive API."


class ApiError(Exception):
    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None):
        self.status, self.body, self.headers = status, body, headers or {}


def pipedrive_error(status: int, message: str, code: str | None = None) -> ApiError:
    body: dict[str, Any] = {
        "success": False,
        "error": message,
        "error_info": ERROR_INFO,
        "data": None,
        "additional_data": None,
    }
    if code:
        body["code"] = code  # v2 errors name a code
    return ApiError(status, body)


def _invalid(message: str) -> ApiError:
    return pipedrive_error(400, message, "ERR_SCHEMA_VALIDATION_FAILED")


def _unauthorized() -> ApiError:
    return ApiError(
        401,
        {
            "success": False,
            "error": "unauthorized access",
            "errorCode": 401,
            "error_info": ERROR_INFO,
        },
    )


@dataclass
class Fault:
    """Answer the next `times` matching requests with this instead of the real thing."""

    kind: str  # "status", "slow", "malformed"
    times: int
    path_contains: str = ""
    status: int = 500
    retry_after: str | None = None  # Pipedrive's 429s carry x-ratelimit-reset, not always this
    seconds: float = 0.0
    daily: bool = False  # a 429 for the spent daily budget (x-daily-requests-left: 0)


class FakePipedrive(FakeServer):
    def __init__(
        self,
        *,
        persons: int = 0,
        organizations: int = 0,
        api_token: str = "pd-fake-api-token",  # noqa: S107 - a fake
        burst_limit: int = 80,
        daily_tokens: int = TOKENS_PER_SEAT * 10,  # an Essential plan (x1) with 10 seats
        admin: bool = True,  # whether the token's user (USERS[0]) may act for other users
    ) -> None:
        self.records = {
            "persons": {r.id: r for r in generate_persons(persons, organizations=organizations)},
            "organizations": {r.id: r for r in generate_organizations(organizations)},
        }
        self.users = {u["id"]: dict(u) for u in USERS}
        self.company_domain = "fakeco"  # https://fakeco.pipedrive.com: where records open
        self.api_tokens = {api_token}
        self.access_tokens: dict[str, float] = {}  # token -> expiry (epoch s)
        self.refresh_tokens: set[str] = set()
        self.authorization_codes: dict[str, str] = {}  # code -> the redirect_uri it was for
        self.clients = {"fake-client-id": "fake-client-secret"}
        self.call_logs: dict[str, dict[str, Any]] = {}
        self.call_log_activities: dict[str, int] = {}  # call log id -> its activity's id
        self.token_user_id = USERS[0]["id"]
        self.admin = admin
        self.activities: dict[int, dict[str, Any]] = {}
        self.burst_limit = burst_limit
        self.daily_tokens = daily_tokens
        self.tokens_spent = 0  # today's, by every token of the company
        self.rate_limited = 0  # requests answered 429 for a limit (not for an injected fault)
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str, dict[str, list[str]]]] = []
        self._calls: dict[str | tuple[str, str], deque[float]] = {}
        self._sorted: dict[tuple[str, str], list[tuple[int, int]]] = {}
        self.lock = threading.RLock()

    # ----- test controls
    def issue_oauth_tokens(self, expires_in: float = 3599) -> dict[str, Any]:
        access, refresh = f"v1:{uuid.uuid4().hex}", f"refresh:{uuid.uuid4().hex}"
        self.access_tokens[access] = time.time() + expires_in
        self.refresh_tokens.add(refresh)
        return {"access_token": access, "refresh_token": refresh, "expires_in": int(expires_in)}

    def touch(self, kind: str, ids: list[int], *, at_ms: int | None = None) -> None:
        """Edit records now (or at at_ms), as a user would in Pipedrive."""
        with self.lock:
            for record_id in ids:
                record = self.records[kind][record_id]
                record.update_ms = at_ms or int(time.time()) * 1000
                key = "last_name" if kind == "persons" else "name"
                record.fields[key] = f"Edited {record.update_ms}"
            self._sorted.clear()

    def delete(self, kind: str, ids: list[int]) -> None:
        """Delete records (Pipedrive marks them deleted, then purges them after 30 days)."""
        with self.lock:
            for record_id in ids:
                self.records[kind][record_id].deleted = True
            self._sorted.clear()

    def paths(self, method: str | None = None) -> list[str]:
        return [p for m, p, _ in self.requests if method in (None, m)]

    def queries(self, path: str) -> list[dict[str, list[str]]]:
        return [q for _, p, q in self.requests if p == path]

    # ----- the API
    def handle(
        self, method: str, path: str, query: dict[str, list[str]], headers: Any, body: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        with self.lock:
            self.requests.append((method, path, query))
            fault = self._take_fault(path)
        if fault and fault.kind == "slow":
            time.sleep(fault.seconds)
        if path == "/oauth/token" and method == "POST":
            return 200, self._token(headers, body), {}
        token = self._authenticate(headers, query)
        limits = self._rate_limit(token, method, path)
        query.pop("api_token", None)
        if fault and fault.kind == "status":
            return self._fault_answer(fault, limits)
        route = self._route(method, path)
        result = route(query, body, path)
        if fault and fault.kind == "malformed":
            return 200, {"success": True, "data": "oops", "additional_data": None}, limits
        return 200, result, limits

    def _fault_answer(self, fault: Fault, limits: dict[str, str]) -> tuple[int, Any, dict]:
        extra = {"Retry-After": fault.retry_after} if fault.retry_after else {}
        if fault.status == 429:
            headers = {**limits, "x-ratelimit-remaining": "0", "x-ratelimit-reset": "1", **extra}
            if fault.daily:
                headers["x-daily-requests-left"] = "0"
            raise ApiError(429, _rate_limit_body(), headers)
        raise ApiError(
            fault.status, pipedrive_error(fault.status, "Internal server error").body, extra
        )

    def _route(self, method: str, path: str):
        v1 = re.fullmatch(r"/(?:api/)?v1/(.+)", path)
        v2 = re.fullmatch(r"/api/v2/(.+)", path)
        rest = (v1 or v2).group(1) if (v1 or v2) else ""
        routes = {
            (v2, "GET", "persons"): lambda q, b, p: self._list("persons", q),
            (v2, "GET", "organizations"): lambda q, b, p: self._list("organizations", q),
            (v2, "GET", "persons/search"): lambda q, b, p: self._search(q),
            (v2, "POST", "persons"): lambda q, b, p: self._add_person(_json_body(b)),
            (v2, "POST", "activities"): lambda q, b, p: self._add_activity(_json_body(b)),
            (v2, "GET", "activities"): lambda q, b, p: self._list_activities(q),
            (v1, "GET", "users"): lambda q, b, p: self._users(q),
            (v1, "GET", "users/me"): lambda q, b, p: self._me(q),
            (v1, "GET", "users/find"): lambda q, b, p: self._find_users(q),
            (v1, "POST", "callLogs"): lambda q, b, p: self._add_call_log(_json_body(b)),
        }
        for (matched, verb, name), handler in routes.items():
            if matched and verb == method and rest == name:
                return handler
        activity = re.fullmatch(r"activities/(\d+)", rest) if v2 else None
        if activity and method in ("GET", "PATCH"):
            activity_id = int(activity.group(1))
            return lambda q, b, p: self._activity(method, activity_id, b)
        call_log = re.fullmatch(r"callLogs/([^/]+)", rest) if v1 else None
        if call_log and method in ("GET", "DELETE"):
            return lambda q, b, p: self._call_log(method, call_log.group(1))
        raise pipedrive_error(404, f"Unknown method {method} {path}", "ERR_NOT_FOUND")

    def _take_fault(self, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.times > 0 and fault.path_contains in path:
                fault.times -= 1
                return fault
        return None

    def _authenticate(self, headers: Any, query: dict[str, list[str]]) -> str:
        token = headers.get("x-api-token") or (query.get("api_token") or [""])[0]
        if token:
            if token not in self.api_tokens:
                raise _unauthorized()
            return token
        value = headers.get("Authorization") or ""
        if not value.startswith("Bearer "):
            raise _unauthorized()
        token = value.removeprefix("Bearer ")
        expiry = self.access_tokens.get(token)
        if expiry is None or expiry < time.time():
            raise _unauthorized()
        return token

    def _rate_limit(self, token: str, method: str, path: str) -> dict[str, str]:
        now = time.monotonic()
        search = path.endswith("/search")
        with self.lock:
            calls = self._calls.setdefault(("search", token) if search else token, deque())
            while calls and calls[0] <= now - BURST_WINDOW_SECONDS:
                calls.popleft()
            calls.append(now)
            limit = SEARCH_BURST_LIMIT if search else self.burst_limit
            reset = max(1, int(calls[0] + BURST_WINDOW_SECONDS - now + 0.999))
            headers = {
                "x-ratelimit-limit": str(limit),
                "x-ratelimit-remaining": str(max(0, limit - len(calls))),
                "x-ratelimit-reset": str(reset),
            }
            if len(calls) > limit:
                self.rate_limited += 1
                raise ApiError(429, _rate_limit_body(), headers)
            self.tokens_spent += token_cost(method, path)
            if self.tokens_spent > self.daily_tokens:
                self.rate_limited += 1
                # The answer to a spent token budget is UNVERIFIED: a 429 that names the day.
                raise ApiError(429, _rate_limit_body(), {**headers, "x-daily-requests-left": "0"})
        return headers

    def _token(self, headers: Any, body: bytes) -> dict[str, Any]:
        # The token endpoint's error bodies follow RFC 6749 (UNVERIFIED for Pipedrive).
        if not (headers.get("Content-Type") or "").startswith("application/x-www-form-urlencoded"):
            raise ApiError(400, {"error": "invalid_request", "error_description": "Send a form."})
        try:
            pair = base64.b64decode(
                (headers.get("Authorization") or "").removeprefix("Basic "), validate=True
            ).decode()
        except (binascii.Error, UnicodeDecodeError):
            pair = ""
        client_id, _, secret = pair.partition(":")
        if not client_id or self.clients.get(client_id) != secret:
            raise ApiError(401, {"error": "invalid_client", "error_description": "Invalid client"})
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        grant = form.get("grant_type")
        if grant == "authorization_code":
            issued_for = self.authorization_codes.pop(form.get("code", ""), None)
            if issued_for is None or issued_for != form.get("redirect_uri"):
                raise ApiError(400, {"error": "invalid_grant", "error_description": "Invalid code"})
            tokens = self.issue_oauth_tokens()
        elif grant == "refresh_token":
            if form.get("refresh_token") not in self.refresh_tokens:
                raise ApiError(
                    400, {"error": "invalid_grant", "error_description": "Invalid refresh token"}
                )
            tokens = self.issue_oauth_tokens()
            self.refresh_tokens.discard(tokens["refresh_token"])
            tokens["refresh_token"] = form["refresh_token"]
        else:
            raise ApiError(400, {"error": "unsupported_grant_type", "error_description": grant})
        return {
            **tokens,
            "token_type": "Bearer",
            "scope": "base,contacts:full",
            "api_domain": self.url,
        }

    # ----- v2 persons and organizations
    def _list(self, kind: str, query: dict[str, list[str]]) -> dict[str, Any]:
        params = _single(query, LIST_PARAMS)
        limit = _limit(params.get("limit"), LIST_MAX_LIMIT)
        sort_by = params.get("sort_by", "id")
        direction = params.get("sort_direction", "asc")
        if sort_by not in ("id", "update_time", "add_time") or direction not in ("asc", "desc"):
            raise _invalid("sort_by must be id, update_time or add_time; sort_direction asc|desc.")
        since = _time_param(params, "updated_since")
        until = _time_param(params, "updated_until")
        wanted_ids = _ids(params.get("ids"))
        with self.lock:
            keys = self._keys(kind, sort_by)
            if direction == "desc":
                keys = keys[::-1]
            start = 0
            if "cursor" in params:
                after = _decode_cursor(params["cursor"], sort_by, direction)
                if direction == "asc":
                    start = bisect.bisect_right(keys, after)
                else:
                    start = next((i for i, k in enumerate(keys) if k < after), len(keys))
            elif since is not None and sort_by == "update_time" and direction == "asc":
                start = bisect.bisect_left(keys, (since, 0))
            page: list[FakeRecord] = []
            index = start
            records = self.records[kind]
            while index < len(keys) and len(page) <= limit:
                record = records[keys[index][1]]
                index += 1
                if (since is not None and record.update_ms < since) or (
                    until is not None and record.update_ms >= until
                ):
                    continue
                if wanted_ids is not None and record.id not in wanted_ids:
                    continue
                page.append(record)
            more = len(page) > limit
            page = page[:limit]
            data = [_as_json(r) for r in page]
        next_cursor = _encode_cursor(page[-1], sort_by, direction) if more else None
        return {"success": True, "data": data, "additional_data": {"next_cursor": next_cursor}}

    def _keys(self, kind: str, sort_by: str) -> list[tuple[int, int]]:
        if (kind, sort_by) not in self._sorted:
            live = [r for r in self.records[kind].values() if not r.deleted]
            self._sorted[(kind, sort_by)] = sorted((_sort_value(r, sort_by), r.id) for r in live)
        return self._sorted[(kind, sort_by)]

    def _search(self, query: dict[str, list[str]]) -> dict[str, Any]:
        params = _single(query, SEARCH_PARAMS | {"cursor"})
        exact = params.get("exact_match", "false")
        if exact not in ("true", "false"):
            raise _invalid("exact_match must be true or false.")
        term = params.get("term", "")
        if len(term) < (1 if exact == "true" else 2):
            raise _invalid("term must be at least 2 characters (1 with exact_match).")
        fields = set((params.get("fields") or ",".join(SEARCH_FIELDS)).split(","))
        if not fields <= SEARCH_FIELDS:
            raise _invalid(f"fields must be among {sorted(SEARCH_FIELDS)}.")
        limit = _limit(params.get("limit"), SEARCH_MAX_LIMIT)
        items = []
        with self.lock:
            for record in self.records["persons"].values():
                if record.deleted:
                    continue
                by_phone = "phone" in fields and any(
                    _phone_matches(p.get("value"), term, exact == "true")
                    for p in record.fields["phones"]
                )
                by_name = "name" in fields and term.lower() in record.fields["name"].lower()
                if by_phone or by_name:
                    items.append(self._search_item(record))
                if len(items) == limit:
                    break
        return {"success": True, "data": {"items": items}, "additional_data": {"next_cursor": None}}

    def _search_item(self, record: FakeRecord) -> dict[str, Any]:
        org = self.records["organizations"].get(record.fields.get("org_id") or 0)
        return {
            "result_score": 0.52,
            "item": {
                "id": record.id,
                "type": "person",
                "name": record.fields["name"],
                "phones": [p["value"] for p in record.fields["phones"]],  # strings in search
                "emails": [e["value"] for e in record.fields["emails"]],
                "visible_to": 3,
                "owner": {"id": record.fields["owner_id"]},
                "organization": {"id": org.id, "name": org.fields["name"], "address": None}
                if org
                else None,
                "custom_fields": [],
                "notes": [],
            },
        }

    def _add_person(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise _invalid("The request body must be a JSON object.")
        unknown = set(body) - PERSON_FIELDS - {"id"}
        if unknown or "id" in body:
            raise _invalid(
                f"Unknown or read-only field(s): {sorted(unknown | ({'id'} & set(body)))}"
            )
        if not isinstance(body.get("name"), str) or not body["name"].strip():
            raise _invalid("name is required.")
        phones = body.get("phones") or []
        if not isinstance(phones, list) or any(
            not isinstance(p, dict) or not isinstance(p.get("value"), str) for p in phones
        ):
            raise _invalid("phones is a list of {value, primary, label}.")
        now = int(time.time()) * 1000
        with self.lock:
            person_id = max(self.records["persons"], default=0) + 1
            fields = {
                "name": body["name"],
                "first_name": body["name"].partition(" ")[0],
                "last_name": body["name"].partition(" ")[2] or None,
                "owner_id": body.get("owner_id") or USERS[0]["id"],
                "org_id": body.get("org_id"),
                "emails": body.get("emails") or [],
                "phones": [
                    {
                        "value": p["value"],
                        "primary": bool(p.get("primary")),
                        "label": p.get("label", "work"),
                    }
                    for p in phones
                ],
                "is_deleted": False,
                "visible_to": 3,
                "label_ids": [],
                "picture_id": None,
                "custom_fields": body.get("custom_fields") or {},
            }
            record = FakeRecord(person_id, fields, now, now)
            self.records["persons"][person_id] = record
            self._sorted.clear()
        return {"success": True, "data": _as_json(record), "additional_data": None}

    # ----- activities (v2)
    def _add_activity(self, body: Any) -> dict[str, Any]:
        fields = self._activity_fields(body)
        if fields.get("type") not in ACTIVITY_TYPES:
            raise _invalid(f"type must be an active activity type key, got {fields.get('type')!r}.")
        with self.lock:
            activity_id = max(self.activities, default=0) + 1
            self.activities[activity_id] = self._activity_record(activity_id, fields)
            return {"success": True, "data": self.activities[activity_id], "additional_data": None}

    def _list_activities(self, query: dict[str, list[str]]) -> dict[str, Any]:
        params = _single(query, ACTIVITY_LIST_PARAMS)
        limit = _limit(params.get("limit"), LIST_MAX_LIMIT)
        since = _time_param(params, "updated_since")
        after = int(params["cursor"]) if params.get("cursor", "").isdigit() else 0
        filters = {name: int(params[name]) for name in ACTIVITY_FILTERS if name in params}
        with self.lock:
            found = [
                dict(activity)
                for activity_id, activity in sorted(self.activities.items())
                if activity_id > after
                and all(activity.get(name) == value for name, value in filters.items())
                # Both RFC 3339 in whole seconds and UTC: they compare as text.
                and (since is None or activity["update_time"] >= params["updated_since"])
            ]
        page = found[:limit]
        next_cursor = str(page[-1]["id"]) if len(found) > limit else None
        return {"success": True, "data": page, "additional_data": {"next_cursor": next_cursor}}

    def _activity(self, method: str, activity_id: int, body: bytes) -> dict[str, Any]:
        with self.lock:
            if activity_id not in self.activities:
                raise pipedrive_error(404, "Activity not found", "ERR_NOT_FOUND")
            if method == "PATCH":
                fields = self._activity_fields(_json_body(body))
                if "type" in fields and fields["type"] not in ACTIVITY_TYPES:
                    raise _invalid("type must be an active activity type key.")
                current = self.activities[activity_id]
                self.activities[activity_id] = self._activity_record(
                    activity_id, {**current, **fields}
                )
            return {"success": True, "data": self.activities[activity_id], "additional_data": None}

    def _activity_fields(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise _invalid("The request body must be a JSON object.")
        if "person_id" in body:  # exactly what v2 answers [crm-apis.md 3.4, P8]
            raise ApiError(
                400, {"success": False, "error": READ_ONLY_PERSON_ID, "code": "ERR_BAD_REQUEST"}
            )
        unknown = set(body) - ACTIVITY_FIELDS
        if unknown:
            raise _invalid(f"Unknown field(s): {sorted(unknown)}")
        if "due_date" in body:
            _parse_time(body["due_date"], "%Y-%m-%d", "due_date")
        if "due_time" in body:
            _parse_time(body["due_time"], "%H:%M", "due_time")
        if "owner_id" in body and body["owner_id"] not in self.users:
            raise _invalid(f"owner_id {body['owner_id']!r} is not a user of this company.")
        for participant in body.get("participants") or []:
            if (
                not isinstance(participant, dict)
                or set(participant) != {"person_id", "primary"}
                or not isinstance(participant["primary"], bool)
            ):
                raise _invalid("participants are {person_id, primary} (primary_flag is read-only).")
            self._live("persons", participant["person_id"])
        if "org_id" in body:
            self._live("organizations", body["org_id"])
        return dict(body)

    def _activity_record(self, activity_id: int, fields: dict[str, Any]) -> dict[str, Any]:
        participants = fields.get("participants") or []
        primary = next((p["person_id"] for p in participants if p.get("primary")), None)
        now = rfc3339(int(time.time()) * 1000)
        return {
            "id": activity_id,
            "subject": fields.get("subject") or fields.get("type", "").capitalize(),
            "type": fields.get("type"),
            "owner_id": fields.get("owner_id") or USERS[0]["id"],
            "due_date": fields.get("due_date"),
            "due_time": fields.get("due_time"),
            "duration": fields.get("duration"),
            "done": bool(fields.get("done")),
            "note": fields.get("note"),
            "person_id": primary,
            "org_id": fields.get("org_id"),
            "participants": [
                {"person_id": p["person_id"], "primary": p["primary"]} for p in participants
            ],
            "add_time": fields.get("add_time") or now,
            "update_time": now,
        }

    # ----- v1 users and call logs
    def _users(self, query: dict[str, list[str]]) -> dict[str, Any]:
        _single(query, set())  # GET /v1/users takes no parameters: every user of the company
        return {"success": True, "data": [dict(u) for u in self.users.values()]}

    def _me(self, query: dict[str, list[str]]) -> dict[str, Any]:
        """GET /v1/users/me: the token's user with its company (company_domain)."""
        _single(query, set())
        user = next(iter(self.users.values()))
        return {
            "success": True,
            "data": {**user, "company_id": 7, "company_name": "Fake Co",
                     "company_domain": self.company_domain},
        }  # fmt: skip

    def _find_users(self, query: dict[str, list[str]]) -> dict[str, Any]:
        params = _single(query, {"term", "search_by_email"})
        term = params.get("term", "")
        if not term:
            raise pipedrive_error(400, "term is required")
        by_email = params.get("search_by_email", "0")
        if by_email not in ("0", "1"):
            raise pipedrive_error(400, "search_by_email must be 0 or 1")
        key = "email" if by_email == "1" else "name"
        found = [dict(u) for u in self.users.values() if term.lower() in u[key].lower()]
        # Pipedrive's v1 collections answer null, not [], when nothing matches.
        return {"success": True, "data": found or None, "additional_data": None}

    def _add_call_log(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise pipedrive_error(400, "The request body must be a JSON object.")
        unknown = set(body) - CALL_LOG_FIELDS
        if unknown:
            raise pipedrive_error(400, f"Unknown field(s): {sorted(unknown)}")
        for name in ("outcome", "to_phone_number", "start_time", "end_time"):
            if not isinstance(body.get(name), str) or not body[name]:
                raise pipedrive_error(400, f"{name} is required.")
        if body["outcome"] not in CALL_LOG_OUTCOMES:
            raise pipedrive_error(400, f"outcome must be one of {sorted(CALL_LOG_OUTCOMES)}.")
        start = _parse_time(body["start_time"], "%Y-%m-%d %H:%M:%S", "start_time", v1=True)
        end = _parse_time(body["end_time"], "%Y-%m-%d %H:%M:%S", "end_time", v1=True)
        if end < start:
            raise pipedrive_error(400, "end_time must not be before start_time.")
        if "duration" in body and (
            not isinstance(body["duration"], str) or not body["duration"].isdigit()
        ):
            raise pipedrive_error(400, "duration is the call's length in seconds, as a string.")
        if "deal_id" in body and "lead_id" in body:
            raise pipedrive_error(400, "A call log can be linked to a deal or a lead, not both.")
        if "user_id" in body and body["user_id"] not in self.users:
            raise pipedrive_error(400, f"User {body['user_id']!r} not found.")
        # "A user without account settings access cannot create call logs for other users."
        if body.get("user_id", self.token_user_id) != self.token_user_id and not self.admin:
            raise pipedrive_error(
                403, "You do not have permission to add call logs for other users."
            )
        with self.lock:
            if "person_id" in body:
                self._live("persons", body["person_id"], v1=True)
            if "org_id" in body:
                self._live("organizations", body["org_id"], v1=True)
            # Each call log is also a done `call` activity (that one can be edited later).
            activity_id = max(self.activities, default=0) + 1
            seconds = int(body.get("duration") or 0)
            self.activities[activity_id] = self._activity_record(
                activity_id,
                {
                    "subject": body.get("subject") or "Call",
                    "type": "call",
                    "owner_id": body.get("user_id", self.token_user_id),
                    "due_date": start.strftime("%Y-%m-%d"),
                    "due_time": start.strftime("%H:%M"),
                    "duration": f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}",
                    "done": True,
                    "note": body.get("note"),
                    "participants": [{"person_id": body["person_id"], "primary": True}]
                    if "person_id" in body
                    else [],
                    "org_id": body.get("org_id"),
                },
            )
            call_log_id = uuid.uuid4().hex
            self.call_log_activities[call_log_id] = activity_id
            # activity_id is optional in the answer (the spec does not promise it): left out.
            self.call_logs[call_log_id] = {
                "user_id": self.token_user_id,
                **body,
                "id": call_log_id,
                "has_recording": False,
                "company_id": 4242,
            }
            return {"success": True, "data": self.call_logs[call_log_id], "additional_data": None}

    def _call_log(self, method: str, call_log_id: str) -> dict[str, Any]:
        with self.lock:
            if call_log_id not in self.call_logs:
                raise pipedrive_error(404, "Call log not found")
            if method == "DELETE":
                del self.call_logs[call_log_id]
                return {"success": True, "data": None, "additional_data": None}
            return {"success": True, "data": self.call_logs[call_log_id], "additional_data": None}

    def _live(self, kind: str, record_id: Any, *, v1: bool = False) -> None:
        record = self.records[kind].get(record_id) if isinstance(record_id, int) else None
        if record is None or record.deleted:
            name = "Person" if kind == "persons" else "Organization"
            raise pipedrive_error(404, f"{name} not found", None if v1 else "ERR_NOT_FOUND")


class _Handler(JsonHandler):
    api_error = ApiError


def token_cost(method: str, path: str) -> int:
    """What one request spends of the daily token budget (UNVERIFIED figures, see above)."""
    v2 = path.startswith("/api/v2/")
    if path.endswith("/search"):
        return 20 if v2 else 40
    if method != "GET":
        return 5 if v2 else 10
    one_record = path.rstrip("/").rsplit("/", 1)[-1].isdigit()
    if one_record:
        return 1 if v2 else 2
    return 10 if v2 else 20


def _rate_limit_body() -> dict[str, Any]:
    # The 429 body text is UNVERIFIED; the status and x-ratelimit-* headers are documented.
    return {
        "success": False,
        "error": "Request over limit",
        "errorCode": 429,
        "error_info": ERROR_INFO,
        "data": None,
        "additional_data": None,
    }


def _json_body(body: bytes) -> Any:
    try:
        return json.loads(body or b"null")
    except ValueError as error:
        raise _invalid("The request body is not valid JSON.") from error


def _single(query: dict[str, list[str]], allowed: set[str]) -> dict[str, str]:
    unknown = set(query) - allowed
    if unknown:
        raise _invalid(f"Unknown query parameter(s): {sorted(unknown)}")
    return {name: values[-1] for name, values in query.items()}


def _limit(value: str | None, maximum: int) -> int:
    if value is None:
        return min(100, maximum)
    if not value.isdigit() or not 1 <= int(value) <= maximum:
        raise _invalid(f"limit: Number must be less than or equal to {maximum}, got {value!r}.")
    return int(value)


def _time_param(params: dict[str, str], name: str) -> int | None:
    if name not in params:
        return None
    moment = _parse_time(params[name], "%Y-%m-%dT%H:%M:%SZ", name)
    return int(moment.timestamp()) * 1000


def _parse_time(value: Any, layout: str, name: str, *, v1: bool = False) -> datetime:
    try:
        return datetime.strptime(str(value), layout).replace(tzinfo=UTC)
    except ValueError:
        message = f"{name} must look like {layout!r}, got {value!r}."
        raise (pipedrive_error(400, message) if v1 else _invalid(message)) from None


def _ids(value: str | None) -> set[int] | None:
    if value is None:
        return None
    parts = value.split(",")
    if len(parts) > IDS_MAX or not all(p.isdigit() for p in parts):
        raise _invalid(f"ids: up to {IDS_MAX} comma-separated ids.")
    return set(map(int, parts))


def _sort_value(record: FakeRecord, sort_by: str) -> int:
    return {"id": record.id, "update_time": record.update_ms, "add_time": record.add_ms}[sort_by]


def _encode_cursor(record: FakeRecord, sort_by: str, direction: str) -> str:
    key = {"field": sort_by, "fieldValue": _sort_value(record, sort_by), "id": record.id}
    return base64.b64encode(json.dumps({**key, "sortDirection": direction}).encode()).decode()


def _decode_cursor(cursor: str, sort_by: str, direction: str) -> tuple[int, int]:
    try:
        key = json.loads(base64.b64decode(cursor, validate=True))
        if key["field"] != sort_by or key["sortDirection"] != direction:
            raise ValueError("cursor of another sort")
        return int(key["fieldValue"]), int(key["id"])
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise _invalid("Invalid cursor.") from None


def _phone_matches(stored: Any, term: str, exact: bool) -> bool:
    if exact:  # "only full exact matches against the given term", not case sensitive [P1]
        return str(stored or "").casefold() == term.casefold()
    # UNVERIFIED: how a loose search treats formatting; the fake looks for the term's digits.
    digits = re.sub(r"\D", "", term)
    return bool(digits) and digits in re.sub(r"\D", "", str(stored or ""))


def _as_json(record: FakeRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        **record.fields,
        "add_time": rfc3339(record.add_ms),
        "update_time": rfc3339(record.update_ms),
    }


FakePipedrive.handler_class = _Handler


def serve_demo(options: dict[str, Any]) -> tuple[FakePipedrive, str, dict[str, Any]]:
    """Start the fake for `manage.py fakecrm`; answer it, a description, the connection JSON."""
    fake = FakePipedrive(persons=options["contacts"], organizations=options["companies"])
    url = fake.start(port=options["port"])
    token = next(iter(fake.api_tokens))
    return (
        fake,
        f"Fake Pipedrive at {url} with {options['contacts']} persons and "
        f"{options['companies']} organizations",
        {"credentials": {"api_token": token, "base_url": url}},
    )
