"""Pure mapping from Salesforce REST JSON (SOQL and SOSL records) to our dataclasses.

A record is `{"attributes": {"type", "url"}, "Id", <field>: value, ...}`; a relationship field
nests (`"Account": {"attributes": ..., "Name": "Acme"}` or null). crm-apis.md section 2.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from connectors.interface import CallLogEntry, SourceRecord
from connectors.record_fields import iso_region, named_phones, plain_text

# Salesforce ids are unique across objects, but accounts are companies: like HubSpot's companies
# they get their own prefix, so an account can never be mistaken for a person.
ACCOUNT_ID_PREFIX = "account:"
SOBJECTS = {"contacts": "Contact", "accounts": "Account", "leads": "Lead"}
# Phone fields in the order we keep them, with our kind for each.
PHONE_FIELDS: dict[str, tuple[tuple[str, str], ...]] = {
    "contacts": (
        ("MobilePhone", "mobile"),
        ("Phone", "work"),
        ("HomePhone", "home"),
        ("OtherPhone", "other"),
    ),
    "accounts": (("Phone", "work"),),
    "leads": (("MobilePhone", "mobile"), ("Phone", "work")),
}
_BASE_FIELDS = {
    "contacts": ("Id", "FirstName", "LastName", "Account.Name", "MailingCountry", "OwnerId"),
    "accounts": ("Id", "Name", "BillingCountry", "OwnerId"),
    "leads": ("Id", "FirstName", "LastName", "Company", "Country", "OwnerId"),
}
_COUNTRY_FIELD = {"contacts": "MailingCountry", "accounts": "BillingCountry", "leads": "Country"}
MODIFIED_FIELD = "SystemModstamp"  # what getUpdated keys on: also bumped by system changes
CALL_DISPOSITIONS = {
    "answered": "Answered",
    "missed": "Missed",
    "busy": "Busy",
    "failed": "Failed",
    "transferred": "Transferred",
}


_FIELD_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")  # an API name: nothing else enters the SOQL


class UnreadableRecord(ValueError):
    pass


def custom_fields_for(object_type: str, custom_fields: Iterable[str]) -> tuple[str, ...]:
    """The custom fields read on this object: `Tier__c` on every object, `Lead.Tier__c` on one."""
    sobject, names = SOBJECTS[object_type], []
    for name in custom_fields:
        qualifier, _, field = name.rpartition(".")
        if (not qualifier or qualifier == sobject) and _FIELD_NAME.fullmatch(field):
            names.append(field)
    return tuple(dict.fromkeys(names))


def fields_to_select(object_type: str, custom_fields: Iterable[str]) -> list[str]:
    """The SOQL field list for an object type (base, phones, custom fields, modification time)."""
    phones = [name for name, _ in PHONE_FIELDS[object_type]]
    wanted = [*_BASE_FIELDS[object_type], *phones, *custom_fields_for(object_type, custom_fields)]
    return list(dict.fromkeys([*wanted, MODIFIED_FIELD]))


def record_from_sobject(
    object_type: str, obj: Any, *, instance_url: str = "", custom_fields: Iterable[str] = ()
) -> SourceRecord:
    """A Contact, Account or Lead as a SourceRecord; UnreadableRecord if it has no Id."""
    if not isinstance(obj, Mapping) or not plain_text(obj.get("Id")):
        raise UnreadableRecord("a record without an Id")
    salesforce_id = plain_text(obj["Id"])
    sobject = SOBJECTS[object_type]
    common = {
        "crm_url": f"{instance_url}/lightning/r/{sobject}/{salesforce_id}/view"
        if instance_url
        else "",
        "country": iso_region(obj.get(_COUNTRY_FIELD[object_type])),
        "owner_id": plain_text(obj.get("OwnerId")),
        "phones": named_phones(PHONE_FIELDS[object_type], obj),
        "custom_fields": {
            name: obj[name]
            for name in custom_fields_for(object_type, custom_fields)
            if obj.get(name) not in (None, "")
        },
    }
    if object_type == "accounts":
        return SourceRecord(
            external_id=ACCOUNT_ID_PREFIX + salesforce_id,
            company=plain_text(obj.get("Name"))[:255],
            is_company=True,
            **common,
        )
    account = obj.get("Account")
    company = obj.get("Company") if object_type == "leads" else None
    if isinstance(account, Mapping):
        company = account.get("Name")
    return SourceRecord(
        external_id=salesforce_id,
        first_name=plain_text(obj.get("FirstName"))[:150],
        last_name=plain_text(obj.get("LastName"))[:150],
        company=plain_text(company)[:255],
        **common,
    )


def modstamp_ms(obj: Mapping[str, Any]) -> int:
    """The record's SystemModstamp in epoch ms (`2024-03-05T17:02:11.000+0000`)."""
    value = plain_text(obj.get(MODIFIED_FIELD))
    try:
        return int(datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp() * 1000)
    except ValueError as error:
        raise UnreadableRecord(f"record {obj.get('Id')}: unreadable {MODIFIED_FIELD}") from error


def soql_datetime(ms: int) -> str:
    """A SOQL datetime literal (unquoted ISO, whole seconds, UTC) at or before ms."""
    return datetime.fromtimestamp(ms // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def soql_string(value: str) -> str:
    """A quoted SOQL string literal (backslash escapes)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


# SOSL's reserved characters, escaped with a backslash inside a search term.
# https://developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/soql_sosl/sforce_api_calls_sosl_find.htm
_SOSL_RESERVED = re.compile(r"""([?&|!{}\[\]()^~*:\\"'+-])""")


def sosl_phrase(text: str) -> str:
    """A quoted SOSL search phrase, its reserved characters escaped."""
    return '"' + _SOSL_RESERVED.sub(r"\\\1", text) + '"'


def task_fields(entry: CallLogEntry, *, update: bool = False) -> dict[str, Any]:
    """The Task fields of a logged call (TaskSubtype is create-only, so not sent on update)."""
    inbound = entry.direction == "inbound"
    other = entry.from_number if inbound else entry.to_number
    description = [entry.notes] if entry.notes else []
    description.append(f"From {entry.from_number} to {entry.to_number}.")
    if entry.recording_url:
        description.append(f"Recording: {entry.recording_url}")
    fields: dict[str, Any] = {
        "Subject": (entry.subject or f"{'Inbound' if inbound else 'Outbound'} call {other}")[:255],
        "Status": "Completed",
        "ActivityDate": entry.started_at.astimezone(UTC).date().isoformat(),
        "Description": "\n".join(description)[:32000],
        "CallType": "Inbound" if inbound else "Outbound",
        "CallDurationInSeconds": max(0, int(entry.duration_seconds)),
        "CallDisposition": CALL_DISPOSITIONS[entry.outcome],
        "CallObject": entry.call_id[:255],  # our call id, kept on the Task
    }
    if not update:
        fields["TaskSubtype"] = "Call"
        fields.update(related_fields(entry))
    return fields


def missed_call_task_fields(entry: CallLogEntry) -> dict[str, Any]:
    """An open, high-priority Task to call the missed caller back."""
    caller = entry.from_number if entry.direction == "inbound" else entry.to_number
    return {
        "Subject": (entry.subject or f"Missed call from {caller}: call back")[:255],
        "Status": "Not Started",
        "Priority": "High",
        "ActivityDate": entry.started_at.astimezone(UTC).date().isoformat(),
        "Description": (entry.notes or f"Missed call from {caller} to {entry.to_number}.")[:32000],
        "TaskSubtype": "Task",
        "CallObject": entry.call_id[:255],
        **related_fields(entry),
    }


def related_fields(entry: CallLogEntry) -> dict[str, str]:
    """WhoId for a contact or lead, WhatId for an account, OwnerId for the agent's user."""
    fields = {}
    if entry.contact_external_id:
        if entry.contact_external_id.startswith(ACCOUNT_ID_PREFIX):
            fields["WhatId"] = entry.contact_external_id.removeprefix(ACCOUNT_ID_PREFIX)
        else:
            fields["WhoId"] = entry.contact_external_id
    if entry.owner_user_id:
        fields["OwnerId"] = entry.owner_user_id
    return fields
