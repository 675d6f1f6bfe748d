"""A strict fake SugarCRM REST API (v11) on 127.0.0.1 for tests and demos.

What it follows (../shared/reference/crm-apis-more.md section 2; tags resolved in its §10):
- `POST /rest/v11/oauth2/token`, a JSON body: the password grant (client `sugar`, empty secret,
  `platform`) and the refresh_token grant [SG1][T SG2] (refresh posted to the same endpoint, as
  the vendor's PHP client sugarcrm/rest-php-client's RefreshToken does). Access tokens last
  3600 s; a refresh answers a new access and refresh token and kills the old ones; a second
  password login on the same platform logs the first session out [T SG3]. Unknown platforms are
  refused while `strict_platforms` is on (Sugar's `disable_unknown_platforms`, on by default since
  Winter '18 per Sugar's developer blog); the refusal's status and label are UNVERIFIED.
- `OAuth-Token: <access_token>` on every call [T SG2]; none is 401 `need_login`, an expired or
  replaced one 401 `invalid_grant` [SG8]. Error bodies are `{error, error_message}` [SG8].
- `POST /rest/v11/<Module>/filter` with `filter`, `fields`, `max_num` (default 20, capped at
  `max_num_cap`: the real cap is server configuration, UNVERIFIED), `offset`, `order_by`
  (`date_modified:ASC,id:ASC`) [SG4]; answers `{next_offset, records}`, `next_offset` -1 on the
  last page [SG1]. Operators: the list §2.2 asks for; any other is 422 `invalid_parameter`
  ("Did not recognize the operand", Sugar's FilterApi wording, UNVERIFIED here). Datetimes are
  compared to the second and must carry an offset. Strings compare without case (MySQL's
  default collation). Unknown fields in a filter, `fields` or `order_by` are refused (stricter
  than Sugar, which ignores unknown `fields`).
- Records: `POST /rest/v11/<Module>` creates, `PUT /rest/v11/<Module>/<id>` updates, `GET` reads,
  each answering the record [SG1]. Calls, Tasks and Notes are validated against the Calls
  vardefs' enums (`call_direction_dom`, `call_status_dom`) [T SG7], required fields, datetimes
  with offsets and related records that exist; refusals are 422 `invalid_parameter` (stricter
  than Sugar, which stores most bad values).
- No rate limit is documented (UNVERIFIED): `inject(Fault("status", status=429, retry_after=2))`
  answers 429 with `Retry-After`. Other faults: 5xx, `lost_answer` (write kept, 502 answered).
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from functools import partial
from typing import Any

from fakes.server import FakeServer, JsonHandler
from fakes.sugarcrm_data import USER_OFFSET, FakeRecord, generate, sugar_time, users

TOKEN_SECONDS = 3600
REFRESH_SECONDS = 14 * 86_400
DEFAULT_MAX_NUM = 20
DEFAULT_PLATFORMS = frozenset({"base", "mobile", "portal", "opi", "callbridge"})
VERSION = re.compile(r"^v11(_\d+)?$")
SYSTEM_FIELDS = {"id", "date_modified", "date_entered", "deleted", "assigned_user_id"}
MODULE_FIELDS: dict[str, set[str]] = {
    "Contacts": {
        "first_name", "last_name", "account_name", "phone_work", "phone_mobile", "phone_home",
        "phone_other", "primary_address_country", "lead_source", "description",
    },
    "Accounts": {
        "name", "phone_office", "phone_alternate", "billing_address_country", "industry",
        "description",
    },
    "Leads": {
        "first_name", "last_name", "account_name", "phone_work", "phone_mobile", "phone_home",
        "phone_other", "primary_address_country", "status", "description",
    },
    "Calls": {
        "name", "date_start", "duration_hours", "duration_minutes", "direction", "status",
        "parent_type", "parent_id", "description",
    },
    "Tasks": {
        "name", "date_due", "date_start", "status", "priority", "parent_type", "parent_id",
        "contact_id", "description",
    },
    "Notes": {"name", "parent_type", "parent_id", "contact_id", "description"},
    "Users": {"user_name", "first_name", "last_name", "full_name", "email1", "email", "status",
              "is_group"},
}  # fmt: skip
REQUIRED = {
    "Contacts": ("last_name",),
    "Calls": ("name", "date_start", "duration_hours", "duration_minutes"),
    "Tasks": ("name",),
    "Notes": ("name",),
}
ENUMS = {
    ("Calls", "direction"): {"Inbound", "Outbound"},  # call_direction_dom
    ("Calls", "status"): {"Planned", "Held", "Not Held"},  # call_status_dom
    ("Tasks", "status"): {"Not Started", "In Progress", "Completed", "Pending Input", "Deferred"},
    ("Tasks", "priority"): {"High", "Medium", "Low"},
}
DATETIME_FIELDS = {"date_modified", "date_entered", "date_start", "date_due"}
PARENT_MODULES = {"Contacts", "Accounts", "Leads", "Calls"}
WRITABLE = {"Contacts", "Calls", "Tasks", "Notes"}
OPERATORS = {
    "$equals", "$not_equals", "$starts", "$ends", "$contains", "$in", "$not_in", "$is_null",
    "$not_null", "$lt", "$lte", "$gt", "$gte", "$dateBetween",
}  # fmt: skip
# ISO 8601 with an offset; the fraction is not part of Sugar's format.
SUGAR_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}([+-]\d{2}:\d{2}|Z)$")


class ApiError(Exception):
    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None):
        self.status, self.body, self.headers = status, body, headers or {}


def sugar_error(status: int, label: str, message: str) -> ApiError:
    return ApiError(status, {"error": label, "error_message": message})


def invalid(message: str) -> ApiError:
    return sugar_error(422, "invalid_parameter", message)


@dataclass
class Fault:
    """Answer the next `times` matching requests with this instead of the real thing."""

    kind: str  # "status" (answered before the request is served), "lost_answer" (after)
    times: int = 1
    path_contains: str = ""
    status: int = 500
    retry_after: int = 1  # a 429's Retry-After


@dataclass
class _Session:
    user: str
    platform: str
    refresh_token: str
    refresh_expires: float


class FakeSugarCrm(FakeServer):
    def __init__(
        self,
        *,
        contacts: int = 0,
        accounts: int = 0,
        leads: int = 0,
        max_num_cap: int = 1000,
        strict_platforms: bool = True,
        platforms: frozenset[str] = DEFAULT_PLATFORMS,
        token_seconds: float = TOKEN_SECONDS,
    ) -> None:
        self.records: dict[str, dict[str, FakeRecord]] = {
            "Contacts": {r.id: r for r in generate("Contacts", contacts)},
            "Accounts": {r.id: r for r in generate("Accounts", accounts)},
            "Leads": {r.id: r for r in generate("Leads", leads)},
            "Calls": {},
            "Tasks": {},
            "Notes": {},
            "Users": {r.id: r for r in users()},
        }
        self.logins = {"apiuser": "s3cret-Passw0rd"}
        self.clients = {"sugar": ""}  # client_id -> secret (Sugar's own client has none)
        self.platforms = set(platforms)
        self.strict_platforms = strict_platforms
        self.max_num_cap = max_num_cap
        self.token_seconds = token_seconds
        self.access_tokens: dict[str, float] = {}  # token -> expiry (epoch s)
        self._sessions: dict[str, _Session] = {}  # access token -> its session
        self._refresh_tokens: dict[str, str] = {}  # refresh token -> its access token
        self.forbidden: set[tuple[str, str]] = set()  # (method, module) not_authorized
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str, Any]] = []
        self.lock = threading.RLock()

    # ----- test controls
    def login(self, platform: str = "callbridge") -> dict[str, Any]:
        """Tokens as a password login of the API user on `platform` answers them."""
        with self.lock:
            return self._issue(next(iter(self.logins)), platform)

    def touch(self, module: str, ids: list[str], *, at_s: int | None = None) -> None:
        """Modify records now (or at at_s), as a user editing them in Sugar would."""
        with self.lock:
            for record_id in ids:
                record = self.records[module][record_id]
                record.modified_s = at_s or int(time.time())
                name = "name" if module == "Accounts" else "last_name"
                record.fields[name] = f"Edited {record.modified_s}"

    def delete(self, module: str, ids: list[str]) -> None:
        with self.lock:
            for record_id in ids:
                del self.records[module][record_id]

    def ordered_ids(self, module: str) -> list[str]:
        """Record ids in Sugar's listing order by (date_modified, id)."""
        records = self.records[module].values()
        return [r.id for r in sorted(records, key=lambda r: (r.modified_s, r.id))]

    def paths(self, method: str | None = None) -> list[str]:
        return [p for m, p, _ in self.requests if method in (None, m)]

    def bodies(self, method: str, path: str) -> list[Any]:
        return [b for m, p, b in self.requests if (m, p) == (method, path)]

    # ----- the API
    def handle(
        self, method: str, path: str, query: dict[str, list[str]], headers: Any, body: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        parsed = _json_body(body) if body else None
        with self.lock:
            self.requests.append((method, path, parsed))
            fault = self._take_fault(path)
        if fault and fault.kind == "status":
            if fault.status == 429:
                retry = {"Retry-After": str(fault.retry_after)}
                raise ApiError(
                    429, {"error": "too_many_requests", "error_message": "Slow down."}, retry
                )
            raise sugar_error(fault.status, "fatal_error", "Something went wrong.")
        parts = path.strip("/").split("/")
        if parts[0] != "rest" or len(parts) < 3:
            raise sugar_error(404, "no_method", "Could not find a route.")
        if not VERSION.match(parts[1]):
            raise sugar_error(301, "incorrect_version", f"Unknown API version {parts[1]}.")
        rest = parts[2:]
        if rest == ["oauth2", "token"] and method == "POST":
            return 200, self._token(parsed), {}
        with self.lock:
            self._authenticate(headers)
            status, answer = self._route(method, rest, parsed)
        if fault and fault.kind == "lost_answer":
            raise sugar_error(fault.status, "fatal_error", "The gateway lost the answer.")
        return status, answer, {}

    def _route(self, method: str, rest: list[str], body: Any) -> tuple[int, Any]:
        module = rest[0]
        if module not in self.records:
            raise sugar_error(404, "no_method", f"Could not find a route for {module}.")
        if (method, module) in self.forbidden:
            raise sugar_error(403, "not_authorized", f"No access to {method} {module} records.")
        if rest[1:] == ["filter"] and method == "POST":
            return 200, self._filter(module, body if body is not None else {})
        if len(rest) == 1 and method == "POST" and module in WRITABLE:
            return 200, self._create(module, body)
        if len(rest) == 2 and (method == "GET" or (method == "PUT" and module in WRITABLE)):
            record = self.records[module].get(rest[1])
            if record is None:
                raise sugar_error(404, "not_found", f"Could not find record {rest[1]} in {module}.")
            if method == "PUT":
                self._write(module, record, body, creating=False)
            return 200, self._as_json(module, record, None)
        raise sugar_error(404, "no_method", "Could not find a route with these elements.")

    def _take_fault(self, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.times > 0 and fault.path_contains in path:
                fault.times -= 1
                return fault
        return None

    # ----- auth
    def _token(self, form: Any) -> dict[str, Any]:
        if not isinstance(form, dict):
            raise sugar_error(400, "invalid_request", "The token request is a JSON object.")
        client_id = str(form.get("client_id"))
        if form.get("client_secret", "") != self.clients.get(client_id):
            raise sugar_error(401, "invalid_client", "The client credentials are invalid.")
        platform = str(form.get("platform") or "base")
        if self.strict_platforms and platform not in self.platforms:
            raise invalid(f"The platform '{platform}' is not allowed.")
        grant = form.get("grant_type")
        with self.lock:
            if grant == "password":
                user = str(form.get("username") or "")
                if self.logins.get(user) != form.get("password") or not user:
                    raise sugar_error(
                        401, "need_login", "You must specify a valid username and password."
                    )
                return self._issue(user, platform)
            if grant == "refresh_token":
                old_access = self._refresh_tokens.pop(str(form.get("refresh_token")), None)
                session = self._sessions.pop(old_access, None) if old_access else None
                if session is None or session.refresh_expires < time.time():
                    raise sugar_error(400, "invalid_grant", "Invalid refresh token")
                self.access_tokens.pop(str(old_access), None)
                return self._issue(session.user, session.platform)
        raise sugar_error(400, "unsupported_grant_type", "Grant type not supported.")

    def _issue(self, user: str, platform: str) -> dict[str, Any]:
        # One session per user and platform: a new login logs the earlier one out.
        for token, session in list(self._sessions.items()):
            if (session.user, session.platform) == (user, platform):
                del self._sessions[token]
                self.access_tokens.pop(token, None)
                self._refresh_tokens.pop(session.refresh_token, None)
        access, refresh = str(uuid.uuid4()), str(uuid.uuid4())
        self.access_tokens[access] = time.time() + self.token_seconds
        self._sessions[access] = _Session(user, platform, refresh, time.time() + REFRESH_SECONDS)
        self._refresh_tokens[refresh] = access
        return {
            "access_token": access,
            "expires_in": int(self.token_seconds),
            "token_type": "bearer",
            "scope": None,
            "refresh_token": refresh,
            "refresh_expires_in": REFRESH_SECONDS,
            "download_token": str(uuid.uuid4()),
        }

    def _authenticate(self, headers: Any) -> None:
        token = headers.get("OAuth-Token")
        if not token:
            raise sugar_error(401, "need_login", "No valid authentication for user.")
        if self.access_tokens.get(token, 0) < time.time():
            raise sugar_error(401, "invalid_grant", "The access token provided is invalid.")

    # ----- reading
    def _filter(self, module: str, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise invalid("The request body is a JSON object.")
        matches = self._predicate(module, body.get("filter", []))
        order = _order_by(module, str(body.get("order_by") or "date_modified:DESC"))
        fields = self._fields(module, body.get("fields"))
        max_num = min(_count(body, "max_num", DEFAULT_MAX_NUM), self.max_num_cap)
        if max_num < 1:
            raise invalid("max_num must be at least 1.")
        offset = _count(body, "offset", 0)
        found = [r for r in self.records[module].values() if matches(r)]
        for field, descending in reversed(order):  # stable sorts, last key first
            found.sort(key=partial(_sort_value, field=field), reverse=descending)
        chunk = found[offset : offset + max_num]
        more = offset + max_num < len(found)
        return {
            "next_offset": offset + len(chunk) if more else -1,
            "records": [self._as_json(module, r, fields) for r in chunk],
        }

    def _fields(self, module: str, raw: Any) -> list[str] | None:
        if raw in (None, ""):
            return None
        names = raw if isinstance(raw, list) else str(raw).split(",")
        for name in names:
            _check_field(module, name)
        return [str(n) for n in names]

    def _predicate(self, module: str, expressions: Any) -> Callable[[FakeRecord], bool]:
        if not isinstance(expressions, list):
            raise invalid("filter must be an array of expressions.")
        tests = [self._expression(module, e) for e in expressions]
        return lambda record: all(test(record) for test in tests)

    def _expression(self, module: str, expression: Any) -> Callable[[FakeRecord], bool]:
        if not isinstance(expression, dict) or not expression:
            raise invalid("Each filter expression is a non-empty object.")
        tests: list[Callable[[FakeRecord], bool]] = []
        for key, value in expression.items():
            if key in ("$or", "$and"):
                if not isinstance(value, list) or not value:
                    raise invalid(f"{key} takes a non-empty array of expressions.")
                subs = [self._expression(module, e) for e in value]
                tests.append(partial(_either if key == "$or" else _each, subs))
            elif key.startswith("$"):
                raise invalid(f"Did not recognize the operand: {key}")
            else:
                tests.append(self._field_test(module, key, value))
        return lambda record: all(test(record) for test in tests)

    def _field_test(self, module: str, field: str, condition: Any) -> Callable[[FakeRecord], bool]:
        _check_field(module, field)
        if not isinstance(condition, dict):
            condition = {"$equals": condition}  # {"field": value} is short for $equals
        tests = []
        for operator, operand in condition.items():
            if operator not in OPERATORS:
                raise invalid(f"Did not recognize the operand: {operator}")
            tests.append(_comparison(field, operator, operand))
        return lambda record: all(test(_value(record, field)) for test in tests)

    def _as_json(self, module: str, record: FakeRecord, fields: list[str] | None) -> dict[str, Any]:
        names = fields if fields is not None else sorted(MODULE_FIELDS[module] | SYSTEM_FIELDS)
        result: dict[str, Any] = {"id": record.id, "date_modified": sugar_time(record.modified_s)}
        for name in names:
            if name == "date_entered":
                result[name] = sugar_time(record.created_s)
            elif name not in result:
                value = _value(record, name)
                result[name] = "" if value is None else value
        return {**result, "_acl": {"fields": {}}, "_module": module}

    # ----- writing
    def _create(self, module: str, body: Any) -> dict[str, Any]:
        now = int(time.time())
        record = FakeRecord(str(uuid.uuid4()), {}, now, now)
        self._write(module, record, body, creating=True)
        self.records[module][record.id] = record
        return self._as_json(module, record, None)

    def _write(self, module: str, record: FakeRecord, body: Any, *, creating: bool) -> None:
        if not isinstance(body, dict):
            raise invalid("The request body is a JSON object.")
        changes = {k: v for k, v in body.items() if k not in ("id", "date_modified")}
        for name, value in changes.items():
            self._check_value(module, name, value)
        merged = {**record.fields, **changes}
        for name in REQUIRED.get(module, ()) if creating else ():
            if merged.get(name) in (None, ""):
                raise sugar_error(422, "missing_parameter", f"Missing parameter: {name}")
        self._check_parent(merged)
        record.fields = merged
        record.modified_s = int(time.time())

    def _check_value(self, module: str, name: str, value: Any) -> None:
        if name not in MODULE_FIELDS[module] | {"assigned_user_id"}:
            raise invalid(f"Unknown field {name} in module {module}.")
        if (module, name) in ENUMS and value not in ENUMS[(module, name)]:
            raise invalid(f"{value!r} is not an option of {module}.{name}.")
        readable = isinstance(value, str) and SUGAR_DATETIME.match(value)
        if name in DATETIME_FIELDS and value not in (None, "") and not readable:
            raise invalid(f"{name}: a datetime with an offset, as 2024-03-05T17:02:11+00:00.")
        if name in ("duration_hours", "duration_minutes") and not (
            isinstance(value, int) and value >= 0 and (name == "duration_hours" or value < 60)
        ):
            raise invalid(f"{name}: a whole number (minutes below 60).")
        if name == "assigned_user_id" and value not in self.records["Users"]:
            raise invalid(f"assigned_user_id: no user {value}.")
        if name == "contact_id" and value and value not in self.records["Contacts"]:
            raise invalid(f"contact_id: no contact {value}.")

    def _check_parent(self, fields: dict[str, Any]) -> None:
        parent_type, parent_id = fields.get("parent_type"), fields.get("parent_id")
        if not parent_type and not parent_id:
            return
        if parent_type not in PARENT_MODULES or parent_id not in self.records[str(parent_type)]:
            raise invalid(f"parent: no {parent_type} record {parent_id}.")


class _Handler(JsonHandler):
    api_error = ApiError


FakeSugarCrm.handler_class = _Handler


def _check_field(module: str, field: Any) -> None:
    if not isinstance(field, str) or field not in MODULE_FIELDS[module] | SYSTEM_FIELDS:
        raise invalid(f"Unknown field {field!r} in module {module}.")


def _value(record: FakeRecord, field: str) -> Any:
    if field == "id":
        return record.id
    if field == "date_modified":
        return record.modified_s
    if field == "date_entered":
        return record.created_s
    if field == "deleted":
        return False
    value = record.fields.get(field)
    return sugar_time(value) if field in DATETIME_FIELDS and isinstance(value, int) else value


def _either(tests: list[Callable[[FakeRecord], bool]], record: FakeRecord) -> bool:
    return any(test(record) for test in tests)


def _each(tests: list[Callable[[FakeRecord], bool]], record: FakeRecord) -> bool:
    return all(test(record) for test in tests)


def _sort_value(record: FakeRecord, *, field: str) -> Any:
    value = _value(record, field)
    return (value is not None, value if isinstance(value, int) else str(value or "").casefold())


def _comparison(field: str, operator: str, operand: Any) -> Callable[[Any], bool]:
    """A test of one field's value: text without case, datetimes as epoch seconds."""
    if operator == "$is_null":
        return lambda value: value in (None, "")
    if operator == "$not_null":
        return lambda value: value not in (None, "")
    if operator in ("$in", "$not_in"):
        if not isinstance(operand, list):
            raise invalid(f"{operator} takes an array.")
        wanted = {_text(v) for v in operand}
        inside = operator == "$in"
        return lambda value: (_text(value) in wanted) == inside
    if operator == "$dateBetween":
        if field not in DATETIME_FIELDS or not isinstance(operand, list) or len(operand) != 2:
            raise invalid("$dateBetween takes [start, end] dates on a date field.")
        start, end = (_day(v) for v in operand)
        return lambda value: value is not None and start <= _day_of(value) <= end
    if field in DATETIME_FIELDS:
        moment = _moment(operand)
        return lambda value: value not in (None, "") and _ORDER[operator](_seconds(value), moment)
    text = _text(operand)
    return lambda value: value is not None and _ORDER[operator](_text(value), text)


_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "$equals": lambda a, b: a == b,
    "$not_equals": lambda a, b: a != b,
    "$starts": lambda a, b: str(a).startswith(str(b)),
    "$ends": lambda a, b: str(a).endswith(str(b)),
    "$contains": lambda a, b: str(b) in str(a),
    "$lt": lambda a, b: a < b,
    "$lte": lambda a, b: a <= b,
    "$gt": lambda a, b: a > b,
    "$gte": lambda a, b: a >= b,
}


def _text(value: Any) -> str:
    return str(value if value is not None else "").casefold()


def _moment(operand: Any) -> int:
    """A filter's datetime: ISO 8601 with an offset, read to the second."""
    if not (isinstance(operand, str) and SUGAR_DATETIME.match(operand)):
        raise invalid(f"{operand!r} is not a datetime with an offset.")
    return int(datetime.fromisoformat(operand).timestamp())


def _seconds(value: Any) -> int:
    return value if isinstance(value, int) else int(datetime.fromisoformat(str(value)).timestamp())


def _day(operand: Any) -> date:
    try:
        return date.fromisoformat(str(operand))
    except ValueError:
        raise invalid(f"{operand!r} is not a date.") from None


def _day_of(value: Any) -> date:
    return datetime.fromtimestamp(_seconds(value), USER_OFFSET).date()  # the user's days


def _order_by(module: str, raw: str) -> list[tuple[str, bool]]:
    order = []
    for part in raw.split(","):
        field, _, direction = part.strip().partition(":")
        if direction.upper() not in ("ASC", "DESC", ""):
            raise invalid(f"order_by: {part!r} (field:ASC or field:DESC).")
        _check_field(module, field)
        order.append((field, direction.upper() == "DESC"))
    return order


def _count(body: dict[str, Any], name: str, default: int) -> int:
    value = body.get(name, default)
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise invalid(f"{name} must be a whole number.")
    return value


def _json_body(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        raise sugar_error(400, "invalid_request", "The body is not valid JSON.") from None


def serve_demo(options: dict[str, Any]) -> tuple[FakeSugarCrm, str, dict[str, Any]]:
    """Start the fake for `manage.py fakecrm`; answer it, a description, the connection JSON."""
    fake = FakeSugarCrm(
        contacts=options["contacts"], accounts=options["companies"], leads=options["leads"]
    )
    url = fake.start(port=options["port"])
    username, password = next(iter(fake.logins.items()))
    credentials = {"instance_url": url, "username": username, "password": password}
    return (
        fake,
        f"Fake SugarCRM at {url} with {options['contacts']} contacts, "
        f"{options['companies']} accounts and {options['leads']} leads",
        {"credentials": credentials, "settings": {"objects": ["contacts", "accounts", "leads"]}},
    )
