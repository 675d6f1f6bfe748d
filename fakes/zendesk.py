"""A strict fake Zendesk Support on 127.0.0.1: a real HTTP server for tests and demos.

At least as strict as the real API (../shared/reference/crm-apis.md section 5): Basic
`{email}/token:{api_token}` or OAuth Bearer, else 401 `Couldn't authenticate you`; users search
with Zendesk's phone matching (digits only, a leading `*` matches any prefix), offset paging
only (`page` must be an integer, `per_page` <= 100); user creation; tickets listed by
`external_id`, created with required subject and comment, the priority enum, known requester
and group, answered 201 with the ticket and a `Location`; validation errors as 422
`RecordInvalid` with `details`; 404 `RecordNotFound`; `x-rate-limit` headers on every answer;
injectable faults (429 with `Retry-After` and a text/plain body, 5xx before or after the write).

The sync side (crm-apis.md 5.3, crm-apis-more.md 5.1-5.2): the cursor users export
`GET /api/v2/incremental/users/cursor.json` takes `start_time` (unix seconds, at least a minute
old) or the `cursor` it answered, serves users in the order they changed, withholds those
changed in the last minute, answers `after_cursor` and `end_of_stream`, allows 10 requests a
rolling minute (then 429 + `Retry-After`), and also sends deleted users (`active: false`;
UNVERIFIED for the real export, so the connector must cope). `GET /api/v2/users.json` lists
active users by `role` / `role[]`, with cursor paging (`page[size]` <= 100, `page[after]`,
`meta.has_more`, `links.next`) or offset paging. `organizations/show_many` takes <= 100 ids.

The call side (crm-apis-more.md 5.4, Zendesk's ticket comments docs): `PUT /api/v2/tickets/{id}`
with a `comment` appends it (comments are never changed; `comments` keeps them for tests; 5,000
at most; a closed ticket refuses updates), `additional_tags` adds tags; the requester's tickets
(`users/{id}/tickets/requested`, `sort_by`/`sort_order`); `search.json` for `type:ticket` and
`tags:` terms only (no index lag).

OAuth (Zendesk's "Using OAuth authentication with your application", "OAuth Tokens for Grant
Types"): `GET /oauth/authorizations/new` is the admin's consent page (tests take the code from
`authorize(redirect_uri)`, as the user's grant would put it on the redirect);
`POST /oauth/tokens` takes JSON or a form with `grant_type=authorization_code`, the client's id
and secret, a code once and only with the redirect_uri it was given for, and answers
`{access_token, token_type: "bearer", scope}` (no expires_in: the token lasts until revoked);
refusals are `{"error", "error_description"}` (UNVERIFIED wording and statuses: 400
invalid_grant / unsupported_grant_type / invalid_request, 401 invalid_client). Issued tokens
are accepted as Bearer on the API; `revoke_tokens()` makes them 401.

Stricter than Zendesk (which ignores them): unknown ticket and user fields are refused.
UNVERIFIED wording: the 422 descriptions for an invalid priority, requester, group or comment
author, and the 400s for a search without a query, a bad `start_time` or cursor, or page sizes.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import random
import re
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

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
EXPORT_MAX_PER_PAGE = 1000
EXPORT_WITHHELD_SECONDS = 60  # rows changed in the last minute are not exported yet
INCREMENTAL_LIMIT = 10  # requests a rolling minute on the incremental endpoints
LIST_MAX_PAGE_SIZE = 100
MAX_COMMENTS = 5000
STATUSES = ("new", "open", "pending", "hold", "solved", "closed")
TICKET_SORTS = {
    "assignee", "assignee.name", "created_at", "group", "id", "locale", "requester",
    "requester.name", "status", "subject", "updated_at",
}  # fmt: skip
UPDATE_FIELDS = (TICKET_FIELDS - {"requester"}) | {"additional_tags", "remove_tags"}


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
        self.clients = {"fake-client-id": "fake-client-secret"}
        self.authorization_codes: dict[str, str] = {}
        self.token_requests: list[dict[str, str]] = []
        self.groups = {360001: "Support", 360002: "Billing"}
        self.users: dict[int, dict[str, Any]] = {}
        self.organizations: dict[int, dict[str, Any]] = {}
        self.tickets: dict[int, dict[str, Any]] = {}
        self.comments: dict[int, list[dict[str, Any]]] = {}  # ticket id -> its comments
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str, dict[str, list[str]], Any]] = []
        self.lock = threading.RLock()
        self.clock_offset = 0.0  # advance() moves the fake's clock: the withheld minute passes
        self.export_page_size = EXPORT_MAX_PER_PAGE  # the export's default per_page
        self.incremental_limit = INCREMENTAL_LIMIT
        self.incremental_window = 60.0
        self._incremental_hits: deque[float] = deque()
        self._changes: dict[int, tuple[int, float]] = {}  # user id -> (change number, time)
        self._change_count = 0
        self._next_id = 9000
        self.admin_id = int(self.add_user("Alex Admin", role="admin", email=email)["id"])
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

    def oauth_credentials(self) -> dict[str, str]:
        """A connection's credentials for connecting through OAuth (no token yet)."""
        client_id, client_secret = next(iter(self.clients.items()))
        return {
            "subdomain": self.subdomain,
            "client_id": client_id,
            "client_secret": client_secret,
            "base_url": self.url,
        }

    def issue_oauth_token(self) -> str:
        token = f"zd-oauth-{uuid.uuid4().hex}"
        with self.lock:
            self.oauth_tokens.add(token)
        return token

    def revoke_tokens(self) -> None:
        """Revoke every OAuth token issued so far: the next request with one gets a 401."""
        with self.lock:
            self.oauth_tokens.clear()

    def now(self) -> float:
        return time.time() + self.clock_offset

    def advance(self, seconds: float) -> None:
        """Move the fake's clock on (the export's withheld minute, start_time checks)."""
        self.clock_offset += seconds

    def add_organization(self, name: str) -> dict[str, Any]:
        with self.lock:
            org_id = self._new_id()
            self.organizations[org_id] = {
                "id": org_id,
                "url": f"https://{self.subdomain}.zendesk.com/api/v2/organizations/{org_id}.json",
                "name": name,
                "domain_names": [],
                "details": "",
                "notes": "",
                "tags": [],
                "organization_fields": {},
                "created_at": _iso(self.now()),
                "updated_at": _iso(self.now()),
            }
            return self.organizations[org_id]

    def touch_user(self, user_id: int, **fields: Any) -> dict[str, Any]:
        """Change a user as an agent would: new fields, a new updated_at, a place in the export."""
        with self.lock:
            user = self.users[user_id]
            user.update(fields)
            self._changed(user)
            return user

    def delete_user(self, user_id: int) -> None:
        """Soft-delete, as Zendesk does: inactive, gone from listings, still in the export."""
        self.touch_user(user_id, active=False)

    def add_user(
        self,
        name: str,
        *,
        phone: str | None = None,
        role: str = "end-user",
        email: str = "",
        organization_id: int | None = None,
    ) -> dict[str, Any]:
        with self.lock:
            user_id = self._new_id()
            now = _iso(self.now())
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
                "organization_id": organization_id,
                "tags": [],
                "user_fields": {},
                "time_zone": "London",
                "locale": "en-US",
                "created_at": now,
                "updated_at": now,
            }
            self._changed(self.users[user_id])
            return self.users[user_id]

    def _changed(self, user: dict[str, Any]) -> None:
        self._change_count += 1
        self._changes[user["id"]] = (self._change_count, self.now())
        user["updated_at"] = _iso(self.now())

    def paths(self, method: str | None = None) -> list[str]:
        return [p for m, p, _, _ in self.requests if method in (None, m)]

    # ----- the API
    def handle(
        self, method: str, path: str, query: dict[str, list[str]], headers: Any, raw: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        if path == "/oauth/authorizations/new" and method == "GET":
            return 200, self._consent_page(query), {}
        if path == "/oauth/tokens" and method == "POST":
            with self.lock:
                self.requests.append((method, path, query, None))
                return 200, self._token(headers, raw), {}
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
        if path == "/api/v2/incremental/users/cursor" and method == "GET":
            return 200, self._export_users(query), {}
        if path == "/api/v2/users" and method == "GET":
            return 200, self._list_users(query), {}
        if path == "/api/v2/organizations/show_many" and method == "GET":
            return 200, self._show_organizations(query), {}
        if path == "/api/v2/search" and method == "GET":
            return 200, self._search_tickets(query), {}
        found = re.fullmatch(r"/api/v2/tickets/(\d+)", path)
        if found and method == "PUT":
            return 200, self._update_ticket(int(found.group(1)), body), {}
        found = re.fullmatch(r"/api/v2/users/(\d+)/tickets/requested", path)
        if found and method == "GET":
            return 200, self._requested_tickets(int(found.group(1)), query), {}
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

    # ----- OAuth
    def _consent_page(self, query: dict[str, list[str]]) -> str:
        """The page where the admin grants access (the browser's; tests use authorize())."""
        params = _params(query)
        if params.get("response_type") != "code" or params.get("client_id") not in self.clients:
            raise ApiError(400, _oauth_error("invalid_request", "Invalid client or response type"))
        if not params.get("redirect_uri"):
            raise ApiError(400, _oauth_error("invalid_request", "redirect_uri is missing"))
        return f"Allow {params['client_id']} to access your Zendesk Support account?"

    def _token(self, headers: Any, raw: bytes) -> dict[str, Any]:
        content_type = str(headers.get("Content-Type") or "")
        if content_type.startswith("application/json"):
            body = _json_body(raw)
            form = {k: str(v) for k, v in body.items()} if isinstance(body, dict) else {}
        elif content_type.startswith("application/x-www-form-urlencoded"):
            form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
        else:
            raise ApiError(400, _oauth_error("invalid_request", "Unsupported content type"))
        self.token_requests.append(form)
        if form.get("grant_type") != "authorization_code":
            raise ApiError(
                400, _oauth_error("unsupported_grant_type", "The grant type is not supported")
            )
        if self.clients.get(form.get("client_id", "")) != form.get("client_secret"):
            raise ApiError(401, _oauth_error("invalid_client", "Client authentication failed"))
        issued_for = self.authorization_codes.pop(form.get("code", ""), None)
        if issued_for is None or issued_for != form.get("redirect_uri"):
            raise ApiError(
                400,
                _oauth_error(
                    "invalid_grant",
                    "The provided authorization grant is invalid, expired, revoked, does not "
                    "match the redirection URI used in the authorization request, or was "
                    "issued to another client.",
                ),
            )
        return {
            "access_token": self.issue_oauth_token(),
            "token_type": "bearer",
            "scope": form.get("scope") or "read write",
        }

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
        comment = ticket["comment"] if isinstance(ticket.get("comment"), dict) else {}
        text = _comment_text(comment)
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
            now = _iso(self.now())
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
                "submitter_id": self.admin_id,
                "assignee_id": self._assignee(ticket),
                "group_id": ticket.get("group_id"),
                "tags": sorted({t.lower().replace(" ", "_") for t in tags}),
                "is_public": bool(comment.get("public", True)),
                "custom_fields": [],
            }
            self.comments[ticket_id] = []
            self._add_comment(ticket_id, comment, author_id=self.admin_id)  # the submitter
            return self.tickets[ticket_id]

    # ----- the sync side
    def _export_users(self, query: dict[str, list[str]]) -> dict[str, Any]:
        """The cursor export: users in the order they changed, none of the last minute."""
        params = _params(query)
        self._count_incremental()
        per_page = _integer(params, "per_page", self.export_page_size, 1, EXPORT_MAX_PER_PAGE)
        now = self.now()
        with self.lock:
            changes = sorted((n, t, user_id) for user_id, (n, t) in self._changes.items())
            if "cursor" in params:
                after = _untoken(params["cursor"])
            elif "start_time" in params:
                start = params["start_time"]
                if not start.isdigit():
                    raise ApiError(400, {"error": "InvalidValue", "description": "start_time"})
                if int(start) > now - EXPORT_WITHHELD_SECONDS:
                    description = "start_time: must be at least one minute in the past"
                    raise ApiError(400, {"error": "InvalidValue", "description": description})
                after = max((n for n, t, _ in changes if t < int(start)), default=0)
            else:
                raise ApiError(400, {"error": "InvalidValue", "description": "start_time missing"})
            ready = [
                (n, user_id)
                for n, t, user_id in changes
                if n > after and t <= now - EXPORT_WITHHELD_SECONDS
            ]
            served = ready[:per_page]
            users = [self.users[user_id] for _, user_id in served]
        last = served[-1][0] if served else after
        export_url = f"{self.url}/api/v2/incremental/users/cursor.json?cursor="
        return {
            "users": users,
            "after_cursor": _token(last),
            "after_url": export_url + _token(last),
            "before_cursor": None,
            "before_url": None,
            "end_of_stream": len(ready) <= per_page,
        }

    def _count_incremental(self) -> None:
        """10 requests a rolling minute on the incremental endpoints, then 429 + Retry-After."""
        with self.lock:
            clock = time.monotonic()
            hits = self._incremental_hits
            while hits and hits[0] <= clock - self.incremental_window:
                hits.popleft()
            if len(hits) >= self.incremental_limit:
                wait = math.ceil(hits[0] + self.incremental_window - clock)
                raise ApiError(429, "Rate limit exceeded", {"Retry-After": str(max(1, wait))})
            hits.append(clock)

    def _list_users(self, query: dict[str, list[str]]) -> dict[str, Any]:
        """Active users by role; cursor paging with page[size] and page[after], else offset."""
        params = _params(query)
        roles = set(query.get("role[]", [])) | set(query.get("role", []))
        if roles - ROLES:
            raise ApiError(400, {"error": "InvalidValue", "description": "role is invalid"})
        with self.lock:
            users = [
                u
                for _, u in sorted(self.users.items())
                if u["active"] and (not roles or u["role"] in roles)
            ]
        if "page" in params or "per_page" in params:
            page = _integer(params, "page", 1, 1, 10**9)
            per_page = _integer(params, "per_page", LIST_MAX_PAGE_SIZE, 1, LIST_MAX_PAGE_SIZE)
            shown = users[(page - 1) * per_page : page * per_page]
            more = len(users) > page * per_page
            next_page = f"{self.url}/api/v2/users.json?page={page + 1}" if more else None
            return {"users": shown, "next_page": next_page, "count": len(users)}
        size = _integer(params, "page[size]", LIST_MAX_PAGE_SIZE, 1, LIST_MAX_PAGE_SIZE)
        after = _untoken(params["page[after]"]) if "page[after]" in params else 0
        rest = [u for u in users if u["id"] > after]
        shown = rest[:size]
        has_more = len(rest) > size
        after_cursor = _token(shown[-1]["id"]) if shown else None
        next_url = f"{self.url}/api/v2/users.json?page[after]={after_cursor}" if has_more else None
        return {
            "users": shown,
            "meta": {"has_more": has_more, "after_cursor": after_cursor, "before_cursor": None},
            "links": {"next": next_url, "prev": None},
        }

    def _show_organizations(self, query: dict[str, list[str]]) -> dict[str, Any]:
        ids = [i for i in _params(query).get("ids", "").split(",") if i]
        if not ids or len(ids) > LIST_MAX_PAGE_SIZE or not all(i.isdigit() for i in ids):
            raise ApiError(400, {"error": "InvalidValue", "description": "ids: 1 to 100 ids"})
        with self.lock:
            found = [self.organizations[int(i)] for i in ids if int(i) in self.organizations]
        return {"organizations": found, "next_page": None, "count": len(found)}

    # ----- the call side
    def _requested_tickets(self, user_id: int, query: dict[str, list[str]]) -> dict[str, Any]:
        params = _params(query)
        sort_by = params.get("sort_by", "id")
        sort_order = params.get("sort_order", "asc")
        if sort_by not in TICKET_SORTS or sort_order not in ("asc", "desc"):
            raise ApiError(400, {"error": "InvalidValue", "description": "sort_by or sort_order"})
        per_page = _integer(params, "per_page", LIST_MAX_PAGE_SIZE, 1, LIST_MAX_PAGE_SIZE)
        with self.lock:
            if user_id not in self.users:
                raise _not_found()
            tickets = [t for t in self.tickets.values() if t["requester_id"] == user_id]
        tickets.sort(key=lambda t: (t.get(sort_by) or "", t["id"]), reverse=sort_order == "desc")
        return {"tickets": tickets[:per_page], "next_page": None, "count": len(tickets)}

    def _search_tickets(self, query: dict[str, list[str]]) -> dict[str, Any]:
        """`type:ticket tags:<tag>`: the only terms the fake knows (Zendesk's search has more)."""
        terms = _params(query).get("query", "").split()
        if "type:ticket" not in terms:
            raise ApiError(400, {"error": "InvalidSearchQuery", "description": "type:ticket only"})
        tags = [t.removeprefix("tags:").lower() for t in terms if t.startswith("tags:")]
        if len(tags) + 1 != len(terms):
            raise ApiError(400, {"error": "InvalidSearchQuery", "description": "unknown term"})
        with self.lock:
            found = [
                {**t, "result_type": "ticket"}
                for t in self.tickets.values()
                if all(tag in t["tags"] for tag in tags)
            ]
        return {"results": found, "next_page": None, "previous_page": None, "count": len(found)}

    def _update_ticket(self, ticket_id: int, body: Any) -> dict[str, Any]:
        """PUT a ticket: a `comment` is appended (comments are never edited), tags added."""
        update = body.get("ticket") if isinstance(body, dict) else None
        if not isinstance(update, dict):
            raise record_invalid("ticket", "Ticket: is missing")
        unknown = set(update) - UPDATE_FIELDS
        if unknown:
            raise record_invalid(sorted(unknown)[0], f"{sorted(unknown)[0]}: is not a field")
        with self.lock:
            ticket = self.tickets.get(ticket_id)
            if ticket is None:
                raise _not_found()
            if ticket["status"] == "closed":
                raise record_invalid("status", "Status: closed prevents ticket update")
            if update.get("status") not in (None, *STATUSES):
                raise record_invalid("status", "Status: is not valid")
            comment = update.get("comment")
            if comment is not None:
                if not isinstance(comment, dict) or not _comment_text(comment).strip():
                    raise _blank("comment", "Comment")
                if len(self.comments[ticket_id]) >= MAX_COMMENTS:
                    raise record_invalid("base", "Comments: a ticket holds at most 5000")
            tags = update.get("additional_tags") or []
            if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
                raise record_invalid("tags", "Tags: is invalid")
            events = []
            if comment is not None:
                events.append(self._add_comment(ticket_id, comment, author_id=self.admin_id))
            ticket["tags"] = sorted(set(ticket["tags"]) | {t.lower() for t in tags})
            if update.get("status"):
                ticket["status"] = update["status"]
            ticket["updated_at"] = _iso(self.now())
            audit = {"id": self._new_id(), "ticket_id": ticket_id, "events": events}
            return {"ticket": ticket, "audit": audit}

    def _add_comment(self, ticket_id: int, comment: dict[str, Any], *, author_id: int) -> dict:
        author = comment.get("author_id", author_id)
        if author not in self.users:
            raise record_invalid("author", "Author: is invalid")
        stored = {
            "id": self._new_id(),
            "type": "Comment",
            "author_id": author,
            "body": _comment_text(comment),
            "public": bool(comment.get("public", True)),
            "created_at": _iso(self.now()),
        }
        self.comments[ticket_id].append(stored)
        return stored

    def _assignee(self, ticket: dict[str, Any]) -> int | None:
        """Tickets are assigned to agents (or admins) only."""
        assignee = ticket.get("assignee_id")
        if assignee is not None and (self.users.get(assignee) or {}).get("role") not in (
            "agent",
            "admin",
        ):
            raise record_invalid("assignee", "Assignee: is invalid")
        return assignee

    def _requester(self, ticket: dict[str, Any]) -> int:
        if "requester_id" in ticket:
            if ticket["requester_id"] not in self.users:
                raise record_invalid("requester", "Requester: is invalid")
            return int(ticket["requester_id"])
        requester = ticket.get("requester")
        if isinstance(requester, dict) and str(requester.get("name") or "").strip():
            name, email = str(requester["name"]), str(requester.get("email") or "")
            return int(self.add_user(name, email=email)["id"])
        return self.admin_id  # the authenticated agent, as Zendesk does

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


def _comment_text(comment: dict[str, Any]) -> str:
    return str(comment.get("body") or comment.get("html_body") or "")


def _iso(unix: float) -> str:
    return datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _params(query: dict[str, list[str]]) -> dict[str, str]:
    return {name: values[-1] for name, values in query.items()}


def _integer(params: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    value = params.get(name, str(default))
    if not value.isdigit() or not low <= int(value) <= high:
        raise ApiError(400, {"error": "InvalidValue", "description": f"{name}: {low} to {high}"})
    return int(value)


def _token(number: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"n": number}).encode()).decode().rstrip("=")


def _untoken(token: str) -> int:
    try:
        number = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))["n"]
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise ApiError(400, {"error": "InvalidValue", "description": "cursor is invalid"}) from None
    if not isinstance(number, int):
        raise ApiError(400, {"error": "InvalidValue", "description": "cursor is invalid"})
    return number


def _oauth_error(error: str, description: str) -> dict[str, str]:
    return {"error": error, "error_description": description}


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
    orgs = [fake.add_organization(name)["id"] for name in ("Acme Ltd", "Globex", "Initech")]
    for user in list(fake.users.values())[1::3]:  # some customers belong to an organization
        fake.touch_user(user["id"], organization_id=orgs[user["id"] % len(orgs)])
    fake.add_user("Priya Shah", role="agent", email="priya.shah@example.com")
    fake.advance(EXPORT_WITHHELD_SECONDS)  # what was just seeded is exported at once
    fake.start(port=options["port"])
    return (
        fake,
        f"Fake Zendesk Support at {fake.url} with {options['contacts']} end-users, "
        "3 organizations and an agent (priya.shah@example.com)",
        {"credentials": fake.credentials()},
    )
