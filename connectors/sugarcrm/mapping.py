"""Pure mapping between SugarCRM REST v11 records and our dataclasses.

Records: `{id, date_modified (ISO 8601 with the API user's offset), _module, ...fields}`
(crm-apis-more.md section 2.2); Calls fields from the Calls vardefs (section 2.4).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from connectors.interface import CallLogEntry, CrmUser, SourceRecord
from connectors.record_fields import iso_region, named_phones, plain_text

MODULES = {"contacts": "Contacts", "accounts": "Accounts", "leads": "Leads"}
# Our external ids: Contacts keep Sugar's id; Accounts and Leads are prefixed (one id space per
# connection, and a call's parent_type must say which module a stored id points at).
ID_PREFIXES = {"contacts": "", "accounts": "account:", "leads": "lead:"}
# (field, kind) in the order a caller card should show them.
PHONE_FIELDS = {
    "contacts": (
        ("phone_mobile", "mobile"),
        ("phone_work", "work"),
        ("phone_home", "home"),
        ("phone_other", "other"),
    ),
    "leads": (
        ("phone_mobile", "mobile"),
        ("phone_work", "work"),
        ("phone_home", "home"),
        ("phone_other", "other"),
    ),
    "accounts": (("phone_office", "work"), ("phone_alternate", "other")),
}
COUNTRY_FIELDS = {
    "contacts": "primary_address_country",
    "leads": "primary_address_country",
    "accounts": "billing_address_country",
}
NAME_FIELDS = {
    "contacts": ("first_name", "last_name", "account_name"),
    "leads": ("first_name", "last_name", "account_name"),
    "accounts": ("name",),
}
OWNER_FIELD = "assigned_user_id"
USER_FIELDS = ("user_name", "full_name", "email1", "status")
CALL_STATUS = {  # call_status_dom: Planned | Held | Not Held
    "answered": "Held",
    "transferred": "Held",
    "missed": "Not Held",
    "busy": "Not Held",
    "failed": "Not Held",
}


class UnreadableRecord(ValueError):
    pass


def fields_to_request(object_type: str, custom_fields: Iterable[str]) -> list[str]:
    """The `fields` of a filter request (id and date_modified always come)."""
    names = {
        *NAME_FIELDS[object_type],
        *(name for name, _ in PHONE_FIELDS[object_type]),
        COUNTRY_FIELDS[object_type],
        OWNER_FIELD,
        *custom_fields,
    }
    return sorted(names)


def record_from_sugar(
    object_type: str, record: Any, *, instance_url: str = "", custom_fields: Iterable[str] = ()
) -> SourceRecord:
    """A Contacts, Accounts or Leads record as a SourceRecord; UnreadableRecord without an id."""
    if not isinstance(record, Mapping) or not plain_text(record.get("id")):
        raise UnreadableRecord("a record without an id")
    sugar_id = plain_text(record["id"])
    extra = {}
    for name in custom_fields:
        value = record.get(name)
        if value not in (None, "", []):
            extra[name] = value
    common: dict[str, Any] = {
        "external_id": ID_PREFIXES[object_type] + sugar_id,
        "crm_url": record_url(instance_url, MODULES[object_type], sugar_id),
        "country": iso_region(record.get(COUNTRY_FIELDS[object_type])),
        "phones": named_phones(PHONE_FIELDS[object_type], record),
        "owner_id": plain_text(record.get(OWNER_FIELD)),
        "custom_fields": extra,
    }
    if object_type == "accounts":
        return SourceRecord(company=plain_text(record.get("name"))[:255], is_company=True, **common)
    return SourceRecord(
        first_name=plain_text(record.get("first_name"))[:150],
        last_name=plain_text(record.get("last_name"))[:150],
        company=plain_text(record.get("account_name"))[:255],
        **common,
    )


def user_from_sugar(record: Any) -> CrmUser:
    """A Users record: its primary email is `email1` (else the primary of its `email` list)."""
    if not isinstance(record, Mapping) or not plain_text(record.get("id")):
        raise UnreadableRecord("a user without an id")
    email = plain_text(record.get("email1"))
    if not email:
        addresses = [a for a in record.get("email") or [] if isinstance(a, Mapping)]
        primary = [a for a in addresses if a.get("primary_address")] or addresses
        email = plain_text(primary[0].get("email_address")) if primary else ""
    return CrmUser(
        external_id=plain_text(record["id"]),
        email=email,
        name=plain_text(record.get("full_name")) or plain_text(record.get("user_name")),
    )


def modified_ms(record: Mapping[str, Any]) -> int:
    """The record's date_modified in epoch ms (the cursor's unit)."""
    value = record.get("date_modified")
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError as error:
        raise UnreadableRecord(f"record {record.get('id')}: unreadable time {value!r}") from error
    if moment.tzinfo is None:
        raise UnreadableRecord(f"record {record.get('id')}: a time without an offset {value!r}")
    return int(moment.timestamp() * 1000)


def sugar_time(ms: int) -> str:
    """Epoch ms as a Sugar datetime: ISO 8601 to the second, with an offset."""
    return datetime.fromtimestamp(ms // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def record_url(instance_url: str, module: str, sugar_id: str) -> str:
    """Sugar's web app routes records as #<Module>/<id>."""
    return f"{instance_url.rstrip('/')}/#{module}/{sugar_id}" if instance_url else ""


def parent_of(external_id: str) -> dict[str, str]:
    """The call's "related to" record: parent_type (the module) and parent_id."""
    for object_type, prefix in ID_PREFIXES.items():
        if prefix and external_id.startswith(prefix):
            return {"parent_type": MODULES[object_type], "parent_id": external_id[len(prefix) :]}
    return {"parent_type": "Contacts", "parent_id": external_id}


def call_fields(entry: CallLogEntry) -> dict[str, Any]:
    """A Calls record: direction, status Held / Not Held, duration in hours and minutes."""
    # Sugar keeps whole minutes: a started minute counts (the seconds are in the description).
    hours, minutes = divmod((max(0, entry.duration_seconds) + 59) // 60, 60)
    return {
        "name": entry.subject or _default_subject(entry),
        "date_start": sugar_time(int(entry.started_at.timestamp() * 1000)),
        "duration_hours": hours,
        "duration_minutes": minutes,
        "direction": "Outbound" if entry.direction == "outbound" else "Inbound",
        "status": CALL_STATUS[entry.outcome],
        "description": description(entry),
        **_links(entry),
    }


def task_fields(entry: CallLogEntry) -> dict[str, Any]:
    """A Tasks record asking the agent to call a missed caller back, due at the call's time."""
    return {
        "name": f"Missed call from {entry.from_number}: call back",
        "date_due": sugar_time(int(entry.started_at.timestamp() * 1000)),
        "status": "Not Started",
        "priority": "High",
        "description": description(entry),
        **_links(entry),
    }


def note_fields(entry: CallLogEntry, call_remote_id: str) -> dict[str, Any]:
    """A Notes record under the Calls record, holding the call's notes (and summary)."""
    fields: dict[str, Any] = {
        "name": f"Notes: {entry.subject or _default_subject(entry)}",
        "description": entry.notes.strip(),
        "parent_type": "Calls",
        "parent_id": call_remote_id,
    }
    contact = entry.contact_external_id
    if contact and parent_of(contact)["parent_type"] == "Contacts":
        fields["contact_id"] = contact
    if entry.owner_user_id:
        fields[OWNER_FIELD] = entry.owner_user_id
    return fields


def contact_fields(*, e164: str, name: str) -> dict[str, Any]:
    """A new Contacts record for an unknown caller (last_name is required in Sugar)."""
    first, _, last = name.strip().rpartition(" ")
    return {"first_name": first, "last_name": last or e164, "phone_work": e164}


def description(entry: CallLogEntry) -> str:
    """Our call id first (find_logged looks for it with $starts), then what was said."""
    lines = [call_marker(entry.call_id)]
    if entry.notes.strip():
        lines.append(entry.notes.strip())
    lines.append(
        f"Outcome: {entry.outcome}, {entry.duration_seconds} s. "
        f"From {entry.from_number} to {entry.to_number}."
    )
    if entry.recording_url:
        lines.append(f"Recording: {entry.recording_url}")
    return "\n".join(lines)


def call_marker(call_id: str) -> str:
    """The description's first line, naming our call: Calls and Tasks have no field of ours."""
    return f"CallBridge call {call_id}"


def _links(entry: CallLogEntry) -> dict[str, Any]:
    links = parent_of(entry.contact_external_id) if entry.contact_external_id else {}
    if entry.owner_user_id:
        links[OWNER_FIELD] = entry.owner_user_id
    return links


def _default_subject(entry: CallLogEntry) -> str:
    if entry.direction == "inbound":
        return f"Call from {entry.from_number}"
    return f"Call to {entry.to_number}"
