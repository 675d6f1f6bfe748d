"""A strict fake Intercom on 127.0.0.1: a real HTTP server for tests and demos.

Written from the vendor's OpenAPI description, version 2.11 (intercom/Intercom-OpenAPI
`descriptions/2.11/api.intercom.io.yaml`, cited [IC1] in ../shared/reference/crm-apis-more.md
section 6) and the rate-limit page [IC4]:

- Auth [IC1]: `Authorization: Bearer <token>` (tokens never expire [T IC3]), else 401
  `{type: error.list, errors: [{code: unauthorized, message: Access Token Invalid}]}`.
  `Intercom-Version` must name a published version (2.7-2.16, Unstable); real Intercom falls
  back to the app's default without it, this fake refuses it (400, text UNVERIFIED) so a
  connector that forgets to pin one is caught.
- Contact search [IC1 /contacts/search]: `{query, pagination: {per_page, starting_after},
  sort}`; a query is one `{field, operator, value}` or a group `{operator: AND|OR, value}`,
  at most 2 levels and 15 filters a group; operators by field type; date fields take `=`, `<`,
  `>` only and match per calendar day in the workspace's time zone (`workspace_utc_offset`).
  The cursor goes in the body: a `starting_after` query parameter is ignored (page 1 again,
  crm-apis.md section 7 [T I1]). `per_page` at most 150 (the spec's cap for other lists; the
  contacts cap is UNVERIFIED). Cursors continue after the last row's sort key, so a record
  edited mid-listing moves to the end and is read again (Intercom's cursor internals are
  UNVERIFIED). `sort: {field, order}` is from the pagination guide, not the 2.11 schema
  (UNVERIFIED for contacts). New or edited contacts reach search after `search_lag_seconds`.
- `GET /contacts` [IC1]: `per_page` (at most 150, UNVERIFIED) and `starting_after` as query
  parameters, `pages.next.starting_after`.
- `GET /companies/scroll` [IC1]: one open scroll per app, gone after `scroll_idle_seconds`
  (60) unused or at its empty last page; `fail_scroll()` answers the documented 500. The
  answers to a second scroll and to an expired `scroll_param` are UNVERIFIED (400 here).
- Notes [IC1]: `POST /contacts/{id}/notes` (`body` required, `admin_id` optional; 404 `User
  Not Found` / `Resource Not Found`), `GET /contacts/{id}/notes` newest first (page, per_page
  default 15), `GET /notes/{id}`. No update or delete route: PUT, PATCH, DELETE are 404.
- Conversations [IC1]: `POST /conversations` from a contact (`from: {type: lead|user|contact,
  id}`, `body` plain text) answers a `user_message` with its `conversation_id`; `POST
  /conversations/search` on `source.body` (`=` matches one word of the body [IC1]; the
  tokenizer is UNVERIFIED: whitespace here) and `contact_ids`.
- Admins [IC1]: `GET /admins` (`admin.list`).
- Rate limit [IC4]: `requests_per_window` per token per 10-second window, then 429 `{code:
  rate_limit_exceeded}` with `X-RateLimit-Limit`, `-Remaining` and `-Reset` (unix seconds),
  headers sent on every authenticated answer.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from fakes import intercom_data
from fakes.server import FakeServer, JsonHandler

VERSIONS = {f"2.{minor}" for minor in range(7, 17)} | {"Unstable"}
MAX_PER_PAGE = 150
DEFAULT_SEARCH_PAGE = 50
DEFAULT_NOTES_PAGE = 15
MAX_FILTERS = 15
MAX_DEPTH = 2
DAY = 86_400
STRING_OPERATORS = {"=", "!=", "IN", "NIN", "~", "!~", "^", "$"}
INTEGER_OPERATORS = {"=", "!=", "IN", "NIN", "<", ">", "<=", ">="}
DATE_OPERATORS = {"=", "<", ">"}
CONTACT_FIELDS = {
    **dict.fromkeys(("id", "role", "name", "email", "phone", "external_id"), "string"),
    "owner_id": "integer",
    **dict.fromkeys(("created_at", "updated_at", "signed_up_at", "last_seen_at"), "date"),
}
CONVERSATION_FIELDS = {"source.body": "string", "contact_ids": "string", "id": "string"}
CONTACT_WRITE = {
    "role",
    "external_id",
    "email",
    "phone",
    "name",
    "avatar",
    "signed_up_at",
    "last_seen_at",
    "owner_id",
    "unsubscribed_from_emails",
    "custom_attributes",
}
SCROLL_FAILURE = (
    "Request failed due to an internal network error. Please restart the scroll operation."
)
Answer = tuple[int, Any, dict[str, str]]


class ApiError(Exception):
    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self.status, self.body, self.headers = status, body, headers or {}


def intercom_error(status: int, code: str, message: str, **headers: str) -> ApiError:
    body = {
        "type": "error.list",
        "request_id": str(uuid.uuid4()),
        "errors": [{"code": code, "message": message}],
    }
    return ApiError(status, body, headers)


def _invalid(message: str) -> ApiError:
    return intercom_error(400, "parameter_invalid", message)  # the code is UNVERIFIED


def _not_found(message: str = "Resource Not Found") -> ApiError:
    return intercom_error(404, "not_found", message)


@dataclass
class Fault:
    """Answer the next `times` matching requests with this instead of the real thing."""

    kind: str  # "status": answer `status` unprocessed; "lost_answer": process, then `status`
    times: int
    path_contains: str = ""
    status: int = 500
    method: str = ""  # any


@dataclass
class Scroll:
    param: str
    position: int
    used_at: float


class FakeIntercom(FakeServer):
    def __init__(
        self,
        *,
        contacts: int = 0,
        companies: int = 0,
        token: str = "ic-fake-access-token",  # noqa: S107 - the fake's own
        requests_per_window: int = 1666,  # an app's 10,000 a minute in 10-second windows [IC4]
        window_seconds: float = 10.0,
        search_lag_seconds: float = 0.0,
        scroll_idle_seconds: float = 60.0,
        scroll_page_size: int = 50,
        workspace_utc_offset: int = 0,  # seconds east of UTC: where search's days begin
    ) -> None:
        self.contacts: dict[str, dict[str, Any]] = {
            c["id"]: c for c in intercom_data.generate_contacts(contacts)
        }
        self.companies: dict[str, dict[str, Any]] = {
            c["id"]: c for c in intercom_data.generate_companies(companies)
        }
        self.admins = [dict(a) for a in intercom_data.ADMINS]
        self.tokens = {token}
        self.access_tokens: dict[str, float] = {}
        self.authorization_codes: dict[str, str] = {}
        self.clients = {"fake-client-id": "fake-client-secret"}
        self.notes: dict[str, dict[str, Any]] = {}
        self.conversations: dict[str, dict[str, Any]] = {}
        self.requests_per_window = requests_per_window
        self.window_seconds = window_seconds
        self.search_lag_seconds = search_lag_seconds
        self.scroll_idle_seconds = scroll_idle_seconds
        self.scroll_page_size = scroll_page_size
        self.workspace_utc_offset = workspace_utc_offset
        self.scroll: Scroll | None = None
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str, dict[str, list[str]], Any]] = []
        self._window: tuple[int, int] = (0, 0)  # (window number, requests in it)
        self._indexed: dict[str, list[tuple[float, dict[str, Any]]]] = {}
        self._fail_scroll = False
        self.lock = threading.RLock()
        for row in self.contacts.values():
            self._index(row, lag=0)

    # ----- test controls
    def touch(self, ids: list[str], *, at: int | None = None) -> None:
        """Edit contacts now (or at the unix second `at`), as a teammate would in Intercom."""
        with self.lock:
            for contact_id in ids:
                row = self.contacts[contact_id]
                row["updated_at"] = at or int(time.time())
                row["name"] = f"Edited {row['updated_at']}"
                self._index(row)

    def delete(self, ids: list[str]) -> None:
        with self.lock:
            for contact_id in ids:
                del self.contacts[contact_id]
                self._indexed.pop(contact_id, None)

    def fail_scroll(self) -> None:
        """The next scroll continuation answers Intercom's documented 500 and the scroll dies."""
        self._fail_scroll = True

    def notes_of(self, contact_id: str) -> list[dict[str, Any]]:
        """The contact's notes, oldest first."""
        return [n for n in self.notes.values() if n["contact"]["id"] == contact_id]

    def paths(self, method: str | None = None) -> list[str]:
        return [p for m, p, _, _ in self.requests if method in (None, m)]

    def bodies(self, path: str) -> list[Any]:
        return [b for _, p, _, b in self.requests if p == path]

    # ----- the API
    def handle(
        self, method: str, path: str, query: dict[str, list[str]], headers: Any, body: bytes
    ) -> Answer:
        if method == "POST" and path == "/auth/eagle/token":
            return 200, self._token(body), {}
        with self.lock:
            fault = self._take_fault(method, path)
        limit_headers = self._rate_limit(self._authenticate(headers))
        version = headers.get("Intercom-Version")
        if version not in VERSIONS:
            raise intercom_error(
                400,
                "intercom_version_invalid",
                f"Requested version {version!r} is not valid",
                **limit_headers,
            )
        payload = _json_body(body) if body else None
        with self.lock:
            self.requests.append((method, path, query, payload))
        if fault and fault.kind == "status":
            raise intercom_error(fault.status, "server_error", "Server error", **limit_headers)
        try:
            with self.lock:
                status, answer, extra = self._route(method, path, query, payload)
        except ApiError as error:
            error.headers = {**limit_headers, **error.headers}
            raise
        if fault and fault.kind == "lost_answer":  # stored, but the answer never reaches us
            raise intercom_error(fault.status, "server_error", "Bad gateway")
        return status, answer, {**limit_headers, **extra}

    def _route(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> Answer:
        routes: dict[tuple[str, str], Callable[[], Any]] = {
            ("GET", "/admins"): lambda: {"type": "admin.list", "admins": self.admins},
            ("POST", "/contacts/search"): lambda: self._search_contacts(body),
            ("GET", "/contacts"): lambda: self._list_contacts(query),
            ("POST", "/contacts"): lambda: self._add_contact(body),
            ("GET", "/companies/scroll"): lambda: self._scroll(query),
            ("POST", "/conversations"): lambda: self._add_conversation(body),
            ("POST", "/conversations/search"): lambda: self._search_conversations(body),
        }
        if (method, path) in routes:
            return 200, routes[(method, path)](), {}
        notes = re.fullmatch(r"/contacts/([^/]+)/notes", path)
        if notes and method == "POST":
            return 200, self._add_note(notes.group(1), body), {}
        if notes and method == "GET":
            return 200, self._list_notes(notes.group(1), query), {}
        note = re.fullmatch(r"/notes/([^/]+)", path)
        if note and method == "GET":  # notes have no update or delete operation [IC1]
            if note.group(1) not in self.notes:
                raise _not_found()
            return 200, self.notes[note.group(1)], {}
        one = re.fullmatch(r"/contacts/([^/]+)", path)
        if one and method == "GET":
            return 200, self._contact(one.group(1)), {}
        raise _not_found()

    def _take_fault(self, method: str, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.times > 0 and fault.path_contains in path and fault.method in ("", method):
                fault.times -= 1
                return fault
        return None

    def _authenticate(self, headers: Any) -> str:
        kind, _, token = (headers.get("Authorization") or "").partition(" ")
        if kind != "Bearer" or token not in self.tokens:
            raise intercom_error(401, "unauthorized", "Access Token Invalid")
        return token

    def _rate_limit(self, token: str) -> dict[str, str]:
        with self.lock:
            window = int(time.time() // self.window_seconds)
            used = self._window[1] + 1 if self._window[0] == window else 1
            self._window = (window, used)
        reset = int((window + 1) * self.window_seconds) + 1
        headers = {
            "X-RateLimit-Limit": str(self.requests_per_window),
            "X-RateLimit-Remaining": str(max(0, self.requests_per_window - used)),
            "X-RateLimit-Reset": str(reset),
        }
        if used > self.requests_per_window:
            window_name = f"{self.window_seconds:g}_seconds"
            raise intercom_error(
                429,
                "rate_limit_exceeded",
                f"Exceeded rate limit of {self.requests_per_window} in {window_name}",
                **headers,
            )
        return headers

    def _token(self, body: bytes) -> dict[str, Any]:
        """The OAuth code exchange (the URL is UNVERIFIED [T IC3]): a token that never expires."""
        form = {k: v[-1] for k, v in parse_qs(body.decode()).items()}
        if self.clients.get(form.get("client_id", "")) != form.get("client_secret"):
            raise ApiError(401, {"error": "invalid_client"})
        issued_for = self.authorization_codes.pop(form.get("code", ""), None)
        if issued_for is None or issued_for != form.get("redirect_uri"):
            raise ApiError(400, {"error": "invalid_grant"})
        token = uuid.uuid4().hex
        self.tokens.add(token)
        return {"token_type": "Bearer", "token": token, "access_token": token}

    # ----- contacts
    def _index(self, row: dict[str, Any], *, lag: float | None = None) -> None:
        """What search sees of the contact, from `lag` seconds on (older copies until then)."""
        visible = time.time() + (self.search_lag_seconds if lag is None else lag)
        self._indexed.setdefault(row["id"], []).append((visible, dict(row)))

    def _searchable(self) -> list[dict[str, Any]]:
        now, rows = time.time(), []
        for contact_id, copies in self._indexed.items():
            seen = [row for visible, row in copies if visible <= now]
            if seen and contact_id in self.contacts:
                rows.append(seen[-1])
        return rows

    def _search_contacts(self, body: Any) -> dict[str, Any]:
        request = _known(body, {"query", "pagination", "sort"})
        if "query" not in request:
            raise _invalid("query is required")
        self._check_query(request["query"], CONTACT_FIELDS, depth=1)
        rows = [r for r in self._searchable() if self._matches(request["query"], r, CONTACT_FIELDS)]
        sort = request.get("sort") or {"field": "created_at", "order": "ascending"}
        if (
            not isinstance(sort, dict)
            or sort.get("field") not in CONTACT_FIELDS
            or sort.get("order", "ascending") not in ("ascending", "descending")
        ):
            raise _invalid("sort is {field, order: ascending|descending}")
        return _keyset_page(
            rows,
            sort["field"],
            sort.get("order") == "descending",
            _paging(request.get("pagination"), DEFAULT_SEARCH_PAGE),
            fingerprint=_digest([request["query"], sort]),
        )

    def _list_contacts(self, query: dict[str, list[str]]) -> dict[str, Any]:
        paging = {
            "per_page": int(_one(query, "per_page") or DEFAULT_SEARCH_PAGE),
            "starting_after": _one(query, "starting_after"),
        }
        rows = list(self.contacts.values())
        return _keyset_page(rows, "id", False, _paging(paging, DEFAULT_SEARCH_PAGE), "list")

    def _contact(self, contact_id: str) -> dict[str, Any]:
        if contact_id not in self.contacts:
            raise _not_found("User Not Found")
        return self.contacts[contact_id]

    def _add_contact(self, body: Any) -> dict[str, Any]:
        fields = _known(body, CONTACT_WRITE)
        if fields.get("role", "user") not in ("user", "lead"):
            raise _invalid("role must be user or lead")
        if not any(fields.get(k) for k in ("email", "external_id", "role")):
            raise _invalid("email, external_id or role is required")
        now, number = int(time.time()), len(self.contacts) + 1
        while intercom_data.contact_id(number) in self.contacts:
            number += 1
        row = intercom_data.contact(
            number,
            name=str(fields.get("name") or ""),
            phone=fields.get("phone"),
            role=str(fields.get("role") or "user"),
            at=now,
        )
        row.update({k: v for k, v in fields.items() if k in ("email", "external_id", "owner_id")})
        row["custom_attributes"] = dict(fields.get("custom_attributes") or {})
        self.contacts[row["id"]] = row
        self._index(row)
        return row

    # ----- the query grammar
    def _check_query(self, query: Any, fields: dict[str, str], *, depth: int) -> None:
        if not isinstance(query, dict):
            raise _invalid("query must be an object")
        if "field" not in query:
            if query.get("operator") not in ("AND", "OR") or not isinstance(
                query.get("value"), list
            ):
                raise _invalid("a group is {operator: AND|OR, value: [filters]}")
            if depth > MAX_DEPTH:
                raise _invalid(f"queries nest at most {MAX_DEPTH} levels")
            if not 1 <= len(query["value"]) <= MAX_FILTERS:
                raise _invalid(f"a group has 1 to {MAX_FILTERS} filters")
            for part in query["value"]:
                self._check_query(part, fields, depth=depth + 1)
            return
        field, operator, value = query.get("field"), query.get("operator"), query.get("value")
        kind = fields.get(str(field)) or (
            "string" if str(field).startswith("custom_attributes.") else None
        )
        if kind is None:
            raise _invalid(f"{field!r} is not a searchable field")
        allowed = {"string": STRING_OPERATORS, "integer": INTEGER_OPERATORS, "date": DATE_OPERATORS}
        if operator not in allowed[kind]:
            raise _invalid(f"operator {operator!r} is not supported for {field}")
        values = value if operator in ("IN", "NIN") else [value]
        if not isinstance(values, list):
            raise _invalid(f"{operator} takes a list of values")
        for item in values:
            if kind == "string" and not isinstance(item, str):
                raise _invalid(f"{field} takes a string")
            if kind != "string" and not _integer(item):
                raise _invalid(
                    f"{field} takes a {'unix timestamp' if kind == 'date' else 'number'}"
                )

    def _matches(self, query: dict[str, Any], row: dict[str, Any], fields: dict[str, str]) -> bool:
        if "field" not in query:
            results = (self._matches(part, row, fields) for part in query["value"])
            return all(results) if query["operator"] == "AND" else any(results)
        field, operator, value = query["field"], query["operator"], query["value"]
        stored = _field(row, field)
        if fields.get(field) == "date":
            if not isinstance(stored, int):
                return False
            day = self._day(int(value))  # matched per calendar day [IC1]
            return {"=": day <= stored < day + DAY, "<": stored < day, ">": stored >= day + DAY}[
                operator
            ]
        if fields.get(field) == "integer":
            return _compare(operator, stored, int(value) if not isinstance(value, list) else value)
        return _string_matches(operator, stored, value)

    def _day(self, moment: int) -> int:
        """The start of moment's day in the workspace's time zone, as a unix time."""
        local = moment + self.workspace_utc_offset
        return local - local % DAY - self.workspace_utc_offset

    # ----- companies
    def _scroll(self, query: dict[str, list[str]]) -> dict[str, Any]:
        now, param = time.time(), _one(query, "scroll_param")
        if self.scroll and now - self.scroll.used_at > self.scroll_idle_seconds:
            self.scroll = None  # unused for a minute: expired [IC1]
        if param is None:
            if self.scroll is not None:  # one open scroll per app [IC1]; the answer is UNVERIFIED
                raise _invalid("scroll_exists: another scroll is open for this app")
            self.scroll = Scroll(str(uuid.uuid4()), 0, now)
        elif self.scroll is None or self.scroll.param != param:
            raise _invalid("scroll_param is invalid or expired")  # UNVERIFIED answer
        elif self._fail_scroll:
            self._fail_scroll, self.scroll = False, None
            raise intercom_error(500, "server_error", SCROLL_FAILURE)
        scroll = self.scroll
        rows = sorted(self.companies.values(), key=lambda c: str(c["id"]))
        page = rows[scroll.position : scroll.position + self.scroll_page_size]
        scroll.position += len(page)
        scroll.used_at = now
        if not page:
            self.scroll = None  # the end: the scroll_param expires [IC1]
        return {
            "type": "list",
            "data": page,
            "pages": None,
            "total_count": None,
            "scroll_param": scroll.param,
        }

    # ----- notes
    def _add_note(self, contact_id: str, body: Any) -> dict[str, Any]:
        fields = _known(body, {"body", "admin_id", "contact_id"})
        if not isinstance(fields.get("body"), str) or not fields["body"].strip():
            raise _invalid("body is required")
        self._contact(contact_id)
        author = self._admin(fields.get("admin_id")) if fields.get("admin_id") else self.admins[0]
        note_id = str(max((int(i) for i in self.notes), default=27) + 1)
        self.notes[note_id] = {
            "type": "note",
            "id": note_id,
            "created_at": int(time.time()),
            "contact": {"type": "contact", "id": contact_id},
            "author": author,
            "body": fields["body"],
        }
        return self.notes[note_id]

    def _list_notes(self, contact_id: str, query: dict[str, list[str]]) -> dict[str, Any]:
        self._contact(contact_id)
        page = int(_one(query, "page") or 1)
        per_page = int(_one(query, "per_page") or DEFAULT_NOTES_PAGE)
        if not 1 <= per_page <= MAX_PER_PAGE or page < 1:
            raise _invalid(f"per_page is 1 to {MAX_PER_PAGE}, page from 1")
        newest_first = sorted(self.notes_of(contact_id), key=lambda n: -int(n["id"]))
        total_pages = -(-len(newest_first) // per_page)
        pages: dict[str, Any] = {
            "type": "pages",
            "page": page,
            "per_page": per_page,
            "total_pages": total_pages,
            "next": None,
        }
        if page < total_pages:
            pages["next"] = {"page": page + 1}
        data = newest_first[(page - 1) * per_page : page * per_page]
        return {"type": "list", "data": data, "total_count": len(newest_first), "pages": pages}

    def _admin(self, admin_id: Any) -> dict[str, Any]:
        admin = next((a for a in self.admins if a["id"] == str(admin_id)), None)
        if admin is None:
            raise _not_found()
        return admin

    # ----- conversations
    def _add_conversation(self, body: Any) -> dict[str, Any]:
        fields = _known(body, {"from", "body", "created_at", "attachment_urls", "subject"})
        sender = fields.get("from")
        if not isinstance(sender, dict) or sender.get("type") not in ("lead", "user", "contact"):
            raise _invalid("from is {type: lead|user|contact, id}")
        row = self._contact(str(sender.get("id")))
        if sender["type"] != "contact" and sender["type"] != row["role"]:
            raise _not_found("User Not Found")
        if not isinstance(fields.get("body"), str) or not fields["body"].strip():
            raise _invalid("body is required")
        if "<" in fields["body"]:
            raise _invalid("body is plain text: HTML is not supported")
        now = int(fields.get("created_at") or time.time())
        conversation_id = str(max((int(i) for i in self.conversations), default=334) + 1)
        message_id = str(2000 + len(self.conversations) + 1)
        self.conversations[conversation_id] = {
            "type": "conversation",
            "id": conversation_id,
            "created_at": now,
            "updated_at": now,
            "state": "open",
            "open": True,
            "read": False,
            "admin_assignee_id": None,
            "source": {
                "type": "conversation",
                "id": message_id,
                "delivered_as": "customer_initiated",
                "subject": "",
                "body": fields["body"],
                "author": {"type": row["role"], "id": row["id"]},
            },
            "contacts": {
                "type": "contact.list",
                "contacts": [{"type": "contact", "id": row["id"]}],
            },
        }
        return {
            "type": "user_message",
            "id": message_id,
            "created_at": now,
            "body": fields["body"],
            "message_type": "inapp",
            "conversation_id": conversation_id,
        }

    def _search_conversations(self, body: Any) -> dict[str, Any]:
        request = _known(body, {"query", "pagination", "sort"})
        self._check_query(request.get("query"), CONVERSATION_FIELDS, depth=1)
        rows = [
            c
            for c in self.conversations.values()
            if self._conversation_matches(request["query"], c)
        ]
        page = _keyset_page(rows, "created_at", True, _paging(request.get("pagination"), 20), "c")
        page["type"], page["conversations"] = "conversation.list", page.pop("data")
        return page

    def _conversation_matches(self, query: dict[str, Any], row: dict[str, Any]) -> bool:
        if "field" not in query:
            results = (self._conversation_matches(part, row) for part in query["value"])
            return all(results) if query["operator"] == "AND" else any(results)
        if query["field"] == "source.body":  # each word of the body on its own [IC1]
            words = str(row["source"]["body"]).split()
            return any(_string_matches(query["operator"], word, query["value"]) for word in words)
        if query["field"] == "contact_ids":
            ids = [c["id"] for c in row["contacts"]["contacts"]]
            return any(_string_matches(query["operator"], i, query["value"]) for i in ids)
        return _string_matches(query["operator"], row["id"], query["value"])


class _Handler(JsonHandler):
    api_error = ApiError


FakeIntercom.handler_class = _Handler


def _json_body(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        raise _invalid("the body is not JSON") from None


def _known(body: Any, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise _invalid("the body must be a JSON object")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise _invalid(f"unknown parameters: {', '.join(unknown)}")
    return dict(body)


def _one(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[-1] if values else None


def _paging(pagination: Any, default: int) -> dict[str, Any]:
    paging = _known(pagination or {}, {"per_page", "starting_after"})
    per_page = paging.get("per_page", default)
    if not isinstance(per_page, int) or not 1 <= per_page <= MAX_PER_PAGE:
        raise _invalid(f"per_page must be between 1 and {MAX_PER_PAGE}")  # UNVERIFIED text
    return {"per_page": per_page, "starting_after": paging.get("starting_after")}


def _keyset_page(
    rows: list[dict[str, Any]],
    field: str,
    descending: bool,
    paging: dict[str, Any],
    fingerprint: str,
) -> dict[str, Any]:
    """One page after the cursor's sort key: an edit moves a row, it never shifts the others."""
    ordered = sorted(
        rows, key=lambda r: (_sort_value(_field(r, field)), r["id"]), reverse=descending
    )
    page_number, after = 1, None
    if paging["starting_after"]:
        try:
            mark = json.loads(base64.urlsafe_b64decode(paging["starting_after"]))
            if mark["q"] != fingerprint:
                raise ValueError
            page_number, after = mark["page"], tuple(mark["after"])
        except (ValueError, KeyError, TypeError):
            raise _invalid("starting_after is not a cursor of this query") from None
    if after is not None:
        ordered = [
            r
            for r in ordered
            if ((_sort_value(_field(r, field)), r["id"]) < after) == descending
            and (_sort_value(_field(r, field)), r["id"]) != after
        ]
    size = paging["per_page"]
    data, rest = ordered[:size], ordered[size:]
    total = len(rows)
    pages: dict[str, Any] = {
        "type": "pages",
        "page": page_number,
        "per_page": size,
        "total_pages": -(-total // size),
    }
    if rest:
        last = data[-1]
        mark = {
            "q": fingerprint,
            "page": page_number + 1,
            "after": [_sort_value(_field(last, field)), last["id"]],
        }
        token = base64.urlsafe_b64encode(json.dumps(mark).encode()).decode()
        pages["next"] = {"page": page_number + 1, "starting_after": token}
    return {"type": "list", "data": [dict(r) for r in data], "total_count": total, "pages": pages}


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


def _field(row: dict[str, Any], field: str) -> Any:
    value: Any = row
    for part in field.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _sort_value(value: Any) -> Any:
    return value if isinstance(value, int) else -1 if value is None else str(value)


def _integer(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, str) and value.isdigit())


def _compare(operator: str, stored: Any, value: Any) -> bool:
    if operator in ("IN", "NIN"):
        return (stored in [int(v) for v in value]) == (operator == "IN")
    if not isinstance(stored, int):
        return operator == "!="
    return bool(
        {
            "=": stored == value,
            "!=": stored != value,
            "<": stored < value,
            ">": stored > value,
            "<=": stored <= value,
            ">=": stored >= value,
        }[operator]
    )


def _string_matches(operator: str, stored: Any, value: Any) -> bool:
    text = "" if stored is None else str(stored)
    if operator in ("IN", "NIN"):
        return (text in value) == (operator == "IN")
    return bool(
        {
            "=": text == value,
            "!=": text != value,
            "~": value in text,
            "!~": value not in text,
            "^": text.startswith(value),
            "$": text.endswith(value),
        }[operator]
    )


def serve_demo(options: dict[str, Any]) -> tuple[FakeIntercom, str, dict[str, Any]]:
    """Start the fake for `manage.py fakecrm`; answer it, a description, the connection JSON."""
    fake = FakeIntercom(contacts=options["contacts"], companies=options["companies"])
    url = fake.start(port=options["port"])
    return (
        fake,
        f"Fake Intercom at {url} with {options['contacts']} contacts and "
        f"{options['companies']} companies",
        {"credentials": {"access_token": next(iter(fake.tokens)), "base_url": url}},
    )
