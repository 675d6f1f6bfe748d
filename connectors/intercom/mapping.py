"""Pure mapping between Intercom API JSON (version 2.11) and our dataclasses.

Contacts are users and leads alike (`role`), with one `phone`, one `name`, `owner_id` (an
admin), `location.country` and `custom_attributes`; companies have no phone field, so a
`phone` custom attribute is read (crm-apis-more.md section 6.2).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from html import escape, unescape
from typing import Any

from connectors.interface import CallLogEntry, SourcePhone, SourceRecord
from connectors.record_fields import iso_region, plain_text

# Contacts and companies have separate id spaces in Intercom; ours is one per connection.
COMPANY_ID_PREFIX = "company:"
APP_URL = "https://app.intercom.com/a/apps"
OUTCOME_WORDS = {
    "answered": "answered",
    "transferred": "answered and transferred",
    "missed": "missed",
    "busy": "busy",
    "failed": "failed",
}


class UnreadableRecord(ValueError):
    pass


def record_from_contact(obj: Any, *, custom_fields: Iterable[str] = ()) -> SourceRecord:
    """An Intercom contact (user or lead) as a SourceRecord; UnreadableRecord without an id."""
    contact_id = _id(obj)
    first, _, last = plain_text(obj.get("name")).partition(" ")
    location = obj.get("location")
    country = location.get("country") if isinstance(location, Mapping) else None
    workspace = plain_text(obj.get("workspace_id"))
    return SourceRecord(
        external_id=contact_id,
        first_name=first[:150],
        last_name=last.strip()[:150],
        crm_url=f"{APP_URL}/{workspace}/users/{contact_id}/all-conversations" if workspace else "",
        country=iso_region(country),
        phones=_phones(obj.get("phone"), "mobile"),
        custom_fields={"role": plain_text(obj.get("role")), **_custom(obj, custom_fields)},
        owner_id=_owner_id(obj),
    )


def record_from_company(obj: Any, *, custom_fields: Iterable[str] = ()) -> SourceRecord:
    """An Intercom company as an `is_company` record with the external id `company:<id>`."""
    company_id = _id(obj)
    attributes = obj.get("custom_attributes")
    phone = attributes.get("phone") if isinstance(attributes, Mapping) else None
    workspace = plain_text(obj.get("app_id"))
    return SourceRecord(
        external_id=f"{COMPANY_ID_PREFIX}{company_id}",
        company=plain_text(obj.get("name"))[:255],
        is_company=True,
        crm_url=f"{APP_URL}/{workspace}/companies/{company_id}" if workspace else "",
        phones=_phones(phone, "work"),
        custom_fields=_custom(obj, custom_fields),
    )


def updated_at(obj: Any) -> int:
    """A record's `updated_at` (unix seconds; search matches it per day, records carry it all)."""
    value = obj.get("updated_at") if isinstance(obj, Mapping) else None
    if not isinstance(value, int) or isinstance(value, bool):
        raise UnreadableRecord("a record without a readable updated_at")
    return value


def contact_of(external_id: str | None) -> str | None:
    """Our external id as the Intercom contact a note or conversation belongs to."""
    if not external_id:
        return None
    if external_id.startswith(COMPANY_ID_PREFIX):
        raise ValueError("Intercom notes and conversations belong to contacts, not companies.")
    return external_id


def note_body(entry: CallLogEntry, *, agent: str = "") -> str:
    """The call as a note's HTML: notes have no fields for outcome, numbers or duration."""
    return _html([*call_lines(entry, agent=agent), call_marker(entry.call_id)])


def update_body(entry: CallLogEntry, *, agent: str = "") -> str:
    """A second note: Intercom notes cannot be edited, so a later change is told in a new one."""
    return _html([f"Update to {call_marker(entry.call_id)}:", *call_lines(entry, agent=agent)])


def conversation_body(entry: CallLogEntry) -> str:
    """A missed call's conversation, as plain text (conversations take no HTML)."""
    caller = entry.from_number if entry.direction == "inbound" else entry.to_number
    lines = [
        f"Missed call from {caller} at {entry.started_at:%Y-%m-%d %H:%M} UTC: please call back.",
        *entry.notes.strip().splitlines(),
        call_marker(entry.call_id),
    ]
    return "\n".join(lines)


def contact_body(*, e164: str, name: str) -> dict[str, Any]:
    """POST /contacts: an unknown caller becomes a lead (users need an email or external id)."""
    body: dict[str, Any] = {"role": "lead", "phone": e164}
    if name.strip():
        body["name"] = name.strip()
    return body


def call_lines(entry: CallLogEntry, *, agent: str = "") -> list[str]:
    minutes, seconds = divmod(entry.duration_seconds, 60)
    lines = [
        entry.subject or f"{entry.direction.capitalize()} call",
        f"Outcome: {OUTCOME_WORDS[entry.outcome]}; duration {minutes}:{seconds:02d}",
        f"From {entry.from_number} to {entry.to_number} at {entry.started_at:%Y-%m-%d %H:%M} UTC",
        *entry.notes.strip().splitlines(),
    ]
    if entry.recording_url:
        lines.append(f"Recording: {entry.recording_url}")
    if agent:
        lines.append(f"Agent: {agent}")
    return lines


def call_marker(call_id: str) -> str:
    """Our call id as a line of the note: how a note of ours is recognised."""
    return f"CallBridge call {call_id}"


def note_lines(body: str) -> list[str]:
    """A note's HTML back as its lines of text (what _html wrote)."""
    text = re.sub(r"<[^>]*>", "", re.sub(r"</p>|<br\s*/?>", "\n", body))
    return [unescape(line).strip() for line in text.splitlines()]


def told(body: str) -> list[str]:
    """What a note of ours says about the call, without the lines naming our call id."""
    return [
        line
        for line in note_lines(body)
        if line and not line.startswith(("CallBridge call ", "Update to CallBridge call "))
    ]


def _html(lines: list[str]) -> str:
    return "".join(f"<p>{escape(line)}</p>" for line in lines if line.strip())


def _id(obj: Any) -> str:
    if not isinstance(obj, Mapping) or not plain_text(obj.get("id")):
        raise UnreadableRecord("a record without an id")
    return plain_text(obj["id"])


def _owner_id(obj: Mapping[str, Any]) -> str:
    owner = obj.get("owner_id")
    return str(owner) if isinstance(owner, int | str) and not isinstance(owner, bool) else ""


def _phones(value: Any, kind: str) -> tuple[SourcePhone, ...]:
    number = plain_text(value)[:64]
    return (SourcePhone(number=number, kind=kind),) if number else ()


def _custom(obj: Mapping[str, Any], wanted: Iterable[str]) -> dict[str, Any]:
    """Configured custom attributes -> their values, when set."""
    attributes = obj.get("custom_attributes")
    if not isinstance(attributes, Mapping):
        return {}
    return {
        name: attributes[name] for name in wanted if attributes.get(name) not in (None, "", [], {})
    }
