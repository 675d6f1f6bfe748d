"""A strict fake Keap (REST v2) on 127.0.0.1: a real HTTP server for tests and demos.

Written from ../shared/reference/crm-apis-more.md section 7 and Keap's v2 OpenAPI
(infusionsoft/keap-sdk `sdks/v2/swagger.yml` [KP1]):

- Auth [KP2]: a PAT or SAK in `X-Keap-API-Key` (Keap's API-key help page; Bearer too, as the
  OAS says: which one the gateway wants is UNVERIFIED, so both pass), OAuth access tokens as
  `Authorization: Bearer` that expire (24 h). Anything else is the gateway's 401
  `{"fault": {"faultstring", "detail": {"errorcode"}}}` [KP3].
- Token endpoint `POST /token` [KP2]: form-encoded `authorization_code` and `refresh_token`
  grants, the client by HTTP Basic or in the form; every refresh answers a new refresh token
  and kills the old one (`invalid_grant` after) [KP5]. RFC 6749 error bodies (UNVERIFIED).
- Listings [KP1]: `filter` terms `field<op>value` joined by `;`, only each endpoint's documented
  fields (others: 400); times must be ISO-8601 with milliseconds and an offset;
  `start_update_time`/`since_time` inclusive (UNVERIFIED); `phone_number` needs `phone_fields`;
  `order_by` from the documented list (companies cannot be ordered by update time);
  `page_size` up to 1,000 (users 100); `page_token`s are offsets into one query (whether
  Keap's survive edits is UNVERIFIED, so the fake's do not); ties come in id order; `fields`
  names what a contact or company answers beyond its id (the default sets are UNVERIFIED).
- Phone search: the typed `number` equals the value; `phone_search_e164` also matches
  `number_e164` (UNVERIFIED which Keap does).
- Notes [KP1]: `POST /v2/contacts/{id}/notes` needs `user_id` (an active user) and `title` or
  `type` (Appointment, Call, Email, Fax, Letter, Other); `PATCH` with `update_mask` writes the
  masked fields, without one every field (unsent ones are cleared). `GET /v2/notes` and
  `/v2/contacts/{id}/notes` list them. Tasks: `POST /v2/tasks` needs `assigned_to_user_id`,
  `priority` CRITICAL|ESSENTIAL|NONESSENTIAL, ISO `due_time`. No idempotency key: a repeated
  POST makes a second record.
- Limits [KP4]: a key gets 10 requests a second and 240 a minute (rolling), then a 429 with
  `x-keap-product-throttle-{limit,time-unit,interval,available,used}` [KP7] and a gateway
  fault body (its text is UNVERIFIED).
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

from fakes.hubspot_data import iso
from fakes.keap_data import USERS, generate_companies, generate_contacts, phone
from fakes.server import FakeServer, JsonHandler

API = "/crm/rest"
MAX_PAGE_SIZE = 1000
MAX_USERS_PAGE_SIZE = 100
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d\d:\d\d)")
TERM = re.compile(r"([A-Za-z_0-9]+)(==|!=|>=|<=|>|<)(.*)")
PHONE_SLOTS = {"PHONE1", "PHONE2", "PHONE3", "PHONE4", "PHONE5"}
CONTACT_FILTERS = {
    "email", "given_name", "family_name", "middle_name", "company_id", "contact_ids", "ids",
    "start_update_time", "end_update_time", "phone_number", "phone_fields", "contact_id",
}  # fmt: skip
COMPANY_FILTERS = {"company_name", "name", "email", "since_time", "until_time", "company_id"}
NOTE_FILTERS = {"id", "ids", "title", "contact_id", "assigned_to_user_id", "since_time",
                "until_time"}  # fmt: skip
TASK_FILTERS = {"contact_id", "has_due_date", "is_completed", "user_id", "task_ids",
                "priority", "since_time", "until_time", "id", "title"}  # fmt: skip
USER_FILTERS = {"email", "given_name", "include_inactive", "include_partners", "user_ids"}
COMPARABLE = {"contact_id", "company_id", "id"}  # the fields that take > < >= <= [KP1]
CONTACT_FIELDS = {
    "addresses", "anniversary_date", "birth_date", "company", "contact_type", "create_time",
    "custom_fields", "email_addresses", "family_name", "fax_numbers", "given_name", "id",
    "job_title", "leadsource_id", "links", "middle_name", "notes", "origin", "owner_id",
    "phone_numbers", "preferred_locale", "preferred_name", "prefix", "referral_code",
    "score_value", "social_accounts", "source_type", "spouse_name", "suffix", "tag_ids",
    "time_zone", "update_time", "utm_parameters", "website",
}  # fmt: skip
CONTACT_DEFAULT_FIELDS = {"id", "given_name", "family_name", "email_addresses"}
COMPANY_FIELDS = {"id", "company_name", "phone_number", "address", "email_address", "owner_id",
                  "update_time", "create_time", "custom_fields", "notes", "fax_number",
                  "website"}  # fmt: skip
COMPANY_DEFAULT_FIELDS = {"id", "company_name", "owner_id"}
ORDERS = {
    "contacts": {"id", "create_time", "email", "update_time"},
    "companies": {"id", "create_time", "name", "email"},
    "notes": {"id", "create_time", "update_time"},
    "tasks": {"id", "create_time", "due_time", "update_time"},
    "users": {"create_time", "email", "name"},
}
CONTACT_WRITE = {"given_name", "family_name", "middle_name", "phone_numbers",
                 "email_addresses", "addresses", "owner_id", "company", "job_title"}  # fmt: skip
NOTE_WRITE = {"title", "text", "type", "user_id", "is_pinned", "custom_fields"}
NOTE_UPDATE = NOTE_WRITE | {"contact_id"}
NOTE_TYPES = {"Appointment", "Call", "Email", "Fax", "Letter", "Other"}
TASK_WRITE = {"title", "description", "type", "priority", "completed", "completion_time",
              "due_time", "remind_time_mins", "assigned_to_user_id", "contact_id",
              "opportunity_id", "accepted", "custom_fields"}  # fmt: skip
PRIORITIES = {"CRITICAL", "ESSENTIAL", "NONESSENTIAL"}
Answer = tuple[int, Any, dict[str, str]]


class ApiError(Exception):
    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self.status, self.body, self.headers = status, body, headers or {}


def keap_error(status: int, message: str, reason: str = "") -> ApiError:
    """The API's error body `{code, message, status, details}` [KP1]."""
    status_text = reason or _REASONS.get(status, "Error")
    return ApiError(
        status, {"code": status, "message": message, "status": status_text, "details": []}
    )


def gateway_fault(
    status: int, text: str, code: str, headers: dict[str, str] | None = None
) -> ApiError:
    """The gateway's own errors (auth, limits) [KP3]."""
    body = {"fault": {"faultstring": text, "detail": {"errorcode": code}}}
    return ApiError(status, body, headers)


_REASONS = {400: "Bad Request", 403: "Forbidden", 404: "Not Found", 500: "Internal Server Error"}


def _bad(message: str) -> ApiError:
    return keap_error(400, message)


@dataclass
class Fault:
    """Answer the next `times` matching requests with this instead of the real thing."""

    kind: str  # "status": answer `status` unprocessed; "lost_answer": process, then `status`
    times: int
    path_contains: str = ""
    status: int = 500
    headers: dict[str, str] | None = None


class FakeKeap(FakeServer):
    def __init__(
        self,
        *,
        contacts: int = 0,
        companies: int = 0,
        api_key: str = "KeapAK-fake-personal-access-token",
        per_second: int = 10,
        per_minute: int = 240,
        token_seconds: float = 86_400,
        phone_search_e164: bool = False,
    ) -> None:
        self.records: dict[str, dict[int, dict[str, Any]]] = {
            "contacts": {int(c["id"]): c for c in generate_contacts(contacts, companies=companies)},
            "companies": {int(c["id"]): c for c in generate_companies(companies)},
        }
        self.users = [dict(u) for u in USERS]
        self.notes: dict[int, dict[str, Any]] = {}
        self.tasks: dict[int, dict[str, Any]] = {}
        self.api_keys = {api_key}
        self.clients = {"fake-client-id": "fake-client-secret"}
        self.access_tokens: dict[str, float] = {}
        self.refresh_tokens: set[str] = set()
        self.authorization_codes: dict[str, str] = {}
        self.token_seconds = token_seconds
        self.limits = ((1.0, per_second, "second"), (60.0, per_minute, "minute"))
        self.phone_search_e164 = phone_search_e164
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str, dict[str, list[str]], Any]] = []
        self._hits: dict[str, deque[float]] = {}
        self._page_tokens: dict[str, tuple[str, int]] = {}
        self.lock = threading.RLock()

    # ----- test controls
    def issue_tokens(self) -> dict[str, Any]:
        """A fresh OAuth grant, as the token endpoint answers it."""
        access, refresh = f"at-{uuid.uuid4().hex}", f"rt-{uuid.uuid4().hex}"
        with self.lock:
            self.access_tokens[access] = time.time() + self.token_seconds
            self.refresh_tokens.add(refresh)
        return {
            "access_token": access,
            "token_type": "bearer",
            "refresh_token": refresh,
            "expires_in": int(self.token_seconds) - 1,
            "scope": "full|ab103.infusionsoft.com",
        }

    def touch(self, kind: str, ids: list[int], *, at_ms: int | None = None) -> None:
        """Edit records now (or at epoch ms `at_ms`), as a user would in Keap."""
        with self.lock:
            for record_id in ids:
                record = self.records[kind][record_id]
                moment = at_ms or int(time.time() * 1000)
                record["update_time"] = iso(moment)
                name = "family_name" if kind == "contacts" else "company_name"
                record[name] = f"Edited {moment}"

    def delete(self, kind: str, ids: list[int]) -> None:
        with self.lock:
            for record_id in ids:
                del self.records[kind][record_id]

    def queries(self, path: str) -> list[dict[str, str]]:
        """The query parameters of each request to path (under /crm/rest), first values."""
        return [{k: v[0] for k, v in q.items()} for _, p, q, _ in self.requests if p == API + path]

    def bodies(self, path: str) -> list[Any]:
        return [b for _, p, _, b in self.requests if p == API + path]

    # ----- the API
    def handle(self, method: str, path: str, query: dict[str, list[str]], headers: Any,
               body: bytes) -> Answer:  # fmt: skip
        if method == "POST" and path == "/token":
            return 200, self._token(headers, body), {}
        with self.lock:
            fault = self._take_fault(path)
        credential = self._authenticate(headers)
        self._rate_limit(credential)
        if body and not (headers.get("Content-Type") or "").startswith("application/json"):
            raise keap_error(415, "Content-Type must be application/json", "Unsupported Media Type")
        payload = _json_body(body) if body else None
        with self.lock:
            self.requests.append((method, path, query, payload))
        if fault and fault.kind == "status":
            error = keap_error(fault.status, "Injected fault")
            raise ApiError(fault.status, error.body, fault.headers)
        if not path.startswith(API + "/v2/"):
            raise keap_error(404, f"No such path {path}")
        with self.lock:
            answer = self._route(method, path.removeprefix(API), _single(query), query, payload)
        if fault and fault.kind == "lost_answer":  # stored, but the answer never reaches us
            raise keap_error(fault.status, "Bad gateway", "Bad Gateway")
        return answer

    def _route(self, method: str, rest: str, params: dict[str, str],
               query: dict[str, list[str]], body: Any) -> Answer:  # fmt: skip
        routes: dict[tuple[str, str], Callable[[], Answer]] = {
            ("GET", "/v2/contacts"): lambda: self._list_contacts(params),
            ("POST", "/v2/contacts"): lambda: (201, self._add_contact(body), {}),
            ("GET", "/v2/companies"): lambda: self._list_companies(params),
            ("GET", "/v2/users"): lambda: self._list_users(params),
            ("GET", "/v2/notes"): lambda: self._list_notes(params, None),
            ("GET", "/v2/tasks"): lambda: self._list_tasks(params),
            ("POST", "/v2/tasks"): lambda: (201, self._add_task(body), {}),
        }
        if (method, rest) in routes:
            return routes[(method, rest)]()
        notes = re.fullmatch(r"/v2/contacts/(\d+)/notes(?:/(\d+))?", rest)
        if notes:
            contact_id = self._contact(notes.group(1))
            if notes.group(2) is None and method == "GET":
                return self._list_notes(params, contact_id)
            if notes.group(2) is None and method == "POST":
                return 201, self._add_note(contact_id, body), {}
            if notes.group(2) and method == "PATCH":
                mask = [m for v in query.get("update_mask", []) for m in v.split(",") if m]
                return 200, self._update_note(contact_id, int(notes.group(2)), body, mask), {}
        raise keap_error(404, f"No route for {method} {rest}")

    def _take_fault(self, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.times > 0 and fault.path_contains in path:
                fault.times -= 1
                return fault
        return None

    def _authenticate(self, headers: Any) -> str:
        key = headers.get("X-Keap-API-Key") or ""
        bearer = (headers.get("Authorization") or "").removeprefix("Bearer ")
        with self.lock:
            if key in self.api_keys or bearer in self.api_keys:
                return key or bearer
            if key:
                raise gateway_fault(401, "Invalid ApiKey", "oauth.v2.InvalidApiKey")
            if self.access_tokens.get(bearer, 0) > time.time():
                return bearer
        expired = bearer in self.access_tokens
        raise gateway_fault(
            401,
            "Access Token expired" if expired else "Invalid access token",
            "keymanagement.service.access_token_expired"
            if expired
            else "oauth.v2.InvalidAccessToken",
        )

    def _rate_limit(self, credential: str) -> None:
        if credential not in self.api_keys:
            return  # OAuth: 1,500 a minute across the app's tenants [KP4], not modelled
        now = time.monotonic()
        with self.lock:
            for seconds, allowed, unit in self.limits:
                hits = self._hits.setdefault(f"{unit}:{credential}", deque())
                while hits and hits[0] <= now - seconds:
                    hits.popleft()
                if len(hits) >= allowed:
                    headers = {
                        "x-keap-product-throttle-limit": str(allowed),
                        "x-keap-product-throttle-time-unit": unit,
                        "x-keap-product-throttle-interval": "1",
                        "x-keap-product-throttle-available": "0",
                        "x-keap-product-throttle-used": str(len(hits)),
                    }
                    raise gateway_fault(429, "Rate limit quota violation",
                                        "policies.ratelimit.QuotaViolation", headers)  # fmt: skip
            for _, _, unit in self.limits:
                self._hits[f"{unit}:{credential}"].append(now)

    def _token(self, headers: Any, body: bytes) -> dict[str, Any]:
        if not (headers.get("Content-Type") or "").startswith("application/x-www-form-urlencoded"):
            raise ApiError(400, {"error": "invalid_request"})
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        client_id, secret = form.get("client_id", ""), form.get("client_secret")
        basic = headers.get("Authorization") or ""
        if basic.startswith("Basic "):
            client_id, _, secret = base64.b64decode(basic[6:]).decode().partition(":")
        if self.clients.get(client_id) != secret:
            raise ApiError(401, {"error": "invalid_client"})
        with self.lock:
            if form.get("grant_type") == "authorization_code":
                issued_for = self.authorization_codes.pop(form.get("code", ""), None)
                if issued_for is None or issued_for != form.get("redirect_uri"):
                    raise ApiError(400, {"error": "invalid_grant",
                                         "error_description": "Invalid code"})  # fmt: skip
            elif form.get("grant_type") == "refresh_token":
                refresh = form.get("refresh_token", "")
                if refresh not in self.refresh_tokens:
                    raise ApiError(400, {"error": "invalid_grant",
                                         "error_description": "Invalid refresh token"})  # fmt: skip
                self.refresh_tokens.discard(refresh)  # rotation: the old one dies [KP5]
            else:
                raise ApiError(400, {"error": "unsupported_grant_type"})
            return self.issue_tokens()

    # ----- contacts and companies
    def _list_contacts(self, params: dict[str, str]) -> Answer:
        _known(params, {"filter", "order_by", "page_size", "page_token", "fields"})
        terms = _filter(params, CONTACT_FILTERS)
        if ("phone_number" in terms) != ("phone_fields" in terms):
            raise _bad("phone_fields is required when phone_number is given, and only then")
        slots = set(terms["phone_fields"][1].split(",")) if "phone_fields" in terms else set()
        if slots - PHONE_SLOTS:
            raise _bad(f"phone_fields: unknown fields {sorted(slots - PHONE_SLOTS)}")
        fields = _fields(params, CONTACT_FIELDS, CONTACT_DEFAULT_FIELDS)
        found = [c for c in self.records["contacts"].values() if self._contact_matches(c, terms)]
        rows, token = self._page("contacts", params, _ordered(found, params, "contacts"))
        return 200, {"contacts": [_only(c, fields) for c in rows],
                     "next_page_token": token}, {}  # fmt: skip

    def _contact_matches(self, contact: dict[str, Any], terms: dict[str, tuple[str, str]]) -> bool:
        for name, (op, value) in terms.items():
            if name == "start_update_time" and _ms(contact["update_time"]) < _time_ms(value):
                return False
            if name == "end_update_time" and _ms(contact["update_time"]) > _time_ms(value):
                return False
            if name in ("contact_id", "ids", "contact_ids") and not _id_matches(
                contact["id"], op, value
            ):
                return False
            if name == "phone_number" and not self._phone_matches(
                contact, value, set(terms["phone_fields"][1].split(","))
            ):
                return False
            if name in ("given_name", "family_name", "middle_name") and not _text_matches(
                contact.get(name), value
            ):
                return False
            if name in ("email", "company_id"):
                raise _bad(f"{name}: not supported by the fake")
        return True

    def _phone_matches(self, contact: dict[str, Any], value: str, slots: set[str]) -> bool:
        for item in contact.get("phone_numbers") or []:
            if item.get("field") in slots and (
                item.get("number") == value
                or (self.phone_search_e164 and item.get("number_e164") == value)
            ):
                return True
        return False

    def _list_companies(self, params: dict[str, str]) -> Answer:
        _known(params, {"filter", "order_by", "page_size", "page_token", "fields"})
        terms = _filter(params, COMPANY_FILTERS)
        fields = _fields(params, COMPANY_FIELDS, COMPANY_DEFAULT_FIELDS)
        found = []
        for company in self.records["companies"].values():
            updated = _ms(company["update_time"])
            since, until = terms.get("since_time"), terms.get("until_time")
            if (since and updated < _time_ms(since[1])) or (until and updated > _time_ms(until[1])):
                continue
            if "company_id" in terms and not _id_matches(company["id"], *terms["company_id"]):
                continue
            if {"company_name", "name", "email"} & set(terms):
                raise _bad("company_name, name, email: not supported by the fake")
            found.append(company)
        rows, token = self._page("companies", params, _ordered(found, params, "companies"))
        return 200, {"companies": [_only(c, fields) for c in rows],
                     "next_page_token": token}, {}  # fmt: skip

    def _add_contact(self, body: Any) -> dict[str, Any]:
        fields = _writable(body, CONTACT_WRITE)
        phones = []
        for item in fields.pop("phone_numbers", []) or []:
            if not isinstance(item, dict) or item.get("field") not in PHONE_SLOTS:
                raise _bad("phone_numbers: each needs a field PHONE1..PHONE5")
            number = str(item.get("number") or "")
            if len(number) > (40 if item["field"] in ("PHONE1", "PHONE2", "PHONE3") else 20):
                raise _bad(f"phone_numbers: {item['field']} is too long")
            phones.append(phone(number, item["field"], str(item.get("type") or "Other")))
        now = iso(int(time.time() * 1000))
        contact_id = max(self.records["contacts"], default=0) + 1
        contact = {"given_name": "", "family_name": "", "email_addresses": [], "addresses": [],
                   "company": None, "owner_id": None, "custom_fields": [], **fields,
                   "id": str(contact_id), "phone_numbers": phones, "create_time": now,
                   "update_time": now}  # fmt: skip
        self.records["contacts"][contact_id] = contact
        return dict(contact)

    def _contact(self, contact_id: str) -> int:
        if int(contact_id) not in self.records["contacts"]:
            raise keap_error(404, f"Contact {contact_id} not found")
        return int(contact_id)

    # ----- users, notes and tasks
    def _list_users(self, params: dict[str, str]) -> Answer:
        _known(params, {"filter", "order_by", "page_size", "page_token"})
        terms = _filter(params, USER_FILTERS)
        inactive = terms.get("include_inactive", ("==", "false"))[1] == "true"
        email = terms.get("email", ("==", ""))[1].casefold()
        found = [
            u for u in self.users
            if (inactive or u["status"] == "ACTIVE")
            and (not email or u["email_addresses"][0]["email"].casefold() == email)
        ]  # fmt: skip
        rows, token = self._page("users", params, found, maximum=MAX_USERS_PAGE_SIZE)
        return 200, {"users": [dict(u) for u in rows], "next_page_token": token}, {}

    def _active_user(self, user_id: Any, field: str) -> str:
        if not any(u["id"] == str(user_id) and u["status"] == "ACTIVE" for u in self.users):
            raise _bad(f"{field}: {user_id!r} is not an active user")
        return str(user_id)

    def _add_note(self, contact_id: int, body: Any) -> dict[str, Any]:
        fields = _writable(body, NOTE_WRITE)
        if "user_id" not in fields:
            raise _bad("user_id is required")
        fields = self._note_fields(fields)
        if not fields.get("title") and not fields.get("type"):
            raise _bad("A value for either title or type is required")
        now = iso(int(time.time() * 1000))
        note_id = max(self.notes, default=500) + 1
        self.notes[note_id] = {
            "id": str(note_id), "contact_id": str(contact_id), "title": fields.get("title"),
            "text": fields.get("text"), "type": fields.get("type"),
            "is_pinned": fields.get("is_pinned", False), "user_id": fields["user_id"],
            "created_by_user_id": fields["user_id"], "create_time": now, "update_time": now,
        }  # fmt: skip
        return self._note_answer(self.notes[note_id])

    def _update_note(
        self, contact_id: int, note_id: int, body: Any, mask: list[str]
    ) -> dict[str, Any]:
        note = self.notes.get(note_id)
        if note is None or note["contact_id"] != str(contact_id):
            raise keap_error(404, f"Note {note_id} not found")
        if set(mask) - NOTE_UPDATE:
            raise _bad(f"update_mask: unknown fields {sorted(set(mask) - NOTE_UPDATE)}")
        fields = _writable(body, NOTE_UPDATE)
        if "user_id" not in fields:
            raise _bad("user_id is required")
        fields = self._note_fields(fields)
        written = mask or sorted(NOTE_UPDATE - {"custom_fields"})
        if not mask and not fields.get("title") and not fields.get("type"):
            raise _bad("A value for either title or type is required")
        for name in written:  # without a mask, every field is written [KP1]
            if name == "contact_id":
                note[name] = str(self._contact(str(fields.get(name) or contact_id)))
            else:
                note[name] = fields.get(name)
        note["update_time"] = iso(int(time.time() * 1000))
        return self._note_answer(note)

    def _note_fields(self, fields: dict[str, Any]) -> dict[str, Any]:
        fields["user_id"] = self._active_user(fields["user_id"], "user_id")
        if fields.get("type") is not None and fields["type"] not in NOTE_TYPES:
            raise _bad(f"type must be one of {sorted(NOTE_TYPES)}")
        for name in ("title", "text"):
            if fields.get(name) is not None and not isinstance(fields[name], str):
                raise _bad(f"{name} must be a string")
        return fields

    def _note_answer(self, note: dict[str, Any]) -> dict[str, Any]:
        user = next(u for u in self.users if u["id"] == note["user_id"]) if note["user_id"] else {}
        answer = {k: v for k, v in note.items() if k not in ("user_id", "is_pinned")}
        answer["assigned_to_user"] = {"id": user.get("id"), "given_name": user.get("given_name")}
        return answer

    def _list_notes(self, params: dict[str, str], contact_id: int | None) -> Answer:
        _known(params, {"filter", "order_by", "page_size", "page_token", "fields"})
        terms = _filter(params, NOTE_FILTERS)
        found = []
        for note in self.notes.values():
            if contact_id is not None and note["contact_id"] != str(contact_id):
                continue
            if "contact_id" in terms and note["contact_id"] != terms["contact_id"][1]:
                continue
            since = terms.get("since_time")
            if since and _ms(note["update_time"]) < _time_ms(since[1]):
                continue
            if {"id", "ids", "title", "assigned_to_user_id", "until_time"} & set(terms):
                raise _bad("id, ids, title, assigned_to_user_id, until_time: not in the fake")
            found.append(note)
        rows, token = self._page("notes", params, _ordered(found, params, "notes"))
        return 200, {"notes": [self._note_answer(n) for n in rows], "next_page_token": token}, {}

    def _add_task(self, body: Any) -> dict[str, Any]:
        fields = _writable(body, TASK_WRITE)
        if "assigned_to_user_id" not in fields:
            raise _bad("assigned_to_user_id is required")
        self._active_user(fields["assigned_to_user_id"], "assigned_to_user_id")
        if fields.get("priority") is not None and fields["priority"] not in PRIORITIES:
            raise _bad(f"priority must be one of {sorted(PRIORITIES)}")
        if fields.get("due_time") is not None:
            _time_ms(str(fields["due_time"]))
        if fields.get("contact_id") is not None:
            self._contact(str(fields["contact_id"]))
        now = iso(int(time.time() * 1000))
        task_id = max(self.tasks, default=900) + 1
        self.tasks[task_id] = {
            "title": None, "description": None, "type": None, "priority": None,
            "completed": False, "due_time": None, "contact_id": None, **fields,
            "id": str(task_id), "create_time": now, "modification_time": now,
        }  # fmt: skip
        return dict(self.tasks[task_id])

    def _list_tasks(self, params: dict[str, str]) -> Answer:
        _known(params, {"filter", "order_by", "page_size", "page_token", "fields"})
        terms = _filter(params, TASK_FILTERS)
        found = []
        for task in self.tasks.values():
            if "contact_id" in terms and task.get("contact_id") != terms["contact_id"][1]:
                continue
            if set(terms) - {"contact_id"}:
                raise _bad(f"{sorted(set(terms) - {'contact_id'})}: not supported by the fake")
            found.append({**task, "update_time": task["modification_time"]})
        rows, token = self._page("tasks", params, _ordered(found, params, "tasks"))
        return 200, {"tasks": [_without(t, "update_time") for t in rows],
                     "next_page_token": token}, {}  # fmt: skip

    # ----- paging
    def _page(self, kind: str, params: dict[str, str], found: list[dict[str, Any]], *,
              maximum: int = MAX_PAGE_SIZE) -> tuple[list[dict[str, Any]], str]:  # fmt: skip
        size = _int(params.get("page_size", "50"), "page_size")  # the default is UNVERIFIED
        if not 1 <= size <= maximum:
            raise _bad(f"page_size must be between 1 and {maximum}")
        query = json.dumps({k: v for k, v in sorted(params.items()) if k != "page_token"})
        offset = 0
        if params.get("page_token"):
            issued = self._page_tokens.get(params["page_token"])
            if issued is None or issued[0] != f"{kind}:{query}":
                raise _bad("Invalid page_token")
            offset = issued[1]
        rows = found[offset : offset + size]
        if offset + size >= len(found):
            return rows, ""
        token = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        self._page_tokens[token] = (f"{kind}:{query}", offset + size)
        return rows, token


class _Handler(JsonHandler):
    api_error = ApiError


FakeKeap.handler_class = _Handler


def _single(query: dict[str, list[str]]) -> dict[str, str]:
    params = {}
    for name, values in query.items():
        if len(values) > 1 and name != "update_mask":
            raise _bad(f"{name} given more than once")
        params[name] = values[0]
    return params


def _known(params: dict[str, str], allowed: set[str]) -> None:
    unknown = sorted(set(params) - allowed - {"update_mask"})
    if unknown:
        raise _bad(f"Unknown query parameters: {', '.join(unknown)}")


def _filter(params: dict[str, str], allowed: set[str]) -> dict[str, tuple[str, str]]:
    """`field<op>value` terms joined by `;` [KP1]: unknown fields and operators are refused."""
    terms: dict[str, tuple[str, str]] = {}
    for text in filter(None, params.get("filter", "").split(";")):
        match = TERM.fullmatch(text)
        if not match or match.group(1) not in allowed:
            raise _bad(f"Invalid filter: {text!r}")
        name, op, value = match.groups()
        if op != "==" and name not in COMPARABLE:
            raise _bad(f"Invalid filter: {name} supports == only")
        if name.endswith("_time"):
            _time_ms(value)
        terms[name] = (op, value)
    return terms


def _fields(params: dict[str, str], allowed: set[str], default: set[str]) -> set[str]:
    if "fields" not in params:
        return default
    fields = {f.strip() for f in params["fields"].split(",") if f.strip()}
    if fields - allowed:
        raise _bad(f"Invalid fields: {', '.join(sorted(fields - allowed))}")
    return fields | {"id"}


def _ordered(
    found: list[dict[str, Any]], params: dict[str, str], kind: str
) -> list[dict[str, Any]]:
    field, _, direction = params.get("order_by", "id asc").partition(" ")
    if field not in ORDERS[kind] or direction not in ("asc", "desc", ""):
        raise _bad(f"order_by must be one of {sorted(ORDERS[kind])} with asc or desc")

    def key(record: dict[str, Any]) -> tuple[Any, int]:
        value = record.get(field)
        if field.endswith("_time"):
            value = _ms(value) if value else 0
        elif field == "id":
            value = int(record["id"])
        return (value if value is not None else "", int(record["id"]))

    return sorted(found, key=key, reverse=direction == "desc")


def _only(record: dict[str, Any], fields: set[str]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k in fields}


def _without(record: dict[str, Any], name: str) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != name}


def _writable(body: Any, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise _bad("The body must be a JSON object")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise _bad(f"Unknown fields: {', '.join(unknown)}")
    return dict(body)


def _json_body(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        raise _bad("The body is not JSON") from None


def _int(value: str, name: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise _bad(f"{name} must be a number") from None


def _time_ms(value: str) -> int:
    """A filter or body time: full ISO-8601 with milliseconds and an offset, else 400 [KP1]."""
    if not TIME.fullmatch(value):
        raise _bad(f"Invalid date-time {value!r}: ISO-8601 with milliseconds and an offset")
    return _ms(value)


def _ms(value: str) -> int:
    return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)


def _id_matches(record_id: str, op: str, value: str) -> bool:
    if op == "==":
        return record_id in value.split(",")
    number, wanted = int(record_id), _int(value, "id")
    return {">": number > wanted, "<": number < wanted, ">=": number >= wanted,
            "<=": number <= wanted, "!=": number != wanted}[op]  # fmt: skip


def _text_matches(stored: Any, value: str) -> bool:
    text = str(stored or "").casefold()
    wanted = value.casefold()
    return text.startswith(wanted[:-1]) if wanted.endswith("*") else text == wanted


def serve_demo(options: dict[str, Any]) -> tuple[FakeKeap, str, dict[str, Any]]:
    """Start the fake for `manage.py fakecrm`; answer it, a description, the connection JSON."""
    fake = FakeKeap(contacts=options["contacts"], companies=options["companies"])
    url = fake.start(port=options["port"])
    return (
        fake,
        f"Fake Keap at {url} with {options['contacts']} contacts and "
        f"{options['companies']} companies",
        {"credentials": {"api_key": next(iter(fake.api_keys)), "base_url": url + API}},
    )
