"""Pure mapping between Copper API JSON and our dataclasses.

People and companies as the search endpoints answer them (crm-apis-more.md section 3.2):
`phone_numbers` as `{number, category}`, `address.country`, `assignee_id` (the owner),
`custom_fields` as `{custom_field_definition_id, value}`, unix-second `date_modified`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from connectors.interface import CallLogEntry, SourcePhone, SourceRecord
from connectors.record_fields import iso_region, plain_text

# People and companies have separate id spaces in Copper; ours is one per connection.
COMPANY_ID_PREFIX = "company:"
PHONE_KINDS = {"mobile": "mobile", "work": "work", "home": "home"}  # Copper's categories
OUTCOME_WORDS = {
    "answered": "answered",
    "transferred": "answered and transferred",
    "missed": "missed",
    "busy": "busy",
    "failed": "failed",
}


class UnreadableRecord(ValueError):
    pass


def record_from_person(
    obj: Any, *, app_url: str = "", custom_fields: Iterable[str] = ()
) -> SourceRecord:
    """A Copper person as a SourceRecord; UnreadableRecord without an id."""
    person_id = _id(obj)
    first, last = plain_text(obj.get("first_name")), plain_text(obj.get("last_name"))
    if not first and not last:
        first, _, last = plain_text(obj.get("name")).partition(" ")
    return SourceRecord(
        external_id=str(person_id),
        first_name=first[:150],
        last_name=last[:150],
        company=plain_text(obj.get("company_name"))[:255],
        crm_url=f"{app_url}/people/{person_id}" if app_url else "",
        country=_country(obj),
        phones=_phones(obj.get("phone_numbers")),
        custom_fields=_custom_fields(obj, custom_fields),
        owner_id=_owner_id(obj),
    )


def record_from_company(
    obj: Any, *, app_url: str = "", custom_fields: Iterable[str] = ()
) -> SourceRecord:
    """A Copper company as an `is_company` record with the external id `company:<id>`."""
    company_id = _id(obj)
    return SourceRecord(
        external_id=f"{COMPANY_ID_PREFIX}{company_id}",
        company=plain_text(obj.get("name"))[:255],
        is_company=True,
        crm_url=f"{app_url}/companies/{company_id}" if app_url else "",
        country=_country(obj),
        phones=_phones(obj.get("phone_numbers")),
        custom_fields=_custom_fields(obj, custom_fields),
        owner_id=_owner_id(obj),
    )


def unix_seconds(obj: Any, field: str) -> int:
    """A record's unix-second time field (date_modified, date_created)."""
    value = obj.get(field) if isinstance(obj, Mapping) else None
    if not isinstance(value, int) or isinstance(value, bool):
        raise UnreadableRecord(f"a record without a readable {field}")
    return value


def parent_of(external_id: str | None) -> dict[str, Any] | None:
    """Our external id as Copper's `{type, id}` identifier of a person or company."""
    if not external_id:
        return None
    company = external_id.startswith(COMPANY_ID_PREFIX)
    number = external_id.removeprefix(COMPANY_ID_PREFIX)
    if not number.isdigit():
        raise ValueError(f"{external_id!r} is not a Copper person or company id.")
    return {"type": "company" if company else "person", "id": int(number)}


def activity_body(entry: CallLogEntry, *, phone_call_type: int, agent: str = "") -> dict[str, Any]:
    """POST /activities: a `Phone Call` user activity on the contact, at the call's time."""
    body: dict[str, Any] = {
        "parent": parent_of(entry.contact_external_id),
        "type": {"category": "user", "id": phone_call_type},
        "details": call_details(entry, agent=agent),
        "activity_date": int(entry.started_at.timestamp()),
    }
    if entry.owner_user_id:
        body["user_id"] = int(entry.owner_user_id)
    return body


def task_body(entry: CallLogEntry) -> dict[str, Any]:
    """POST /tasks: an open, high-priority task due at the missed call's time."""
    caller = entry.from_number if entry.direction == "inbound" else entry.to_number
    body: dict[str, Any] = {
        "name": entry.subject or f"Call back {caller} (missed call)",
        "due_date": int(entry.started_at.timestamp()),
        "priority": "High",
        "status": "Open",
        "details": call_details(entry),
    }
    parent = parent_of(entry.contact_external_id)
    if parent:
        body["related_resource"] = parent
    if entry.owner_user_id:
        body["assignee_id"] = int(entry.owner_user_id)
    return body


def person_body(*, e164: str, name: str) -> dict[str, Any]:
    """POST /people: a person needs a name, so the number stands in for an unknown caller's."""
    return {"name": name.strip() or e164, "phone_numbers": [{"number": e164, "category": "mobile"}]}


def call_details(entry: CallLogEntry, *, agent: str = "") -> str:
    """The activity's text: Copper activities have no fields for outcome, numbers or duration."""
    minutes, seconds = divmod(entry.duration_seconds, 60)
    lines = [
        entry.subject or f"{entry.direction.capitalize()} call",
        f"Outcome: {OUTCOME_WORDS[entry.outcome]}; duration {minutes}:{seconds:02d}",
        f"From {entry.from_number} to {entry.to_number}",
        *(["", *entry.notes.splitlines()] if entry.notes.strip() else []),
    ]
    if entry.recording_url:
        lines.append(f"Recording: {entry.recording_url}")
    if agent:
        lines.append(f"Agent: {agent}")
    lines.append(call_marker(entry.call_id))
    return "\n".join(lines)


def call_marker(call_id: str) -> str:
    """Our call id as the details' last line: how find_logged recognises the record."""
    return f"CallBridge call {call_id}"


def _id(obj: Any) -> int:
    if not isinstance(obj, Mapping) or not isinstance(obj.get("id"), int):
        raise UnreadableRecord("a record without an id")
    return int(obj["id"])


def _country(obj: Mapping[str, Any]) -> str:
    address = obj.get("address")
    return iso_region(address.get("country")) if isinstance(address, Mapping) else ""


def _owner_id(obj: Mapping[str, Any]) -> str:
    owner = obj.get("assignee_id")
    return str(owner) if isinstance(owner, int) and not isinstance(owner, bool) else ""


def _phones(values: Any) -> tuple[SourcePhone, ...]:
    if not isinstance(values, list):
        return ()
    phones, seen = [], set()
    for item in values:
        if not isinstance(item, Mapping):
            continue
        number = plain_text(item.get("number"))[:64]
        if number and number not in seen:
            seen.add(number)
            kind = PHONE_KINDS.get(plain_text(item.get("category")).lower(), "other")
            phones.append(SourcePhone(number=number, kind=kind))
    return tuple(phones)


def _custom_fields(obj: Mapping[str, Any], wanted: Iterable[str]) -> dict[str, Any]:
    """Configured custom field definition ids (as text) -> their values, when set."""
    names = {str(name) for name in wanted}
    found = {}
    for field in obj.get("custom_fields") or []:
        if not isinstance(field, Mapping):
            continue
        name = str(field.get("custom_field_definition_id"))
        value = field.get("value")
        if name in names and value not in (None, "", [], {}):
            found[name] = value
    return found
