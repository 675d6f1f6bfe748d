"""Intercom: contacts by search on updated_at, companies by scroll, calls as contact notes.

Reference: ../shared/reference/crm-apis-more.md section 6 and the vendor's OpenAPI description
of version 2.11, the version every request pins (intercom/Intercom-OpenAPI). Intercom notes
CANNOT be updated (no update or delete operation exists): a later change to a call (notes,
summary, recording) is logged as a second note, "Update to CallBridge call <id>: ...". A
missed call opens a conversation from the contact (Intercom has no tasks): it lands in the
team inbox as an open conversation to answer, where a note would sit unseen on the profile.
UNVERIFIED: the OAuth token URL (`/auth/eagle/token`) and the EU/AU consent hosts; `sort` on
contact search (in the pagination guide, not the 2.11 schema: correctness does not rely on
it); how Intercom stores phone numbers (each stored form is searched, and `$` on the national
significant number); the largest contacts `per_page` (150, the cap of other lists); whether a
search cursor survives edits (a record edited mid-listing comes again later); the answers to an
expired scroll or a second one; how conversation search splits a body into words; whether the
contact sees a conversation opened in their name in the Messenger.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote, urlsplit

from connectors import pacing, record_fields
from connectors.client import CrmClient, CrmResponse
from connectors.intercom import mapping
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
    contact_needed,
)
from connectors.oauth import AuthorizationCodeFlow, OAuthApp, status_and, token_answer
from connectors.pacing import RateLimit
from core import phone_numbers

API_VERSION = "2.11"
# API host -> the app host where admins grant OAuth access (EU and AU consent hosts UNVERIFIED).
REGIONS = {
    "https://api.intercom.io": "https://app.intercom.com",
    "https://api.eu.intercom.io": "https://app.eu.intercom.com",
    "https://api.au.intercom.io": "https://app.au.intercom.com",
}
DEFAULT_BASE_URL = "https://api.intercom.io"
PAGE_SIZE = 150
# 10,000 requests a minute per app, spread evenly over 10-second windows (1,666 each), then
# 429 rate_limit_exceeded [IC4]: a workspace on another limit names it in settings.rate_limits.
# https://developers.intercom.com/docs/references/rest-api/errors/rate-limiting
RATE_LIMITS = {"requests": RateLimit(1666, 10)}
DAY = 86_400
# New contacts reach search after "a few minutes" [IC1]: the next run re-reads the last 10.
SEARCH_LAG_MS = 10 * 60_000
# Notes come newest first; a call's notes are among the contact's newest 150.
NOTES_PAGE = 50
NOTES_LOOKBACK_PAGES = 3
SCROLL_IDLE_SECONDS = 60


class IntercomConnector:
    credential_keys = frozenset({"access_token", "base_url", "client_id", "client_secret"})
    required_credentials = (frozenset({"access_token"}), frozenset({"client_id", "client_secret"}))
    syncable_objects = ("contacts", "companies")
    own_settings = False

    @staticmethod
    def check_config(credentials: Mapping[str, Any], settings: Mapping[str, Any]) -> None:
        """base_url is one of Intercom's regional hosts (or the fake's; the SSRF guard decides)."""
        base_url = str(credentials.get("base_url") or DEFAULT_BASE_URL).rstrip("/")
        url = urlsplit(base_url)
        on_intercom = url.hostname is not None and url.hostname.endswith("intercom.io")
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ConfigError("credentials", "base_url: an http(s) URL.")
        if on_intercom and base_url not in REGIONS:
            raise ConfigError("credentials", f"base_url: one of {', '.join(REGIONS)}.")
        names = settings.get("custom_fields", [])
        if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
            raise ConfigError("settings", "custom_fields: a list of custom attribute names.")

    def __init__(self, config: ConnectionConfig, save_credentials: CredentialsSaver) -> None:
        self.credentials = dict(config.credentials)
        self.settings = config.settings
        self.client = CrmClient(
            connection_id=config.connection_id,
            rate_limits=pacing.rate_limits(config.settings, RATE_LIMITS),
        )
        self.oauth = AuthorizationCodeFlow(
            oauth_app, self.credentials, self.client, save_credentials
        )
        self.custom_fields = tuple(str(n) for n in self.settings.get("custom_fields") or ())
        self._users: list[CrmUser] | None = None

    @property
    def rate_limit_waits(self) -> int:
        return self.client.rate_limit_waits

    def object_types(self) -> tuple[str, ...]:
        wanted = self.settings.get("objects") or ["contacts", "companies"]
        return tuple(t for t in ("contacts", "companies") if t in wanted)

    # ----- read side
    def changed_since(self, object_type: str, cursor: Cursor) -> Page:
        if object_type == "companies":
            return self._companies_page(cursor)
        return self._contacts_page(cursor)

    def _contacts_page(self, cursor: Cursor) -> Page:
        """One page of `updated_at > <the cursor's day - 1>`: search matches whole days [IC1].

        `>` starts at the next day in the workspace's time zone, so asking for the day before
        the cursor's reads its whole day, whatever the zone; rows older than the cursor are
        dropped. The listing's paging token is saved per page; a record edited while we page
        comes again later in the listing (its new updated_at), so none is skipped. The next
        run starts at the newest updated_at seen, less the search lag.
        """
        since = cursor.since_ms // 1000
        query = {"field": "updated_at", "operator": ">", "value": max(0, since - DAY)}
        body: dict[str, Any] = {
            "query": query,
            "pagination": {"per_page": PAGE_SIZE},
            "sort": {"field": "updated_at", "order": "ascending"},
        }
        if cursor.after:
            body["pagination"]["starting_after"] = cursor.after
        answer = self._json("POST", "/contacts/search", json_body=body)
        rows = _rows(answer, "data")
        records, invalid, max_seen = [], 0, cursor.max_seen_ms
        for row in rows:
            try:
                changed_ms = mapping.updated_at(row) * 1000
                record = mapping.record_from_contact(row, custom_fields=self.custom_fields)
            except mapping.UnreadableRecord:
                invalid += 1
                continue
            max_seen = max(max_seen, changed_ms)
            if changed_ms >= cursor.since_ms:
                records.append(record)
        after = _next_cursor(answer)
        if after:
            next_cursor = Cursor(since_ms=cursor.since_ms, after=after, max_seen_ms=max_seen)
            return Page(tuple(records), next_cursor, False, invalid)
        since_ms = max(cursor.since_ms, max_seen - SEARCH_LAG_MS) if max_seen else cursor.since_ms
        return Page(tuple(records), Cursor(since_ms=since_ms, max_seen_ms=max_seen), True, invalid)

    def _companies_page(self, cursor: Cursor) -> Page:
        """One page of the companies scroll, those changed since the cursor kept.

        Intercom cannot list companies by modification time, so each run scrolls them all.
        A scroll lost mid-way (a minute unused between tasks, or its documented 500) starts
        again from the first page: what was read comes again, counted as unchanged.
        """
        answer = self._scroll(cursor.after)
        rows = _rows(answer, "data")
        records, invalid, max_seen = [], 0, cursor.max_seen_ms
        for row in rows:
            try:
                record = mapping.record_from_company(row, custom_fields=self.custom_fields)
                changed_ms = mapping.updated_at(row) * 1000
            except mapping.UnreadableRecord:
                invalid += 1
                continue
            max_seen = max(max_seen, changed_ms)
            if changed_ms >= cursor.since_ms:
                records.append(record)
        if not rows:  # the scroll's end
            since_ms = max(cursor.since_ms, max_seen - SEARCH_LAG_MS) if max_seen else 0
            return Page((), Cursor(since_ms=since_ms, max_seen_ms=max_seen), True, invalid)
        scroll = str(answer.get("scroll_param") or "")
        next_cursor = Cursor(since_ms=cursor.since_ms, after=scroll, max_seen_ms=max_seen)
        return Page(tuple(records), next_cursor, False, invalid)

    def _scroll(self, scroll_param: str | None) -> Any:
        if scroll_param:
            response = self._send("GET", "/companies/scroll", params={"scroll_param": scroll_param})
            if response.status_code < 400:
                return response.json()
            if response.status_code in (401, 403, 429):
                raise _error(response, "GET /companies/scroll", oauth=self._oauth)
            # Expired or broken ("Please restart the scroll operation" [IC1]): start again.
        response = self._send("GET", "/companies/scroll")
        if response.status_code == 400:  # most likely another scroll of this app still open
            raise ConnectorError(
                f"Intercom refused a new companies scroll ({_message(response)}); an open "
                "scroll expires after a minute unused.",
                retry_after=SCROLL_IDLE_SECONDS,
            )
        if response.status_code >= 400:
            raise _error(response, "GET /companies/scroll", oauth=self._oauth)
        return response.json()

    def all_ids(self, object_type: str) -> Iterator[list[str]]:
        if object_type == "companies":
            yield from self._all_company_ids()
            return
        after: str | None = None
        while True:
            params = {"per_page": PAGE_SIZE, **({"starting_after": after} if after else {})}
            answer = self._json("GET", "/contacts", params=params)
            yield [_row_id(row) for row in _rows(answer, "data")]
            after = _next_cursor(answer)
            if not after:
                return

    def _all_company_ids(self) -> Iterator[list[str]]:
        answer = self._json("GET", "/companies/scroll")
        while rows := _rows(answer, "data"):
            yield [mapping.COMPANY_ID_PREFIX + _row_id(row) for row in rows]
            # A scroll lost part-way fails the listing (so nothing is deleted).
            answer = self._json(
                "GET", "/companies/scroll", params={"scroll_param": answer.get("scroll_param")}
            )

    def find_by_phone(self, e164: str) -> list[SourceRecord]:
        # `phone =` matches the stored text [crm-apis-more.md 6.3]: ask for every way people
        # store the number, and `$` on its national significant number, in one OR group (at
        # most 15 filters); keep what really is this number.
        forms = phone_numbers.stored_forms(e164)[:12]
        filters: list[dict[str, Any]] = [
            {"field": "phone", "operator": "=", "value": form} for form in forms
        ]
        significant = phone_numbers.national_forms(e164)[:1]
        filters += [{"field": "phone", "operator": "$", "value": s} for s in significant]
        body = {"query": {"operator": "OR", "value": filters}, "pagination": {"per_page": 50}}
        region = phone_numbers.region_of(e164)
        found: dict[str, SourceRecord] = {}
        for row in _rows(self._json("POST", "/contacts/search", json_body=body), "data"):
            try:
                record = mapping.record_from_contact(row, custom_fields=self.custom_fields)
            except mapping.UnreadableRecord:
                continue
            if record_fields.has_number(record, e164, region):
                found.setdefault(record.external_id, record)
        return list(found.values())

    # ----- users (admins)
    def users(self) -> list[CrmUser]:
        if self._users is None:
            admins = _rows(self._json("GET", "/admins"), "admins")
            self._users = [
                CrmUser(str(a["id"]), str(a.get("email") or ""), str(a.get("name") or ""))
                for a in admins
                if isinstance(a, dict) and a.get("id") and a.get("email")
            ]
        return list(self._users)

    def find_user(self, email: str) -> CrmUser | None:
        wanted = email.strip().casefold()
        return next((u for u in self.users() if u.email.casefold() == wanted), None)

    # ----- write side
    def log_call(self, entry: CallLogEntry) -> str:
        contact = self._contact_of(entry)
        # Only here is the contact known: a note an earlier, cut-off attempt left is found
        # among its notes (find_logged, given the call id alone, cannot say whose notes to read).
        existing = self._our_notes(contact, entry.call_id)
        if existing:
            return str(existing[-1]["id"])
        return self._add_note(contact, mapping.note_body(entry, agent=self._agent(entry)), entry)

    def update_call_log(self, remote_id: str, entry: CallLogEntry) -> None:
        """Post a second note: Intercom notes cannot be edited (no update operation [IC1])."""
        contact = self._contact_of(entry)
        body = mapping.update_body(entry, agent=self._agent(entry))
        ours = self._our_notes(contact, entry.call_id)
        # Told already (an update whose answer was lost, or nothing new): no further note.
        if ours and mapping.told(str(ours[-1].get("body") or "")) == mapping.told(body):
            return
        self._add_note(contact, body, entry)

    def create_task(self, entry: CallLogEntry) -> str:
        """Open a conversation from the contact: Intercom has no tasks; the inbox is its to-do."""
        contact = self._contact_of(entry)
        role = self._json("GET", f"/contacts/{quote(contact, safe='')}").get("role") or "contact"
        body = {"from": {"type": role, "id": contact}, "body": mapping.conversation_body(entry)}
        created = self._json("POST", "/conversations", json_body=body, idempotent=False)
        if not isinstance(created, dict) or not created.get("conversation_id"):
            raise ConnectorError("Intercom answered POST /conversations without its id.")
        return str(created["conversation_id"])

    def find_logged(self, call_id: str, *, task: bool = False) -> str | None:
        if not task:
            return None  # log_call looks among the contact's notes itself
        # Conversation search matches `source.body` word by word [IC1]: our call id is one.
        query = {"field": "source.body", "operator": "=", "value": call_id}
        body = {"query": query, "pagination": {"per_page": 20}}
        marker = mapping.call_marker(call_id)
        for row in _rows(
            self._json("POST", "/conversations/search", json_body=body), "conversations"
        ):
            source = row.get("source") if isinstance(row, dict) else None
            if isinstance(source, dict) and marker in str(source.get("body") or "").splitlines():
                return str(row["id"])
        return None

    def create_contact(self, *, e164: str, name: str = "") -> SourceRecord:
        body = mapping.contact_body(e164=e164, name=name)
        created = self._json("POST", "/contacts", json_body=body, idempotent=False)
        try:
            return mapping.record_from_contact(created, custom_fields=self.custom_fields)
        except mapping.UnreadableRecord as error:
            raise ConnectorError(f"Intercom created a contact it cannot show: {error}") from None

    def _contact_of(self, entry: CallLogEntry) -> str:
        try:
            contact = mapping.contact_of(entry.contact_external_id)
        except ValueError as error:
            raise ConnectorError(str(error), permanent=True) from None
        if contact is None:
            raise contact_needed("Intercom notes and conversations")
        return contact

    def _our_notes(self, contact: str, call_id: str) -> list[dict[str, Any]]:
        """The contact's notes about this call (the first, then its updates), oldest first."""
        marker, found = mapping.call_marker(call_id), []
        path = f"/contacts/{quote(contact, safe='')}/notes"
        for page in range(1, NOTES_LOOKBACK_PAGES + 1):
            answer = self._json("GET", path, params={"page": page, "per_page": NOTES_PAGE})
            for note in _rows(answer, "data"):
                lines = mapping.note_lines(str(note.get("body") or ""))
                if marker in lines or f"Update to {marker}:" in lines:
                    found.append(note)
            if not (answer.get("pages") or {}).get("next"):
                break
        return found[::-1]

    def _add_note(self, contact: str, body: str, entry: CallLogEntry) -> str:
        payload = {"body": body}
        if entry.owner_user_id:
            payload["admin_id"] = entry.owner_user_id
        path = f"/contacts/{quote(contact, safe='')}/notes"
        created = self._json("POST", path, json_body=payload, idempotent=False)
        if not isinstance(created, dict) or not created.get("id"):
            raise ConnectorError("Intercom answered POST /notes without the note's id.")
        return str(created["id"])

    def _agent(self, entry: CallLogEntry) -> str:
        if not entry.owner_user_id:
            return ""
        user = next((u for u in self.users() if u.external_id == entry.owner_user_id), None)
        return f"{user.name} <{user.email}>" if user else ""

    # ----- HTTP, auth and limits
    @property
    def _oauth(self) -> bool:
        return bool(self.credentials.get("client_id"))

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._send(method, path, **kwargs)
        if response.status_code >= 400:
            raise _error(response, f"{method} {path}", oauth=self._oauth)
        answer = response.json()
        if not isinstance(answer, dict):
            raise ConnectorError(f"Intercom answered {method} {path} with something not an object.")
        return answer

    def _send(self, method: str, path: str, **kwargs: Any) -> CrmResponse:
        token = self.credentials.get("access_token")
        if not token:
            raise ConnectorError(
                "Intercom needs an access_token, or a connection through OAuth.", permanent=True
            )
        base_url = str(self.credentials.get("base_url") or DEFAULT_BASE_URL).rstrip("/")
        headers = {
            "Authorization": f"Bearer {token}",
            "Intercom-Version": API_VERSION,
            "Accept": "application/json",
        }
        return self.client.send(
            method, base_url + path, headers=headers, retry_after_of=_reset_wait, **kwargs
        )

    def authorization_url(self, *, state: str, redirect_uri: str) -> str:
        return self.oauth.authorization_url(state=state, redirect_uri=redirect_uri)

    def connect(self, *, code: str, redirect_uri: str) -> None:
        self.oauth.connect(code=code, redirect_uri=redirect_uri)


def oauth_app(credentials: Mapping[str, Any]) -> OAuthApp:
    """Intercom's flow [IC2]: scopes are ticked on the app, tokens never expire, no refresh."""
    base_url = str(credentials.get("base_url") or DEFAULT_BASE_URL).rstrip("/")
    return OAuthApp(
        crm="Intercom",
        authorize_url=REGIONS.get(base_url, REGIONS[DEFAULT_BASE_URL]) + "/oauth",
        token_url=base_url + "/auth/eagle/token",  # UNVERIFIED [T IC3]
        refusal=status_and(lambda response: _message(response)),
        reconnect="reconnect Intercom",
        missing_hint=" (or give an access_token)",
        # No expires_in and no refresh token: the token lasts until revoked (a 401).
        expires_in=10 * 365 * 86_400,
    )


def _rows(answer: Any, key: str) -> list[Any]:
    rows = answer.get(key) if isinstance(answer, dict) else None
    if not isinstance(rows, list):
        raise ConnectorError(f"Intercom answered without a {key} list.")
    return rows


def _row_id(row: Any) -> str:
    if not isinstance(row, dict) or not row.get("id"):
        raise ConnectorError("Intercom listed a record without an id.")
    return str(row["id"])


def _next_cursor(answer: dict[str, Any]) -> str | None:
    pages = answer.get("pages")
    following = pages.get("next") if isinstance(pages, dict) else None
    after = following.get("starting_after") if isinstance(following, dict) else None
    return str(after) if after else None


def _reset_wait(response: CrmResponse) -> float | None:
    """A 429's wait: X-RateLimit-Reset is the unix time the window resets [IC4]."""
    reset = response.headers.get("x-ratelimit-reset")
    if response.status_code != 429 or not reset or not reset.isdigit():
        return None
    return max(0.0, int(reset) - time.time())


def _message(response: CrmResponse) -> str:
    try:
        body = response.json() if response.body else {}
    except ConnectorError:
        return response.body[:200].decode("utf-8", "replace")
    errors = body.get("errors") if isinstance(body, dict) else None
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        first = errors[0]
        return f"{first.get('code') or ''}: {first.get('message') or ''}"[:300]
    tokens = token_answer(response)
    return str(tokens.get("error") or tokens.get("message") or "")[:300]


def _error(response: CrmResponse, what: str, *, oauth: bool) -> ConnectorError:
    status = response.status_code
    if status in (401, 403):
        advice = "reconnect Intercom" if oauth else "check the access_token"
        return ConnectorError(
            f"Intercom refused {what} ({status} {_message(response)}); {advice}.", permanent=True
        )
    if status == 429:
        return ConnectorError(
            f"Intercom's rate limit: {_message(response)}", retry_after=_reset_wait(response)
        )
    # Other 4xx (a bad query, an unknown contact or admin) will not heal by sending it again.
    return ConnectorError(
        f"Intercom answered {status} to {what}: {_message(response)}",
        permanent=400 <= status < 500,
    )
