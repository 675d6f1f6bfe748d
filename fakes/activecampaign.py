"""A strict fake ActiveCampaign (API v3) on 127.0.0.1: a real HTTP server for tests and demos.

Written from ../shared/reference/crm-apis-more.md section 4 and the vendor's documents: the
OpenAPI reference (AC1, `api-evangelist/activecampaign` openapi/_original/activecampaign-v3.json),
and developers.activecampaign.com's pages on errors (AC4), pagination (AC5) and rate limits (AC6).

- Paths under /api/3 only; the `Api-Token` header, a wrong or missing one answered 403
  `{"message": "Forbidden"}` (AC4: no 401; the body is AC1's 403 example).
- GET /contacts: `limit` (default 20, max 100, AC5), `offset`, `id_greater`/`id_less`,
  `orders[id]` (ASC/DESC any case; another value 422 "Invalid order direction", AC1), `ids[]`,
  `email`, `phone` (starts with the stored text, AC1), `search`, and the date filters
  `filters[updated_after|updated_before|created_after|created_before]` (typed `date`, AC1).
  Ids, counts and times are strings; times in the account's zone (UTC-5) with their offset.
- Notes (POST /notes, GET/PUT /notes/{id}, GET /contacts/{id}/notes) with `note`, `relid` and
  `reltype` all required (AC1); contact tasks (POST /dealTasks) with `relid`, `duedate` and
  `dealTasktype` required and `ownerType` defaulting to `deal` (AC1); GET /dealTasktypes; users
  (GET /users, /users/me, /users/{id}, /users/email/{email}); POST /contacts.
- Validation errors are 422 `{"errors": [{title, detail, code, source: {pointer}}]}`, missing
  records `{"message": "No Result found for <Type> with id <id>"}` (AC1's shapes).
- 5 requests per second per account (AC6): every answer carries `RateLimit-Limit` and
  `RateLimit-Remaining`; one over the limit is a 429 with `Retry-After` (30 s in the docs'
  example; `retry_after` sets it).

UNVERIFIED, so the fake takes the strict reading (configurable where it matters):
`filters[updated_after]=D` returns contacts changed on a later day than D in the account's zone
(any time part is dropped); a `limit` over 100 is answered with 100 (`over_limit="error"`:
422); the 429 body; the unknown-user body; a phone-only contact needs `allowNullEmail: true`
and an account that allows them (`phone_only_contacts`). Query parameters the fake does not
model are refused with a 400 (the real API may ignore them): a typo cannot pass unnoticed.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import unquote

from fakes.activecampaign_data import (
    ACCOUNT_ZONE,
    TASK_TYPES,
    USERS,
    FakeContact,
    account_time,
    generate_contacts,
)
from fakes.server import FakeServer, JsonHandler

MAX_LIMIT = 100
DEFAULT_LIMIT = 20
RATE_LIMIT_WINDOW_SECONDS = 1.0
CONTACT_LIST_PARAMS = {
    "ids", "ids[]", "email", "phone", "search", "id_greater", "id_less", "orders[id]",
    "filters[created_before]", "filters[created_after]", "filters[updated_before]",
    "filters[updated_after]", "limit", "offset",
}  # fmt: skip
CONTACT_FIELDS = {
    "email", "allowNullEmail", "firstName", "lastName", "phone", "fieldValues", "orgid",
}  # fmt: skip
NOTE_RELTYPES = {"Activity", "Deal", "DealTask", "Subscriber", "CustomerAccount"}
TASK_FIELDS = {
    "title", "ownerType", "relid", "status", "note", "duedate", "edate", "dealTasktype",
    "assignee", "triggerAutomationOnCreate", "doneAutomation",
}  # fmt: skip

Answer = tuple[int, Any, dict[str, str]]
Route = Callable[[dict[str, list[str]], bytes], tuple[int, Any]]


class ApiError(Exception):
    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self.status, self.body, self.headers = status, body, headers or {}


def _not_found(kind: str, record_id: Any, status: int = 404) -> ApiError:
    return ApiError(status, {"message": f"No Result found for {kind} with id {record_id}"})


def _invalid(title: str, code: str = "field_invalid", pointer: str = "") -> ApiError:
    error: dict[str, Any] = {"title": title, "detail": "", "code": code}
    if pointer:
        error["source"] = {"pointer": pointer}
    return ApiError(422, {"errors": [error]})


def _missing(field: str) -> ApiError:
    return _invalid(
        f"The field {field} was not provided.", "field_missing", f"/data/attributes/{field}"
    )


def _not_modelled(what: str) -> ApiError:
    return ApiError(400, {"message": f"The fake ActiveCampaign does not model {what}."})


@dataclass
class Fault:
    """Answer the next `times` requests whose path contains `path_contains` with `status`."""

    times: int
    status: int = 500
    path_contains: str = ""
    retry_after: str | None = None


class FakeActiveCampaign(FakeServer):
    def __init__(
        self,
        *,
        contacts: int = 0,
        api_token: str = "ac-fake-api-token",  # noqa: S107 - a fake
        rate_limit: int = 5,
        retry_after: int = 30,
        over_limit: str = "clamp",  # or "error": what a `limit` over 100 gets (UNVERIFIED)
        phone_only_contacts: bool = True,
    ) -> None:
        self.contacts = {c.id: c for c in generate_contacts(contacts)}
        self.users: dict[str, dict[str, Any]] = {u["id"]: dict(u) for u in USERS}
        self.task_types = [dict(t) for t in TASK_TYPES]
        self.token_user_id = USERS[0]["id"]  # whose API token it is: the author of notes
        self.notes: dict[str, dict[str, Any]] = {}
        self.tasks: dict[str, dict[str, Any]] = {}
        self.api_tokens = {api_token}
        self.rate_limit = rate_limit
        self.retry_after = retry_after
        self.over_limit = over_limit
        self.phone_only_contacts = phone_only_contacts
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str, dict[str, list[str]]]] = []
        self.rate_limited = 0  # requests answered 429 by the rate limit
        self._hits: deque[float] = deque()
        self.lock = threading.RLock()

    # ----- test controls
    def touch(self, ids: list[int], *, at_ms: int | None = None) -> None:
        """Edit contacts now (or at at_ms), as a user would."""
        with self.lock:
            for contact_id in ids:
                contact = self.contacts[contact_id]
                contact.updated_ms = at_ms or int(time.time()) * 1000
                contact.last_name = f"Edited {contact.updated_ms}"

    def delete(self, ids: list[int]) -> None:
        """DELETE /contacts/{id} is a hard delete (AC1): the contact is gone."""
        with self.lock:
            for contact_id in ids:
                del self.contacts[contact_id]

    def paths(self, method: str | None = None) -> list[str]:
        return [p for m, p, _ in self.requests if method in (None, m)]

    def queries(self, path: str) -> list[dict[str, list[str]]]:
        return [q for _, p, q in self.requests if p == path]

    # ----- the API
    def handle(
        self, method: str, path: str, query: dict[str, list[str]], headers: Any, body: bytes
    ) -> Answer:
        with self.lock:
            self.requests.append((method, path, query))
            limits = self._rate_limit()
            fault = self._take_fault(path)
        if headers.get("Api-Token") not in self.api_tokens:
            raise ApiError(403, {"message": "Forbidden"}, limits)
        if fault is not None:
            extra = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            raise ApiError(fault.status, {"message": "Injected fault"}, {**limits, **extra})
        route = self._route(method, path)
        try:
            with self.lock:
                status, payload = route(query, body)
        except ApiError as error:
            error.headers = {**limits, **error.headers}
            raise
        return status, payload, limits

    def _rate_limit(self) -> dict[str, str]:
        """5 requests in any second per account; the 429 body is UNVERIFIED."""
        now = time.monotonic()
        while self._hits and self._hits[0] <= now - RATE_LIMIT_WINDOW_SECONDS:
            self._hits.popleft()
        if len(self._hits) >= self.rate_limit:
            self.rate_limited += 1
            headers = {
                "RateLimit-Limit": str(self.rate_limit),
                "RateLimit-Remaining": "0",
                "Retry-After": str(self.retry_after),
            }
            raise ApiError(429, {"message": "Too Many Requests"}, headers)
        self._hits.append(now)
        remaining = self.rate_limit - len(self._hits)
        return {"RateLimit-Limit": str(self.rate_limit), "RateLimit-Remaining": str(remaining)}

    def _take_fault(self, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.times > 0 and fault.path_contains in path:
                fault.times -= 1
                return fault
        return None

    def _route(self, method: str, path: str) -> Route:
        rest = path.removeprefix("/api/3/") if path.startswith("/api/3/") else None
        routes: dict[tuple[str, str], Route] = {
            ("GET", "contacts"): lambda q, b: (200, self._list_contacts(q)),
            ("POST", "contacts"): lambda q, b: (201, self._create_contact(_json(b))),
            ("POST", "notes"): lambda q, b: (201, self._create_note(_json(b))),
            ("POST", "dealTasks"): lambda q, b: (201, self._create_task(_json(b))),
            ("GET", "dealTasktypes"): lambda q, b: (200, self._task_types(q)),
            ("GET", "users"): lambda q, b: (200, self._list_users(q)),
            ("GET", "users/me"): lambda q, b: (200, {"user": self.users[self.token_user_id]}),
        }
        if rest is not None and (method, rest) in routes:
            return routes[(method, rest)]
        patterns: dict[tuple[str, str], Callable[[str, bytes], tuple[int, Any]]] = {
            ("GET", r"contacts/(\d+)"): lambda i, b: (200, {"contact": self._contact_json(i)}),
            ("GET", r"contacts/(\d+)/notes"): lambda i, b: (200, self._contact_notes(i)),
            ("GET", r"notes/(\d+)"): lambda i, b: (200, {"note": self._note(i)}),
            ("PUT", r"notes/(\d+)"): lambda i, b: (200, self._update_note(i, _json(b))),
            ("GET", r"dealTasks/(\d+)"): lambda i, b: (200, {"dealTask": self._task(i)}),
            ("GET", r"users/(\d+)"): lambda i, b: (200, {"user": self._user(i)}),
            ("GET", r"users/email/([^/]+)"): lambda e, b: (200, {"user": self._user_by(e)}),
        }
        for (verb, pattern), handler in patterns.items():
            match = re.fullmatch(pattern, rest or "")
            if verb == method and match:
                return _with_path_id(handler, unquote(match.group(1)))
        raise ApiError(404, {"message": f"No route for {method} {path}"})  # body UNVERIFIED

    # ----- contacts
    def _list_contacts(self, query: dict[str, list[str]]) -> dict[str, Any]:
        params = _params(query, CONTACT_LIST_PARAMS)
        limit, offset = self._limit(params), _number(params, "offset", 0)
        direction = params.get("orders[id]", "ASC").upper()
        if direction not in ("ASC", "DESC"):
            raise ApiError(
                422,
                {"errors": [{"status": 422, "title": "Invalid attribute",
                             "detail": f'Invalid order direction: "{params["orders[id]"]}". '
                                       'Allowed values are: "ASC", "DESC"'}]},
            )  # fmt: skip
        wanted = _matcher(params)
        found = sorted(
            (c for c in self.contacts.values() if wanted(c)),
            key=lambda c: c.id,
            reverse=direction == "DESC",
        )
        page = found[offset : offset + limit]
        return {
            "scoreValues": [],
            "contacts": [self._contact_json(str(c.id)) for c in page],
            "meta": {"total": str(len(found)), "page_input": {"limit": limit, "offset": offset}},
        }

    def _limit(self, params: dict[str, str]) -> int:
        limit = _number(params, "limit", DEFAULT_LIMIT)
        if limit < 1:
            raise _invalid("limit must be a positive number.", pointer="limit")
        if limit > MAX_LIMIT and self.over_limit == "error":
            raise _invalid(f"limit must be at most {MAX_LIMIT}.", pointer="limit")
        return min(limit, MAX_LIMIT)

    def _contact_json(self, contact_id: str) -> dict[str, Any]:
        contact = self._live_contact(contact_id)
        return {
            "cdate": account_time(contact.created_ms),
            "email": contact.email,
            "phone": contact.phone,
            "firstName": contact.first_name,
            "lastName": contact.last_name,
            "orgid": "0",
            "deleted": "0",
            "anonymized": "0",
            "udate": account_time(contact.updated_ms),
            "links": {"notes": f"{self.url}/api/3/contacts/{contact.id}/notes"},
            "id": str(contact.id),
            "organization": None,
        }

    def _live_contact(self, contact_id: Any, status: int = 404) -> FakeContact:
        contact = self.contacts.get(int(contact_id)) if str(contact_id).isdigit() else None
        if contact is None:
            raise _not_found("Subscriber", contact_id, status)
        return contact

    def _create_contact(self, body: Any) -> dict[str, Any]:
        fields = _object(body, "contact", CONTACT_FIELDS)
        email = str(fields.get("email") or "")
        phone = str(fields.get("phone") or "")
        if not email and not (
            fields.get("allowNullEmail") is True and phone and self.phone_only_contacts
        ):  # "required unless a phone number is provided and the account has opted-in" (AC1)
            raise _invalid("Email address is required.", "field_missing", "/data/attributes/email")
        if email and any(c.email.casefold() == email.casefold() for c in self.contacts.values()):
            raise _invalid(
                "Email address already exists in the system", "duplicate", "/data/attributes/email"
            )
        now = int(time.time()) * 1000
        contact_id = max(self.contacts, default=0) + 1
        self.contacts[contact_id] = FakeContact(
            contact_id,
            str(fields.get("firstName") or ""),
            str(fields.get("lastName") or ""),
            email,
            phone,
            now,
            now,
        )
        return {"fieldValues": [], "contact": self._contact_json(str(contact_id))}

    # ----- notes
    def _create_note(self, body: Any) -> dict[str, Any]:
        fields = self._note_fields(body, status=404)
        note_id = str(len(self.notes) + 1)
        now = account_time(int(time.time()) * 1000)
        self.notes[note_id] = {
            "id": note_id, **fields, "userid": self.token_user_id, "user": self.token_user_id,
            "is_draft": "0", "cdate": now, "mdate": now,
            "owner": {"type": "contact", "id": fields["relid"]},
        }  # fmt: skip
        return {"contacts": [self._contact_json(fields["relid"])], "note": self.notes[note_id]}

    def _update_note(self, note_id: str, body: Any) -> dict[str, Any]:
        note = self._note(note_id)
        # A note of a contact that is gone: 403 in the reference's example (AC1).
        fields = self._note_fields(body, status=403)
        note.update(fields, mdate=account_time(int(time.time()) * 1000))
        note["owner"] = {"type": "contact", "id": fields["relid"]}
        return {"note": note}

    def _note_fields(self, body: Any, *, status: int) -> dict[str, str]:
        fields = _object(body, "note", {"note", "relid", "reltype"})
        for name in ("note", "relid", "reltype"):  # all three required, on update too (AC1)
            if fields.get(name) in (None, ""):
                raise _missing(name)
        if fields["reltype"] not in NOTE_RELTYPES:
            raise _invalid(f"reltype must be one of {sorted(NOTE_RELTYPES)}.", pointer="reltype")
        if fields["reltype"] != "Subscriber":
            raise _not_modelled(f"notes on a {fields['reltype']}")
        if not isinstance(fields["note"], str):
            raise _invalid("note must be text.", pointer="note")
        relid = _integer(fields["relid"], "relid")
        self._live_contact(relid, status)
        return {"note": fields["note"], "relid": str(relid), "reltype": "Subscriber"}

    def _note(self, note_id: str) -> dict[str, Any]:
        if note_id not in self.notes:
            raise _not_found("Note", note_id)
        return self.notes[note_id]

    def _contact_notes(self, contact_id: str) -> dict[str, Any]:
        self._live_contact(contact_id)
        return {"notes": [n for n in self.notes.values() if n["relid"] == contact_id]}

    # ----- tasks
    def _create_task(self, body: Any) -> dict[str, Any]:
        fields = _object(body, "dealTask", TASK_FIELDS)
        for name in ("relid", "duedate", "dealTasktype"):  # required (AC1)
            if fields.get(name) in (None, ""):
                raise _missing(name)
        owner_type = fields.get("ownerType", "deal")  # the default is a deal (AC1)
        if owner_type not in ("contact", "deal"):
            raise _invalid("ownerType must be contact or deal.", pointer="ownerType")
        relid = _integer(fields["relid"], "relid")
        if owner_type == "deal":
            raise _not_found("Deal", relid)  # the fake has no deals
        self._live_contact(relid)
        type_id = str(_integer(fields["dealTasktype"], "dealTasktype"))
        if type_id not in {t["id"] for t in self.task_types}:
            raise _invalid(f"dealTasktype {type_id} does not exist.", pointer="dealTasktype")
        assignee = fields.get("assignee")
        if assignee is not None and str(_integer(assignee, "assignee")) not in self.users:
            raise _invalid(f"assignee {assignee} is not a user.", pointer="assignee")
        status = fields.get("status", 0)
        if status not in (0, 1):
            raise _invalid("status is 0 (incomplete) or 1 (complete).", pointer="status")
        due = _moment(fields["duedate"], "duedate")
        task_id = str(len(self.tasks) + 1)
        now = account_time(int(time.time()) * 1000)
        self.tasks[task_id] = {
            "id": task_id, "duedate": due, "edate": fields.get("edate"), "status": status,
            "title": fields.get("title"), "note": fields.get("note"), "relid": str(relid),
            "reltype": "Subscriber", "dealTasktype": type_id, "cdate": now, "udate": now,
            "user": self.token_user_id,
            "assignee": str(assignee) if assignee is not None else None,
            "owner": {"type": "contact", "id": str(relid)},
        }  # fmt: skip
        return {"dealTask": self.tasks[task_id]}

    def _task(self, task_id: str) -> dict[str, Any]:
        if task_id not in self.tasks:
            raise _not_found("DealTask", task_id)
        return self.tasks[task_id]

    def _task_types(self, query: dict[str, list[str]]) -> dict[str, Any]:
        _params(query, set())
        return {"dealTasktypes": self.task_types, "meta": {"total": str(len(self.task_types))}}

    # ----- users
    def _list_users(self, query: dict[str, list[str]]) -> dict[str, Any]:
        params = _params(query, {"limit", "offset"})
        limit, offset = self._limit(params), _number(params, "offset", 0)
        users = sorted(self.users.values(), key=lambda u: int(u["id"]))
        return {"users": users[offset : offset + limit], "meta": {"total": str(len(users))}}

    def _user(self, user_id: str) -> dict[str, Any]:
        if user_id not in self.users:
            raise _not_found("User", user_id)
        return self.users[user_id]

    def _user_by(self, email: str) -> dict[str, Any]:
        wanted = email.casefold()
        for user in self.users.values():
            if user["email"].casefold() == wanted:
                return user
        raise ApiError(404, {"message": f"No Result found for User with email {email}"})


class _Handler(JsonHandler):
    api_error = ApiError


FakeActiveCampaign.handler_class = _Handler


def _json(body: bytes) -> Any:
    try:
        return json.loads(body or b"null")
    except ValueError:
        raise ApiError(400, {"message": "The request body is not valid JSON."}) from None


def _object(body: Any, name: str, allowed: set[str]) -> dict[str, Any]:
    """The body's one wrapped object ({"note": {...}}), with only the fields AC1 documents."""
    if not isinstance(body, dict) or not isinstance(body.get(name), dict):
        raise _invalid(f"The {name} attribute was not provided", "field_missing", f"/{name}")
    fields: dict[str, Any] = body[name]
    unknown = set(fields) - allowed
    if unknown:
        raise _invalid(f"Unknown {name} field(s): {sorted(unknown)}", pointer=f"/{name}")
    return fields


def _params(query: dict[str, list[str]], allowed: set[str]) -> dict[str, str]:
    unknown = set(query) - allowed
    if unknown:
        raise _not_modelled(f"the query parameter(s) {sorted(unknown)}")
    return {name: values[-1] for name, values in query.items()}


def _with_path_id(handler: Callable[[str, bytes], tuple[int, Any]], path_id: str) -> Route:
    """A route for a record's path: it takes no query parameters."""

    def route(query: dict[str, list[str]], body: bytes) -> tuple[int, Any]:
        _params(query, set())
        return handler(path_id, body)

    return route


def _number(params: dict[str, str], name: str, default: int) -> int:
    value = params.get(name)
    if value is None:
        return default
    if not value.isdigit():
        raise _invalid(f"{name} must be a number.", pointer=name)
    return int(value)


def _integer(value: Any, name: str) -> int:
    if isinstance(value, bool) or not str(value).isdigit():
        raise _invalid(f"{name} must be an integer id.", pointer=f"/data/attributes/{name}")
    return int(value)


def _moment(value: Any, name: str) -> str:
    """A date or date-time (ISO 8601) as stored, in the account's zone."""
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        raise _invalid(f"{name} must be a date.", pointer=f"/data/attributes/{name}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ACCOUNT_ZONE)
    return moment.astimezone(ACCOUNT_ZONE).isoformat()


def _day(params: dict[str, str], name: str) -> date | None:
    """A date filter's day; a time part is dropped (whether one counts is UNVERIFIED)."""
    if name not in params:
        return None
    try:
        return date.fromisoformat(params[name][:10])
    except ValueError:
        raise _invalid(f"{name} must be a date (YYYY-MM-DD).", pointer=name) from None


def _local_day(ms: int) -> date:
    return datetime.fromtimestamp(ms / 1000, UTC).astimezone(ACCOUNT_ZONE).date()


def _matcher(params: dict[str, str]) -> Callable[[FakeContact], bool]:
    """Whether a contact passes the list's filters (all of them)."""
    ids = {int(i) for i in re.split(r"[,\s]+", params.get("ids[]", params.get("ids", ""))) if i}
    id_greater, id_less = _number(params, "id_greater", 0), _number(params, "id_less", 0)
    updated_after, updated_before = (
        _day(params, "filters[updated_after]"),
        _day(params, "filters[updated_before]"),
    )
    created_after, created_before = (
        _day(params, "filters[created_after]"),
        _day(params, "filters[created_before]"),
    )
    email, phone = params.get("email", "").casefold(), params.get("phone", "")
    search = params.get("search", "").casefold()

    def matches(contact: FakeContact) -> bool:
        updated, created = _local_day(contact.updated_ms), _local_day(contact.created_ms)
        text = f"{contact.first_name} {contact.last_name} {contact.email} {contact.phone}"
        return (
            (not ids or contact.id in ids)
            and contact.id > id_greater
            and (not id_less or contact.id < id_less)
            # "after" a day: a later day, in the account's zone (the strict reading).
            and (updated_after is None or updated > updated_after)
            and (updated_before is None or updated < updated_before)
            and (created_after is None or created > created_after)
            and (created_before is None or created < created_before)
            and (not email or contact.email.casefold() == email)
            and (not phone or contact.phone.startswith(phone))  # "starts with" (AC1)
            and (not search or search in text.casefold())
        )

    return matches


def serve_demo(options: dict[str, Any]) -> tuple[FakeActiveCampaign, str, dict[str, Any]]:
    """Start the fake for `manage.py fakecrm`; answer it, a description, the connection JSON."""
    fake = FakeActiveCampaign(contacts=options["contacts"])
    url = fake.start(port=options["port"])
    return (
        fake,
        f"Fake ActiveCampaign at {url} with {options['contacts']} contacts "
        "(5 requests a second, as the real one)",
        {"credentials": {"api_url": url, "api_token": next(iter(fake.api_tokens))}},
    )
