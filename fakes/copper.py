"""A strict fake Copper on 127.0.0.1: a real HTTP server for tests and demos.

Written from the vendor documents (../shared/reference/crm-apis-more.md section 3: [CP1] the
current introduction, [CP2] the 2019 copy of the API docs in dquimper/GitbookTest, [CP4] the
OAuth pages) and one integrator's captured answers (amp-labs/connectors, providers/copper):

- Auth [CP1]: all three of `X-PW-AccessToken`, `X-PW-Application: developer_api` and
  `X-PW-UserEmail` (the key owner's), else 401; OAuth `Authorization: Bearer` tokens [CP4]
  that never expire (no refresh token) but can be revoked. Whether Bearer requests also need
  `X-PW-Application` is UNVERIFIED: `bearer_needs_application` (default on).
- Bodies are JSON (`Content-Type: application/json` on every write, [CP1]); unknown
  attributes are refused with 422 `Invalid input: Validation errors: Base: Unrecognized
  attributes specified: ...` and errors are `{success: false, status, message}` (amp-labs
  fixtures); the texts of the 401, 404, 429 and page-size messages are UNVERIFIED.
- Searches [CP2]: `page_number` from 1, `page_size` 1..200 (else 422), `sort_by` from the
  documented list, unix-second date filters, bare JSON arrays with `X-PW-TOTAL`.
  `minimum_modified_date`/`maximum_modified_date` (inclusive here) are UNVERIFIED-primary.
  Records with the same sort value come in id order (Copper's tie order is UNVERIFIED).
- Phone search [CP2 README]: digits only, `{"value", "match": "partial"}` matches numbers
  ending in the digits; the default "fuzzy" also drops 1 to 6 leading digits.
- Activities [CP2]: only `user` types are created or changed; types come from
  `GET /activity_types` with a per-account Phone Call id; `PUT /activities/{id}` updates
  (the verb is UNVERIFIED in [CP2], named by amp-labs); whether `user_id` may be set on a
  create is UNVERIFIED (accepted here when it is a user). Tasks: `name` required, `priority`
  None|High, `status` Open|Completed, unix-second `due_date`.
- Rate limit [CP1]: 180 requests a minute per credential, rolling, answered with a plain 429
  (no Retry-After or rate-limit headers are documented).
"""

from __future__ import annotations

import bisect
import json
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from fakes.copper_data import (
    ACCOUNT_ID,
    ACTIVITY_TYPES,
    USERS,
    generate_companies,
    generate_people,
)
from fakes.server import FakeServer, JsonHandler

API = "/developer_api/v1"
MAX_PAGE_SIZE = 200
DEFAULT_PAGE_SIZE = 20
PAGING = {"page_number", "page_size"}
DATES = ("created_date", "modified_date", "interaction_date")
PEOPLE_SEARCH = PAGING | {
    "sort_by", "sort_direction", "name", "phone_number", "emails", "contact_type_ids",
    "assignee_ids", "company_ids", "opportunity_ids", "city", "state", "postal_code", "country",
    "tags", "followed", "age", "minimum_interaction_count", "maximum_interaction_count",
    *(f"{bound}_{d}" for bound in ("minimum", "maximum") for d in DATES),
}  # fmt: skip
COMPANY_SEARCH = (PEOPLE_SEARCH - {"emails", "company_ids", "opportunity_ids"}) | {"email_domains"}
SORTS = {
    "people": {"name", "first_name", "last_name", "title", "email", "phone", "date_modified",
               "date_created", "city", "state", "country", "zip"},
    "companies": {"name", "phone", "email_domain", "date_modified", "date_created", "city",
                  "state", "country", "zip"},
}  # fmt: skip
PERSON_FIELDS = {
    "name", "prefix", "first_name", "middle_name", "last_name", "suffix", "address",
    "assignee_id", "company_id", "company_name", "contact_type_id", "details", "emails",
    "phone_numbers", "socials", "tags", "title", "websites", "custom_fields",
}  # fmt: skip
ACTIVITY_FIELDS = {"parent", "type", "details", "activity_date", "user_id"}
ACTIVITY_SEARCH = PAGING | {
    "parent", "activity_types", "minimum_activity_date", "maximum_activity_date", "full_result",
}  # fmt: skip
PARENT_TYPES = {"lead", "person", "company", "opportunity", "project", "task"}
TASK_FIELDS = {
    "name", "related_resource", "assignee_id", "due_date", "reminder_date", "priority", "status",
    "details", "tags", "custom_fields",
}  # fmt: skip
TASK_SEARCH = PAGING | {
    "sort_by", "sort_direction", "assignee_ids", "opportunity_ids", "project_ids", "statuses",
    "tags", "followed", "minimum_due_date", "maximum_due_date", "minimum_created_date",
    "maximum_created_date", "minimum_modified_date", "maximum_modified_date",
}  # fmt: skip
Answer = tuple[int, Any, dict[str, str]]


class ApiError(Exception):
    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self.status, self.body, self.headers = status, body, headers or {}


def copper_error(status: int, message: str) -> ApiError:
    return ApiError(status, {"success": False, "status": status, "message": message})


def _invalid(*problems: str) -> ApiError:
    return copper_error(422, "Invalid input: Validation errors: " + "; ".join(problems))


def _unauthorized() -> ApiError:
    return copper_error(401, "Invalid credentials")  # the text is UNVERIFIED


@dataclass
class Fault:
    """Answer the next `times` matching requests with this instead of the real thing."""

    kind: str  # "status": answer `status` unprocessed; "lost_answer": process, then `status`
    times: int
    path_contains: str = ""
    status: int = 500
    retry_after: str | None = None


class FakeCopper(FakeServer):
    def __init__(
        self,
        *,
        people: int = 0,
        companies: int = 0,
        api_key: str = "cu-fake-api-key",
        key_owner: str = "priya.shah@example.com",
        requests_per_minute: int = 180,
        window_seconds: float = 60.0,
        phone_call_type_id: int | None = None,
        bearer_needs_application: bool = True,
    ) -> None:
        self.records: dict[str, dict[int, dict[str, Any]]] = {
            "people": {p["id"]: p for p in generate_people(people, companies=companies)},
            "companies": {c["id"]: c for c in generate_companies(companies)},
        }
        self.users = [dict(u) for u in USERS]
        self.activity_types = json.loads(json.dumps(ACTIVITY_TYPES))
        if phone_call_type_id is not None:
            self.activity_types["user"][1]["id"] = phone_call_type_id
        self.api_keys = {api_key: key_owner}
        self.access_tokens: dict[str, float] = {}
        self.authorization_codes: dict[str, str] = {}
        self.clients = {"fake-client-id": "fake-client-secret"}
        self.bearer_needs_application = bearer_needs_application
        self.activities: dict[int, dict[str, Any]] = {}
        self.tasks: dict[int, dict[str, Any]] = {}
        self.requests_per_minute = requests_per_minute
        self.window_seconds = window_seconds
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str, Any]] = []
        self._hits: dict[str, deque[float]] = {}
        self._sorted: dict[tuple[str, str], list[tuple[Any, int]]] = {}
        self.lock = threading.RLock()

    # ----- test controls
    def issue_oauth_token(self) -> str:
        token = uuid.uuid4().hex
        self.access_tokens[token] = float("inf")  # Copper's tokens have no expiry [CP4]
        return token

    def touch(self, kind: str, ids: list[int], *, at: int | None = None) -> None:
        """Edit records now (or at the unix second `at`), as a user would in Copper."""
        with self.lock:
            for record_id in ids:
                record = self.records[kind][record_id]
                record["date_modified"] = at or int(time.time())
                record["last_name" if kind == "people" else "name"] = (
                    f"Edited {record['date_modified']}"
                )
            self._sorted.clear()

    def delete(self, kind: str, ids: list[int]) -> None:
        with self.lock:
            for record_id in ids:
                del self.records[kind][record_id]
            self._sorted.clear()

    def bodies(self, path: str) -> list[Any]:
        """The JSON bodies sent to path (under /developer_api/v1)."""
        return [b for _, p, b in self.requests if p == API + path]

    def paths(self, method: str | None = None) -> list[str]:
        return [p for m, p, _ in self.requests if method in (None, m)]

    # ----- the API
    def handle(self, method: str, path: str, query: dict[str, list[str]], headers: Any,
               body: bytes) -> Answer:  # fmt: skip
        if method == "POST" and path == "/oauth/token":
            return 200, self._token(headers, body), {}
        with self.lock:
            fault = self._take_fault(path)
        credential = self._authenticate(headers)
        self._rate_limit(credential)
        if method in ("POST", "PUT") and not (headers.get("Content-Type") or "").startswith(
            "application/json"
        ):
            raise copper_error(400, "Content-Type must be application/json")  # UNVERIFIED text
        payload = _json_body(body) if body else None
        with self.lock:
            self.requests.append((method, path, payload))
        if fault and fault.kind == "status":
            extra = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            raise ApiError(fault.status, {"success": False, "status": fault.status,
                                          "message": "Internal error"}, extra)  # fmt: skip
        with self.lock:
            answer = self._route(method, path.removeprefix(API), payload, credential)
        if fault and fault.kind == "lost_answer":  # stored, but the answer never reaches us
            raise copper_error(fault.status, "Bad gateway")
        return answer

    def _route(self, method: str, rest: str, body: Any, credential: str) -> Answer:
        routes: dict[tuple[str, str], Callable[[], Answer]] = {
            ("GET", "/account"): lambda: (200, {"id": ACCOUNT_ID, "name": "Fake Co"}, {}),
            ("POST", "/users/search"): lambda: self._page(self.users, _search(body, PAGING)),
            ("GET", "/activity_types"): lambda: (200, self.activity_types, {}),
            ("POST", "/people/search"): lambda: self._search_records("people", body),
            ("POST", "/companies/search"): lambda: self._search_records("companies", body),
            ("POST", "/people"): lambda: (200, self._add_person(body), {}),
            ("POST", "/activities"): lambda: (200, self._add_activity(body, credential), {}),
            ("POST", "/activities/search"): lambda: self._search_activities(body),
            ("POST", "/tasks"): lambda: (200, self._add_task(body, credential), {}),
            ("POST", "/tasks/search"): lambda: self._search_tasks(body),
        }
        if (method, rest) in routes:
            return routes[(method, rest)]()
        activity = re.fullmatch(r"/activities/(\d+)", rest)
        if activity and method in ("GET", "PUT"):
            return 200, self._activity(method, int(activity.group(1)), body), {}
        raise ApiError(404, {"error": "not_found"})  # amp-labs fixture for an unknown path

    def _take_fault(self, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.times > 0 and fault.path_contains in path:
                fault.times -= 1
                return fault
        return None

    def _authenticate(self, headers: Any) -> str:
        bearer = headers.get("Authorization") or ""
        application = headers.get("X-PW-Application")
        if bearer.startswith("Bearer "):
            token = bearer.removeprefix("Bearer ")
            if self.access_tokens.get(token, 0) < time.time() or (
                self.bearer_needs_application and application != "developer_api"
            ):
                raise _unauthorized()
            return token
        key = headers.get("X-PW-AccessToken") or ""
        owner = self.api_keys.get(key)
        email = (headers.get("X-PW-UserEmail") or "").casefold()
        if owner is None or application != "developer_api" or email != owner.casefold():
            raise _unauthorized()
        return key

    def _rate_limit(self, credential: str) -> None:
        now = time.monotonic()
        with self.lock:
            hits = self._hits.setdefault(credential, deque())
            while hits and hits[0] <= now - self.window_seconds:
                hits.popleft()
            if len(hits) >= self.requests_per_minute:
                raise copper_error(429, "Rate limit exceeded")  # no headers documented
            hits.append(now)

    def _token(self, headers: Any, body: bytes) -> dict[str, Any]:
        # Form-encoded authorization-code grant [CP4]; RFC 6749 error bodies (UNVERIFIED).
        if not (headers.get("Content-Type") or "").startswith("application/x-www-form-urlencoded"):
            raise ApiError(400, {"error": "invalid_request"})
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        if self.clients.get(form.get("client_id", "")) != form.get("client_secret"):
            raise ApiError(401, {"error": "invalid_client"})
        if form.get("grant_type") != "authorization_code":
            raise ApiError(400, {"error": "unsupported_grant_type"})
        issued_for = self.authorization_codes.pop(form.get("code", ""), None)
        if issued_for is None or issued_for != form.get("redirect_uri"):
            raise ApiError(400, {"error": "invalid_grant"})
        return {
            "access_token": self.issue_oauth_token(),
            "token_type": "Bearer",
            "scope": "developer/v1/all",
        }

    # ----- people and companies
    def _search_records(self, kind: str, body: Any) -> Answer:
        params = _search(body, PEOPLE_SEARCH if kind == "people" else COMPANY_SEARCH)
        sort_by = params.get("sort_by", "name" if kind == "companies" else "first_name")
        direction = params.get("sort_direction", "asc")
        if sort_by not in SORTS[kind] or direction not in ("asc", "desc"):
            raise _invalid(f"Sort by: is not one of {sorted(SORTS[kind])}")
        keys = self._keys(kind, sort_by)
        start = 0
        minimum = _date(params, "minimum_modified_date")
        if sort_by == "date_modified" and direction == "asc" and minimum is not None:
            start = bisect.bisect_left(keys, (minimum, 0))  # only an index into the sort
        ordered = keys[start:] if direction == "asc" else keys[::-1]
        phone = _phone_query(params.get("phone_number"))
        wanted = params["page_number"] * params["page_size"]
        found: list[dict[str, Any]] = []
        for _, record_id in ordered:
            record = self.records[kind][record_id]
            if _dates_match(record, params) and (phone is None or _phone_matches(record, *phone)):
                found.append(record)
                if len(found) == wanted:
                    break
        status, page, _ = self._page(found, params)
        return status, page, {"X-PW-TOTAL": str(len(ordered))}  # "an upper bound" [CP2]

    def _keys(self, kind: str, sort_by: str) -> list[tuple[Any, int]]:
        if (kind, sort_by) not in self._sorted:
            field = {"email": "emails", "phone": "phone_numbers"}.get(sort_by, sort_by)
            self._sorted[(kind, sort_by)] = sorted(
                (_sort_value(r.get(field)), r["id"]) for r in self.records[kind].values()
            )
        return self._sorted[(kind, sort_by)]

    def _page(self, found: list[dict[str, Any]], params: dict[str, Any]) -> Answer:
        size, number = params.get("page_size", DEFAULT_PAGE_SIZE), params.get("page_number", 1)
        page = found[(number - 1) * size : number * size]
        return 200, [dict(r) for r in page], {"X-PW-TOTAL": str(len(found))}

    def _add_person(self, body: Any) -> dict[str, Any]:
        fields = _known(body, PERSON_FIELDS)
        if not isinstance(fields.get("name"), str) or not fields["name"].strip():
            raise _invalid("Name: can't be blank")  # amp-labs fixture
        emails = {e.get("email") for e in fields.get("emails") or [] if isinstance(e, dict)}
        taken = {e["email"] for p in self.records["people"].values() for e in p["emails"]}
        if emails & taken:  # "email address is a unique key for People" [CP2]
            raise _invalid("Emails: has already been taken")
        for phone in fields.get("phone_numbers") or []:
            if not isinstance(phone, dict) or not isinstance(phone.get("number"), str):
                raise _invalid("Phone numbers: are {number, category}")
        now = int(time.time())
        person_id = max(self.records["people"], default=0) + 1
        first, _, last = fields["name"].partition(" ")
        person = {
            "id": person_id, "prefix": None, "first_name": first, "middle_name": None,
            "last_name": last or None, "suffix": None, "address": None, "assignee_id": None,
            "company_id": None, "company_name": None, "contact_type_id": 8, "details": None,
            "emails": [], "phone_numbers": [], "socials": [], "tags": [], "title": None,
            "websites": [], "custom_fields": [], **fields,
            "date_created": now, "date_modified": now, "interaction_count": 0,
        }  # fmt: skip
        self.records["people"][person_id] = person
        self._sorted.clear()
        return dict(person)

    # ----- activities and tasks
    def _add_activity(self, body: Any, credential: str) -> dict[str, Any]:
        fields = self._activity_fields(_known(body, ACTIVITY_FIELDS))
        missing = [name for name in ("parent", "type", "details") if name not in fields]
        if missing:
            raise _invalid(*(f"{name.capitalize()}: can't be blank" for name in missing))
        now = int(time.time())
        activity_id = max(self.activities, default=3064242277) + 1
        self.activities[activity_id] = {
            "id": activity_id,
            "parent": fields["parent"],
            "type": fields["type"],
            "user_id": fields.get("user_id", self._user_of(credential)),
            "details": fields["details"],
            "activity_date": fields.get("activity_date", now),
            "old_value": None,
            "new_value": None,
            "date_created": now,
            "date_modified": now,
        }
        return dict(self.activities[activity_id])

    def _activity(self, method: str, activity_id: int, body: Any) -> dict[str, Any]:
        activity = self.activities.get(activity_id)
        if activity is None:
            raise copper_error(404, "Resource not found")  # UNVERIFIED text
        if method == "PUT":
            if activity["type"]["category"] != "user":
                raise _invalid("Type: system activities cannot be modified")
            activity.update(self._activity_fields(_known(body, ACTIVITY_FIELDS)))
            activity["date_modified"] = int(time.time())
        return dict(activity)

    def _activity_fields(self, fields: dict[str, Any]) -> dict[str, Any]:
        if "parent" in fields:
            fields["parent"] = self._parent(fields["parent"])
        if "type" in fields:
            kind = fields["type"]
            usable = {t["id"] for t in self.activity_types["user"] if not t["is_disabled"]}
            if (
                not isinstance(kind, dict)
                or kind.get("category") != "user"
                or kind.get("id") not in usable
            ):
                raise _invalid("Type: only enabled user activity types can be created")
            fields["type"] = {"id": kind["id"], "category": "user"}
        if "details" in fields and not isinstance(fields["details"], str):
            raise _invalid("Details: must be a string")
        if "activity_date" in fields:
            _unix_seconds(fields["activity_date"], "Activity date")
        if "user_id" in fields:
            self._user(fields["user_id"], "User")
        return fields

    def _parent(self, parent: Any) -> dict[str, Any]:
        if (
            not isinstance(parent, dict)
            or parent.get("type") not in PARENT_TYPES
            or not isinstance(parent.get("id"), int)
        ):
            raise _invalid("Parent: is {id, type} with type one of " + ", ".join(PARENT_TYPES))
        kind = {"person": "people", "company": "companies"}.get(parent["type"])
        if kind and parent["id"] not in self.records[kind]:
            raise _invalid(f"Parent: {parent['type']} {parent['id']} not found")
        return {"id": parent["id"], "type": parent["type"]}

    def _search_activities(self, body: Any) -> Answer:
        params = _search(body, ACTIVITY_SEARCH)
        types = params.get("activity_types")
        wanted = None if types is None else {(t.get("id"), t.get("category")) for t in types}
        parent = self._parent(params["parent"]) if "parent" in params else None
        low = _date(params, "minimum_activity_date")
        high = _date(params, "maximum_activity_date")
        found = [
            a
            for a in sorted(self.activities.values(), key=lambda a: -a["activity_date"])
            if (wanted is None or (a["type"]["id"], a["type"]["category"]) in wanted)
            and (parent is None or a["parent"] == parent)
            and (low is None or a["activity_date"] >= low)
            and (high is None or a["activity_date"] <= high)
        ]
        return self._page(found, params)

    def _add_task(self, body: Any, credential: str) -> dict[str, Any]:
        fields = _known(body, TASK_FIELDS)
        if not isinstance(fields.get("name"), str) or not fields["name"].strip():
            raise _invalid("Name: can't be blank")
        if fields.get("priority", "None") not in ("None", "High"):
            raise _invalid("Priority: is not one of None, High")
        if fields.get("status", "Open") not in ("Open", "Completed"):
            raise _invalid("Status: is not one of Open, Completed")
        for name in ("due_date", "reminder_date"):
            if fields.get(name) is not None:
                _unix_seconds(fields[name], name.replace("_", " ").capitalize())
        if "related_resource" in fields:
            fields["related_resource"] = self._parent(fields["related_resource"])
        if fields.get("assignee_id") is not None:
            self._user(fields["assignee_id"], "Assignee")
        now = int(time.time())
        task_id = max(self.tasks, default=3726700) + 1
        self.tasks[task_id] = {
            "id": task_id, "related_resource": {"id": None, "type": None},
            "assignee_id": self._user_of(credential), "due_date": None, "reminder_date": None,
            "completed_date": None, "priority": "None", "status": "Open", "details": None,
            "tags": [], "custom_fields": [], **fields,
            "date_created": now, "date_modified": now,
        }  # fmt: skip
        return dict(self.tasks[task_id])

    def _search_tasks(self, body: Any) -> Answer:
        params = _search(body, TASK_SEARCH)
        sort_by = params.get("sort_by", "due_date")
        if sort_by not in ("date_created", "date_modified", "due_date"):
            raise _invalid("Sort by: not supported by this fake")
        ordered = sorted(self.tasks.values(), key=lambda t: (t[sort_by] or 0, t["id"]))
        if params.get("sort_direction") == "desc":
            ordered.reverse()
        return self._page([t for t in ordered if _dates_match(t, params)], params)

    def _user(self, user_id: Any, field: str) -> None:
        if user_id not in {u["id"] for u in self.users}:
            raise _invalid(f"{field}: user {user_id!r} not found")

    def _user_of(self, credential: str) -> int:
        email = self.api_keys.get(credential, USERS[0]["email"])  # OAuth: the first user
        return int(next(u["id"] for u in self.users if u["email"] == email))


class _Handler(JsonHandler):
    api_error = ApiError


FakeCopper.handler_class = _Handler


def _json_body(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        raise _invalid("Base: the body is not JSON") from None


def _known(body: Any, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise _invalid("Base: the body must be a JSON object")
    unknown = sorted(set(body) - allowed)
    if unknown:  # amp-labs fixture: "Unrecognized attributes specified: pageSize"
        raise _invalid(f"Base: Unrecognized attributes specified: {', '.join(unknown)}")
    return dict(body)


def _search(body: Any, allowed: set[str]) -> dict[str, Any]:
    params = _known({} if body is None else body, allowed)
    size = params.get("page_size", DEFAULT_PAGE_SIZE)
    if not isinstance(size, int) or not 1 <= size <= MAX_PAGE_SIZE:
        raise _invalid(f"Page size: must be between 1 and {MAX_PAGE_SIZE}")  # UNVERIFIED text
    number = params.get("page_number", 1)
    if not isinstance(number, int) or number < 1:
        raise _invalid("Page number: must be greater than 0")
    return {**params, "page_size": size, "page_number": number}


def _unix_seconds(value: Any, field: str) -> int:
    # "values are set and returned as 10 digit long integers" [CP2]
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 10**10:
        raise _invalid(f"{field}: must be a unix timestamp in seconds")
    return value


def _date(params: dict[str, Any], name: str) -> int | None:
    value = params.get(name)
    return None if value is None else _unix_seconds(value, name)


def _dates_match(record: dict[str, Any], params: dict[str, Any]) -> bool:
    for field in ("date_created", "date_modified"):
        low = _date(params, f"minimum_{field.removeprefix('date_')}_date")
        high = _date(params, f"maximum_{field.removeprefix('date_')}_date")
        if (low is not None and record[field] < low) or (high is not None and record[field] > high):
            return False
    return True


def _sort_value(value: Any) -> Any:
    if isinstance(value, list):  # emails, phone numbers: the first one's text
        first = value[0] if value else {}
        value = next(iter(first.values()), "") if isinstance(first, dict) else ""
    return value if isinstance(value, int) else str(value or "").casefold()


def _phone_query(value: Any) -> tuple[str, str] | None:
    """(digits, match) of a phone_number filter: a string, or {"value", "match"} [CP2]."""
    if value is None:
        return None
    text, match = (
        (value.get("value"), value.get("match")) if isinstance(value, dict) else (value, None)
    )
    if not isinstance(text, str) or match not in (None, "partial", "fuzzy"):
        raise _invalid("Phone number: is a string or {value, match: partial|fuzzy}")
    digits = re.sub(r"\D", "", text)
    return digits, match or ("partial" if len(digits) <= 6 else "fuzzy")


def _phone_matches(record: dict[str, Any], digits: str, match: str) -> bool:
    """Partial: the stored digits end in the input's; fuzzy also tries 1 to 6 fewer leading."""
    endings = {digits}
    if match == "fuzzy":
        endings |= {digits[cut:] for cut in range(1, 7) if len(digits) - cut >= 6}
    for phone in record.get("phone_numbers") or []:
        stored = re.sub(r"\D", "", str(phone.get("number") or ""))
        if digits and any(stored.endswith(ending) for ending in endings):
            return True
    return False


def serve_demo(options: dict[str, Any]) -> tuple[FakeCopper, str, dict[str, Any]]:
    """Start the fake for `manage.py fakecrm`; answer it, a description, the connection JSON."""
    fake = FakeCopper(people=options["contacts"], companies=options["companies"])
    url = fake.start(port=options["port"])
    (api_key, email), *_ = fake.api_keys.items()
    return (
        fake,
        f"Fake Copper at {url} with {options['contacts']} people and "
        f"{options['companies']} companies",
        {"credentials": {"api_key": api_key, "user_email": email, "base_url": url}},
    )
