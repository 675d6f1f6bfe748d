"""ActiveCampaign API v3: contacts by id keyset, phone search, calls as contact notes.

Reference: ../shared/reference/crm-apis-more.md section 4, checked against the vendor's OpenAPI
reference (AC1) and its rate-limit, pagination and error pages. Api-Token header, no OAuth.

- Only contacts are synced: accounts (companies) have no phone field (name, URL and custom
  fields only), so they would add no number to the phonebook.
- Contacts in the v3 list name no owner, so synced contacts keep their owner agents; users()
  and find_user serve call logging (the agent named on notes, assigned to tasks).
- ActiveCampaign has no call object: a call is a note on the contact (POST /notes, reltype
  Subscriber), updated in place (PUT /notes/{id}); a missed call is an open contact task of the
  account's "Call" type. Both need a contact: a call from a caller found nowhere fails
  (permanently) unless `create_unknown_contacts` is on. A note's author is always the token's
  user, so the agent is named in its text.
- find_logged cannot look: notes can only be listed per contact or all at once, and a task's
  `filters[note]` matching is undocumented. A create whose answer was lost may be logged twice.

UNVERIFIED (the fake makes the strict choice): whether filters[updated_after] honours a time
or includes its own day, and its time zone (we ask from two days before); what a `limit` over
100 does (the fake answers 100); the bodies of 403, 429 and unknown-user answers; that
`allowNullEmail` creates a phone-only contact; the app host used for record links.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from connectors import pacing, record_fields
from connectors.activecampaign import mapping
from connectors.client import CrmClient, CrmResponse
from connectors.interface import (
    CallLogEntry,
    ConnectionConfig,
    ConnectorError,
    CredentialsSaver,
    CrmUser,
    Cursor,
    Page,
    SourceRecord,
    contact_needed,
)
from connectors.pacing import RateLimit
from core import phone_numbers

PAGE_SIZE = 100  # `limit` maximum of list endpoints
# Our clock may run ahead of ActiveCampaign's, and a change may be stamped before it is visible:
# each listing starts this long before the previous one began.
CLOCK_MARGIN_MS = 10 * 60 * 1000
# 5 requests a second per account, answered 429 + Retry-After above it [AC6]:
# https://developers.activecampaign.com/reference/rate-limits
RATE_LIMITS = {"requests": RateLimit(5, 1)}
CALL_TASK_TYPE = "call"  # the task type (GET /dealTasktypes) missed-call tasks get


class ActiveCampaignConnector:
    credential_keys = frozenset({"api_url", "api_token"})
    required_credentials = (frozenset({"api_url", "api_token"}),)
    syncable_objects = ("contacts",)
    own_settings = False

    def __init__(self, config: ConnectionConfig, save_credentials: CredentialsSaver) -> None:
        self.credentials = dict(config.credentials)
        self.settings = config.settings
        self.client = CrmClient(
            connection_id=config.connection_id,
            rate_limits=pacing.rate_limits(config.settings, RATE_LIMITS),
        )
        # The account's own API URL (Settings > Developer), with or without /api/3.
        self.api_url = str(self.credentials.get("api_url") or "").rstrip("/").removesuffix("/api/3")
        self.app_url = mapping.app_url(self.api_url)
        self._task_type_id: int | None = None
        self._agents: dict[str, str] = {}  # user id -> how notes name the agent

    @property
    def rate_limit_waits(self) -> int:
        return self.client.rate_limit_waits

    def object_types(self) -> tuple[str, ...]:
        wanted = self.settings.get("objects") or ["contacts"]
        return ("contacts",) if "contacts" in wanted else ()

    # ----- read side
    def changed_since(self, object_type: str, cursor: Cursor) -> Page:
        """One page of contacts changed since the cursor, in id order (there is no udate order).

        A listing pages on `id_greater`, so a contact edited after we passed its id is not in
        this listing; its new udate is later than the listing's start, where the next listing
        begins (`max_seen_ms` holds that start while paging). Contacts the date filter brings
        back although they changed before `since_ms` were read by an earlier listing: skipped.
        """
        started = cursor.max_seen_ms if cursor.after else _now_ms() - CLOCK_MARGIN_MS
        params: dict[str, Any] = {"orders[id]": "ASC", "limit": PAGE_SIZE}
        if cursor.since_ms:
            params["filters[updated_after]"] = mapping.updated_after(cursor.since_ms)
        if cursor.after:
            params["id_greater"] = cursor.after
        contacts = self._contacts(params)
        records, invalid = [], 0
        for obj in contacts:
            try:
                if mapping.updated_ms(obj) >= cursor.since_ms:
                    records.append(mapping.record_from_contact(obj, app_url=self.app_url))
            except mapping.UnreadableRecord:
                invalid += 1
        if len(contacts) < PAGE_SIZE:
            done = Cursor(since_ms=max(cursor.since_ms, started))
            return Page(tuple(records), done, done=True, invalid=invalid)
        next_cursor = Cursor(
            since_ms=cursor.since_ms,
            after=_last_id(contacts),
            seen_in_window=cursor.seen_in_window + len(contacts),
            max_seen_ms=started,
        )
        return Page(tuple(records), next_cursor, done=False, invalid=invalid)

    def all_ids(self, object_type: str) -> Iterator[list[str]]:
        after = ""
        while True:
            params: dict[str, Any] = {"orders[id]": "ASC", "limit": PAGE_SIZE}
            if after:
                params["id_greater"] = after
            contacts = self._contacts(params)
            try:
                yield [mapping.contact_id_of(obj) for obj in contacts]
            except mapping.UnreadableRecord:
                raise ConnectorError("ActiveCampaign sent a contact without an id.") from None
            if len(contacts) < PAGE_SIZE:
                return
            after = _last_id(contacts)

    def find_by_phone(self, e164: str) -> list[SourceRecord]:
        # `phone=` matches numbers that start with the text as stored: try each way people
        # store a number, then keep only what really is this number.
        region = phone_numbers.region_of(e164)
        found: dict[str, SourceRecord] = {}
        for form in phone_numbers.stored_forms(e164):
            for obj in self._contacts({"phone": form, "limit": PAGE_SIZE}):
                try:
                    record = mapping.record_from_contact(obj, app_url=self.app_url)
                except mapping.UnreadableRecord:
                    continue
                if record_fields.has_number(record, e164, region):
                    found.setdefault(record.external_id, record)
        return list(found.values())

    def _contacts(self, params: dict[str, Any]) -> list[Any]:
        contacts = self._json("GET", "/contacts", params=params).get("contacts")
        if not isinstance(contacts, list):
            raise ConnectorError("ActiveCampaign sent a contacts page without contacts.")
        return contacts

    # ----- users
    def users(self) -> list[CrmUser]:
        found: list[CrmUser] = []
        offset = 0
        while True:
            params = {"limit": PAGE_SIZE, "offset": offset}
            page = self._json("GET", "/users", params=params).get("users") or []
            found += [u for u in map(mapping.user_from_json, page) if u is not None]
            if len(page) < PAGE_SIZE:
                return found
            offset += len(page)

    def find_user(self, email: str) -> CrmUser | None:
        path = f"/users/email/{quote(email.strip(), safe='@')}"
        response = self._send("GET", path)
        if response.status_code == 404:
            return None
        user = mapping.user_from_json(self._answer(response, f"GET {path}").get("user"))
        if user is None or user.email.casefold() != email.strip().casefold():
            return None
        return user

    # ----- call logging
    def log_call(self, entry: CallLogEntry) -> str:
        body = mapping.note_body(
            entry, contact_id=self._contact_number(entry), agent=self._agent(entry)
        )
        note = self._json("POST", "/notes", json_body=body, idempotent=False).get("note")
        return _created_id(note, "note")

    def find_logged(self, call_id: str, *, task: bool = False) -> str | None:
        # Notes are listed per contact or all at once, and dealTasks' filters[note] matching is
        # undocumented: nothing can find our call id without reading the whole account.
        return None

    def update_call_log(self, remote_id: str, entry: CallLogEntry) -> None:
        body = mapping.note_body(
            entry, contact_id=self._contact_number(entry), agent=self._agent(entry)
        )
        self._json("PUT", f"/notes/{quote(remote_id, safe='')}", json_body=body)

    def create_task(self, entry: CallLogEntry) -> str:
        body = mapping.task_body(
            entry,
            contact_id=self._contact_number(entry),
            task_type_id=self._call_task_type(),
            agent=self._agent(entry),
        )
        task = self._json("POST", "/dealTasks", json_body=body, idempotent=False).get("dealTask")
        return _created_id(task, "task")

    def create_contact(self, *, e164: str, name: str = "") -> SourceRecord:
        body = mapping.contact_body(e164=e164, name=name)
        contact = self._json("POST", "/contacts", json_body=body, idempotent=False).get("contact")
        try:
            return mapping.record_from_contact(contact, app_url=self.app_url)
        except mapping.UnreadableRecord:
            raise ConnectorError("ActiveCampaign created a contact without an id.") from None

    def _contact_number(self, entry: CallLogEntry) -> int:
        if not entry.contact_external_id:
            raise contact_needed("ActiveCampaign notes and tasks")
        try:
            return mapping.contact_number(entry.contact_external_id)
        except ValueError as error:
            raise ConnectorError(str(error), permanent=True) from None

    def _agent(self, entry: CallLogEntry) -> str:
        """How the note names the agent (read once per user): the note's author is the token's."""
        user_id = entry.owner_user_id
        if not user_id:
            return ""
        if user_id not in self._agents:
            path = f"/users/{quote(user_id, safe='')}"
            user = mapping.user_from_json(self._json("GET", path).get("user"))
            self._agents[user_id] = mapping.agent_text(user) if user else f"user {user_id}"
        return self._agents[user_id]

    def _call_task_type(self) -> int:
        """The id of the account's "Call" task type (dealTasktype is required on a task)."""
        if self._task_type_id is None:
            types = self._json("GET", "/dealTasktypes").get("dealTasktypes") or []
            titles = {str(t.get("title") or "").strip().casefold(): t for t in types}
            call_type = titles.get(CALL_TASK_TYPE)
            if call_type is None or not str(call_type.get("id") or "").isdigit():
                raise ConnectorError(
                    'ActiveCampaign has no "Call" task type for missed-call tasks; add one '
                    f"(Settings > Tasks), or turn missed_call_task off. Types: {sorted(titles)}",
                    permanent=True,
                )
            self._task_type_id = int(call_type["id"])
        return self._task_type_id

    # ----- HTTP, errors and the rate limit
    def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        return self._answer(self._send(method, path, **kwargs), f"{method} {path}")

    def _answer(self, response: CrmResponse, what: str) -> dict[str, Any]:
        if response.status_code >= 400:
            raise _error(response, what)
        body = response.json()
        if not isinstance(body, dict):
            raise ConnectorError(f"ActiveCampaign answered {what} with something not an object.")
        return body

    def _send(self, method: str, path: str, **kwargs: Any) -> CrmResponse:
        # The client paces requests under RATE_LIMITS (a 429's Retry-After it waits itself).
        return self.client.send(
            method,
            f"{self.api_url}/api/3{path}",
            headers={
                "Api-Token": str(self.credentials.get("api_token") or ""),
                "Accept": "application/json",
            },
            **kwargs,
        )

    def authorization_url(self, *, state: str, redirect_uri: str) -> str:
        raise _no_oauth()

    def connect(self, *, code: str, redirect_uri: str) -> None:
        raise _no_oauth()


def _no_oauth() -> ConnectorError:
    return ConnectorError("ActiveCampaign connects with an API token, not OAuth.", permanent=True)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _last_id(contacts: list[Any]) -> str:
    try:
        return mapping.contact_id_of(contacts[-1])
    except mapping.UnreadableRecord:
        raise ConnectorError("ActiveCampaign sent a contact without an id.") from None


def _created_id(obj: Any, what: str) -> str:
    created = str(obj.get("id") or "") if isinstance(obj, dict) else ""
    if not created:
        raise ConnectorError(f"ActiveCampaign created a {what} without answering its id.")
    return created


def _message(response: CrmResponse) -> str:
    """`{"message": ...}` or `{"errors": [{"title", "detail"}]}`, else the start of the body."""
    try:
        body = response.json()
    except ConnectorError:
        return response.body[:200].decode("utf-8", "replace")
    if not isinstance(body, dict):
        return ""
    if isinstance(body.get("message"), str):
        return str(body["message"])[:300]
    errors = body.get("errors")
    if isinstance(errors, list):
        parts = [
            " ".join(str(e.get(k)) for k in ("title", "detail") if e.get(k))
            for e in errors
            if isinstance(e, dict)
        ]
        return "; ".join(p for p in parts if p)[:300]
    return str(errors or "")[:300]


def _error(response: CrmResponse, what: str) -> ConnectorError:
    """403 is ActiveCampaign's answer to a bad or missing token (it sends no 401)."""
    status = response.status_code
    if status in (401, 403):
        return ConnectorError(
            f"ActiveCampaign refused {what} ({status}: {_message(response)}): check the API "
            "token, and that its user may do this.",
            permanent=True,
        )
    return ConnectorError(
        f"ActiveCampaign answered {status} to {what}: {_message(response)}",
        permanent=400 <= status < 500 and status != 429,
    )
