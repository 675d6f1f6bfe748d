"""A strict fake Zendesk Support on 127.0.0.1: a real HTTP server for tests and demos.

At least as strict as the real API (../shared/reference/crm-apis.md section 5): Basic
`{email}/token:{api_token}` or OAuth Bearer, else 401 `Couldn't authenticate you`; users search
with Zendesk's phone matching (digits only, a leading `*` matches any prefix), offset paging
only (`page` must be an integer, `per_page` <= 100); user creation; tickets listed by
`external_id`, created with required subject and comment, the priority enum, known requester
and group, answered 201 with the ticket and a `Location`; validation errors as 422
`RecordInvalid` with `details`; 404 `RecordNotFound`; `x-rate-limit` headers on every answer;
injectable faults (429 with `Retry-After` and a text/plain body, 5xx before or after the write).

Stricter than Zendesk (which ignores them): unknown ticket and user fields are refused.
UNVERIFIED wording: the 422 descriptions for an invalid priority, requester or group, and the
400 for a search without a query.
"""

from __future__ import annotations

import base64
import binascii
import json
import random
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fakes.hubspot_data import FIRST_NAMES, LAST_NAMES, messy_number
from fakes.server import FakeServer, JsonHandler

PRIORITIES = {"low", "normal", "high", "urgent"}
TICKET_FIELDS = {
    "subject", "comment", "requester_id", "requester", "priority", "type", "status", "tags",
    "external_id", "group_id", "assignee_id", "assignee_email", "brand_id", "custom_fields",
    "due_at", "via", "collaborator_ids", "organization_id", "ticket_form_id",
}  # fmt: skip
USER_FIELDS = {
    "name", "email", "phone", "role", "external_id", "organization_id", "tags", "time_zone",
    "locale", "user_fields", "verified", "details", "notes", "identities",
}  # fmt: skip
ROLES = {"end-user", "agent", "admin"}
SEARCH_MAX_PER_PAGE = 100
RATE_LIMIT = 700


class ApiError(Exception):
    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self.status, self.body, self.headers = status, body, headers or {}


def record_invalid(field: str, description: str, error: str = "InvalidValue") -> ApiError:
    details = {field: [{"description": description, "error": error, "field_key": field}]}
    body = {"error": "RecordInvalid", "description": "Record validation errors", "details": details}
    return ApiError(422, body)


def _blank(field: str, label: str) -> ApiError:
    return record_invalid(field, f"{label}: cannot be blank", "BlankValue")


def _not_found() -> ApiError:
    return ApiError(404, {"error": "RecordNotFound", "description": "Not found"})


@dataclass
class Fault:
    """Answer the next `times` matching requests with `status` instead of the real thing."""

    status: int
    times: int = 1
    method: str = ""
    path_contains: str = ""
    retry_after: str | None = None
    after_write: bool = False  # do the request, then answer the fault (a lost answer)


class FakeZendesk(FakeServer):
    def __init__(
        self,
        *,
        users: int = 0,
        subdomain: str = "acme",
        email: str = "admin@acme.example",
        api_token: str = "zd-fake-api-token",  # noqa: S107 - a fake
    ) -> None:
        self.subdomain = subdomain
        self.api_tokens = {(email, api_token)}
        self.oauth_tokens: set[str] = set()
        self.groups = {360001: "Support", 360002: "Billing"}
        self.users: dict[int, dict[str, Any]] = {}
        self.tickets: dict[int, dict[str, Any]] = {}
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str, dict[str, list[str]], Any]] = []
        self.lock = threading.RLock()
        self._next_id = 9000
        self.add_user("Alex Admin", role="admin", email=email)
        rng = random.Random(5)
        for i in range(users):
            name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
            self.add_user(name, phone=messy_number(rng, i))

    # ----- test controls
    def credentials(self) -> dict[str, str]:
        """A connection's credentials for this fake (API token auth)."""
        email, token = next(iter(self.api_tokens))
        return {
            "subdomain": self.subdomain,
            "email": email,
            "api_token": token,
            "base_url": self.url,
        }

    def add_user(
        self, name: str, *, phone: str | None = None, role: str = "end-user", email: str = ""
    ) -> dict[str, Any]:
        with self.lock:
            user_id = self._new_id()
            now = _now()
            self.users[user_id] = {
                "id": user_id,
                "url": f"https://{self.subdomain}.zendesk.com/api/v2/users/{user_id}.json",
                "name": name,
                "email": email or None,
                "phone": phone,
                "role": role,
                "active": True,
                "verified": False,
                "external_id": None,
                "organization_id": None,
                "tags": [],
                "user_fields": {},
                "time_zone": "London",
                "locale": "en-US",
                "created_at": now,
                "updated_at": now,
            }
            return self.users[user_id]

    def paths(self, method: str | None = None) -> list[str]:
        return [p for m, p, _, _ in self.requests if method in (None, m)]

    # ----- the API
    def handle(
        self, method: str, path: str, query: dict[str, list[str]], headers: Any, raw: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        body = _json_body(raw) if raw else None
        with self.lock:
            self.requests.append((method, path, query, body))
        self._authenticate(headers)
        fault = self._take_fault(method, path)
        if fault and not fault.after_write:
            raise self._fault_error(fault)
        status, answer, extra = self._route(method, path, query, body)
        if fault:
            raise self._fault_error(fault)
        return status, answer, extra

    def _route(
        self, method: str, path: str, query: dict[str, list[str]], body: Any
    ) -> tuple[int, Any, dict[str, str]]:
        path = path.removesuffix(".json")
        if path == "/api/v2/users/search" and method == "GET":
            return 200, self._search_users(query), {}
        if path == "/api/v2/users" and method == "POST":
            return 201, {"user": self._create_user(body)}, {}
        if path == "/api/v2/tickets" and method == "GET":
            return 200, self._list_tickets(query), {}
        if path == "/api/v2/tickets" and method == "POST":
            ticket = self._create_ticket(body)
            return 201, {"ticket": ticket}, {"Location": ticket["url"]}
        found = re.fullmatch(r"/api/v2/(tickets|users)/(\d+)", path)
        if found and method == "GET":
            kind, record_id = found.group(1), int(found.group(2))
            record = (self.tickets if kind == "tickets" else self.users).get(record_id)
            if record is None:
                raise _not_found()
            return 200, {kind[:-1]: record}, {}
        raise ApiError(404, {"error": "InvalidEndpoint", "description": "Not found"})

    def _authenticate(self, headers: Any) -> None:
        auth = str(headers.get("Authorization") or "")
        scheme, _, value = auth.partition(" ")
        if scheme == "Bearer" and value in self.oauth_tokens:
            return
        if scheme == "Basic":
            try:
                user, _, token = base64.b64decode(value, validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                user, token = "", ""
            email, _, kind = user.rpartition("/")
            if kind == "token" and (email, token) in self.api_tokens:
                return
        raise ApiError(401, {"error": "Couldn't authenticate you"})

    def _search_users(self, query: dict[str, list[str]]) -> dict[str, Any]:
        params = {name: values[-1] for name, values in query.items()}
        for name in ("page", "per_page"):
            if name in params and not params[name].isdigit():
                raise ApiError(400, {"error": f"Invalid parameter: {name} must be an integer"})
        per_page = int(params.get("per_page", SEARCH_MAX_PER_PAGE))
        if not 1 <= per_page <= SEARCH_MAX_PER_PAGE:
            raise ApiError(400, {"error": "Invalid parameter: per_page must be 1 to 100"})
        text = params.get("query", "").strip()
        if not text:
            raise ApiError(400, {"error": "InvalidSearchQuery", "description": "query missing"})
        with self.lock:
            users = [u for u in self.users.values() if _user_matches(u, text)]
        page = max(1, int(params.get("page", 1)))
        shown = users[(page - 1) * per_page : page * per_page]
        return {"users": shown, "next_page": None, "previous_page": None, "count": len(users)}

    def _create_user(self, body: Any) -> dict[str, Any]:
        user = body.get("user") if isinstance(body, dict) else None
        if not isinstance(user, dict):
            raise _blank("name", "Name")
        unknown = set(user) - USER_FIELDS
        if unknown:
            raise record_invalid(sorted(unknown)[0], f"{sorted(unknown)[0]}: is not a field")
        if not str(user.get("name") or "").strip():
            raise _blank("name", "Name")
        role = user.get("role", "end-user")
        if role not in ROLES:
            raise record_invalid("role", "Role: is not valid")
        return self.add_user(
            str(user["name"]), phone=user.get("phone"), role=role, email=user.get("email") or ""
        )

    def _list_tickets(self, query: dict[str, list[str]]) -> dict[str, Any]:
        external_id = query.get("external_id", [None])[-1]
        with self.lock:
            tickets = [t for t in self.tickets.values() if external_id in (None, t["external_id"])]
        return {"tickets": tickets, "next_page": None, "previous_page": None, "count": len(tickets)}

    def _create_ticket(self, body: Any) -> dict[str, Any]:
        ticket = body.get("ticket") if isinstance(body, dict) else None
        if not isinstance(ticket, dict):
            raise _blank("description", "Description")
        unknown = set(ticket) - TICKET_FIELDS
        if unknown:
            raise record_invalid(sorted(unknown)[0], f"{sorted(unknown)[0]}: is not a field")
        comment = ticket.get("comment") if isinstance(ticket.get("comment"), dict) else {}
        text = str(comment.get("body") or comment.get("html_body") or "")
        if not text.strip():
            raise _blank("description", "Description")
        if not str(ticket.get("subject") or "").strip():
            raise _blank("subject", "Subject")
        if ticket.get("priority") is not None and ticket["priority"] not in PRIORITIES:
            raise record_invalid("priority", "Priority: is not valid")
        if ticket.get("group_id") is not None and ticket["group_id"] not in self.groups:
            raise record_invalid("group", "Group: is invalid")
        tags = ticket.get("tags") or []
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise record_invalid("tags", "Tags: is invalid")
        with self.lock:
            requester_id = self._requester(ticket)
            ticket_id = self._new_id()
            now = _now()
            self.tickets[ticket_id] = {
                "url": f"https://{self.subdomain}.zendesk.com/api/v2/tickets/{ticket_id}.json",
                "id": ticket_id,
                "external_id": ticket.get("external_id"),
                "via": {"channel": "api", "source": {"from": {}, "to": {}, "rel": None}},
                "created_at": now,
                "updated_at": now,
                "type": ticket.get("type"),
                "subject": ticket["subject"],
                "raw_subject": ticket["subject"],
                "description": text,
                "priority": ticket.get("priority"),
                "status": ticket.get("status") or "new",
                "requester_id": requester_id,
                "submitter_id": 9000,
                "assignee_id": None,
                "group_id": ticket.get("group_id"),
                "tags": sorted({t.lower().replace(" ", "_") for t in tags}),
                "is_public": bool(comment.get("public", True)),
                "custom_fields": [],
                "comments": [{"body": text, "public": bool(comment.get("public", True))}],
            }
            return self.tickets[ticket_id]

    def _requester(self, ticket: dict[str, Any]) -> int:
        if "requester_id" in ticket:
            if ticket["requester_id"] not in self.users:
                raise record_invalid("requester", "Requester: is invalid")
            return int(ticket["requester_id"])
        requester = ticket.get("requester")
        if isinstance(requester, dict) and str(requester.get("name") or "").strip():
            name, email = str(requester["name"]), str(requester.get("email") or "")
            return int(self.add_user(name, email=email)["id"])
        return 9000  # the authenticated agent, as Zendesk does

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.method in ("", method) and fault.path_contains in path:
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                    return fault
        return None

    def _fault_error(self, fault: Fault) -> ApiError:
        headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
        if fault.status == 429:  # a plain-text body has been seen on 429s: never assume JSON
            return ApiError(429, "Rate limit exceeded", headers)
        return ApiError(fault.status, {"error": "InternalServerError"}, headers)

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id


def _user_matches(user: dict[str, Any], query: str) -> bool:
    """Zendesk's `key:value` terms (ANDed); phone digits only, a leading `*` for any prefix."""
    for term in query.split():
        key, _, value = term.partition(":")
        if key == "role":
            if user["role"] != value:
                return False
        elif key == "phone":
            stored = re.sub(r"\D", "", str(user.get("phone") or ""))
            wanted = value.removeprefix("*")
            if not wanted.isdigit() or not stored:
                return False
            if not (stored.endswith(wanted) if value.startswith("*") else stored == wanted):
                return False
        elif key in ("email", "external_id"):
            if str(user.get(key) or "").lower() != value.lower():
                return False
        elif term.lower() not in str(user.get("name") or "").lower():
            return False
    return True


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _json_body(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        raise ApiError(400, {"error": "Unprocessable JSON"}) from None


class _Handler(JsonHandler):
    api_error = ApiError
    content_type = "application/json; charset=UTF-8"

    def answer_headers(self, status: int, payload: Any) -> dict[str, str]:
        content_type = "text/plain" if isinstance(payload, str) else self.content_type
        return {
            "Content-Type": content_type,
            "x-rate-limit": str(RATE_LIMIT),
            "x-rate-limit-remaining": str(RATE_LIMIT - 1),
        }


FakeZendesk.handler_class = _Handler


def serve_demo(options: dict[str, Any]) -> tuple[FakeZendesk, str, dict[str, Any]]:
    """Start the fake for `manage.py fakecrm`; answer it, a description, the connection JSON."""
    fake = FakeZendesk(users=options["contacts"])
    fake.start(port=options["port"])
    return (
        fake,
        f"Fake Zendesk Support at {fake.url} with {options['contacts']} end-users",
        {"credentials": fake.credentials()},
    )
