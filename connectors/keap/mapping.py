"""Pure mapping between Keap REST v2 JSON and our dataclasses.

Shapes from Keap's v2 OpenAPI (infusionsoft/keap-sdk `sdks/v2/swagger.yml`, crm-apis-more.md
section 7): contacts carry `phone_numbers` of `{number, number_e164, type, field, extension}`,
`addresses` with ISO alpha-3 `country_code`, `owner_id`, ISO-8601 `update_time`; companies one
`phone_number` and one `address`. Ids are strings of digits.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from connectors.interface import CallLogEntry, SourcePhone, SourceRecord
from connectors.record_fields import iso_region, plain_text

# Contacts and companies have separate id spaces in Keap; ours is one per connection.
COMPANY_ID_PREFIX = "company:"
# What a listing asks for (`fields`): Keap answers only some fields unless they are named.
CONTACT_FIELDS = ("given_name", "family_name", "company", "phone_numbers", "addresses",
                  "owner_id", "update_time", "custom_fields")  # fmt: skip
COMPANY_FIELDS = ("company_name", "phone_number", "address", "owner_id", "update_time",
                  "custom_fields")  # fmt: skip
PHONE_KINDS = {"mobile": "mobile", "cell": "mobile", "work": "work", "home": "home"}
# Keap addresses name countries by ISO 3166 alpha-3; the ones our customers mostly use.
ALPHA3 = {
    "GBR": "GB", "USA": "US", "CAN": "CA", "AUS": "AU", "NZL": "NZ", "IRL": "IE", "DEU": "DE",
    "FRA": "FR", "ESP": "ES", "ITA": "IT", "NLD": "NL", "BEL": "BE", "CHE": "CH", "AUT": "AT",
    "SWE": "SE", "NOR": "NO", "DNK": "DK", "POL": "PL", "PRT": "PT", "MEX": "MX", "BRA": "BR",
    "IND": "IN", "ZAF": "ZA", "SGP": "SG",
}  # fmt: skip
NOTE_TYPE = "Call"
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
    """A Keap contact as a SourceRecord; UnreadableRecord without an id."""
    contact_id = _id(obj)
    company = obj.get("company")
    addresses = obj.get("addresses")
    return SourceRecord(
        external_id=contact_id,
        first_name=plain_text(obj.get("given_name"))[:150],
        last_name=plain_text(obj.get("family_name"))[:150],
        company=plain_text(company.get("company_name"))[:255]
        if isinstance(company, Mapping)
        else "",
        country=next((c for a in addresses if (c := _country(a))), "")
        if isinstance(addresses, list)
        else "",
        phones=phones_of(obj.get("phone_numbers")),
        custom_fields=_custom_fields(obj, custom_fields),
        owner_id=_owner_id(obj),
    )


def record_from_company(obj: Any, *, custom_fields: Iterable[str] = ()) -> SourceRecord:
    """A Keap company as an `is_company` record with the external id `company:<id>`."""
    company_id = _id(obj)
    return SourceRecord(
        external_id=f"{COMPANY_ID_PREFIX}{company_id}",
        company=plain_text(obj.get("company_name"))[:255],
        is_company=True,
        country=_country(obj.get("address")),
        phones=phones_of([obj.get("phone_number")]),
        custom_fields=_custom_fields(obj, custom_fields),
        owner_id=_owner_id(obj),
    )


def phones_of(values: Any) -> tuple[SourcePhone, ...]:
    """Each number once: Keap's E.164 reading when it made one, else the number as typed."""
    if not isinstance(values, list):
        return ()
    phones, seen = [], set()
    for item in values:
        if not isinstance(item, Mapping):
            continue
        number = (plain_text(item.get("number_e164")) or plain_text(item.get("number")))[:64]
        if number and number not in seen:
            seen.add(number)
            kind = PHONE_KINDS.get(plain_text(item.get("type")).lower(), "other")
            phones.append(SourcePhone(number=number, kind=kind))
    return tuple(phones)


def update_ms(obj: Any) -> int:
    """A record's `update_time` as epoch milliseconds."""
    value = obj.get("update_time") if isinstance(obj, Mapping) else None
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise UnreadableRecord("a record without a readable update_time") from None
    if moment.tzinfo is None:
        raise UnreadableRecord("an update_time without an offset")
    return int(moment.timestamp() * 1000)


def keap_time(ms: int) -> str:
    """Epoch ms as the filters want it: ISO-8601 with milliseconds and an offset (Z)."""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def contact_id_of(external_id: str | None) -> str | None:
    """Our external id as a Keap contact id; notes and tasks belong to contacts only."""
    if not external_id:
        return None
    if not external_id.isdigit():
        raise ValueError(
            f"{external_id!r} is not a Keap contact id (Keap notes and tasks belong to contacts)."
        )
    return external_id


def note_body(entry: CallLogEntry, *, user_id: str) -> dict[str, Any]:
    """POST /v2/contacts/{id}/notes: a note of type Call written as the agent's user."""
    return {
        "type": NOTE_TYPE,
        "title": (entry.subject or f"{entry.direction.capitalize()} call")[:250],
        "text": call_text(entry),
        "user_id": user_id,
    }


def task_body(entry: CallLogEntry, *, user_id: str) -> dict[str, Any]:
    """POST /v2/tasks: an essential call-back task due at the missed call's time."""
    caller = entry.from_number if entry.direction == "inbound" else entry.to_number
    body: dict[str, Any] = {
        "title": entry.subject or f"Call back {caller} (missed call)",
        "description": call_text(entry),
        "type": "Call",
        "priority": "ESSENTIAL",
        "completed": False,
        "due_time": keap_time(int(entry.started_at.timestamp() * 1000)),
        "assigned_to_user_id": user_id,
    }
    contact_id = contact_id_of(entry.contact_external_id)
    if contact_id:
        body["contact_id"] = contact_id
    return body


def contact_body(*, e164: str, name: str) -> dict[str, Any]:
    """POST /v2/contacts: the caller's number in PHONE1, the name split once."""
    first, _, last = name.strip().partition(" ")
    body: dict[str, Any] = {
        "phone_numbers": [{"field": "PHONE1", "number": e164, "type": "Mobile"}],
    }
    if first:
        body["given_name"] = first[:40]
    if last:
        body["family_name"] = last[:40]
    return body


def call_text(entry: CallLogEntry) -> str:
    """The note's text: Keap notes have no fields for outcome, numbers or duration."""
    minutes, seconds = divmod(entry.duration_seconds, 60)
    lines = [
        f"Outcome: {OUTCOME_WORDS[entry.outcome]}; duration {minutes}:{seconds:02d}",
        f"From {entry.from_number} to {entry.to_number}",
        f"Started {entry.started_at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC",
        *(["", *entry.notes.splitlines()] if entry.notes.strip() else []),
    ]
    if entry.recording_url:
        lines.append(f"Recording: {entry.recording_url}")
    lines.append(call_marker(entry.call_id))
    return "\n".join(lines)


def call_marker(call_id: str) -> str:
    """Our call id as the text's last line: how find_logged recognises the note or task."""
    return f"CallBridge call {call_id}"


def user_email(obj: Mapping[str, Any]) -> str:
    """A v2 user's first email address (users carry a list, like contacts)."""
    for item in obj.get("email_addresses") or []:
        if isinstance(item, Mapping) and plain_text(item.get("email")):
            return plain_text(item.get("email"))
    return plain_text(obj.get("email_address"))


def _id(obj: Any) -> str:
    value = obj.get("id") if isinstance(obj, Mapping) else None
    text = plain_text(value)
    if not text.isdigit():
        raise UnreadableRecord("a record without an id")
    return text


def _country(address: Any) -> str:
    if not isinstance(address, Mapping):
        return ""
    code = plain_text(address.get("country_code")).upper()
    return ALPHA3.get(code) or iso_region(code)


def _owner_id(obj: Mapping[str, Any]) -> str:
    owner = plain_text(obj.get("owner_id"))
    return owner if owner.isdigit() and owner != "0" else ""


def _custom_fields(obj: Mapping[str, Any], wanted: Iterable[str]) -> dict[str, Any]:
    """Configured custom field ids (as text) -> their contents, when set."""
    names = {str(name) for name in wanted}
    found = {}
    for field in obj.get("custom_fields") or []:
        if not isinstance(field, Mapping):
            continue
        name, value = str(field.get("id")), field.get("content")
        if name in names and value not in (None, "", [], {}):
            found[name] = value
    return found
