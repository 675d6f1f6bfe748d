"""Pure mapping between Pipedrive API JSON and our dataclasses.

Persons and organizations are API v2 objects (../shared/reference/crm-apis.md section 3.3):
root `phones`/`emails` as `{value, primary, label}`, custom fields under `custom_fields` keyed by
40-character hashes, `update_time` in RFC 3339. Search results (v2 persons/search) carry `phones`
as plain strings instead.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.interface import CallLogEntry, SourcePhone, SourceRecord
from connectors.record_fields import iso_region, plain_text

# Persons and organizations have separate id spaces in Pipedrive; ours is one per connection.
ORG_ID_PREFIX = "org:"
PHONE_KINDS = {"mobile": "mobile", "work": "work", "home": "home"}  # Pipedrive's labels
# Call-log outcomes (v1 AddCallLogRequest): connected, no_answer, left_message, left_voicemail,
# wrong_number, busy.
CALL_LOG_OUTCOME = {
    "answered": "connected",
    "transferred": "connected",
    "missed": "no_answer",
    "busy": "busy",
    "failed": "no_answer",
}
CALL_LOG_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"  # UTC, as /v1/callLogs wants it


class UnreadableRecord(ValueError):
    pass


def record_from_person(
    obj: Any,
    *,
    app_url: str = "",
    org_names: Mapping[int, str] | None = None,
    custom_fields: Iterable[str] = (),
) -> SourceRecord:
    """A v2 person as a SourceRecord; UnreadableRecord if it has no id."""
    person_id = _id(obj)
    first, last = plain_text(obj.get("first_name")), plain_text(obj.get("last_name"))
    if not first and not last:
        first, _, last = plain_text(obj.get("name")).partition(" ")
    org_id = obj.get("org_id")
    address = obj.get("postal_address")
    return SourceRecord(
        external_id=str(person_id),
        first_name=first[:150],
        last_name=last[:150],
        company=(org_names or {}).get(org_id, "")[:255] if isinstance(org_id, int) else "",
        crm_url=f"{app_url}/person/{person_id}" if app_url else "",
        country=iso_region(address.get("country") if isinstance(address, Mapping) else None),
        phones=_phones(obj.get("phones")),
        custom_fields=_custom_fields(obj, custom_fields),
        owner_id=_owner_id(obj),
    )


def record_from_organization(
    obj: Any,
    *,
    app_url: str = "",
    phone_fields: Iterable[str] = (),
    custom_fields: Iterable[str] = (),
) -> SourceRecord:
    """A v2 organization as a company record; its numbers live in phone-type custom fields."""
    org_id = _id(obj)
    extra = obj.get("custom_fields") if isinstance(obj.get("custom_fields"), Mapping) else {}
    numbers = [{"value": v, "label": "work"} for name in phone_fields for v in _values(extra, name)]
    address = obj.get("address")
    return SourceRecord(
        external_id=f"{ORG_ID_PREFIX}{org_id}",
        company=plain_text(obj.get("name"))[:255],
        is_company=True,
        crm_url=f"{app_url}/organization/{org_id}" if app_url else "",
        country=iso_region(address.get("country") if isinstance(address, Mapping) else None),
        phones=_phones(numbers),
        custom_fields=_custom_fields(obj, custom_fields),
        owner_id=_owner_id(obj),
    )


def record_from_search_item(item: Any, *, app_url: str = "") -> SourceRecord:
    """A v2 persons/search result item (phones are plain strings there, without labels)."""
    person_id = _id(item)
    first, _, last = plain_text(item.get("name")).partition(" ")
    organization = item.get("organization")
    phones = [{"value": p} for p in item.get("phones") or [] if isinstance(p, str)]
    return SourceRecord(
        external_id=str(person_id),
        first_name=first[:150],
        last_name=last[:150],
        company=plain_text(organization.get("name")) if isinstance(organization, Mapping) else "",
        crm_url=f"{app_url}/person/{person_id}" if app_url else "",
        phones=_phones(phones),
    )


def updated_ms(obj: Mapping[str, Any]) -> int:
    """The record's `update_time` in epoch ms (the incremental cursor's unit)."""
    value = plain_text(obj.get("update_time"))
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as error:
        raise UnreadableRecord(
            f"record {obj.get('id')}: unreadable update_time {value!r}"
        ) from error
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # v1's "YYYY-MM-DD HH:MM:SS" is UTC
    return int(moment.timestamp() * 1000)


def rfc3339(ms: int) -> str:
    """Epoch ms as the RFC 3339 second `updated_since` takes (rounded down: it is `>=`)."""
    return datetime.fromtimestamp(ms // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def call_log_body(
    entry: CallLogEntry, *, person_id: int | None, org_id: int | None, agent: str = ""
) -> dict:
    """POST /v1/callLogs: outcome, numbers, UTC start/end, duration in seconds as a string.

    `agent` (a name) goes in the note instead of user_id when the call log cannot be the agent's.
    """
    started = entry.started_at.astimezone(UTC)
    body: dict[str, Any] = {
        "outcome": CALL_LOG_OUTCOME[entry.outcome],
        "to_phone_number": entry.to_number,
        "from_phone_number": entry.from_number,
        "start_time": started.strftime(CALL_LOG_TIME_FORMAT),
        "end_time": (started + timedelta(seconds=entry.duration_seconds)).strftime(
            CALL_LOG_TIME_FORMAT
        ),
        "duration": str(entry.duration_seconds),
        "subject": call_subject(entry),
        "note": call_note(entry, agent=agent),
    }
    if entry.owner_user_id and not agent:
        body["user_id"] = int(entry.owner_user_id)
    if person_id is not None:
        body["person_id"] = person_id
    if org_id is not None:
        body["org_id"] = org_id
    return body


def task_body(entry: CallLogEntry, *, person_id: int | None, org_id: int | None) -> dict:
    """POST /api/v2/activities: an open `call` activity due at the missed call's time."""
    started = entry.started_at.astimezone(UTC)
    caller = entry.from_number if entry.direction == "inbound" else entry.to_number
    body: dict[str, Any] = {
        "subject": entry.subject or f"Call back {caller} (missed call)",
        "type": "call",
        "due_date": started.strftime("%Y-%m-%d"),
        "due_time": started.strftime("%H:%M"),
        "done": False,
        "note": call_note(entry),
    }
    if entry.owner_user_id:
        body["owner_id"] = int(entry.owner_user_id)
    if person_id is not None:
        # v2 makes person_id read-only: a primary participant sets it.
        body["participants"] = [{"person_id": person_id, "primary": True}]
    if org_id is not None:
        body["org_id"] = org_id
    return body


def call_subject(entry: CallLogEntry) -> str:
    return entry.subject or f"{entry.direction.capitalize()} call"


def call_note(entry: CallLogEntry, *, agent: str = "") -> str:
    """The note as HTML: the notes, the recording link, the agent when the record cannot name
    them, and our call id (no other field for it)."""
    parts = [f"<p>{html.escape(line)}</p>" for line in entry.notes.splitlines() if line.strip()]
    if entry.recording_url:
        url = html.escape(entry.recording_url, quote=True)
        parts.append(f'<p>Recording: <a href="{url}">{url}</a></p>')
    if agent:
        parts.append(f"<p>Agent: {html.escape(agent)}</p>")
    parts.append(call_marker(entry.call_id))
    return "".join(parts)


def call_marker(call_id: str) -> str:
    """Our call id as the note carries it: how a call's activity is recognised."""
    return f"<p>CallBridge call {html.escape(call_id)}</p>"


def linked_record(external_id: str | None) -> tuple[int | None, int | None]:
    """Our external id as (person_id, org_id) for Pipedrive's link fields."""
    if not external_id:
        return None, None
    org = external_id.startswith(ORG_ID_PREFIX)
    number = external_id.removeprefix(ORG_ID_PREFIX)
    if not number.isdigit():
        raise ValueError(f"{external_id!r} is not a Pipedrive person or organization id.")
    return (None, int(number)) if org else (int(number), None)


def _owner_id(obj: Mapping[str, Any]) -> str:
    owner = obj.get("owner_id")  # v2: the owning user's id as an integer
    return str(owner) if isinstance(owner, int) and not isinstance(owner, bool) else ""


def _id(obj: Any) -> int:
    if not isinstance(obj, Mapping) or not isinstance(obj.get("id"), int):
        raise UnreadableRecord("a record without an id")
    return obj["id"]


def _phones(values: Any) -> tuple[SourcePhone, ...]:
    """Phone objects, the primary one first, each number once."""
    if not isinstance(values, list):
        return ()
    items = [v for v in values if isinstance(v, Mapping)]
    items.sort(key=lambda v: not v.get("primary"))
    phones, seen = [], set()
    for item in items:
        number = plain_text(item.get("value"))[:64]
        if number and number not in seen:
            seen.add(number)
            kind = PHONE_KINDS.get(plain_text(item.get("label")).lower(), "other")
            phones.append(SourcePhone(number=number, kind=kind))
    return tuple(phones)


def _values(fields: Mapping[str, Any], name: str) -> list[str]:
    """A custom field's value(s) as strings (a phone field may hold one or several)."""
    value = fields.get(name)
    if isinstance(value, list):
        return [plain_text(v.get("value") if isinstance(v, Mapping) else v) for v in value]
    if isinstance(value, Mapping):
        return [plain_text(value.get("value"))]
    return [plain_text(value)] if value not in (None, "") else []


def _custom_fields(obj: Mapping[str, Any], names: Iterable[str]) -> dict[str, Any]:
    """Configured fields: a custom field hash key, else a standard field such as owner_id."""
    custom = obj.get("custom_fields") if isinstance(obj.get("custom_fields"), Mapping) else {}
    found = {}
    for name in names:
        value = custom[name] if name in custom else obj.get(name)
        if value not in (None, "", [], {}):
            found[name] = value
    return found
