"""Pure mapping between ActiveCampaign API v3 JSON and our dataclasses.

Contacts (GET /api/3/contacts; ../shared/reference/crm-apis-more.md section 4.2) carry their id
as a string, one free-text `phone`, `firstName`/`lastName`, and `udate` in the account's time
zone with its offset ("2018-09-12T17:00:00-05:00"). ActiveCampaign has no call object
(section 4.3): a call is a note on the contact (reltype `Subscriber`), a missed call a contact
task (`dealTasks`, ownerType `contact`); both are plain text ending with our call id.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from connectors.interface import CallLogEntry, CrmUser, SourcePhone, SourceRecord
from connectors.record_fields import plain_text

NOTE_RELTYPE = "Subscriber"  # what ActiveCampaign's notes call a contact
# filters[updated_after] takes a date, read in the account's time zone, and whether "after" a
# day includes it is not documented: asking from two days before the cursor's UTC date covers
# every time zone and both readings.
UPDATED_AFTER_MARGIN = timedelta(days=2)
OUTCOME_WORDS = {
    "answered": "answered",
    "transferred": "answered and transferred",
    "missed": "missed",
    "busy": "busy",
    "failed": "failed",
}


class UnreadableRecord(ValueError):
    pass


def record_from_contact(obj: Any, *, app_url: str = "") -> SourceRecord:
    """A v3 contact as a SourceRecord; UnreadableRecord if it has no id."""
    contact_id = contact_id_of(obj)
    phone = plain_text(obj.get("phone"))[:64]
    return SourceRecord(
        external_id=contact_id,
        first_name=plain_text(obj.get("firstName"))[:150],
        last_name=plain_text(obj.get("lastName"))[:150],
        crm_url=f"{app_url}/app/contacts/{contact_id}" if app_url else "",
        # One phone field, with no kind: "other".
        phones=(SourcePhone(number=phone, kind="other"),) if phone else (),
    )


def contact_id_of(obj: Any) -> str:
    """The contact's id ("42"): ActiveCampaign sends ids as strings of digits."""
    value = obj.get("id") if isinstance(obj, Mapping) else None
    text = str(value) if isinstance(value, str | int) and not isinstance(value, bool) else ""
    if not text.isdigit():
        raise UnreadableRecord("a contact without an id")
    return text


def updated_ms(obj: Mapping[str, Any]) -> int:
    """When the contact last changed (`udate`, else `cdate`), in epoch ms."""
    value = plain_text(obj.get("udate")) or plain_text(obj.get("cdate"))
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as error:
        raise UnreadableRecord(f"contact {obj.get('id')}: unreadable udate {value!r}") from error
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # UNVERIFIED: every documented udate has an offset
    return int(moment.timestamp() * 1000)


def updated_after(since_ms: int) -> str:
    """The filters[updated_after] date that surely includes every change at or after since_ms."""
    day = datetime.fromtimestamp(since_ms / 1000, UTC).date()
    return (day - UPDATED_AFTER_MARGIN).isoformat()


def contact_number(external_id: str | None) -> int:
    """Our external id as the integer `relid` notes and tasks take."""
    if not external_id or not external_id.isdigit():
        raise ValueError(f"{external_id!r} is not an ActiveCampaign contact id.")
    return int(external_id)


def note_body(entry: CallLogEntry, *, contact_id: int, agent: str = "") -> dict[str, Any]:
    """POST /notes and PUT /notes/{id}: both need the text, relid and reltype."""
    return {
        "note": {
            "note": call_text(entry, agent=agent),
            "relid": contact_id,
            "reltype": NOTE_RELTYPE,
        }
    }


def task_body(
    entry: CallLogEntry, *, contact_id: int, task_type_id: int, agent: str = ""
) -> dict[str, Any]:
    """POST /dealTasks: an open contact task of the Call type, due when the call came."""
    caller = entry.from_number if entry.direction == "inbound" else entry.to_number
    task: dict[str, Any] = {
        "title": f"Call back {caller} (missed call)",
        "ownerType": "contact",
        "relid": contact_id,
        "status": 0,  # 0 incomplete, 1 complete
        "note": call_text(entry, agent=agent),
        "duedate": entry.started_at.astimezone(UTC).isoformat(timespec="seconds"),
        "dealTasktype": task_type_id,
    }
    if entry.owner_user_id:
        task["assignee"] = int(entry.owner_user_id)
    return {"dealTask": task}


def contact_body(*, e164: str, name: str = "") -> dict[str, Any]:
    """POST /contacts for an unknown caller: phone only (no email), named when a name is known."""
    first, _, last = name.strip().partition(" ")
    contact: dict[str, Any] = {"phone": e164, "allowNullEmail": True}
    if first:
        contact["firstName"] = first
    if last:
        contact["lastName"] = last
    return {"contact": contact}


def call_text(entry: CallLogEntry, *, agent: str = "") -> str:
    """The note: what happened, the notes and summary, the recording, then our call id."""
    started = entry.started_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    minutes, seconds = divmod(entry.duration_seconds, 60)
    lines = [
        entry.subject or f"{entry.direction.capitalize()} call {entry.outcome}",
        f"{entry.direction.capitalize()} call {OUTCOME_WORDS[entry.outcome]}, started {started}, "
        f"talk time {minutes}:{seconds:02d}.",
        f"From {entry.from_number} to {entry.to_number}.",
    ]
    if agent:
        lines.append(f"Agent: {agent}")
    if entry.notes.strip():
        lines += ["", entry.notes.strip()]
    if entry.recording_url:
        lines += ["", f"Recording: {entry.recording_url}"]
    lines += ["", call_marker(entry.call_id)]
    return "\n".join(lines)


def call_marker(call_id: str) -> str:
    """Our call id as the note's last line (notes and tasks have no field for it)."""
    return f"CallBridge call {call_id}"


def user_from_json(obj: Any) -> CrmUser | None:
    """A v3 user (GET /users, /users/email/{email}), or None without an id."""
    if not isinstance(obj, Mapping) or not str(obj.get("id") or "").isdigit():
        return None
    name = f"{plain_text(obj.get('firstName'))} {plain_text(obj.get('lastName'))}".strip()
    return CrmUser(str(obj["id"]), plain_text(obj.get("email")), name)


def agent_text(user: CrmUser) -> str:
    """How a note names the agent (a note's author is always the API token's user)."""
    return f"{user.name} <{user.email}>" if user.name else user.email


def app_url(api_url: str) -> str:
    """Where contacts open: https://<account>.activehosted.com for https://<account>.api-us1.com.

    UNVERIFIED: the app host is not part of the API reference; other API hosts get no links.
    """
    host = urlsplit(api_url).hostname or ""
    account, _, domain = host.partition(".")
    if account and domain.startswith("api-") and domain.endswith(".com"):
        return f"https://{account}.activehosted.com"
    return ""
