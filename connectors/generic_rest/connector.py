"""A CRM we do not ship, described by its tenant: base URL, auth, list endpoint, paging, fields.

Reads contacts page by page (page number, offset, cursor or next link), incrementally through an
updated-since parameter; finds by phone through an optional search endpoint; logs calls only
when a call-log endpoint is configured. Everything else a CRM could do is a permanent error.
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from functools import cached_property
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

from connectors import record_fields
from connectors.client import REFRESH_MARGIN_SECONDS, CrmClient, CrmResponse
from connectors.generic_rest import config as rest_config
from connectors.generic_rest import mapping
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

OBJECT_TYPE = "contacts"
_LINK_NEXT = re.compile(r'<([^>]*)>\s*;[^,]*\brel="?next"?', re.IGNORECASE)


class GenericRestConnector:
    # Which of these are needed depends on settings.auth.kind: check_config (config.py) says.
    credential_keys = frozenset(
        {"base_url", "username", "password", "token", "api_key", "client_id", "client_secret"}
        | {"access_token", "expires_at"}
    )
    required_credentials: tuple[frozenset[str], ...] = ()
    syncable_objects: tuple[str, ...] = ()
    own_settings = True  # settings are the API's description, checked by check_config

    def __init__(self, config: ConnectionConfig, save_credentials: CredentialsSaver) -> None:
        self.credentials = dict(config.credentials)
        self.settings = config.settings
        self.save_credentials = save_credentials
        self.client = CrmClient(connection_id=config.connection_id)

    @staticmethod
    def check_config(credentials: Mapping[str, Any], settings: Mapping[str, Any]) -> None:
        """Raise ConfigError naming the first setting or credential that cannot work."""
        rest_config.parse(credentials, settings)

    @cached_property
    def config(self) -> rest_config.RestConfig:
        try:
            return rest_config.parse(self.credentials, self.settings)
        except ConfigError as error:
            raise ConnectorError(f"The connection's {error}", permanent=True) from None

    @property
    def rate_limit_waits(self) -> int:
        return self.client.rate_limit_waits

    def object_types(self) -> tuple[str, ...]:
        self.config  # noqa: B018 - a broken config fails the run here, with its reason
        return (OBJECT_TYPE,)

    def changed_since(self, object_type: str, cursor: Cursor) -> Page:
        config = self.config
        items, next_after = self._list_page(cursor.after, cursor.since_ms)
        records, invalid, max_seen = [], 0, cursor.max_seen_ms
        for item in items:
            try:
                records.append(mapping.record_from_item(item, config.record_map))
            except mapping.UnreadableRecord:
                invalid += 1
                continue
            if config.since_param and config.record_map.updated_at:
                max_seen = max(
                    max_seen, mapping.updated_ms(item, config.record_map.updated_at) or 0
                )
        if next_after:
            following = Cursor(since_ms=cursor.since_ms, after=next_after, max_seen_ms=max_seen)
            return Page(tuple(records), following, done=False, invalid=invalid)
        # The next run asks for changes since the latest time read, less an overlap for clocks
        # and for records edited while we paged.
        since = max(cursor.since_ms, max_seen - config.overlap_ms) if max_seen else cursor.since_ms
        return Page(tuple(records), Cursor(since_ms=since, max_seen_ms=max_seen), True, invalid)

    def all_ids(self, object_type: str) -> Iterator[list[str]]:
        after: str | None = None
        while True:
            items, after = self._list_page(after, 0)
            ids = []
            for item in items:
                external_id = mapping.first(item, self.config.record_map.external_id)
                if external_id not in (None, ""):
                    ids.append(str(external_id).strip()[:255])
            yield ids
            if not after:
                return

    def find_by_phone(self, e164: str) -> list[SourceRecord]:
        search = self.config.search
        if search is None:
            return []  # nothing to ask: the phonebook holds what the list endpoint has
        data = self._json("GET", self.config.base_url + search.path, params={search.param: e164})
        found = []
        for item in self._items(data, search.items):
            try:
                record = mapping.record_from_item(item, self.config.record_map)
            except mapping.UnreadableRecord:
                continue
            region = record.country or None
            # Searches match loosely (digits, prefixes): keep only what really is this number.
            if record_fields.has_number(record, e164, region):
                found.append(record)
        return found

    def authorization_url(self, *, state: str, redirect_uri: str) -> str:
        raise ConnectorError(
            "A generic REST connection has no authorization-code flow: give its credentials "
            "(or OAuth2 client credentials) directly.",
            permanent=True,
        )

    def connect(self, *, code: str, redirect_uri: str) -> None:
        self.authorization_url(state="", redirect_uri=redirect_uri)

    def users(self) -> list[CrmUser]:
        return []  # no user directory is configured, and records name no owner

    def find_user(self, email: str) -> CrmUser | None:
        return None  # no user directory is configured: calls are logged without an owner

    def log_call(self, entry: CallLogEntry) -> str:
        call_log = self._call_log()
        body = mapping.call_log_body(call_log.body, entry)
        url = self.config.base_url + call_log.path
        data = self._json("POST", url, json_body=body, idempotent=False)
        remote_id = mapping.first(data, call_log.id)
        if remote_id in (None, "") or isinstance(remote_id, Mapping | list):
            # Retrying would log the call twice: this needs a person to fix call_log.id.
            raise ConnectorError(
                "The call was logged but the answer has no id at call_log.id; "
                "it cannot be updated later.",
                permanent=True,
            )
        return str(remote_id)

    def find_logged(self, call_id: str, *, task: bool = False) -> str | None:
        return None  # no way to search call logs by our id is configured

    def update_call_log(self, remote_id: str, entry: CallLogEntry) -> None:
        call_log = self._call_log()
        if not call_log.update_method:
            raise ConnectorError(
                "This CRM's call logs cannot be updated (no call_log.update_method).",
                permanent=True,
            )
        url = f"{self.config.base_url}{call_log.path}/{quote(remote_id, safe='')}"
        self._json(
            call_log.update_method, url, json_body=mapping.call_log_body(call_log.body, entry)
        )

    def create_task(self, entry: CallLogEntry) -> str:
        # No task endpoint is configured: the missed call goes to the call-log endpoint, with
        # its outcome ("missed") in whichever body field the tenant mapped it to.
        return self.log_call(entry)

    def create_contact(self, *, e164: str, name: str = "") -> SourceRecord:
        raise ConnectorError("A generic REST connection cannot create contacts.", permanent=True)

    def _call_log(self) -> rest_config.CallLog:
        if self.config.call_log is None:
            raise ConnectorError(
                "This generic REST connection has no call_log endpoint: calls are not logged.",
                permanent=True,
            )
        return self.config.call_log

    # ----- listing
    def _list_page(self, after: str | None, since_ms: int) -> tuple[list[Any], str | None]:
        """One page of the list endpoint and where the next one starts (None: the last page)."""
        config, paging = self.config, self.config.paging
        params: dict[str, Any] | None = dict(config.params)
        url = config.base_url + config.listing.path
        if paging.style == "next_link" and after:
            url, params = self._same_origin(after), None  # the link carries every parameter
        else:
            if since_ms and config.since_param:
                params[config.since_param] = _since_value(since_ms, config.since_format)
            if paging.size_param:
                params[paging.size_param] = paging.page_size
            if paging.style == "page":
                params[paging.page_param] = int(after) if after else paging.first_page
            elif paging.style == "offset":
                params[paging.offset_param] = int(after or 0)
            elif paging.style == "cursor" and after:
                params[paging.cursor_param] = after
        response = self._send("GET", url, params=params)
        data = _body(response, f"GET {config.listing.path}")
        items = self._items(data, config.listing.items)
        full = len(items) >= paging.page_size
        if paging.style == "page":
            current = int(after) if after else paging.first_page
            return items, str(current + 1) if full else None
        if paging.style == "offset":
            return items, str(int(after or 0) + len(items)) if full else None
        if paging.style == "cursor":
            following = mapping.first(data, paging.next_cursor)
        elif paging.next_link is not None:
            following = mapping.first(data, paging.next_link)
        else:
            match = _LINK_NEXT.search(response.headers.get("link", ""))
            following = match.group(1) if match else None
        following = str(following) if following not in (None, "") else None
        if following is not None and following == after:
            raise ConnectorError("The CRM answered the same next page again: paging would loop.")
        return items, following

    def _items(self, data: Any, steps: tuple[mapping.Step, ...]) -> list[Any]:
        try:
            return mapping.items_at(data, steps)
        except mapping.UnreadableRecord:
            raise ConnectorError("The CRM sent a page without a list of records.") from None

    def _same_origin(self, link: str) -> str:
        """A next link, absolute; never to another host (it would get our credentials)."""
        url = urljoin(self.config.base_url + "/", link)
        ours, theirs = urlsplit(self.config.base_url), urlsplit(url)
        if (theirs.scheme, theirs.netloc) != (ours.scheme, ours.netloc):
            raise ConnectorError(
                f"The next-page link leads away from base_url ({theirs.netloc}).", permanent=True
            )
        return url

    # ----- requests and auth
    def _json(self, method: str, url: str, **kwargs: Any) -> Any:
        return _body(self._send(method, url, **kwargs), f"{method} {urlsplit(url).path}")

    def _send(self, method: str, url: str, **kwargs: Any) -> CrmResponse:
        oauth = self.config.auth == "oauth2_client_credentials"
        response = self.client.send(method, url, headers=self._auth_headers(), **kwargs)
        if response.status_code == 401 and oauth:
            self._fetch_token()  # revoked or expired early: one new token, one more try
            response = self.client.send(method, url, headers=self._auth_headers(), **kwargs)
        if response.status_code in (401, 403):
            raise ConnectorError(
                f"The CRM rejected the connection's credentials ({response.status_code}: "
                f"{_excerpt(response)}).",
                permanent=True,
            )
        return response

    def _auth_headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        kind, credentials = self.config.auth, self.credentials
        if kind == "basic":
            pair = f"{credentials['username']}:{credentials['password']}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        elif kind == "bearer":
            headers["Authorization"] = f"Bearer {credentials['token']}"
        elif kind == "api_key":
            headers[self.config.auth_header] = credentials["api_key"]
        elif kind == "oauth2_client_credentials":
            expires_at = float(credentials.get("expires_at") or 0)
            if (
                not credentials.get("access_token")
                or expires_at < time.time() + REFRESH_MARGIN_SECONDS
            ):
                self._fetch_token()
            headers["Authorization"] = f"Bearer {self.credentials['access_token']}"
        return headers

    def _fetch_token(self) -> None:
        """OAuth 2.0 client credentials (RFC 6749 section 4.4); the token is kept until expiry."""
        config, credentials = self.config, self.credentials
        form = {"grant_type": "client_credentials"}
        if config.scope:
            form["scope"] = config.scope
        headers = {"Accept": "application/json"}
        if config.client_auth == "basic":
            pair = f"{quote(credentials['client_id'])}:{quote(credentials['client_secret'])}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        else:
            form.update(
                client_id=credentials["client_id"], client_secret=credentials["client_secret"]
            )
        response = self.client.send("POST", config.token_url, headers=headers, form=form)
        if response.status_code != 200:
            raise ConnectorError(
                f"The token endpoint refused the client credentials ({response.status_code}: "
                f"{_excerpt(response)}).",
                permanent=response.status_code < 500,
            )
        tokens = response.json()
        if not isinstance(tokens, dict) or not tokens.get("access_token"):
            raise ConnectorError("The token endpoint answered without an access_token.")
        expires_in = tokens.get("expires_in")
        self.credentials.update(
            access_token=str(tokens["access_token"]),
            expires_at=time.time() + (float(expires_in) if expires_in else 3600),
        )
        self.save_credentials(dict(self.credentials))


def _since_value(since_ms: int, since_format: str) -> str:
    if since_format == "epoch_ms":
        return str(since_ms)
    if since_format == "epoch_seconds":
        return str(since_ms // 1000)
    moment = datetime.fromtimestamp(since_ms / 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _body(response: CrmResponse, what: str) -> Any:
    if response.status_code >= 400:
        # 4xx other than 429 will not heal by retrying the same request.
        raise ConnectorError(
            f"The CRM answered {response.status_code} to {what}: {_excerpt(response)}",
            permanent=response.status_code < 500,
        )
    return response.json()


def _excerpt(response: CrmResponse) -> str:
    return response.body[:200].decode("utf-8", "replace").strip()
