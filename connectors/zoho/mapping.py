"""Pure mapping between Zoho CRM v8 records and our dataclasses.

Records: https://www.zoho.com/crm/developer/docs/api/v8/get-records.html (`id`, `Owner`
{name, id, email}, `Modified_Time` ISO 8601 with the org's offset, lookups as {name, id}).
Calls fields: ../shared/reference/crm-apis.md section 4.5.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from connectors.interface import CallLogEntry, SourceRecord
from connectors.record_fields import iso_region, named_phones, plain_text

MODULES = {"contacts": "Contacts", "accounts": "Accounts", "leads": "Leads"}
# Our external ids: Contacts keep Zoho's id; Accounts and Leads are prefixed (one id space per
# connection, and log_call must know which module a stored id points at).
ID_PREFIXES = {"contacts": "", "accounts": "account:", "leads": "lead:"}
# (field, kind) in the order a caller card should show them.
PHONE_FIELDS = {
    "contacts": (
        ("Mobile", "mobile"),
        ("Phone", "work"),
        ("Home_Phone", "home"),
        ("Other_Phone", "other"),
        ("Asst_Phone", "other"),
    ),
    "leads": (("Mobile", "mobile"), ("Phone", "work")),
    "accounts": (("Phone", "work"),),
}
COUNTRY_FIELDS = {"contacts": "Mailing_Country", "leads": "Country", "accounts": "Billing_Country"}
NAME_FIELDS = {
    "contacts": ("First_Name", "Last_Name", "Account_Name"),
    "leads": ("First_Name", "Last_Name", "Company"),
    "accounts": ("Account_Name",),
}
# GET /{module} answers at most 50 fields per request (LIMIT_EXCEEDED above it).
MAX_FIELDS = 50


class UnreadableRecord(ValueError):
    pass


def fields_to_request(object_type: str, custom_fields: Iterable[str]) -> list[str]:
    """The `fields` parameter for object_type (mandatory in v8); ValueError past Zoho's 50."""
    names = {
        *NAME_FIELDS[object_type],
        *(name for name, _ in PHONE_FIELDS[object_type]),
        COUNTRY_FIELDS[object_type],
        "Owner",
        "Modified_Time",
        *custom_fields,
    }
    if len(names) > MAX_FIELDS:
        raise ValueError(f"Zoho answers at most {MAX_FIELDS} fields; drop some custom_fields.")
    return sorted(names)


def record_from_zoho(
    object_type: str,
    record: Any,
    *,
    crm_base_url: str = "",
    org_id: str = "",
    custom_fields: Iterable[str] = (),
) -> SourceRecord:
    """A Contacts, Accounts or Leads record as a SourceRecord; UnreadableRecord without an id."""
    if not isinstance(record, Mapping) or not plain_text(record.get("id")):
        raise UnreadableRecord("a record without an id")
    zoho_id = plain_text(record["id"])
    extra = {}
    for name in custom_fields:
        value = _plain(record.get(name))
        if value not in (None, "", []):
            extra[name] = value
    common = {
        "external_id": ID_PREFIXES[object_type] + zoho_id,
        "crm_url": record_url(crm_base_url, org_id, MODULES[object_type], zoho_id),
        "country": iso_region(record.get(COUNTRY_FIELDS[object_type])),
        "phones": named_phones(PHONE_FIELDS[object_type], record),
        "owner_email": plain_text((record.get("Owner") or {}).get("email"))
        if isinstance(record.get("Owner"), Mapping)
        else "",
        "custom_fields": extra,
    }
    if object_type == "accounts":
        return SourceRecord(
            company=plain_text(record.get("Account_Name"))[:255], is_company=True, **common
        )
    company = record.get("Account_Name") if object_type == "contacts" else record.get("Company")
    return SourceRecord(
        first_name=plain_text(record.get("First_Name"))[:150],
        last_name=plain_text(record.get("Last_Name"))[:150],
        company=plain_text(_plain(company))[:255],
        **common,
    )


def modified_ms(record: Mapping[str, Any]) -> int:
    """The record's Modified_Time in epoch ms (the cursor's unit)."""
    value = record.get("Modified_Time")
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError as error:
        raise UnreadableRecord(f"record {record.get('id')}: unreadable time {value!r}") from error
    if moment.tzinfo is None:
        raise UnreadableRecord(f"record {record.get('id')}: a time without an offset {value!r}")
    return int(moment.timestamp() * 1000)


def zoho_time(ms: int) -> str:
    """Epoch ms as Zoho writes times: ISO 8601 to the second, with an offset and no `Z`."""
    return datetime.fromtimestamp(ms // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def record_url(crm_base_url: str, org_id: str, module: str, zoho_id: str) -> str:
    if not crm_base_url:
        return ""
    org = f"org{org_id}/" if org_id else ""
    return f"{crm_base_url.rstrip('/')}/crm/{org}tab/{module}/{zoho_id}"


def link_of(external_id: str) -> dict[str, Any]:
    """Who_Id for a contact; What_Id + $se_module for a lead or an account (Zoho's Related To)."""
    for object_type, prefix in ID_PREFIXES.items():
        if prefix and external_id.startswith(prefix):
            zoho_id = external_id.removeprefix(prefix)
            return {"What_Id": {"id": zoho_id}, "$se_module": MODULES[object_type]}
    return {"Who_Id": {"id": external_id}}


def call_fields(entry: CallLogEntry) -> dict[str, Any]:
    """A Calls record for this call (Call_Duration as "mm:ss", Call_Start_Time with offset)."""
    answered = entry.outcome in ("answered", "transferred")
    call_type = "Outbound" if entry.direction == "outbound" else "Inbound" if answered else "Missed"
    minutes, seconds = divmod(max(0, entry.duration_seconds), 60)
    fields: dict[str, Any] = {
        "Subject": entry.subject or _default_subject(entry),
        "Call_Type": call_type,
        "Call_Start_Time": _zoho_datetime(entry.started_at),
        "Call_Duration": f"{minutes:02d}:{seconds:02d}",
        "Description": _description(entry),
    }
    if call_type == "Outbound":
        fields["Outbound_Call_Status"] = "Completed"
    return {**fields, **_links(entry)}


def task_fields(entry: CallLogEntry) -> dict[str, Any]:
    """A Tasks record asking the agent to call a missed caller back."""
    return {
        "Subject": entry.subject or f"Missed call from {entry.from_number}: call back",
        "Due_Date": entry.started_at.astimezone(UTC).date().isoformat(),
        "Status": "Not Started",
        "Priority": "High",
        "Description": _description(entry),
        **_links(entry),
    }


def contact_fields(*, e164: str, name: str) -> dict[str, Any]:
    """A new Contacts record for an unknown caller (Last_Name is mandatory in Zoho)."""
    first, _, last = name.strip().rpartition(" ")
    return {"First_Name": first or None, "Last_Name": last or e164, "Phone": e164}


def _links(entry: CallLogEntry) -> dict[str, Any]:
    links = link_of(entry.contact_external_id) if entry.contact_external_id else {}
    if entry.owner_user_id:
        links["Owner"] = {"id": entry.owner_user_id}
    return links


def _default_subject(entry: CallLogEntry) -> str:
    if entry.direction == "inbound":
        return f"Call from {entry.from_number}"
    return f"Call to {entry.to_number}"


def _description(entry: CallLogEntry) -> str:
    lines = [entry.notes.strip()] if entry.notes.strip() else []
    lines.append(f"Outcome: {entry.outcome}. From {entry.from_number} to {entry.to_number}.")
    if entry.recording_url:
        lines.append(f"Recording: {entry.recording_url}")
    lines.append(call_marker(entry.call_id))  # Calls has no external-id field of ours
    return "\n".join(lines)


def call_marker(call_id: str) -> str:
    """The Description line that names our call (find_logged looks for it)."""
    return f"CallBridge call {call_id}"


def _zoho_datetime(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _plain(value: Any) -> Any:
    """A lookup ({name, id}) as its name; anything else as it is."""
    if isinstance(value, Mapping):
        return value.get("name")
    return value
