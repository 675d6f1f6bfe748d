"""Pure mapping from HubSpot CRM v3 JSON to our dataclasses.

Objects: https://developers.hubspot.com/docs/api/crm/understanding-the-crm (SimplePublicObject:
id, properties (string -> string|null), createdAt, updatedAt, archived).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from connectors.interface import CallLogEntry, CrmUser, SourceRecord
from connectors.record_fields import iso_region, named_phones, plain_text

# Companies and contacts have separate id spaces in HubSpot; ours is one per connection.
COMPANY_ID_PREFIX = "company:"
# The modification-time property differs per object type (search filters and sorts on it).
MODIFIED_PROPERTY = {"contacts": "lastmodifieddate", "companies": "hs_lastmodifieddate"}
CONTACT_PROPERTIES = (
    "firstname", "lastname", "company", "phone", "mobilephone", "country", "hubspot_owner_id",
)  # fmt: skip
COMPANY_PROPERTIES = ("name", "phone", "country", "hubspot_owner_id")

# Default (HUBSPOT_DEFINED) association type ids of the v4 associations API, by object and target:
# https://developers.hubspot.com/docs/guides/api/crm/associations/associations-v4
ASSOCIATION_TYPE_IDS = {
    ("calls", "contacts"): 194,
    ("calls", "companies"): 182,
    ("tasks", "contacts"): 204,
    ("tasks", "companies"): 192,
}
# hs_call_status values: https://developers.hubspot.com/docs/guides/api/crm/engagements/calls
CALL_STATUS = {
    "answered": "COMPLETED",
    "transferred": "COMPLETED",
    "missed": "NO_ANSWER",
    "busy": "BUSY",
    "failed": "FAILED",
}
# hs_call_disposition is a per-account GUID: we look the default outcome up by its label.
DISPOSITION_LABEL = {
    "answered": "Connected",
    "transferred": "Connected",
    "busy": "Busy",
    "missed": "No answer",
}


class UnreadableRecord(ValueError):
    pass


def properties_to_request(object_type: str, custom_fields: Iterable[str]) -> list[str]:
    base = CONTACT_PROPERTIES if object_type == "contacts" else COMPANY_PROPERTIES
    return sorted({*base, MODIFIED_PROPERTY[object_type], *custom_fields})


def record_from_object(
    object_type: str, obj: Any, *, portal_id: str = "", custom_fields: Iterable[str] = ()
) -> SourceRecord:
    """A contact or company object as a SourceRecord; UnreadableRecord if it has no id."""
    if not isinstance(obj, Mapping) or not str(obj.get("id") or "").strip():
        raise UnreadableRecord("a record without an id")
    props = obj.get("properties")
    if not isinstance(props, Mapping):
        raise UnreadableRecord(f"record {obj['id']} has no properties object")
    hubspot_id = str(obj["id"]).strip()
    extra = {name: props[name] for name in custom_fields if plain_text(props.get(name))}
    country = iso_region(props.get("country"))
    if object_type == "companies":
        return SourceRecord(
            external_id=COMPANY_ID_PREFIX + hubspot_id,
            company=plain_text(props.get("name")),
            is_company=True,
            crm_url=_url(portal_id, "0-2", hubspot_id),
            country=country,
            phones=named_phones((("phone", "work"),), props),
            custom_fields=extra,
            owner_id=plain_text(props.get("hubspot_owner_id")),
        )
    return SourceRecord(
        external_id=hubspot_id,
        first_name=plain_text(props.get("firstname"))[:150],
        last_name=plain_text(props.get("lastname"))[:150],
        company=plain_text(props.get("company"))[:255],
        crm_url=_url(portal_id, "0-1", hubspot_id),
        country=country,
        phones=named_phones((("mobilephone", "mobile"), ("phone", "work")), props),
        custom_fields=extra,
        owner_id=plain_text(props.get("hubspot_owner_id")),
    )


def modified_ms(object_type: str, obj: Mapping[str, Any]) -> int:
    """The record's modification time in epoch ms (the search cursor's unit)."""
    props = obj.get("properties") or {}
    value = props.get(MODIFIED_PROPERTY[object_type]) or obj.get("updatedAt")
    if not value:
        raise UnreadableRecord(f"record {obj.get('id')} has no modification time")
    if str(value).isdigit():
        return int(value)
    try:
        return int(datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError as error:
        raise UnreadableRecord(f"record {obj.get('id')}: unreadable time {value!r}") from error


def _url(portal_id: str, type_id: str, hubspot_id: str) -> str:
    """The record's page; HubSpot's object type ids: 0-1 contacts, 0-2 companies."""
    return (
        f"https://app.hubspot.com/contacts/{portal_id}/record/{type_id}/{hubspot_id}"
        if portal_id
        else ""
    )


def call_properties(entry: CallLogEntry, *, disposition_id: str | None = None) -> dict[str, str]:
    """The properties of a call engagement (POST/PATCH /crm/v3/objects/calls)."""
    other = entry.to_number if entry.direction == "outbound" else entry.from_number
    properties = {
        "hs_timestamp": str(_epoch_ms(entry.started_at)),
        "hs_call_title": entry.subject or f"{entry.direction.title()} call {other}",
        "hs_call_body": entry.notes,
        "hs_call_direction": entry.direction.upper(),
        "hs_call_status": CALL_STATUS[entry.outcome],
        "hs_call_duration": str(entry.duration_seconds * 1000),  # milliseconds
        "hs_call_from_number": entry.from_number,
        "hs_call_to_number": entry.to_number,
        # Our id on the call; HubSpot's calling extensions key recordings by it.
        "hs_call_external_id": entry.call_id,
    }
    if entry.recording_url and entry.recording_url.startswith("https://"):
        properties["hs_call_recording_url"] = entry.recording_url  # HubSpot takes HTTPS only
    if entry.owner_user_id:
        properties["hubspot_owner_id"] = entry.owner_user_id
    if disposition_id:
        properties["hs_call_disposition"] = disposition_id
    return properties


def task_properties(entry: CallLogEntry) -> dict[str, str]:
    """A follow-up task for a missed call (POST /crm/v3/objects/tasks), due at the call's time."""
    properties = {
        "hs_timestamp": str(_epoch_ms(entry.started_at)),
        "hs_task_subject": entry.subject or f"Call back {entry.from_number} (missed call)",
        "hs_task_body": entry.notes,
        "hs_task_status": "NOT_STARTED",
        "hs_task_priority": "HIGH",
        "hs_task_type": "CALL",
    }
    if entry.owner_user_id:
        properties["hubspot_owner_id"] = entry.owner_user_id
    return properties


def associations(object_type: str, contact_external_id: str | None) -> list[dict[str, Any]]:
    """The v3 create body's `associations` linking a call or task to our contact's record."""
    if not contact_external_id:
        return []
    target, record_id = "contacts", contact_external_id
    if contact_external_id.startswith(COMPANY_ID_PREFIX):
        target, record_id = "companies", contact_external_id.removeprefix(COMPANY_ID_PREFIX)
    type_id = ASSOCIATION_TYPE_IDS[(object_type, target)]
    category = {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}
    return [{"to": {"id": record_id}, "types": [category]}]


def contact_properties(e164: str, name: str = "") -> dict[str, str]:
    """A new contact for an unknown caller: the number, and the name split once at a space."""
    first, _, last = name.strip().partition(" ")
    properties = {"phone": e164}
    if first:
        properties["firstname"] = first
    if last.strip():
        properties["lastname"] = last.strip()
    return properties


def user_from_owner(owner: Any) -> CrmUser:
    """An owner of GET /crm/v3/owners (id, email, firstName, lastName) as a CrmUser."""
    if not isinstance(owner, Mapping) or not plain_text(owner.get("id")):
        raise UnreadableRecord("an owner without an id")
    name = f"{plain_text(owner.get('firstName'))} {plain_text(owner.get('lastName'))}".strip()
    return CrmUser(
        external_id=plain_text(owner["id"]), email=plain_text(owner.get("email")), name=name
    )


def _epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)
