"""Pipedrive: persons and organizations (API v2), phone search, call logs (v1), API token or OAuth.

Reference: ../shared/reference/crm-apis.md section 3.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote

from connectors import pacing, record_fields
from connectors.client import (
    CrmClient,
    CrmResponse,
    credential_asked_once,
    send_with_fresh_token,
)
from connectors.interface import (
    CallLogEntry,
    ConfigError,
    ConnectionConfig,
    ConnectorError,
    CredentialsSaver,
    CrmUser,
    Cursor,
    Page,
    SourceRecord,
)
from connectors.oauth import AuthorizationCodeFlow, OAuthApp, status_and
from connectors.pacing import RateLimit
from connectors.pipedrive import mapping
from core import phone_numbers

DEFAULT_BASE_URL = "https://api.pipedrive.com"
OAUTH_BASE_URL = "https://oauth.pipedrive.com"
LIST_PAGE_SIZE = 500  # v2 list endpoints' maximum `limit`
SEARCH_PAGE_SIZE = 100  # v2 persons/search's maximum `limit`
# Per token, in rolling 2 s windows: Essential's api_token 20 (Advanced 40, Professional 80,
# Power 100, Enterprise 120; OAuth 4x), the search endpoints 10 on every plan. A connection's
# settings name its own tier: {"rate_limits": {"requests": [80, 2]}} [crm-apis.md 3.5].
RATE_LIMITS = {"requests": RateLimit(20, 2), "search": RateLimit(10, 2)}
IDS_PER_REQUEST = 100  # v2 list `ids` takes at most 100
ORG_NAME_CACHE_SIZE = 50_000
ACTIVITY_PAGES = 10  # how far update_call_log looks for a call's activity (100 a page)
ENDPOINTS = {"contacts": "persons", "companies": "organizations"}


class PipedriveConnector:
    credential_keys = frozenset(
        {"api_token", "access_token", "refresh_token", "expires_at", "client_id", "client_secret"}
        | {"api_domain", "company_domain", "base_url", "oauth_base_url"}
    )
    required_credentials = (frozenset({"api_token"}), frozenset({"client_id", "client_secret"}))
    syncable_objects = ("contacts", "companies")
    own_settings = False

    @staticmethod
    def check_config(credentials: Mapping[str, Any], settings: Mapping[str, Any]) -> None:
        """Organizations have no standard phone field: settings name the custom ones to read."""
        names = settings.get("organization_phone_fields", [])
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ConfigError("settings", "organization_phone_fields: a list of CRM field names.")

    def __init__(self, config: ConnectionConfig, save_credentials: CredentialsSaver) -> None:
        self.credentials = dict(config.credentials)
        self.save_credentials = save_credentials  # for credentials asked once (hub_id, ...)
        self.settings = config.settings
        self.client = CrmClient(
            connection_id=config.connection_id,
            rate_limits=pacing.rate_limits(config.settings, RATE_LIMITS),
        )
        self.oauth = AuthorizationCodeFlow(
            oauth_app, self.credentials, self.client, save_credentials
        )
        self.custom_fields = tuple(self.settings.get("custom_fields") or ())
        self._domain_asked = False
        self.org_phone_fields = tuple(self.settings.get("organization_phone_fields") or ())
        self._org_names: dict[int, str] = {}

    @property
    def rate_limit_waits(self) -> int:
        return self.client.rate_limit_waits

    def object_types(self) -> tuple[str, ...]:
        wanted = self.settings.get("objects") or ["contacts", "companies"]
        return tuple(t for t in ("contacts", "companies") if t in wanted)

    # ----- read side
    def changed_since(self, object_type: str, cursor: Cursor) -> Page:
        # `updated_since` is >= and the cursor is keyset-based on (update_time, id): a record
        # edited while we page moves ahead of us, never under us. Times have whole seconds, so
        # the next run re-reads the last second's records (unchanged, not written).
        params: dict[str, Any] = {
            "sort_by": "update_time",
            "sort_direction": "asc",
            "limit": LIST_PAGE_SIZE,
        }
        if cursor.since_ms:
            params["updated_since"] = mapping.rfc3339(cursor.since_ms)
        if cursor.after:
            params["cursor"] = cursor.after
        body = self._json("GET", f"/api/v2/{ENDPOINTS[object_type]}", params=params)
        items = body.get("data")
        if not isinstance(items, list):
            raise ConnectorError(f"Pipedrive sent a {ENDPOINTS[object_type]} page without data.")
        if object_type == "contacts":
            self._load_org_names(items)
        records, invalid, max_seen = [], 0, cursor.max_seen_ms
        for obj in items:
            try:
                max_seen = max(max_seen, mapping.updated_ms(obj))
                records.append(self._record(object_type, obj))
            except mapping.UnreadableRecord:
                invalid += 1
        after = (body.get("additional_data") or {}).get("next_cursor")
        if after:
            next_cursor = Cursor(
                since_ms=cursor.since_ms,
                after=str(after),
                seen_in_window=cursor.seen_in_window + len(items),
                max_seen_ms=max_seen,
            )
            return Page(tuple(records), next_cursor, done=False, invalid=invalid)
        done = Cursor(since_ms=max(cursor.since_ms, max_seen), max_seen_ms=max_seen)
        return Page(tuple(records), done, done=True, invalid=invalid)

    def all_ids(self, object_type: str) -> Iterator[list[str]]:
        prefix = mapping.ORG_ID_PREFIX if object_type == "companies" else ""
        after: str | None = None
        while True:
            params: dict[str, Any] = {"limit": LIST_PAGE_SIZE, "sort_by": "id"}
            if after:
                params["cursor"] = after
            body = self._json("GET", f"/api/v2/{ENDPOINTS[object_type]}", params=params)
            items = body.get("data")
            if not isinstance(items, list) or any(
                not isinstance(o, dict) or not isinstance(o.get("id"), int) for o in items
            ):
                raise ConnectorError(
                    f"Pipedrive sent a {ENDPOINTS[object_type]} page that cannot be read."
                )
            yield [prefix + str(o["id"]) for o in items]
            after = (body.get("additional_data") or {}).get("next_cursor")
            if not after:
                return

    def find_by_phone(self, e164: str) -> list[SourceRecord]:
        # exact_match compares the whole stored text: try each format people store (E.164,
        # international, national, digits), then keep only what really is this number.
        # https://developers.pipedrive.com/docs/api/v1/Persons#searchPersons
        region = phone_numbers.region_of(e164)
        found: dict[str, SourceRecord] = {}
        for term in phone_numbers.stored_forms(e164):
            params = {"term": term, "fields": "phone", "exact_match": "true"}
            body = self._json(
                "GET", "/api/v2/persons/search", params={**params, "limit": SEARCH_PAGE_SIZE}
            )
            for result in (body.get("data") or {}).get("items") or []:
                try:
                    record = mapping.record_from_search_item(
                        result.get("item"), app_url=self._app_url()
                    )
                except (mapping.UnreadableRecord, AttributeError):
                    continue
                if record_fields.has_number(record, e164, region):
                    found.setdefault(record.external_id, record)
        return list(found.values())

    def _record(self, object_type: str, obj: Any) -> SourceRecord:
        if object_type == "companies":
            return mapping.record_from_organization(
                obj,
                app_url=self._app_url(),
                phone_fields=self.org_phone_fields,
                custom_fields=self.custom_fields,
            )
        return mapping.record_from_person(
            obj,
            app_url=self._app_url(),
            org_names=self._org_names,
            custom_fields=self.custom_fields,
        )

    def _load_org_names(self, persons: list[Any]) -> None:
        """Fetch the names of the page's organizations we have not seen (v2 persons give ids)."""
        wanted = {
            p["org_id"] for p in persons if isinstance(p, dict) and isinstance(p.get("org_id"), int)
        } - set(self._org_names)
        if len(self._org_names) + len(wanted) > ORG_NAME_CACHE_SIZE:
            self._org_names.clear()
        ids = sorted(wanted)
        for start in range(0, len(ids), IDS_PER_REQUEST):
            chunk = ids[start : start + IDS_PER_REQUEST]
            params = {"ids": ",".join(map(str, chunk)), "limit": IDS_PER_REQUEST}
            body = self._json("GET", "/api/v2/organizations", params=params)
            for org in body.get("data") or []:
                if isinstance(org, dict) and isinstance(org.get("id"), int):
                    self._org_names[org["id"]] = str(org.get("name") or "")
            for org_id in chunk:  # deleted or hidden organizations: no name, asked once
                self._org_names.setdefault(org_id, "")

    # ----- write side
    def find_user(self, email: str) -> CrmUser | None:
        params = {"term": email, "search_by_email": 1}
        body = self._json("GET", f"{self._v1()}/users/find", params=params)
        for user in body.get("data") or []:  # `data` is null when nobody matches
            if (
                isinstance(user, dict)
                and str(user.get("email") or "").lower() == email.lower()
                and user.get("active_flag", True)
            ):
                return CrmUser(str(user["id"]), str(user["email"]), str(user.get("name") or ""))
        return None

    def users(self) -> list[CrmUser]:
        body = self._json("GET", f"{self._v1()}/users")
        return [
            CrmUser(str(user["id"]), str(user.get("email") or ""), str(user.get("name") or ""))
            for user in body.get("data") or []
            if isinstance(user, dict) and user.get("id") and user.get("active_flag", True)
        ]

    def log_call(self, entry: CallLogEntry) -> str:
        person_id, org_id = self._linked(entry)
        body = mapping.call_log_body(entry, person_id=person_id, org_id=org_id)
        path = f"{self._v1()}/callLogs"
        response = self._authorized("POST", path, json_body=body, idempotent=False)
        if response.status_code == 403 and "user_id" in body:
            # "A user without account settings access cannot create call logs for other
            # users": log it as the connection's user and name the agent in the note.
            # https://developers.pipedrive.com/docs/api/v1/CallLogs#addCallLog
            agent = self._agent(str(body["user_id"]))
            body = mapping.call_log_body(entry, person_id=person_id, org_id=org_id, agent=agent)
            response = self._authorized("POST", path, json_body=body, idempotent=False)
        data = self._answer(response, f"POST {path}").get("data")
        if not isinstance(data, dict) or not data.get("id"):
            raise ConnectorError("Pipedrive created a call log without answering its id.")
        return str(data["id"])

    def find_logged(self, call_id: str, *, task: bool = False) -> str | None:
        # Call logs and activities cannot be searched by our id (it is only in the note);
        # GET /v1/callLogs lists a user's logs unfiltered, too many to read on every retry.
        return None

    def update_call_log(self, remote_id: str, entry: CallLogEntry) -> None:
        # Call logs cannot be changed (the API has add, get, delete), but each one is also an
        # activity, which can: the later subject and note (summary, recording) go there.
        path = f"{self._v1()}/callLogs/{quote(remote_id, safe='')}"
        data = self._json("GET", path).get("data")
        call_log = data if isinstance(data, dict) else {}
        activity_id = call_log.get("activity_id")  # optional in the answer: not promised
        if not isinstance(activity_id, int):
            activity_id = self._call_activity_id(entry, remote_id)
        owner = entry.owner_user_id
        agent = self._agent(owner) if owner and str(call_log.get("user_id")) != owner else ""
        changes = {
            "subject": mapping.call_subject(entry),
            "note": mapping.call_note(entry, agent=agent),
        }
        self._json("PATCH", f"/api/v2/activities/{activity_id}", json_body=changes)

    def _call_activity_id(self, entry: CallLogEntry, remote_id: str) -> int:
        """The call's activity: the `call` activity of its contact carrying our call id."""
        person_id, org_id = self._linked(entry)
        started_ms = int(entry.started_at.timestamp() * 1000)
        params: dict[str, Any] = {"updated_since": mapping.rfc3339(started_ms), "limit": 100}
        if person_id is not None:
            params["person_id"] = person_id
        elif org_id is not None:
            params["org_id"] = org_id
        marker = mapping.call_marker(entry.call_id)
        for _ in range(ACTIVITY_PAGES):
            body = self._json("GET", "/api/v2/activities", params=params)
            for activity in body.get("data") or []:
                if (
                    isinstance(activity, dict)
                    and isinstance(activity.get("id"), int)
                    and activity.get("type") == "call"
                    and marker in str(activity.get("note") or "")
                ):
                    return activity["id"]
            params["cursor"] = (body.get("additional_data") or {}).get("next_cursor")
            if not params["cursor"]:
                break
        raise ConnectorError(
            f"Pipedrive call log {remote_id} names no activity and none carries this call's id: "
            "nothing to update.",
            permanent=True,
        )

    def _agent(self, user_id: str) -> str:
        """How a note names the Pipedrive user with this id."""
        user = next((u for u in self.users() if u.external_id == user_id), None)
        return f"{user.name} <{user.email}>" if user else f"Pipedrive user {user_id}"

    def create_task(self, entry: CallLogEntry) -> str:
        person_id, org_id = self._linked(entry)
        body = mapping.task_body(entry, person_id=person_id, org_id=org_id)
        data = self._json("POST", "/api/v2/activities", json_body=body, idempotent=False)
        data = data.get("data")
        if not isinstance(data, dict) or not data.get("id"):
            raise ConnectorError("Pipedrive created an activity without answering its id.")
        return str(data["id"])

    def create_contact(self, *, e164: str, name: str = "") -> SourceRecord:
        body = {  # a person needs a name: the number stands in for an unknown caller's
            "name": name.strip() or e164,
            "phones": [{"value": e164, "primary": True, "label": "mobile"}],
        }
        data = self._json("POST", "/api/v2/persons", json_body=body).get("data")
        try:
            return mapping.record_from_person(data, app_url=self._app_url())
        except mapping.UnreadableRecord as error:
            raise ConnectorError(f"Pipedrive created a person it cannot show: {error}") from None

    def _linked(self, entry: CallLogEntry) -> tuple[int | None, int | None]:
        try:
            return mapping.linked_record(entry.contact_external_id)
        except ValueError as error:
            raise ConnectorError(str(error), permanent=True) from None

    # ----- HTTP, auth and limits
    def _base_url(self) -> str:
        base = self.credentials.get("base_url") or self.credentials.get("api_domain")
        return str(base or DEFAULT_BASE_URL).rstrip("/")

    def _v1(self) -> str:
        # api.pipedrive.com serves v1 at /v1; company domains (OAuth's api_domain) at /api/v1.
        return "/v1" if self._base_url() == DEFAULT_BASE_URL else "/api/v1"

    def _app_url(self) -> str:
        """Where records open in the browser: https://{company}.pipedrive.com, when known."""
        domain = str(self.credentials.get("company_domain") or "").strip().rstrip("/")
        if not domain and not self.credentials.get("api_domain") and not self._domain_asked:
            self._domain_asked = True  # once a run, even when Pipedrive could not say
            domain = credential_asked_once(
                self.credentials,
                "company_domain",
                self._read_company_domain,
                self.oauth.save_credentials,
            )
        if domain:
            domain = domain.removeprefix("https://").removesuffix(".pipedrive.com")
            return f"https://{domain}.pipedrive.com"
        return str(self.credentials.get("api_domain") or "").rstrip("/")

    def _read_company_domain(self) -> str:
        """An API token names no company: the token's user does."""
        me = self._json("GET", f"{self._v1()}/users/me").get("data")
        return str(me.get("company_domain") or "") if isinstance(me, dict) else ""

    def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        return self._answer(self._authorized(method, path, **kwargs), f"{method} {path}")

    def _answer(self, response: CrmResponse, what: str) -> dict[str, Any]:
        if response.status_code >= 400:
            raise _error(response, what)
        body = response.json()
        if not isinstance(body, dict) or body.get("success") is False:
            raise ConnectorError(f"Pipedrive answered {what} without success.")
        return body

    def _authorized(self, method: str, path: str, **kwargs: Any) -> CrmResponse:
        oauth = not self.credentials.get("api_token")
        response = send_with_fresh_token(
            lambda: self._send(method, path, **kwargs),
            expires_at=float(self.credentials.get("expires_at") or 0) if oauth else None,
            refresh=self.oauth.refresh,
        )
        if response.status_code == 401:
            kind = "OAuth access token" if oauth else "API token"
            raise ConnectorError(
                f"Pipedrive rejected the {kind} (401): {_message(response)}", permanent=True
            )
        return response

    def _send(self, method: str, path: str, **kwargs: Any) -> CrmResponse:
        # The client paces requests under the tier's 2-second limits (RATE_LIMITS, or the
        # connection's settings): waiting out x-ratelimit-reset as well, which Pipedrive rounds
        # up to whole seconds, cost a 100,000-contact full diff 1.29x the limit's minimum.
        token = self.credentials.get("api_token")
        auth = (
            {"x-api-token": str(token)}
            if token
            else {"Authorization": f"Bearer {self.credentials.get('access_token')}"}
        )
        response = self.client.send(
            method,
            self._base_url() + path,
            headers={**auth, "Accept": "application/json"},
            retry_after_of=_rate_limit_wait,
            limit="search" if path.endswith("/search") else "requests",
            **kwargs,
        )
        return response

    def authorization_url(self, *, state: str, redirect_uri: str) -> str:
        return self.oauth.authorization_url(state=state, redirect_uri=redirect_uri)

    def connect(self, *, code: str, redirect_uri: str) -> None:
        self.oauth.connect(code=code, redirect_uri=redirect_uri)


def oauth_app(credentials: Mapping[str, Any]) -> OAuthApp:
    """Pipedrive's flow: scopes are set on the app; the app's id and secret as HTTP Basic auth."""
    base = str(credentials.get("oauth_base_url") or OAUTH_BASE_URL).rstrip("/")
    return OAuthApp(
        crm="Pipedrive",
        authorize_url=base + "/oauth/authorize",
        token_url=base + "/oauth/token",
        refusal=status_and(lambda response: _message(response)),
        reconnect="reconnect the Pipedrive app",
        basic_auth=True,
        missing_hint=" (or give an api_token)",
        expires_in=3599,
        # The company's own host: the API base from now on.
        more_credentials=lambda tokens, _: (
            {"api_domain": str(tokens["api_domain"]).rstrip("/")}
            if tokens.get("api_domain")
            else {}
        ),
    )


def _reset_seconds(response: CrmResponse) -> float:
    """Seconds until the 2-second burst window resets (x-ratelimit-reset), at least a little."""
    try:
        return max(0.2, float(response.headers.get("x-ratelimit-reset", "")))
    except ValueError:
        return 2.0


def _rate_limit_wait(response: CrmResponse) -> float | None:
    """Pipedrive's 429: Retry-After when sent, else x-ratelimit-reset; a spent day waits hours.

    https://pipedrive.readme.io/docs/core-api-concepts-rate-limiting
    """
    if response.status_code != 429:
        return None
    if response.headers.get("x-daily-requests-left") == "0":
        return 3600.0  # above any in-run wait: the run ends and the next one is later
    if response.headers.get("retry-after"):
        return None  # the client reads Retry-After itself
    return _reset_seconds(response)


def _message(response: CrmResponse) -> str:
    try:
        body = response.json()
    except ConnectorError:
        return response.body[:200].decode("utf-8", "replace")
    if isinstance(body, dict):
        parts = [body.get(k) for k in ("error", "error_description", "message", "error_info")]
        return "; ".join(str(p) for p in parts if p and isinstance(p, str))[:300]
    return ""


def _error(response: CrmResponse, what: str) -> ConnectorError:
    # 4xx other than 429 will not heal by retrying the same request.
    status = response.status_code
    return ConnectorError(
        f"Pipedrive answered {status} to {what}: {_message(response)}",
        permanent=400 <= status < 500 and status != 429,
    )
