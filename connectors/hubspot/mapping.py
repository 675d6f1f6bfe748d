"""Pure mapping from HubSpot CRM v3 JSON to our dataclasses.

Objects: https://developers.hubspot.com/docs/api/crm/understanding-the-crm (SimplePublicObject:
id, properties (string -> string|null), createdAt, updatedAt, archived).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError

from connectors.interface import SourcePhone, SourceRecord
from tenants.models import validate_region

# Companies and contacts have separate id spaces in HubSpot; ours is one per connection.
COMPANY_ID_PREFIX = "company:"
# The modification-time property differs per object type (search filters and sorts on it).
MODIFIED_PROPERTY = {"contacts": "lastmodifieddate", "companies": "hs_lastmodifieddate"}
CONTACT_PROPERTIES = ("firstname", "lastname", "company", "phone", "mobilephone", "country")
COMPANY_PROPERTIES = ("name", "phone", "country")
# HubSpot's object type ids in record URLs: 0-1 contacts, 0-2 companies.
_RECORD_URL = "https://app.hubspot.com/contacts/{portal}/record/{type_id}/{id}"


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
    extra = {name: props[name] for name in custom_fields if _text(props.get(name))}
    country = _region(props.get("country"))
    if object_type == "companies":
        return SourceRecord(
            external_id=COMPANY_ID_PREFIX + hubspot_id,
            company=_text(props.get("name")),
            is_company=True,
            crm_url=_url(portal_id, "0-2", hubspot_id),
            country=country,
            phones=_phones((("phone", "work"),), props),
            custom_fields=extra,
        )
    return SourceRecord(
        external_id=hubspot_id,
        first_name=_text(props.get("firstname"))[:150],
        last_name=_text(props.get("lastname"))[:150],
        company=_text(props.get("company"))[:255],
        crm_url=_url(portal_id, "0-1", hubspot_id),
        country=country,
        phones=_phones((("mobilephone", "mobile"), ("phone", "work")), props),
        custom_fields=extra,
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


def _phones(
    fields: tuple[tuple[str, str], ...], props: Mapping[str, Any]
) -> tuple[SourcePhone, ...]:
    phones, seen = [], set()
    for name, kind in fields:
        number = _text(props.get(name))[:64]
        if number and number not in seen:
            seen.add(number)
            phones.append(SourcePhone(number=number, kind=kind))
    return tuple(phones)


def _region(value: Any) -> str:
    """HubSpot's country is free text; keep it only when it is an ISO code we can read."""
    code = _text(value).upper()
    try:
        validate_region(code)
    except ValidationError:
        return ""
    return code


def _url(portal_id: str, type_id: str, hubspot_id: str) -> str:
    return _RECORD_URL.format(portal=portal_id, type_id=type_id, id=hubspot_id) if portal_id else ""


def _text(value: Any) -> str:
    return str(value).strip() if value is not None else ""
