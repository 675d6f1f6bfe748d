"""A strict fake of "some CRM's REST API" on 127.0.0.1, for the generic REST connector.

One server speaks one paging style (page number, offset, cursor, or next link in the body or a
Link header) and one auth kind (none, Basic, Bearer, API-key header, OAuth2 client
credentials), like a real API does. It refuses unknown query parameters, page sizes above its
maximum, unreadable cursors and dates, missing or wrong credentials (401 with
WWW-Authenticate), and answers a burst above its limit with 429 + Retry-After + X-RateLimit-*.
`settings()` and `credentials()` give a connection configured for it.
"""

from __future__ import annotations

import base64
import json
import random
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlencode

from fakes.hubspot_data import BASE_MS, FIRST_NAMES, LAST_NAMES, iso, messy_number
from fakes.server import FakeServer, JsonHandler

LIST_PATH = "/api/v1/contacts"
SEARCH_PATH = "/api/v1/contacts/search"
CALLS_PATH = "/api/v1/calls"
TOKEN_PATH = "/oauth/token"
SIZE_PARAM = {"page": "per_page", "offset": "limit", "cursor": "limit", "next_link": "limit"}
POSITION_PARAM = {"page": "page", "offset": "offset", "cursor": "cursor", "next_link": "cursor"}
SECRETS = {
    "username": "crm-user",
    "password": "crm-pass",
    "token": "rest-token",
    "api_key": "rest-api-key",
    "client_id": "rest-client",
    "client_secret": "rest-client-secret",
}
CALL_REQUIRED = ("external_call_id", "contact_id", "direction", "started_at", "duration")
CALL_FIELDS = {*CALL_REQUIRED, "outcome", "notes", "numbers", "recording_url"}
PHONE_TYPES = ["mobile", "office", "home", "fax", "Cell"]
COUNTRIES = ["GB", "US", "de", "", "France", None]


class ApiError(Exception):
    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self.status, self.body, self.headers = status, body, headers or {}


def error(status: int, code: str, message: str, **headers: str) -> ApiError:
    return ApiError(status, {"error": {"code": code, "message": message}}, headers)


@dataclass
class Fault:
    """Answer the next `times` matching requests with this instead of the real thing."""

    kind: str  # "status", "slow", "malformed"
    times: int
    path_contains: str = ""
    status: int = 500
    retry_after: str | None = "1"
    seconds: float = 0.0


class FakeRestCrm(FakeServer):
    def __init__(
        self,
        *,
        contacts: int = 0,
        paging: str = "page",
        auth: str = "bearer",
        max_page_size: int = 100,
        default_page_size: int = 25,
        next_link_in: str = "body",  # or "header" (RFC 8288 Link)
        token_lifetime: int = 3600,
        burst_limit: int = 100,  # requests per second
    ) -> None:
        assert paging in SIZE_PARAM and next_link_in in ("body", "header")
        self.paging, self.auth, self.next_link_in = paging, auth, next_link_in
        self.max_page_size, self.default_page_size = max_page_size, default_page_size
        self.token_lifetime, self.burst_limit = token_lifetime, burst_limit
        self.records: dict[int, dict[str, Any]] = {}
        for i in range(contacts):
            self._add(i)
        self.access_tokens: dict[str, float] = {}
        self.calls: dict[str, dict[str, Any]] = {}
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str, dict[str, list[str]]]] = []
        self._recent: deque[float] = deque()
        self.lock = threading.RLock()

    # ----- test controls
    def credentials(self) -> dict[str, Any]:
        """What a connection to this fake stores as its (encrypted) credentials."""
        needed = {
            "none": (),
            "basic": ("username", "password"),
            "bearer": ("token",),
            "api_key": ("api_key",),
            "oauth2_client_credentials": ("client_id", "client_secret"),
        }[self.auth]
        return {"base_url": self.url + "/api/v1", **{name: SECRETS[name] for name in needed}}

    def settings(self, page_size: int = 50) -> dict[str, Any]:
        """Connection settings that read this fake's documents completely."""
        paging: dict[str, Any] = {"style": self.paging, "page_size": page_size}
        paging["size_param"] = SIZE_PARAM[self.paging]
        if self.paging == "cursor":
            paging["next_cursor"] = "meta.next_cursor"
        if self.paging == "next_link" and self.next_link_in == "body":
            paging["next_link"] = "links.next"
        auth: dict[str, Any] = {"kind": self.auth}
        if self.auth == "api_key":
            auth["header"] = "X-API-Key"
        if self.auth == "oauth2_client_credentials":
            auth.update(token_url=self.url + TOKEN_PATH, scope="contacts.read calls.write")
        return {
            "auth": auth,
            "list": {
                "path": "/contacts",
                "items": "data.items[*]",
                "paging": paging,
                "updated_since": {"param": "updated_since", "format": "iso8601"},
            },
            "fields": {
                "external_id": "id",
                "first_name": "attributes.first_name",
                "last_name": "attributes.last_name",
                "company": "company.name",
                "country": "address.country",
                "updated_at": "updated_at",
                "phones": [{"path": "phones[*]", "number": "number", "kind_path": "type"}],
            },
            "custom_fields": {"tier": "attributes.tier"},
            "crm_url": "https://crm.example.com/people/{id}",
            "search": {"path": "/contacts/search", "param": "phone", "items": "data[*]"},
            "call_log": {
                "path": "/calls",
                "body": {
                    "external_call_id": "call_id",
                    "contact_id": "contact_external_id",
                    "direction": "direction",
                    "started_at": "started_at",
                    "duration": "duration_seconds",
                    "outcome": "outcome",
                    "notes": "notes",
                    "numbers": {"from": "from_number", "to": "to_number"},
                },
                "id": "data.id",
                "update_method": "PATCH",
            },
        }

    def touch(self, numbers: list[int], *, at_ms: int | None = None) -> None:
        """Edit records now, as a user of the CRM would."""
        with self.lock:
            for number in numbers:
                record = self.records[number]
                stamp = at_ms or int(time.time() * 1000)
                record["attributes"]["last_name"] = f"Edited {stamp}"
                record["updated_at"] = iso(stamp)

    def delete(self, numbers: list[int]) -> None:
        with self.lock:
            for number in numbers:
                del self.records[number]

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
            fault = next((f for f in self.faults if f.times > 0 and f.path_contains in path), None)
            if fault:
                fault.times -= 1
        if fault and fault.kind == "slow":
            time.sleep(fault.seconds)
        if method == "POST" and path == TOKEN_PATH and self.auth == "oauth2_client_credentials":
            return 200, self._token(headers, body), {"Cache-Control": "no-store"}
        self._authenticate(headers)
        limits = self._rate_limit()
        if fault and fault.kind == "status":
            extra = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            raise error(fault.status, "fault", "injected", **limits, **extra)
        if method == "GET" and path == LIST_PATH:
            result, extra = self._list(query)
            if fault and fault.kind == "malformed":
                result = {"data": {"items": "oops"}}
            return 200, result, {**limits, **extra}
        if method == "GET" and path == SEARCH_PATH:
            return 200, self._search(query), limits
        if method == "POST" and path == CALLS_PATH:
            return 201, {"data": self._log_call(None, _json(body))}, limits
        if method == "PATCH" and path.startswith(CALLS_PATH + "/"):
            call_id = path.removeprefix(CALLS_PATH + "/")
            return 200, {"data": self._log_call(call_id, _json(body))}, limits
        raise error(404, "not_found", f"No route for {method} {path}.")

    def _authenticate(self, headers: Any) -> None:
        if self.auth == "none":
            return
        if self.auth == "api_key":
            if headers.get("X-API-Key") != SECRETS["api_key"]:
                raise error(401, "unauthorized", "Missing or invalid X-API-Key header.")
            return
        value = headers.get("Authorization") or ""
        if self.auth == "basic":
            pair = f"{SECRETS['username']}:{SECRETS['password']}".encode()
            if value != "Basic " + base64.b64encode(pair).decode():
                raise error(
                    401, "unauthorized", "Invalid credentials.", **{"WWW-Authenticate": "Basic"}
                )
            return
        token = value.removeprefix("Bearer ") if value.startswith("Bearer ") else None
        if self.auth == "bearer" and token == SECRETS["token"]:
            return
        expiry = self.access_tokens.get(token or "")
        if self.auth == "oauth2_client_credentials" and expiry is not None and expiry > time.time():
            return
        reason = "expired" if expiry is not None else "invalid"
        raise ApiError(
            401,
            {"error": "invalid_token", "error_description": f"The access token is {reason}."},
            {"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{reason}"'},
        )

    def _token(self, headers: Any, body: bytes) -> dict[str, Any]:
        """RFC 6749 section 4.4: client credentials in a Basic header, the grant in a form."""
        if not (headers.get("Content-Type") or "").startswith("application/x-www-form-urlencoded"):
            raise ApiError(400, {"error": "invalid_request", "error_description": "Send a form."})
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        pair = f"{SECRETS['client_id']}:{SECRETS['client_secret']}".encode()
        if headers.get("Authorization") != "Basic " + base64.b64encode(pair).decode():
            raise ApiError(
                401, {"error": "invalid_client"}, {"WWW-Authenticate": 'Basic realm="token"'}
            )
        if form.get("grant_type") != "client_credentials":
            raise ApiError(400, {"error": "unsupported_grant_type"})
        token = f"cc-{uuid.uuid4().hex}"
        with self.lock:
            self.access_tokens[token] = time.time() + self.token_lifetime
        return {"access_token": token, "token_type": "Bearer", "expires_in": self.token_lifetime}

    def _rate_limit(self) -> dict[str, str]:
        now = time.monotonic()
        with self.lock:
            while self._recent and self._recent[0] < now - 1:
                self._recent.popleft()
            self._recent.append(now)
            used = len(self._recent)
        headers = {
            "X-RateLimit-Limit": str(self.burst_limit),
            "X-RateLimit-Remaining": str(max(0, self.burst_limit - used)),
            "X-RateLimit-Reset": "1",
        }
        if used > self.burst_limit:
            raise error(
                429, "rate_limited", "Too many requests.", **headers, **{"Retry-After": "1"}
            )
        return headers

    def _list(self, query: dict[str, list[str]]) -> tuple[dict[str, Any], dict[str, str]]:
        size_param, position_param = SIZE_PARAM[self.paging], POSITION_PARAM[self.paging]
        unknown = set(query) - {size_param, position_param, "updated_since"}
        if unknown:
            raise error(400, "invalid_parameter", f"Unknown parameter {sorted(unknown)[0]!r}.")
        size = _number(query, size_param, self.default_page_size)
        if not 1 <= size <= self.max_page_size:
            raise error(
                400, "invalid_parameter", f"{size_param} must be 1 to {self.max_page_size}."
            )
        since = _since(query)
        with self.lock:
            matching = [r for _, r in sorted(self.records.items()) if _ms(r["updated_at"]) >= since]
        if self.paging == "page":
            page = _number(query, "page", 1)
            if page < 1:
                raise error(400, "invalid_parameter", "page starts at 1.")
            start = (page - 1) * size
        elif self.paging == "offset":
            start = _number(query, "offset", 0)
        else:
            start = _decode_cursor((query.get("cursor") or [""])[0])
        items = matching[start : start + size]
        result: dict[str, Any] = {"data": {"items": items, "total": len(matching)}}
        following = start + size if start + size < len(matching) else None
        headers: dict[str, str] = {}
        if self.paging == "cursor":
            result["meta"] = {"next_cursor": _encode_cursor(following) if following else None}
        if self.paging == "next_link":
            link = None
            if following:
                params = {"cursor": _encode_cursor(following), "limit": size}
                if "updated_since" in query:
                    params["updated_since"] = query["updated_since"][0]
                link = f"{self.url}{LIST_PATH}?{urlencode(params)}"
            if self.next_link_in == "body":
                result["links"] = {"next": link}
            elif link:
                headers["Link"] = f'<{link}>; rel="next"'
        return result, headers

    def _search(self, query: dict[str, list[str]]) -> dict[str, Any]:
        if set(query) != {"phone"}:
            raise error(400, "invalid_parameter", "Search takes exactly one parameter: phone.")
        digits = "".join(c for c in query["phone"][0] if c.isdigit())
        with self.lock:
            found = [
                r
                for r in self.records.values()
                if any(
                    "".join(c for c in p["number"] if c.isdigit()) == digits for p in r["phones"]
                )
            ]
        return {"data": found}

    def _log_call(self, call_id: str | None, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise error(400, "invalid_body", "Send a JSON object.")
        if set(body) - CALL_FIELDS:
            raise error(
                422, "validation_failed", f"Unknown field {sorted(set(body) - CALL_FIELDS)[0]!r}."
            )
        with self.lock:
            if call_id is not None and call_id not in self.calls:
                raise error(404, "not_found", f"No call {call_id}.")
            merged = {**self.calls.get(call_id or "", {}), **body}
            missing = [name for name in CALL_REQUIRED if merged.get(name) in (None, "")]
            if missing:
                raise error(422, "validation_failed", f"{missing[0]} is required.")
            if merged["direction"] not in ("inbound", "outbound"):
                raise error(422, "validation_failed", "direction is inbound or outbound.")
            if not isinstance(merged["duration"], int):
                raise error(422, "validation_failed", "duration is a whole number of seconds.")
            if not any(r["id"] == merged["contact_id"] for r in self.records.values()):
                raise error(422, "validation_failed", f"No contact {merged['contact_id']}.")
            call_id = call_id or f"call-{len(self.calls) + 1}"
            self.calls[call_id] = merged
        return {"id": call_id, **merged}

    def _add(self, i: int) -> None:
        rng = random.Random(i)
        phones = [
            {"number": number, "type": rng.choice(PHONE_TYPES)}
            for number in (messy_number(rng, i), messy_number(rng, i + 7) if i % 3 == 0 else None)
            if number
        ]
        # Modification times interleave ids: the list (by id) is not in time order.
        updated = BASE_MS + (i * 7919) % 10_007 * 1000 + 60_000
        self.records[i + 1] = {
            "id": f"c-{i + 1}",
            "type": "person",
            "attributes": {
                "first_name": rng.choice(FIRST_NAMES) if i % 17 else None,
                "last_name": rng.choice(LAST_NAMES) if i % 13 else "",
                "tier": rng.choice(["gold", "silver", None]),
            },
            "company": {"name": f"Company {i % 97}"} if i % 3 else None,
            "address": {"country": rng.choice(COUNTRIES)},
            "phones": phones,
            "created_at": iso(BASE_MS + i * 1000),
            "updated_at": iso(updated),
        }


class _Handler(JsonHandler):
    api_error = ApiError


def _json(body: bytes) -> Any:
    try:
        return json.loads(body or b"null")
    except ValueError:
        raise error(400, "invalid_body", "The body is not JSON.") from None


def _number(query: dict[str, list[str]], name: str, default: int) -> int:
    raw = (query.get(name) or [str(default)])[0]
    if not raw.isdigit():
        raise error(400, "invalid_parameter", f"{name} must be a whole number, got {raw!r}.")
    return int(raw)


def _since(query: dict[str, list[str]]) -> int:
    raw = (query.get("updated_since") or [""])[0]
    if not raw:
        return 0
    try:
        moment = datetime.strptime(raw, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise error(
            400, "invalid_parameter", "updated_since is ISO 8601 UTC, e.g. 2024-01-31T09:00:00Z."
        ) from None
    return int(moment.timestamp() * 1000)


def _ms(stamp: str) -> int:
    return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1000)


def _encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode()


def _decode_cursor(cursor: str) -> int:
    if not cursor:
        return 0
    try:
        return int(json.loads(base64.urlsafe_b64decode(cursor.encode()))["o"])
    except (ValueError, KeyError, TypeError):
        raise error(400, "invalid_cursor", "The cursor is not one this API gave.") from None


FakeRestCrm.handler_class = _Handler


def serve_demo(options: dict[str, Any]) -> tuple[FakeRestCrm, str, dict[str, Any]]:
    """Start the fake for `manage.py fakecrm`; answer it, a description, the connection JSON."""
    fake = FakeRestCrm(contacts=options["contacts"], paging=options["paging"], auth=options["auth"])
    url = fake.start(port=options["port"])
    return (
        fake,
        f"Fake REST CRM at {url} with {options['contacts']} contacts",
        {"credentials": fake.credentials(), "settings": fake.settings()},
    )
