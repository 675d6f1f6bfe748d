"""Pure mapping between Dataverse Web API rows and our dataclasses.

Rows are JSON objects keyed by column logical names (`contactid`, `telephone1`, ...); lookups
come as `_<name>_value` GUIDs, with the display name in the
`@OData.Community.Display.V1.FormattedValue` annotation when asked for. Deleted rows in a delta
are `{"@odata.context": "...#contacts/$deletedEntity", "id": "<guid>", "reason": "deleted"}`.
../shared/reference/crm-apis.md section 6 and crm-apis-more.md section 1.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.interface import CallLogEntry, SourceRecord
from connectors.record_fields import iso_region, named_phones, plain_text

ENTITY_SETS = {"contacts": "contacts", "accounts": "accounts"}
TABLES = {"contacts": "contact", "accounts": "account"}  # logical names (deep links, binds)
PRIMARY_KEYS = {"contacts": "contactid", "accounts": "accountid"}
# Our external ids: contacts keep their GUID; accounts are companies, prefixed like HubSpot's.
ID_PREFIXES = {"contacts": "", "accounts": "account:"}
# (column, kind) in the order a caller card should show them.
PHONE_COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "contacts": (
        ("mobilephone", "mobile"),
        ("telephone1", "work"),  # Business Phone
        ("telephone2", "home"),  # Home Phone
        ("telephone3", "other"),
    ),
    "accounts": (("telephone1", "work"), ("telephone2", "other"), ("telephone3", "other")),
}
_BASE_COLUMNS = {
    "contacts": ("contactid", "firstname", "lastname", "_parentcustomerid_value"),
    "accounts": ("accountid", "name"),
}
COUNTRY_COLUMN = "address1_country"  # free text in Dataverse: kept only when an ISO code
OWNER_COLUMN = "_ownerid_value"  # a systemuser (or team) GUID
FORMATTED = "@OData.Community.Display.V1.FormattedValue"
CALL_MARKER = "CallBridge call "
# Memo columns of activities hold at most 2,000 characters (UNVERIFIED for every org: the
# column's MaxLength can be raised; 2,000 is the default the fake enforces).
DESCRIPTION_MAX = 2000
SUBJECT_MAX = 200
TASK_PRIORITY_HIGH = 2  # task prioritycode: 0 Low, 1 Normal, 2 High
COLUMN_NAME = re.compile(r"[a-z][a-z0-9_]*")  # a logical name: nothing else enters a query


class UnreadableRecord(ValueError):
    pass


def custom_columns(object_type: str, custom_fields: Iterable[str]) -> tuple[str, ...]:
    """Custom columns read on this table: `new_tier` on every table, `contact.new_tier` on one."""
    names = []
    for name in custom_fields:
        table, _, column = name.rpartition(".")
        if (not table or table == TABLES[object_type]) and COLUMN_NAME.fullmatch(column):
            names.append(column)
    return tuple(dict.fromkeys(names))


def columns_to_select(object_type: str, custom_fields: Iterable[str] = ()) -> list[str]:
    """The `$select` list: key, names, phones, country, owner and custom columns."""
    phones = [name for name, _ in PHONE_COLUMNS[object_type]]
    custom = custom_columns(object_type, custom_fields)
    wanted = [*_BASE_COLUMNS[object_type], *phones, COUNTRY_COLUMN, OWNER_COLUMN, *custom]
    return list(dict.fromkeys(wanted))


def is_deleted_row(row: Any) -> bool:
    """A delta's tombstone: its @odata.context ends in `$deletedEntity`."""
    context = row.get("@odata.context") if isinstance(row, Mapping) else None
    return isinstance(context, str) and context.endswith("$deletedEntity")


def record_from_row(
    object_type: str, row: Any, *, org_url: str = "", custom_fields: Iterable[str] = ()
) -> SourceRecord:
    """A contact or account row as a SourceRecord; UnreadableRecord without its key."""
    key = PRIMARY_KEYS[object_type]
    if not isinstance(row, Mapping) or not plain_text(row.get(key)):
        raise UnreadableRecord(f"a row without {key}")
    guid = plain_text(row[key]).lower()
    common: dict[str, Any] = {
        "external_id": ID_PREFIXES[object_type] + guid,
        "crm_url": record_url(org_url, TABLES[object_type], guid),
        "country": iso_region(row.get(COUNTRY_COLUMN)),
        "phones": named_phones(PHONE_COLUMNS[object_type], row),
        "owner_id": plain_text(row.get(OWNER_COLUMN)).lower(),
        "custom_fields": {
            name: row[name]
            for name in custom_columns(object_type, custom_fields)
            if row.get(name) not in (None, "")
        },
    }
    if object_type == "accounts":
        return SourceRecord(company=plain_text(row.get("name"))[:255], is_company=True, **common)
    return SourceRecord(
        first_name=plain_text(row.get("firstname"))[:150],
        last_name=plain_text(row.get("lastname"))[:150],
        company=plain_text(row.get("_parentcustomerid_value" + FORMATTED))[:255],
        **common,
    )


def record_url(org_url: str, table: str, guid: str) -> str:
    """The row's form in the model-driven app (main.aspx with pagetype=entityrecord)."""
    if not org_url:
        return ""
    return f"{org_url.rstrip('/')}/main.aspx?pagetype=entityrecord&etn={table}&id={guid}"


def odata_string(value: str) -> str:
    """A quoted OData string literal (a quote is doubled)."""
    return "'" + value.replace("'", "''") + "'"


def odata_datetime(ms: int) -> str:
    """An OData DateTimeOffset literal (UTC, whole seconds) at or before ms."""
    return datetime.fromtimestamp(ms // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def phone_filter(object_type: str, forms: Iterable[str]) -> str:
    """`telephone1 eq '…' or mobilephone eq '…' or …` for every column and stored form."""
    columns = [name for name, _ in PHONE_COLUMNS[object_type]]
    return " or ".join(f"{c} eq {odata_string(form)}" for form in forms for c in columns)


def regarding_bind(external_id: str) -> dict[str, str]:
    """The regarding row of an activity: a contact, or an account for `account:` ids."""
    prefix = ID_PREFIXES["accounts"]
    if external_id.startswith(prefix):
        return {"regardingobjectid_account@odata.bind": f"/accounts({external_id[len(prefix) :]})"}
    return {"regardingobjectid_contact@odata.bind": f"/contacts({external_id})"}


def phonecall_columns(entry: CallLogEntry) -> dict[str, Any]:
    """A phonecall activity for this call (duration in whole minutes, rounded up)."""
    inbound = entry.direction == "inbound"
    ended = entry.started_at + timedelta(seconds=max(0, entry.duration_seconds))
    columns: dict[str, Any] = {
        "subject": (entry.subject or _default_subject(entry))[:SUBJECT_MAX],
        "description": description(entry),
        # directioncode true = Outgoing (crm-apis.md 6.4; UNVERIFIED against $metadata).
        "directioncode": not inbound,
        "phonenumber": entry.from_number if inbound else entry.to_number,
        "actualstart": _odata_moment(entry.started_at),
        "actualend": _odata_moment(ended),
        "actualdurationminutes": math.ceil(max(0, entry.duration_seconds) / 60),
    }
    return {**columns, **_links(entry)}


def task_columns(entry: CallLogEntry) -> dict[str, Any]:
    """A high-priority task, due at the call's time, to call the missed caller back."""
    caller = entry.from_number if entry.direction == "inbound" else entry.to_number
    return {
        "subject": (entry.subject or f"Missed call from {caller}: call back")[:SUBJECT_MAX],
        "description": description(entry),
        "scheduledend": _odata_moment(entry.started_at),
        "prioritycode": TASK_PRIORITY_HIGH,
        **_links(entry),
    }


def contact_columns(*, e164: str, name: str) -> dict[str, Any]:
    """A new contact for an unknown caller (the number is the last name when none is known)."""
    first, _, last = name.strip().rpartition(" ")
    return {"firstname": first[:50], "lastname": (last or e164)[:50], "mobilephone": e164}


def description(entry: CallLogEntry) -> str:
    """Notes, outcome, numbers, recording link, then the line naming our call (find_logged)."""
    lines = [entry.notes.strip()] if entry.notes.strip() else []
    minutes, seconds = divmod(max(0, entry.duration_seconds), 60)
    lines.append(
        f"Outcome: {entry.outcome}, {minutes} min {seconds} s. "
        f"From {entry.from_number} to {entry.to_number}."
    )
    if entry.recording_url:
        lines.append(f"Recording: {entry.recording_url}")
    marker = call_marker(entry.call_id)
    # Cut the notes, never the marker: a lost create is found by it.
    text = "\n".join(lines)[: DESCRIPTION_MAX - len(marker) - 1]
    return f"{text}\n{marker}"


def call_marker(call_id: str) -> str:
    return CALL_MARKER + call_id


def _links(entry: CallLogEntry) -> dict[str, str]:
    links = regarding_bind(entry.contact_external_id) if entry.contact_external_id else {}
    if entry.owner_user_id:
        links["ownerid@odata.bind"] = f"/systemusers({entry.owner_user_id})"
    return links


def _default_subject(entry: CallLogEntry) -> str:
    if entry.direction == "inbound":
        return f"Call from {entry.from_number}"
    return f"Call to {entry.to_number}"


def _odata_moment(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
