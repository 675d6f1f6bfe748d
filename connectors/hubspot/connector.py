"""HubSpot CRM v3: incremental search by modification time, id listing, phone search, OAuth.

Reference: ../shared/reference/crm-apis.md section 1.
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
from connectors.hubspot import mapping
from connectors.interface import (
    CallLogEntry,
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

DEFAULT_BASE_URL = "https://api.hubapi.com"
AUTHORIZE_URL = "https://app.hubspot.com/oauth/authorize"
# Calls and tasks use the contacts scopes; find_user reads the owners.
OAUTH_SCOPES = (
    "crm.objects.contacts.read crm.objects.contacts.write crm.objects.companies.read "
    "crm.objects.owners.read"
)
SEARCH_PAGE_SIZE = 200  # the search API's maximum `limit`
LIST_PAGE_SIZE = 100  # the list API's maximum `limit`
OWNERS_PAGE_SIZE = 500  # GET /crm/v3/owners' maximum `limit`
# Search never returns more than 10,000 results per query (paging further is a 400): each page
# starts a new query at the last modification time seen instead of paging on.
SEARCH_RESULT_CAP = 10_000
# Search indexing lags writes by seconds: start the next run a little before the last change.
INDEX_LAG_OVERLAP_MS = 30_000
# Search has its own limit, 5 a second per account, outside the 10-second burst bucket that
# every other request spends ("requests": 100 to 250 by tier; a connection's settings name its
# own, e.g. {"rate_limits": {"requests": [190, 10]}} for Professional) [crm-apis.md 1.3, 1.6].
RATE_LIMITS = {"search": RateLimit(5, 1)}


class HubSpotConnector:
    credential_keys = frozenset(
        {"private_app_token", "access_token", "refresh_token", "expires_at", "client_id"}
        | {"client_secret", "hub_id", "base_url", "authorize_url"}
    )
    required_credentials = (
        frozenset({"private_app_token"}),
        frozenset({"client_id", "client_secret"}),
    )
    syncable_objects = ("contacts", "companies")
    own_settings = False

    def __init__(self, config: ConnectionConfig, save_credentials: CredentialsSaver) -> None:
        self.credentials = dict(config.credentials)
        self.save_credentials = save_credentials  # for credentials asked once (hub_id, ...)
        self.settings = config.settings
        self.base_url = str(self.credentials.get("base_url") or DEFAULT_BASE_URL).rstrip("/")
        self.client = CrmClient(
            connection_id=config.connection_id,
            rate_limits=pacing.rate_limits(config.settings, RATE_LIMITS),
        )
        self.oauth = AuthorizationCodeFlow(
            oauth_app, self.credentials, self.client, save_credentials
        )
        self.custom_fields = tuple(self.settings.get("custom_fields") or ())
        self._portal_id: str | None = None
        self._dispositions: dict[str, str] | None = None  # label (lower case) -> GUID

    @property
    def rate_limit_waits(self) -> int:
        return self.client.rate_limit_waits

    @property
    def portal_id(self) -> str:
        """The account's portal (hub) id that record URLs carry: given, from OAuth, else asked."""
        if self._portal_id is None:
            self._portal_id = str(self.settings.get("hub_id") or "") or credential_asked_once(
                self.credentials, "hub_id", self._read_portal_id, self.oauth.save_credentials
            )
        return self._portal_id

    def _read_portal_id(self) -> str:
        """A private-app token carries no hub id: the account details name it."""
        details = self._json("GET", "/account-info/v3/details")
        return str(details.get("portalId") or "") if isinstance(details, dict) else ""

    def object_types(self) -> tuple[str, ...]:
        wanted = self.settings.get("objects") or ["contacts", "companies"]
        return tuple(t for t in ("contacts", "companies") if t in wanted)

    def changed_since(self, object_type: str, cursor: Cursor) -> Page:
        if cursor.after and cursor.seen_in_window + SEARCH_PAGE_SIZE > SEARCH_RESULT_CAP:
            raise ConnectorError(
                f"More than {SEARCH_RESULT_CAP} HubSpot {object_type} share one modification "
                "time; the search API cannot page past them.",
                permanent=True,
            )
        modified = mapping.MODIFIED_PROPERTY[object_type]
        since = {"propertyName": modified, "operator": "GTE", "value": str(cursor.since_ms)}
        body: dict[str, Any] = {
            "filterGroups": [{"filters": [since]}],
            "sorts": [{"propertyName": modified, "direction": "ASCENDING"}],
            "properties": mapping.properties_to_request(object_type, self.custom_fields),
            "limit": SEARCH_PAGE_SIZE,
        }
        if cursor.after:
            body["after"] = cursor.after
        data = self._json("POST", f"/crm/v3/objects/{object_type}/search", json_body=body)
        results = data.get("results") if isinstance(data, dict) else None
        if not isinstance(results, list):
            raise ConnectorError(f"HubSpot sent a {object_type} search page without results.")
        records, invalid, times = [], 0, [cursor.since_ms]
        for obj in results:
            try:
                times.append(mapping.modified_ms(object_type, obj))
                records.append(
                    mapping.record_from_object(
                        object_type, obj, portal_id=self.portal_id, custom_fields=self.custom_fields
                    )
                )
            except mapping.UnreadableRecord:
                invalid += 1
        page_max = max(times)
        max_seen = max(cursor.max_seen_ms, page_max)
        after = ((data.get("paging") or {}).get("next") or {}).get("after")
        if not after:
            start = max(0, max_seen - INDEX_LAG_OVERLAP_MS) if max_seen else cursor.since_ms
            return Page(tuple(records), Cursor(since_ms=start, max_seen_ms=max_seen), True, invalid)
        if min(times[1:], default=page_max) < page_max:
            # Keyset paging: the next query starts at this page's last modification time (GTE,
            # so its last records come again, unchanged). A record edited while we page moves
            # ahead of us instead of shifting offsets under us, and no query nears the cap.
            next_cursor = Cursor(since_ms=page_max, max_seen_ms=max_seen)
        else:
            # The whole page shares one modification time (a bulk import): a new query would
            # answer this page again, so page on by offset in this one.
            next_cursor = Cursor(
                since_ms=cursor.since_ms,
                after=str(after),
                seen_in_window=cursor.seen_in_window + len(results),
                max_seen_ms=max_seen,
            )
        return Page(tuple(records), next_cursor, done=False, invalid=invalid)

    def all_ids(self, object_type: str) -> Iterator[list[str]]:
        prefix = mapping.COMPANY_ID_PREFIX if object_type == "companies" else ""
        after: str | None = None
        while True:
            params = {"limit": LIST_PAGE_SIZE, "properties": "hs_object_id", "archived": "false"}
            if after:
                params["after"] = after
            data = self._json("GET", f"/crm/v3/objects/{object_type}", params=params)
            results = data.get("results") if isinstance(data, dict) else None
            if not isinstance(results, list) or any(
                not isinstance(o, dict) or not o.get("id") for o in results
            ):
                raise ConnectorError(f"HubSpot sent a {object_type} list page that cannot be read.")
            yield [prefix + str(o["id"]) for o in results]
            after = ((data.get("paging") or {}).get("next") or {}).get("after")
            if not after:
                return

    def find_by_phone(self, e164: str) -> list[SourceRecord]:
        # Search matches the stored string only (EQ) or whole tokens: send a few variants and
        # keep only what really is this number. Max 5 filter groups per search.
        variants = [e164, e164.lstrip("+")]
        groups = [
            {"filters": [{"propertyName": prop, "operator": "EQ", "value": value}]}
            for prop in ("phone", "mobilephone")
            for value in variants
        ]
        body = {
            "filterGroups": groups,
            "properties": mapping.properties_to_request("contacts", self.custom_fields),
            "limit": 20,
        }
        data = self._json("POST", "/crm/v3/objects/contacts/search", json_body=body)
        found = []
        for obj in data.get("results") or []:
            try:
                record = mapping.record_from_object(
                    "contacts", obj, portal_id=self.portal_id, custom_fields=self.custom_fields
                )
            except mapping.UnreadableRecord:
                continue
            region = record.country or None
            if record_fields.has_number(record, e164, region):
                found.append(record)
        return found

    def find_user(self, email: str) -> CrmUser | None:
        data = self._json("GET", "/crm/v3/owners", params={"email": email, "limit": 100})
        for owner in (data.get("results") if isinstance(data, dict) else None) or []:
            try:
                user = mapping.user_from_owner(owner)
            except mapping.UnreadableRecord:
                continue
            if user.email.lower() == email.strip().lower():
                return user
        return None

    def users(self) -> list[CrmUser]:
        found: list[CrmUser] = []
        after: str | None = None
        while True:
            params = {"limit": OWNERS_PAGE_SIZE, "archived": "false"}
            if after:
                params["after"] = after
            data = self._json("GET", "/crm/v3/owners", params=params)
            for owner in (data.get("results") if isinstance(data, dict) else None) or []:
                try:
                    found.append(mapping.user_from_owner(owner))
                except mapping.UnreadableRecord:
                    continue
            after = ((data.get("paging") or {}).get("next") or {}).get("after")
            if not after:
                return found

    def log_call(self, entry: CallLogEntry) -> str:
        label = mapping.DISPOSITION_LABEL.get(entry.outcome, "")
        body = {
            "properties": mapping.call_properties(
                entry, disposition_id=self._disposition_ids().get(label.lower())
            ),
            "associations": mapping.associations("calls", entry.contact_external_id),
        }
        return self._create("calls", body)

    def find_logged(self, call_id: str, *, task: bool = False) -> str | None:
        if task:
            return None  # tasks carry no id of ours to search by
        # Search lags writes by seconds; a retry comes 30 s or more after the lost create.
        ours = {"propertyName": "hs_call_external_id", "operator": "EQ", "value": call_id}
        body = {
            "filterGroups": [{"filters": [ours]}],
            "properties": ["hs_call_external_id"],
            "limit": 1,
        }
        data = self._json("POST", "/crm/v3/objects/calls/search", json_body=body)
        results = data.get("results") if isinstance(data, dict) else None
        return str(results[0]["id"]) if results and results[0].get("id") else None

    def update_call_log(self, remote_id: str, entry: CallLogEntry) -> None:
        label = mapping.DISPOSITION_LABEL.get(entry.outcome, "")
        properties = mapping.call_properties(
            entry, disposition_id=self._disposition_ids().get(label.lower())
        )
        path = f"/crm/v3/objects/calls/{quote(remote_id, safe='')}"
        self._json("PATCH", path, json_body={"properties": properties})

    def create_task(self, entry: CallLogEntry) -> str:
        body = {
            "properties": mapping.task_properties(entry),
            "associations": mapping.associations("tasks", entry.contact_external_id),
        }
        return self._create("tasks", body)

    def create_contact(self, *, e164: str, name: str = "") -> SourceRecord:
        body = {"properties": mapping.contact_properties(e164, name)}
        data = self._json("POST", "/crm/v3/objects/contacts", json_body=body)
        try:
            return mapping.record_from_object(
                "contacts", data, portal_id=self.portal_id, custom_fields=self.custom_fields
            )
        except mapping.UnreadableRecord as error:
            raise ConnectorError(
                f"HubSpot created a contact it did not describe: {error}"
            ) from None

    def contact_fields_update(self, external_id: str, fields: Mapping[str, str]) -> None:
        """Write properties of a CRM contact (the account's own, e.g. CallBridge call stats).

        https://developers.hubspot.com/docs/api-reference/crm-contacts-v3/basic/patch-crm-v3-objects-contacts-contactId
        """
        object_type, object_id = "contacts", external_id
        if external_id.startswith("company:"):
            object_type, object_id = "companies", external_id.removeprefix("company:")
        body = {"properties": dict(fields)}
        self._json("PATCH", f"/crm/v3/objects/{object_type}/{object_id}", json_body=body)

    def _create(self, object_type: str, body: dict[str, Any]) -> str:
        path = f"/crm/v3/objects/{object_type}"
        data = self._json("POST", path, json_body=body, idempotent=False)
        if not isinstance(data, dict) or not data.get("id"):
            raise ConnectorError(f"HubSpot created a {object_type[:-1]} without answering its id.")
        return str(data["id"])

    def _disposition_ids(self) -> dict[str, str]:
        """The account's call outcomes, label -> GUID (custom outcomes exist per account)."""
        if self._dispositions is None:
            # https://developers.hubspot.com/docs/api-reference/legacy/crm/activities/engagements/get-calling-v1-dispositions
            data = self._json("GET", "/calling/v1/dispositions")
            self._dispositions = {
                str(d["label"]).lower(): str(d["id"])
                for d in (data if isinstance(data, list) else [])
                if isinstance(d, dict) and d.get("id") and d.get("label")
            }
        return self._dispositions

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._authorized(method, path, **kwargs)
        if response.status_code >= 400:
            raise _error(response, f"{method} {path}")
        return response.json()

    def _authorized(self, method: str, path: str, **kwargs: Any) -> CrmResponse:
        oauth = not self.credentials.get("private_app_token")
        # HubSpot says to track the TTL rather than trust a 401; a 401 still means retry once.
        response = send_with_fresh_token(
            lambda: self._send(method, path, **kwargs),
            expires_at=float(self.credentials.get("expires_at") or 0) if oauth else None,
            refresh=self.oauth.refresh,
        )
        if response.status_code == 401:
            kind = "OAuth access token" if oauth else "private-app token"
            raise ConnectorError(
                f"HubSpot rejected the {kind} (401): {_message(response)}", permanent=True
            )
        return response

    def _send(self, method: str, path: str, **kwargs: Any) -> CrmResponse:
        token = self.credentials.get("private_app_token") or self.credentials.get("access_token")
        return self.client.send(
            method,
            self.base_url + path,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            retry_after_of=_rate_limit_wait,
            limit="search" if path.endswith("/search") else "requests",
            **kwargs,
        )

    def authorization_url(self, *, state: str, redirect_uri: str) -> str:
        return self.oauth.authorization_url(state=state, redirect_uri=redirect_uri)

    def connect(self, *, code: str, redirect_uri: str) -> None:
        self.oauth.connect(code=code, redirect_uri=redirect_uri)


def oauth_app(credentials: Mapping[str, Any]) -> OAuthApp:
    """HubSpot's authorization-code flow; tokens from POST /oauth/v1/token, form-encoded."""
    base_url = str(credentials.get("base_url") or DEFAULT_BASE_URL).rstrip("/")
    return OAuthApp(
        crm="HubSpot",
        authorize_url=str(credentials.get("authorize_url") or AUTHORIZE_URL),
        token_url=base_url + "/oauth/v1/token",
        authorize_params={"scope": OAUTH_SCOPES},
        refusal=status_and(lambda response: _message(response)),
        reconnect="reconnect the HubSpot app",
        expires_in=1800,
        more_credentials=lambda tokens, _: (
            {"hub_id": str(tokens["hub_id"])} if tokens.get("hub_id") else {}
        ),
    )


def _rate_limit_wait(response: CrmResponse) -> float | None:
    """HubSpot's 429: Retry-After when sent, else the rolling interval; DAILY waits for hours."""
    if response.status_code != 429:
        return None
    try:
        policy = (response.json() or {}).get("policyName")
    except ConnectorError:
        policy = None
    if policy == "DAILY":
        return 3600.0  # above any in-run wait: the run ends and the next one is later
    if response.headers.get("retry-after"):
        return None  # the client reads Retry-After itself
    interval = response.headers.get("x-hubspot-ratelimit-interval-milliseconds")
    return int(interval) / 1000 if interval and interval.isdigit() else None


def _message(response: CrmResponse) -> str:
    try:
        body = response.json()
    except ConnectorError:
        return response.body[:200].decode("utf-8", "replace")
    if isinstance(body, dict):
        return str(body.get("message") or body.get("category") or body.get("status") or "")[:300]
    return ""


def _error(response: CrmResponse, what: str) -> ConnectorError:
    # 4xx other than 429 will not heal by retrying the same request.
    status = response.status_code
    return ConnectorError(
        f"HubSpot answered {status} to {what}: {_message(response)}", permanent=400 <= status < 500
    )
