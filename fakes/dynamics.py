"""A strict fake Dataverse Web API v9.2 (and Entra ID token endpoint) on 127.0.0.1.

At least as strict as the real service (../shared/reference/crm-apis.md section 6,
crm-apis-more.md section 1, learn.microsoft.com pages cited there):
- Entra ID client credentials at `/{tenant}/oauth2/v2.0/token`, scope `<org URL>/.default`
  only, AADSTS errors; Bearer tokens that expire (401 with `WWW-Authenticate`, no body).
- The authorization-code flow: `GET /{tenant}/oauth2/v2.0/authorize` (client, response_type
  code, a redirect_uri, a scope with `<org URL>/user_impersonation`) redirects with a code
  (`authorize(redirect_uri)` stands for the user's consent); the token endpoint's
  `authorization_code` grant takes a code once, for its redirect_uri only, and the
  `refresh_token` grant rotates refresh tokens (the old one is refused at once: stricter than
  Entra ID, whose old refresh tokens stay valid until they expire). Both need the
  `user_impersonation` scope; refusals are Entra's `{"error": "invalid_grant", ...}` bodies
  (the AADSTS numbers are the fake's picks, UNVERIFIED one by one).
- `OData-MaxVersion: 4.0`, `OData-Version: 4.0` and `Accept: application/json` on every request
  (Microsoft's samples send them; the fake refuses requests without them: stricter).
- Exact, case-sensitive entity sets (`Contacts` is 404 `0x8006088a`) and `(guid)` keys.
- `$select` and `$filter` checked column by column (400 `0x0` "Could not find a property");
  the `$filter` subset: `col eq|ne|gt|ge|lt|le <literal>` and `contains|startswith|endswith`,
  joined by `and`/`or` (anything else is 400 `0x80060888`, a syntax error); `$skip` and every
  other option are refused.
- Paging by `Prefer: odata.maxpagesize` (at most 5,000) and `@odata.nextLink` with an opaque
  `$skiptoken` bound to its query.
- Change tracking (`Prefer: odata.track-changes`) on contacts and accounts: a baseline, then
  `@odata.deltaLink`s answering changed rows and `$deletedEntity` tombstones; no `$filter` with
  it. `expire_delta_links()` makes them answer `delta_expired_status` (410: UNVERIFIED).
- Service protection: 429 with `Retry-After` past `requests_per_window` per token per window.
- Writes: 204 with `OData-EntityId`; unknown columns, wrong types, too-long text and binds to
  missing rows refused; PATCH is an upsert unless `If-Match: *`. Rows stay in `fake.rows`.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

from fakes import dynamics_data
from fakes.dynamics_data import FakeRow
from fakes.server import FakeServer, JsonHandler

API = "/api/data/v9.2/"
MAX_PAGE_SIZE = 5000
TENANT_ID = "8d1f0e3c-5b7a-4c2e-9f61-2a4b6c8d0e1f"
CLIENT_ID = "4a7b9c1d-2e3f-4a5b-8c6d-7e8f9a0b1c2d"
CLIENT_SECRET = "fake~dataverse~client~secret"
KEYS = {
    "contacts": "contactid",
    "accounts": "accountid",
    "phonecalls": "activityid",
    "tasks": "activityid",
    "systemusers": "systemuserid",
}
TABLES = {name: name.removesuffix("s") for name in KEYS}  # logical names: contact, phonecall...
# Column kinds: text:<max>, bool, int, datetime, choice:<values>, guid (lookups, read only).
_ACTIVITY = {
    "activityid": "guid", "subject": "text:200", "description": "text:2000",
    "_regardingobjectid_value": "guid", "_ownerid_value": "guid", "statecode": "choice:0,1,2",
    "statuscode": "int", "createdon": "datetime", "modifiedon": "datetime",
}  # fmt: skip
COLUMNS: dict[str, dict[str, str]] = {
    "contacts": {
        "contactid": "guid", "firstname": "text:50", "lastname": "text:50",
        "emailaddress1": "text:100", "telephone1": "text:50", "telephone2": "text:50",
        "telephone3": "text:50", "mobilephone": "text:50", "address1_country": "text:80",
        "_parentcustomerid_value": "guid", "new_tier": "text:100", "_ownerid_value": "guid",
        "createdon": "datetime", "modifiedon": "datetime",
    },
    "accounts": {
        "accountid": "guid", "name": "text:160", "telephone1": "text:50",
        "telephone2": "text:50", "telephone3": "text:50", "address1_country": "text:80",
        "websiteurl": "text:200", "_ownerid_value": "guid", "createdon": "datetime",
        "modifiedon": "datetime",
    },
    "phonecalls": {
        **_ACTIVITY, "directioncode": "bool", "phonenumber": "text:200",
        "actualstart": "datetime", "actualend": "datetime", "actualdurationminutes": "int",
        "leftvoicemail": "bool",
    },
    "tasks": {**_ACTIVITY, "scheduledend": "datetime", "prioritycode": "choice:0,1,2"},
    "systemusers": {
        "systemuserid": "guid", "fullname": "text:200", "internalemailaddress": "text:100",
        "isdisabled": "bool", "azureactivedirectoryobjectid": "guid",
    },
}  # fmt: skip
# What a POST or PATCH may set: plain columns, and lookups through `<navigation>@odata.bind`
# (navigation property -> the entity sets it may point at, and the lookup column it sets).
_READ_ONLY = {"guid", "datetime-system"}
BINDS: dict[str, dict[str, tuple[tuple[str, ...], str]]] = {
    "contacts": {
        "parentcustomerid_account": (("accounts",), "_parentcustomerid_value"),
        "ownerid": (("systemusers",), "_ownerid_value"),
    },
    "accounts": {"ownerid": (("systemusers",), "_ownerid_value")},
    "phonecalls": {
        "regardingobjectid_contact": (("contacts",), "_regardingobjectid_value"),
        "regardingobjectid_account": (("accounts",), "_regardingobjectid_value"),
        "ownerid": (("systemusers",), "_ownerid_value"),
    },
}
BINDS["tasks"] = BINDS["phonecalls"]
WRITABLE = {"contacts", "accounts", "phonecalls", "tasks"}
TRACKED = {"contacts", "accounts"}  # tables with Track changes on
_SYSTEM = {"createdon", "modifiedon", "statecode", "statuscode"}
FORMATTED = "@OData.Community.Display.V1.FormattedValue"
_GUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_SEGMENT = re.compile(r"^(?P<set>[A-Za-z_]+)(?:\((?P<key>[^)]*)\))?$")
_BIND_VALUE = re.compile(rf"^/?(?P<set>[a-z_]+)\((?P<key>{_GUID})\)$")
_LITERAL = r"'(?:[^']|'')*'|true|false|null|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z|-?\d+"
_TERM = re.compile(
    rf"""\s*(?:
      (?P<func>contains|startswith|endswith)\(\s*(?P<fcol>\w+)\s*,\s*(?P<fval>'(?:[^']|'')*')\s*\)
    | (?P<col>\w+)\s+(?P<op>eq|ne|gt|ge|lt|le)\s+(?P<val>{_LITERAL})
    )\s*""",
    re.X,
)
_JOIN = re.compile(r"(and|or)\s+")


class ApiError(Exception):
    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None):
        self.status, self.body, self.headers = status, body, headers or {}


def dataverse_error(status: int, code: str, message: str, **headers: str) -> ApiError:
    return ApiError(status, {"error": {"code": code, "message": message}}, headers)


def entra_error(status: int, error: str, description: str) -> ApiError:
    return ApiError(status, {"error": error, "error_description": description, "error_codes": []})


@dataclass
class Fault:
    """Answer the next `times` matching requests with this instead of the real answer.

    `status`: answer `status` (a 429 with `Retry-After: retry_after`) without doing anything;
    `lost_answer`: do the work, then answer `status` as if the answer was lost on the way.
    """

    kind: str  # "status", "lost_answer"
    times: int
    path_contains: str = ""
    method: str = ""
    status: int = 500
    retry_after: int = 1


@dataclass
class _Listing:
    """Where a nextLink's `$skiptoken` continues: its query, and the position after its page."""

    query: tuple[Any, ...]
    position: int
    snapshot: int  # the version counter when the listing began (baseline and delta)
    delta_since: int | None  # a delta: the version its delta link was issued at


class FakeDynamics(FakeServer):
    def __init__(
        self,
        *,
        contacts: int = 0,
        accounts: int = 0,
        token_seconds: float = 3599,
        requests_per_window: int = 6000,
        window_seconds: float = 300,
        delta_expired_status: int = 410,
    ) -> None:
        users = dynamics_data.users()
        owners = [
            user_id
            for user_id, row in users.items()
            if row.columns["internalemailaddress"] and not row.columns["isdisabled"]
        ]
        account_rows = dynamics_data.accounts(accounts, owners)
        self.rows: dict[str, dict[str, FakeRow]] = {
            "contacts": dynamics_data.contacts(contacts, list(account_rows), owners),
            "accounts": account_rows,
            "phonecalls": {},
            "tasks": {},
            "systemusers": users,
        }
        self.tombstones: dict[str, dict[str, int]] = {name: {} for name in KEYS}
        self.version = 1
        self.tenant_id, self.clients = TENANT_ID, {CLIENT_ID: CLIENT_SECRET}
        self.token_seconds = token_seconds
        self.access_tokens: dict[str, float] = {}
        self.authorization_codes: dict[str, str] = {}  # code -> the redirect_uri it was for
        self.redeemed_codes: set[str] = set()
        self.refresh_tokens: set[str] = set()
        self.token_forms: list[str] = []  # every token request's form body, in order
        self.requests_per_window, self.window_seconds = requests_per_window, window_seconds
        self.delta_expired_status = delta_expired_status
        self.tracked = set(TRACKED)
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str, dict[str, list[str]], dict[str, str]]] = []
        self._listings: dict[str, _Listing] = {}
        self._delta_tokens: dict[str, tuple[str, int]] = {}  # token -> (entity set, version)
        self._expired_delta_tokens: set[str] = set()
        self._calls: dict[str, deque[float]] = {}
        self.lock = threading.RLock()

    # ----- test controls
    def issue_token(self, seconds: float | None = None) -> str:
        token = f"eyJ0eXAiOiJKV1Qi.{uuid.uuid4().hex}"
        self.access_tokens[token] = time.time() + (seconds or self.token_seconds)
        return token

    def credentials(self, **more: Any) -> dict[str, Any]:
        """A connection's credentials pointing both the org and the authority at the fake
        (`auth="authorization_code"` for a delegated connection)."""
        return {
            "org_url": self.url,
            "authority_url": self.url,
            "tenant_id": self.tenant_id,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            **more,
        }

    def ids(self, entity_set: str) -> list[str]:
        """Row keys in generation order for generated rows (creation order for written ones)."""
        return list(self.rows[entity_set])

    def touch(self, entity_set: str, keys: list[str]) -> None:
        """Edit rows, as a user in Dynamics would."""
        with self.lock:
            for key in keys:
                row = self.rows[entity_set][key]
                name = "name" if entity_set == "accounts" else "lastname"
                row.columns[name] = f"Edited {self.version}"
                self._stamp(row)

    def delete(self, entity_set: str, keys: list[str]) -> None:
        with self.lock:
            for key in keys:
                del self.rows[entity_set][key]
                self.version += 1
                self.tombstones[entity_set][key] = self.version

    def expire_delta_links(self) -> None:
        """Every delta link issued so far answers `delta_expired_status` from now on."""
        with self.lock:
            self._expired_delta_tokens.update(self._delta_tokens)

    def written(self, entity_set: str) -> dict[str, dict[str, Any]]:
        """The rows of an activity table as stored: key -> columns (binds as sent)."""
        return {key: row.columns for key, row in self.rows[entity_set].items()}

    def paths(self, method: str | None = None) -> list[str]:
        return [p for m, p, _, _ in self.requests if method in (None, m)]

    # ----- the service
    def handle(
        self, method: str, path: str, query: dict[str, list[str]], headers: Any, body: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        with self.lock:
            self.requests.append((method, path, query, dict(headers.items())))
            fault = self._take_fault(method, path)
        if re.fullmatch(r"/[^/]+/oauth2/v2\.0/authorize", path) and method == "GET":
            return 302, b"", {"Location": self._authorize_redirect(path.split("/")[1], query)}
        if re.fullmatch(r"/[^/]+/oauth2/v2\.0/token", path):
            if method != "POST":
                raise entra_error(405, "invalid_request", "AADSTS900561: use POST.")
            return 200, self._token(path.split("/")[1], headers, body), {}
        if not path.startswith(API):
            raise ApiError(404, "<html><body>Not Found</body></html>")
        token = self._authenticate(headers)
        self._check_odata_headers(method, headers)
        self._protect(token)
        if fault and fault.kind == "status":
            if fault.status == 429:
                raise self._too_many(fault.retry_after)
            raise dataverse_error(fault.status, "0x80040216", "An unexpected error occurred.")
        answer = self._route(method, path.removeprefix(API), query, headers, body)
        if fault and fault.kind == "lost_answer":
            raise dataverse_error(fault.status, "0x80040216", "The answer was lost.")
        return answer

    def _take_fault(self, method: str, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.times > 0 and fault.path_contains in path and fault.method in ("", method):
                fault.times -= 1
                return fault
        return None

    def _authorize_redirect(self, tenant: str, query: dict[str, list[str]]) -> str:
        """The user signed in and consented: back to redirect_uri with a code and the state."""
        params = {k: v[0] for k, v in query.items()}
        if tenant != self.tenant_id:
            raise entra_error(400, "invalid_request", f"AADSTS90002: Tenant '{tenant}' not found.")
        if params.get("client_id") not in self.clients:
            raise entra_error(400, "unauthorized_client", "AADSTS700016: Application not found.")
        redirect_uri = params.get("redirect_uri", "")
        if not redirect_uri:
            raise entra_error(400, "invalid_request", "AADSTS900144: redirect_uri is missing.")
        back = {"state": params.get("state", "")}
        if params.get("response_type") != "code":
            back |= {"error": "unsupported_response_type", "error_description": "AADSTS700054"}
        elif not self._delegated_scope(params.get("scope", "")):
            back |= {"error": "invalid_scope", "error_description": "AADSTS70011: bad scope."}
        else:
            back["code"] = self.authorize(redirect_uri)
        return f"{redirect_uri}?{urlencode(back)}"

    def _delegated_scope(self, scope: str) -> bool:
        return f"{self.url}/user_impersonation" in scope.split()

    def _token(self, tenant: str, headers: Any, body: bytes) -> dict[str, Any]:
        if not (headers.get("Content-Type") or "").startswith("application/x-www-form-urlencoded"):
            raise entra_error(400, "invalid_request", "AADSTS900144: form body required.")
        self.token_forms.append(body.decode())
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        if tenant != self.tenant_id:
            raise entra_error(400, "invalid_request", f"AADSTS90002: Tenant '{tenant}' not found.")
        grant = form.get("grant_type")
        if grant not in ("client_credentials", "authorization_code", "refresh_token"):
            raise entra_error(400, "unsupported_grant_type", "AADSTS70003: unsupported grant.")
        client_id = form.get("client_id", "")
        if client_id not in self.clients:
            raise entra_error(
                400, "unauthorized_client", f"AADSTS700016: Application '{client_id}' not found."
            )
        if self.clients[client_id] != form.get("client_secret"):
            raise entra_error(401, "invalid_client", "AADSTS7000215: Invalid client secret.")
        if grant != "client_credentials":
            return self._delegated_token(grant, form)
        if form.get("scope") != f"{self.url}/.default":
            raise entra_error(
                400, "invalid_scope", f"AADSTS70011: The scope '{form.get('scope')}' is not valid."
            )
        return {
            "token_type": "Bearer",
            "expires_in": int(self.token_seconds),
            "ext_expires_in": int(self.token_seconds),
            "access_token": self.issue_token(),
        }

    def _delegated_token(self, grant: str, form: dict[str, str]) -> dict[str, Any]:
        """The authorization_code and refresh_token grants: tokens acting as the user."""
        scope = form.get("scope", "")
        if not self._delegated_scope(scope):
            raise entra_error(
                400, "invalid_scope", f"AADSTS70011: The scope '{scope}' is not valid."
            )
        with self.lock:
            if grant == "authorization_code":
                code = form.get("code", "")
                issued_for = self.authorization_codes.pop(code, None)  # single use, even if wrong
                if code in self.redeemed_codes:
                    raise entra_error(
                        400,
                        "invalid_grant",
                        "AADSTS54005: OAuth2 Authorization code was "
                        "already redeemed, please retry with a new valid code.",
                    )
                if issued_for is None:
                    raise entra_error(
                        400,
                        "invalid_grant",
                        "AADSTS70000: The provided value for the 'code' parameter is not valid.",
                    )
                self.redeemed_codes.add(code)
                if issued_for != form.get("redirect_uri"):
                    raise entra_error(
                        400,
                        "invalid_grant",
                        "AADSTS50148: The redirect_uri does not match "
                        "the one the authorization code was issued for.",
                    )
            else:
                old = form.get("refresh_token", "")
                if old not in self.refresh_tokens:
                    raise entra_error(
                        400,
                        "invalid_grant",
                        "AADSTS70008: The provided authorization code or "
                        "refresh token has expired or was revoked.",
                    )
                self.refresh_tokens.discard(old)  # rotated: the old one is refused from now on
            refresh_token = f"0.AXoA{uuid.uuid4().hex}"
            self.refresh_tokens.add(refresh_token)
        return {
            "token_type": "Bearer",
            "scope": f"{self.url}/user_impersonation",
            "expires_in": int(self.token_seconds),
            "ext_expires_in": int(self.token_seconds),
            "access_token": self.issue_token(),
            "refresh_token": refresh_token,
        }

    def _authenticate(self, headers: Any) -> str:
        value = headers.get("Authorization") or ""
        token = value.removeprefix("Bearer ")
        if not value.startswith("Bearer ") or self.access_tokens.get(token, 0) < time.time():
            authority = f"Bearer authorization_uri={self.url}/{self.tenant_id}/oauth2/authorize"
            raise ApiError(401, b"", {"WWW-Authenticate": authority})
        return token

    @staticmethod
    def _check_odata_headers(method: str, headers: Any) -> None:
        for name in ("OData-MaxVersion", "OData-Version"):
            if headers.get(name) != "4.0":
                raise dataverse_error(400, "0x0", f"The {name} header must be 4.0 (fake: strict).")
        if "application/json" not in (headers.get("Accept") or ""):
            raise dataverse_error(406, "0x0", "Accept application/json (fake: strict).")
        if method in ("POST", "PATCH") and not (headers.get("Content-Type") or "").startswith(
            "application/json"
        ):
            raise dataverse_error(415, "0x0", "The request body must be application/json.")

    def _protect(self, token: str) -> None:
        """Service protection: requests per token over a sliding window, then 429."""
        now = time.monotonic()
        with self.lock:
            calls = self._calls.setdefault(token, deque())
            while calls and calls[0] < now - self.window_seconds:
                calls.popleft()
            calls.append(now)
            if len(calls) > self.requests_per_window:
                raise self._too_many(max(1, int(calls[0] + self.window_seconds - now) + 1))

    def _too_many(self, retry_after: int) -> ApiError:
        return dataverse_error(
            429,
            "0x80072322",
            f"Number of requests exceeded the limit of {self.requests_per_window} over time "
            f"window of {int(self.window_seconds)} seconds.",
            **{"Retry-After": str(retry_after)},
        )

    def _route(
        self, method: str, segment: str, query: dict[str, list[str]], headers: Any, body: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        match = _SEGMENT.fullmatch(segment)
        entity_set = match["set"] if match else segment
        if not match or entity_set not in KEYS:
            raise dataverse_error(
                404, "0x8006088a", f"Resource not found for the segment '{entity_set}'."
            )
        key = match["key"]
        if key is not None and not re.fullmatch(_GUID, key):
            raise dataverse_error(400, "0x0", f"Bad Request - Error in query syntax: '{key}'.")
        key = key.lower() if key else None
        with self.lock:
            if method == "GET" and key is None:
                return 200, self._list(entity_set, query, headers), _applied(headers)
            if method == "GET" and key is not None:
                return 200, self._one(entity_set, key, query), {}
            if method == "POST" and key is None and entity_set in WRITABLE:
                return self._create(entity_set, str(uuid.uuid4()), _json(body))
            if method == "PATCH" and key is not None and entity_set in WRITABLE:
                return self._update(entity_set, key, _json(body), headers.get("If-Match"))
            if method == "DELETE" and key is not None and entity_set in WRITABLE:
                self._row(entity_set, key)
                self.delete(entity_set, [key])
                return 204, b"", {}
        raise dataverse_error(405, "0x80060888", f"{method} is not supported on '{segment}'.")

    # ----- reads
    def _list(self, entity_set: str, query: dict[str, list[str]], headers: Any) -> dict[str, Any]:
        for name in query:
            if name not in ("$select", "$filter", "$skiptoken", "$deltatoken"):
                raise dataverse_error(
                    400, "0x0", f"The query parameter '{name}' is not supported (fake)."
                )
        select = self._select(entity_set, query)
        condition = (query.get("$filter") or [""])[0]
        matches = _parse_filter(entity_set, condition) if condition else None
        prefer = _preferences(headers)
        page_size = _page_size(prefer)
        delta_token = (query.get("$deltatoken") or [""])[0]
        skip_token = (query.get("$skiptoken") or [""])[0]
        tracked = "odata.track-changes" in prefer and entity_set in self.tracked
        if tracked and condition:
            raise dataverse_error(400, "0x0", "Change tracking requests take $select only (fake).")
        shape = (entity_set, tuple(select), condition)
        if skip_token:
            listing = self._listings.get(skip_token)
            if listing is None or listing.query != shape:
                raise dataverse_error(400, "0x0", "The $skiptoken is not valid for this query.")
        elif delta_token:
            since = self._delta_since(entity_set, delta_token)
            listing = _Listing(shape, 0, self.version, since)
        else:
            listing = _Listing(shape, 0, self.version, None)
        if listing.delta_since is not None:
            items = self._changes(entity_set, listing.delta_since, listing.snapshot)
        else:
            items = [
                (key, row)
                for key, row in sorted(self.rows[entity_set].items())
                if matches is None or matches(row.columns)
            ]
        chunk = items[listing.position : listing.position + page_size]
        annotate = (
            "OData.Community.Display.V1.FormattedValue"
            in prefer.get("odata.include-annotations", "")
            or prefer.get("odata.include-annotations") == "*"
        )
        value = [self._as_json(entity_set, key, row, select, annotate) for key, row in chunk]
        context = f"{self.url}{API}$metadata#{entity_set}({','.join(select)})"
        answer: dict[str, Any] = {"@odata.context": context + ("/$delta" if tracked else "")}
        answer["value"] = value
        position = listing.position + len(chunk)
        if position < len(items):
            token = uuid.uuid4().hex
            self._listings[token] = _Listing(shape, position, listing.snapshot, listing.delta_since)
            params = {"$select": ",".join(select), "$skiptoken": token}
            if condition:
                params["$filter"] = condition
            answer["@odata.nextLink"] = self._link(entity_set, params)
        elif tracked or listing.delta_since is not None:
            # Dataverse's tokens read `<version>!<time>`; a serial keeps each one unique.
            issued = dynamics_data.odata_time(time.time())
            token = f"{listing.snapshot}!{issued}!{len(self._delta_tokens)}"
            self._delta_tokens[token] = (entity_set, listing.snapshot)
            params = {"$select": ",".join(select), "$deltatoken": token}
            answer["@odata.deltaLink"] = self._link(entity_set, params)
        return answer

    def _delta_since(self, entity_set: str, token: str) -> int:
        if token in self._expired_delta_tokens:
            raise dataverse_error(
                self.delta_expired_status, "0x80044352", "The delta token has expired (fake)."
            )
        if self._delta_tokens.get(token, ("", 0))[0] != entity_set:
            raise dataverse_error(400, "0x0", "The $deltatoken is not valid.")
        return self._delta_tokens[token][1]

    def _changes(self, entity_set: str, since: int, until: int) -> list[tuple[str, FakeRow | None]]:
        """Rows written and rows deleted after `since` (up to the listing's snapshot)."""
        changed: list[tuple[int, str, FakeRow | None]] = [
            (row.version, key, row)
            for key, row in self.rows[entity_set].items()
            if since < row.version <= until
        ]
        changed += [
            (version, key, None)
            for key, version in self.tombstones[entity_set].items()
            if since < version <= until
        ]
        return [(key, row) for _, key, row in sorted(changed, key=lambda c: (c[0], c[1]))]

    def _select(self, entity_set: str, query: dict[str, list[str]]) -> list[str]:
        raw = (query.get("$select") or [""])[0]
        names = [n.strip() for n in raw.split(",") if n.strip()] or list(COLUMNS[entity_set])
        for name in names:
            if name not in COLUMNS[entity_set]:
                raise _no_property(entity_set, name)
        return names

    def _one(self, entity_set: str, key: str, query: dict[str, list[str]]) -> dict[str, Any]:
        select = self._select(entity_set, query)
        return self._as_json(entity_set, key, self._row(entity_set, key), select, False)

    def _row(self, entity_set: str, key: str) -> FakeRow:
        row = self.rows[entity_set].get(key)
        if row is None:
            raise dataverse_error(
                404, "0x80040217", f"{TABLES[entity_set]} With Id = {key} Does Not Exist"
            )
        return row

    def _as_json(
        self, entity_set: str, key: str, row: FakeRow | None, select: list[str], annotate: bool
    ) -> dict[str, Any]:
        if row is None:  # a tombstone in a delta
            return {
                "@odata.context": f"{self.url}{API}$metadata#{entity_set}/$deletedEntity",
                "id": key,
                "reason": "deleted",
            }
        result: dict[str, Any] = {"@odata.etag": f'W/"{row.version}"'}
        for name in select:
            result[name] = row.columns.get(name)
        result[KEYS[entity_set]] = key  # the primary key comes whatever was selected
        parent = row.columns.get("_parentcustomerid_value")
        if annotate and "_parentcustomerid_value" in select and parent in self.rows["accounts"]:
            account = self.rows["accounts"][str(parent)]
            result["_parentcustomerid_value" + FORMATTED] = account.columns.get("name")
        return result

    def _link(self, entity_set: str, params: dict[str, str]) -> str:
        return f"{self.url}{API}{entity_set}?{urlencode(params, quote_via=quote, safe='$,')}"

    # ----- writes
    def _create(self, entity_set: str, key: str, body: Any) -> tuple[int, Any, dict[str, str]]:
        columns = self._validated(entity_set, body)
        now = dynamics_data.odata_time(time.time())
        defaults: dict[str, Any] = {"createdon": now}
        if entity_set in ("phonecalls", "tasks"):
            defaults.update(statecode=0, statuscode=1)  # Open
        if "_ownerid_value" not in columns:  # the caller (the application user) owns it
            defaults["_ownerid_value"] = list(self.rows["systemusers"])[-1]
        row = FakeRow({KEYS[entity_set]: key, **defaults, **columns}, 0)
        self._stamp(row)
        self.rows[entity_set][key] = row
        return 204, b"", {"OData-EntityId": f"{self.url}{API}{entity_set}({key})"}

    def _update(
        self, entity_set: str, key: str, body: Any, if_match: str | None
    ) -> tuple[int, Any, dict[str, str]]:
        if key not in self.rows[entity_set]:
            if if_match == "*":  # update only: the row must exist
                self._row(entity_set, key)
            return self._create(entity_set, key, body)  # PATCH is an upsert
        columns = self._validated(entity_set, body)
        row = self.rows[entity_set][key]
        row.columns.update(columns)
        self._stamp(row)
        return 204, b"", {"OData-EntityId": f"{self.url}{API}{entity_set}({key})"}

    def _stamp(self, row: FakeRow) -> None:
        self.version += 1
        row.version = self.version
        row.columns["modifiedon"] = dynamics_data.odata_time(time.time())

    def _validated(self, entity_set: str, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise dataverse_error(400, "0x0", "The request body must be a JSON object.")
        columns: dict[str, Any] = {}
        table = TABLES[entity_set]
        for name, value in body.items():
            if name.endswith("@odata.bind"):
                columns.update(self._bind(entity_set, name.removesuffix("@odata.bind"), value))
                columns[name] = value
                continue
            kind = COLUMNS[entity_set].get(name)
            if kind is None or kind == "guid" or name in _SYSTEM:
                raise dataverse_error(
                    400,
                    "0x0",
                    f"Invalid property '{name}' was found in entity "
                    f"'Microsoft.Dynamics.CRM.{table}'.",
                )
            columns[name] = _checked_value(table, name, kind, value)
        return columns

    def _bind(self, entity_set: str, navigation: str, value: Any) -> dict[str, str]:
        targets, column = BINDS.get(entity_set, {}).get(navigation, ((), ""))
        if not targets:
            raise dataverse_error(
                400,
                "0x0",
                f"An undeclared property '{navigation}' which only has property annotations in "
                "the payload but no property value was found in the payload.",
            )
        found = _BIND_VALUE.fullmatch(str(value)) if isinstance(value, str) else None
        if found is None or found["set"] not in targets:
            raise dataverse_error(400, "0x0", f"Bad Request - Error in query syntax: '{value}'.")
        key = found["key"].lower()
        self._row(found["set"], key)
        return {column: key}


class _Handler(JsonHandler):
    api_error = ApiError
    content_type = "application/json; odata.metadata=minimal"

    def answer_headers(self, status: int, payload: Any) -> dict[str, str]:
        return {**super().answer_headers(status, payload), "OData-Version": "4.0"}


FakeDynamics.handler_class = _Handler


def _applied(headers: Any) -> dict[str, str]:
    """Preference-Applied: the preferences the listing honoured."""
    prefer = _preferences(headers)
    applied = [f"odata.maxpagesize={_page_size(prefer)}"] if "odata.maxpagesize" in prefer else []
    applied += [name for name in ("odata.track-changes",) if name in prefer]
    return {"Preference-Applied": ",".join(applied)} if applied else {}


def _preferences(headers: Any) -> dict[str, str]:
    """`Prefer: a, b=1, c="x"` (one header, or several) -> {a: "", b: "1", c: "x"}."""
    found = {}
    for header in headers.get_all("Prefer") or []:
        for part in header.split(","):
            name, _, value = part.strip().partition("=")
            if name:
                found[name.strip()] = value.strip().strip('"')
    return found


def _page_size(prefer: dict[str, str]) -> int:
    raw = prefer.get("odata.maxpagesize", str(MAX_PAGE_SIZE))
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE_SIZE:
        raise dataverse_error(400, "0x0", f"odata.maxpagesize must be 1 to {MAX_PAGE_SIZE}.")
    return int(raw)


def _no_property(entity_set: str, name: str) -> ApiError:
    return dataverse_error(
        400,
        "0x0",
        f"Could not find a property named '{name}' on type "
        f"'Microsoft.Dynamics.CRM.{TABLES[entity_set]}'.",
    )


def _checked_value(table: str, name: str, kind: str, value: Any) -> Any:
    if value is None:
        return None
    kind, _, detail = kind.partition(":")
    valid = {
        "text": isinstance(value, str),
        "bool": isinstance(value, bool),
        "int": isinstance(value, int) and not isinstance(value, bool) and value >= 0,
        "choice": isinstance(value, int) and str(value) in detail.split(","),
        "datetime": isinstance(value, str) and _moment(value) is not None,
    }[kind]
    if not valid:
        raise dataverse_error(
            400, "0x0", f"Cannot convert the literal '{value}' to the expected type of '{name}'."
        )
    if kind == "text" and len(value) > int(detail):
        raise dataverse_error(
            400,
            "0x80044331",
            f"A validation error occurred. The length of the '{name}' attribute of the "
            f"'{table}' entity exceeded the maximum allowed length of '{detail}'.",
        )
    return value


def _moment(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _parse_filter(entity_set: str, text: str) -> Any:
    """The `$filter` subset as a predicate on a row's columns; 400 for anything else."""
    groups: list[list[Any]] = [[]]
    position = 0
    while True:
        term = _TERM.match(text, position)
        if term is None:
            raise dataverse_error(
                400, "0x80060888", f"Syntax error at position {position} in '{text}'."
            )
        groups[-1].append(_predicate(entity_set, term))
        position = term.end()
        if position == len(text):
            break
        join = _JOIN.match(text, position)
        if join is None:
            raise dataverse_error(
                400, "0x80060888", f"Syntax error at position {position} in '{text}'."
            )
        if join[1] == "or":
            groups.append([])
        position = join.end()
    return lambda columns: any(all(test(columns) for test in group) for group in groups)


def _predicate(entity_set: str, term: re.Match[str]) -> Any:
    column = term["fcol"] or term["col"]
    if column not in COLUMNS[entity_set]:
        raise _no_property(entity_set, column)
    if term["func"]:
        wanted = term["fval"][1:-1].replace("''", "'").casefold()
        test = {"contains": str.__contains__, "startswith": str.startswith}.get(
            term["func"], str.endswith
        )
        return lambda columns: test(str(columns.get(column) or "").casefold(), wanted)
    literal, op = term["val"], term["op"]
    kind = COLUMNS[entity_set][column].partition(":")[0]
    if literal.startswith("'"):
        if kind == "datetime":
            raise dataverse_error(
                400, "0x0", f"A binary operator with incompatible types: {column}."
            )
        wanted_text = literal[1:-1].replace("''", "'").casefold()  # SQL collation: any case
        return _compare(op, lambda c: _text(c.get(column)), wanted_text)
    if literal in ("true", "false"):
        return _compare(op, lambda c: c.get(column), literal == "true")
    if literal == "null":
        return _compare(op, lambda c: c.get(column), None)
    if "T" in literal:
        wanted_moment = _moment(literal)
        return _compare(op, lambda c: _moment(str(c.get(column) or "")), wanted_moment)
    return _compare(op, lambda c: c.get(column), int(literal))


def _text(value: Any) -> str | None:
    return value.casefold() if isinstance(value, str) else None


def _compare(op: str, read: Any, wanted: Any) -> Any:
    def test(columns: dict[str, Any]) -> bool:
        value = read(columns)
        if op == "eq":
            return value == wanted
        if op == "ne":
            return value != wanted
        if value is None or wanted is None:
            return False
        return {"gt": value > wanted, "ge": value >= wanted, "lt": value < wanted}.get(
            op, value <= wanted
        )

    return test


def _json(body: bytes) -> Any:
    try:
        return json.loads(body or b"null")
    except ValueError as error:
        raise dataverse_error(400, "0x0", "The request body is not valid JSON.") from error


def serve_demo(options: dict[str, Any]) -> tuple[FakeDynamics, str, dict[str, Any]]:
    """Start the fake for `manage.py fakecrm dynamics`; answer it, a description, the connection."""
    fake = FakeDynamics(contacts=options["contacts"], accounts=options["companies"])
    url = fake.start(port=options["port"])
    return (
        fake,
        f"Fake Dynamics 365 (Dataverse) at {url} with {options['contacts']} contacts and "
        f"{options['companies']} accounts",
        {"credentials": fake.credentials(), "settings": {"objects": ["contacts", "accounts"]}},
    )
