"""SugarCRM REST v11: keyset listings on /<Module>/filter, phone filters, Calls, password grant.

Reference: ../shared/reference/crm-apis-more.md section 2 (tags [SG…] resolved in its §10).

UNVERIFIED (no Sugar source confirmed them; the fake follows our reading):
- the refresh_token grant on /oauth2/token (the vendor's PHP client posts it there; a later
  version of it has an /oauth2/refresh endpoint), and Sugar rotating the refresh token;
- `$gt` on `id` (the keyset's tie-break) and `$starts` on the `description` text field;
- `next_offset` -1 on the last page, the maximum `max_num` (we ask for 500 and follow what comes);
- the status and label of a refused platform, and any rate limit (none is documented: a 429's
  Retry-After is honoured by the client if one comes);
- Users' `email1` holding the primary address on every version.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, NoReturn
from urllib.parse import quote

from connectors import pacing, record_fields
from connectors.client import CrmClient, CrmResponse, send_with_fresh_token
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
from connectors.sugarcrm import mapping
from connectors.sugarcrm.auth import PLATFORM_NAME, PasswordGrant, error_of
from core import http, phone_numbers

API = "/rest/v11"
PAGE_SIZE = 500  # max_num; the server may cap it lower (configuration), the keyset follows
SEARCH_SIZE = 20
# date_modified has one-second precision and is stamped before the save commits: the next run
# re-reads the last few seconds (unchanged records are not written).
OVERLAP_MS = 5000
# A rejected session: refresh once, then the credentials are wrong (401 need_login/invalid_grant).
SESSION_ERRORS = {"need_login", "invalid_grant"}
# 409 edit_conflict and 412 metadata_out_of_date pass; other 4xx will not change on a retry.
PASSING_STATUSES = {409, 412, 429}


class SugarCrmConnector:
    credential_keys = frozenset(
        {"instance_url", "username", "password", "platform", "client_id", "client_secret"}
        | {"access_token", "refresh_token", "expires_at"}
    )
    required_credentials = (frozenset({"instance_url", "username", "password"}),)
    syncable_objects = ("contacts", "accounts", "leads")
    own_settings = False

    @staticmethod
    def check_config(credentials: Mapping[str, Any], settings: Mapping[str, Any]) -> None:
        """The instance URL must pass the SSRF guard; the platform must be a name Sugar takes."""
        try:
            http.check_url(str(credentials.get("instance_url") or ""))
        except http.HttpError as error:
            raise ConfigError("credentials", f"instance_url: {error}") from None
        platform = credentials.get("platform")
        if platform is not None and not PLATFORM_NAME.match(str(platform)):
            raise ConfigError(
                "credentials", "platform: up to 127 letters, digits, '-' or '_' (as registered)."
            )

    def __init__(self, config: ConnectionConfig, save_credentials: CredentialsSaver) -> None:
        self.credentials = dict(config.credentials)
        self.settings = config.settings
        self.client = CrmClient(
            connection_id=config.connection_id,
            # Sugar publishes no rate limit (crm-apis-more.md section 2): the default stays,
            # and an instance that enforces one is given it in settings.rate_limits.
            rate_limits=pacing.rate_limits(config.settings),
        )
        self.session = PasswordGrant(self.credentials, self.client, save_credentials)
        self.custom_fields = tuple(str(n) for n in self.settings.get("custom_fields") or ())
        self._users: list[CrmUser] | None = None

    @property
    def rate_limit_waits(self) -> int:
        return self.client.rate_limit_waits

    def object_types(self) -> tuple[str, ...]:
        wanted = self.settings.get("objects") or ["contacts", "accounts", "leads"]
        return tuple(t for t in mapping.MODULES if t in wanted)

    # ----- reading
    def changed_since(self, object_type: str, cursor: Cursor) -> Page:
        # Keyset paging on (date_modified, id): each page is a new query after the last record
        # read, never an offset into a set that shifts when a record is edited while we page.
        rows, more = self._filter_page(
            mapping.MODULES[object_type],
            _after(cursor),
            fields=self._fields(object_type),
            order_by="date_modified:ASC,id:ASC",
            max_num=PAGE_SIZE,
        )
        records, invalid = [], 0
        for row in rows:
            try:
                records.append(self._record(object_type, row))
            except mapping.UnreadableRecord:
                invalid += 1
        max_seen = max([cursor.max_seen_ms, *(mapping.modified_ms(r) for r in rows)])
        if more:
            last = rows[-1]
            next_cursor = Cursor(
                since_ms=mapping.modified_ms(last), after=str(last["id"]), max_seen_ms=max_seen
            )
            return Page(tuple(records), next_cursor, done=False, invalid=invalid)
        start = max(0, max_seen - OVERLAP_MS) if max_seen else cursor.since_ms
        return Page(tuple(records), Cursor(since_ms=start, max_seen_ms=max_seen), True, invalid)

    def all_ids(self, object_type: str) -> Iterator[list[str]]:
        prefix = mapping.ID_PREFIXES[object_type]
        for rows in self._by_id(mapping.MODULES[object_type], [], fields=["id"]):
            yield [prefix + str(row["id"]) for row in rows]

    def find_by_phone(self, e164: str) -> list[SourceRecord]:
        # Filters match the stored text ($equals): ask for every form people type, then keep
        # only what really is this number read with the record's country.
        forms = phone_numbers.stored_forms(e164)
        found: list[SourceRecord] = []
        for object_type in ("contacts", "leads"):
            if found or (object_type == "leads" and "leads" not in self.object_types()):
                break
            phone_fields = [name for name, _ in mapping.PHONE_FIELDS[object_type]]
            matches = [{name: {"$equals": form}} for name in phone_fields for form in forms]
            rows, _ = self._filter_page(
                mapping.MODULES[object_type],
                [{"$or": matches}],
                fields=self._fields(object_type),
                max_num=SEARCH_SIZE,
            )
            for row in rows:
                try:
                    record = self._record(object_type, row)
                except mapping.UnreadableRecord:
                    continue
                region = record.country or phone_numbers.region_of(e164)
                if record_fields.has_number(record, e164, region):
                    found.append(record)
        return found

    def users(self) -> list[CrmUser]:
        """Active users, listed once per connector (records name their assigned_user_id)."""
        if self._users is None:
            active = [{"status": {"$equals": "Active"}}]
            self._users = []
            for rows in self._by_id("Users", active, fields=list(mapping.USER_FIELDS)):
                for row in rows:
                    try:
                        self._users.append(mapping.user_from_sugar(row))
                    except mapping.UnreadableRecord:
                        continue
        return self._users

    def find_user(self, email: str) -> CrmUser | None:
        # Matched here, not filtered: email1 is not a database column of Users.
        wanted = email.strip().casefold()
        return next((u for u in self.users() if u.email.casefold() == wanted), None)

    # ----- writing
    def log_call(self, entry: CallLogEntry) -> str:
        remote_id = self._create("Calls", mapping.call_fields(entry))
        if entry.notes.strip():
            self._create("Notes", mapping.note_fields(entry, remote_id))
        return remote_id

    def update_call_log(self, remote_id: str, entry: CallLogEntry) -> None:
        self._json(
            "PUT", f"/Calls/{quote(remote_id, safe='')}", json_body=mapping.call_fields(entry)
        )
        if entry.notes.strip():
            self._write_note(remote_id, entry)

    def create_task(self, entry: CallLogEntry) -> str:
        return self._create("Tasks", mapping.task_fields(entry))

    def find_logged(self, call_id: str, *, task: bool = False) -> str | None:
        # Our id opens the description: a filter (SQL, no search index to lag behind).
        marker = mapping.call_marker(call_id)
        rows, _ = self._filter_page(
            "Tasks" if task else "Calls",
            [{"description": {"$starts": marker}}],
            fields=["description"],
            max_num=SEARCH_SIZE,
        )
        for row in rows:
            if str(row.get("description") or "").split("\n", 1)[0] == marker:
                return str(row["id"])
        return None

    def create_contact(self, *, e164: str, name: str = "") -> SourceRecord:
        fields = mapping.contact_fields(e164=e164, name=name)
        answer = self._json("POST", "/Contacts", json_body=fields, idempotent=False)
        try:
            return self._record("contacts", answer)
        except mapping.UnreadableRecord as error:
            raise ConnectorError(
                f"SugarCRM created a contact it did not describe: {error}"
            ) from None

    def _write_note(self, call_remote_id: str, entry: CallLogEntry) -> None:
        """The Notes record under the call: changed when there is one, else added."""
        under_call = [
            {"parent_type": {"$equals": "Calls"}},
            {"parent_id": {"$equals": call_remote_id}},
        ]
        rows, _ = self._filter_page("Notes", under_call, fields=["name"], max_num=1)
        fields = mapping.note_fields(entry, call_remote_id)
        if rows:
            self._json("PUT", f"/Notes/{quote(str(rows[0]['id']), safe='')}", json_body=fields)
        else:
            self._create("Notes", fields)

    def _create(self, module: str, fields: dict[str, Any]) -> str:
        answer = self._json("POST", f"/{module}", json_body=fields, idempotent=False)
        if not answer.get("id"):
            raise ConnectorError(f"SugarCRM created a {module} record without answering its id.")
        return str(answer["id"])

    # ----- plumbing
    def _filter_page(
        self,
        module: str,
        expressions: list[dict[str, Any]],
        *,
        fields: list[str],
        max_num: int,
        order_by: str = "id:ASC",
    ) -> tuple[list[dict[str, Any]], bool]:
        """One page of `POST /<Module>/filter` from offset 0, and whether more follow."""
        body = {
            "filter": expressions,
            "fields": ",".join(fields),
            "order_by": order_by,
            "max_num": max_num,
            "offset": 0,
        }
        answer = self._json("POST", f"/{module}/filter", json_body=body)
        rows, next_offset = answer.get("records"), answer.get("next_offset")
        if not isinstance(rows, list) or not isinstance(next_offset, int):
            raise ConnectorError(f"SugarCRM sent a {module} page without records and next_offset.")
        for row in rows:
            if not isinstance(row, dict) or not row.get("id"):
                raise ConnectorError(f"SugarCRM sent a {module} record without an id.")
            try:
                mapping.modified_ms(row)
            except mapping.UnreadableRecord as error:
                raise ConnectorError(f"SugarCRM sent a {module} page: {error}") from None
        return rows, next_offset != -1 and bool(rows)

    def _by_id(
        self, module: str, expressions: list[dict[str, Any]], *, fields: list[str]
    ) -> Iterator[list[dict[str, Any]]]:
        """Every record the filter matches, a page at a time, keyset on id (ids never change)."""
        last: str | None = None
        while True:
            after = [{"id": {"$gt": last}}] if last else []
            rows, more = self._filter_page(
                module, expressions + after, fields=fields, max_num=PAGE_SIZE
            )
            yield rows
            if not more:
                return
            last = str(rows[-1]["id"])

    def _custom_fields(self, object_type: str) -> list[str]:
        """The custom fields of this module: "field" (every module) or "Leads.field" (one)."""
        module = mapping.MODULES[object_type]
        return [
            name.rpartition(".")[2]
            for name in self.custom_fields
            if "." not in name or name.startswith(module + ".")
        ]

    def _fields(self, object_type: str) -> list[str]:
        return mapping.fields_to_request(object_type, self._custom_fields(object_type))

    def _record(self, object_type: str, row: Any) -> SourceRecord:
        return mapping.record_from_sugar(
            object_type,
            row,
            instance_url=self.session.instance_url,
            custom_fields=self._custom_fields(object_type),
        )

    def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = self._authorized(method, path, **kwargs)
        if response.status_code >= 300:
            raise _error(response, f"{method} {API}{path}")
        answer = response.json()
        if not isinstance(answer, dict):
            raise ConnectorError(f"SugarCRM answered {method} {path} with something not an object.")
        return answer

    def _authorized(self, method: str, path: str, **kwargs: Any) -> CrmResponse:
        response = send_with_fresh_token(
            lambda: self._send(method, path, **kwargs),
            expires_at=float(self.credentials.get("expires_at") or 0),
            refresh=self.session.renew,
            rejected=_session_rejected,
        )
        if response.status_code == 401:
            raise ConnectorError(
                f"SugarCRM rejected a fresh session (401 {error_of(response)}); check the "
                "API user and its platform.",
                permanent=True,
            )
        return response

    def _send(self, method: str, path: str, **kwargs: Any) -> CrmResponse:
        return self.client.send(
            method,
            self.session.instance_url + API + path,
            headers={
                "OAuth-Token": str(self.credentials.get("access_token") or ""),
                "Accept": "application/json",
            },
            **kwargs,
        )

    def authorization_url(self, *, state: str, redirect_uri: str) -> str:
        _password_only()

    def connect(self, *, code: str, redirect_uri: str) -> None:
        _password_only()


def _after(cursor: Cursor) -> list[dict[str, Any]]:
    """The records after the cursor in (date_modified, id) order."""
    if not cursor.since_ms:
        return []
    since = mapping.sugar_time(cursor.since_ms)
    if not cursor.after:
        return [{"date_modified": {"$gte": since}}]
    same_time_later_id = {
        "$and": [{"date_modified": {"$gte": since}}, {"id": {"$gt": cursor.after}}]
    }
    return [{"$or": [{"date_modified": {"$gt": since}}, same_time_later_id]}]


def _session_rejected(response: CrmResponse) -> bool:
    return response.status_code == 401 and error_of(response).split(":")[0] in SESSION_ERRORS


def _error(response: CrmResponse, what: str) -> ConnectorError:
    status = response.status_code
    return ConnectorError(
        f"SugarCRM answered {status} to {what}: {error_of(response)}",
        permanent=300 <= status < 500 and status not in PASSING_STATUSES,
    )


def _password_only() -> NoReturn:
    raise ConnectorError(
        "SugarCRM connects with an API user's username and password (the OAuth password "
        "grant), not a consent page: give instance_url, username and password.",
        permanent=True,
    )
