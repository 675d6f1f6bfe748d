"""Zendesk Support JSON <-> our dataclasses: users, tickets, call notes, errors (pure functions).

Reference: ../shared/reference/crm-apis.md section 5, crm-apis-more.md section 5.
"""

from __future__ import annotations

import re
from typing import Any

from connectors.interface import (
    CallLogEntry,
    SourcePhone,
    SourceRecord,
    TicketRef,
    TicketRequest,
)
from core import phone_numbers

SUBJECT_MAX = 150
TAG = "callbridge"
MISSED_CALL_TAG = "callbridge_missed_call"
OUTCOME_WORDS = {
    "answered": "answered",
    "transferred": "answered and transferred",
    "missed": "missed",
    "busy": "busy",
    "failed": "failed",
}


class UnreadableRecord(ValueError):
    pass


def app_url(subdomain: str) -> str:
    """Where agents open records: the account's own host (also when the API is a fake)."""
    return f"https://{subdomain}.zendesk.com"


def phone_query(e164: str) -> str:
    """A users search for end-users with this number stored in any format.

    Zendesk matches digits only; a leading `*` matches whatever is written before them, so
    the national significant number finds "+44 7400 123456" and "07400 123456" alike.
    https://developer.zendesk.com/documentation/voice/talk-partner-edition/retrieving-the-zendesk-user-id-of-a-caller/
    """
    forms = phone_numbers.national_forms(e164)
    digits = forms[0] if forms else re.sub(r"\D", "", e164)
    return f"role:end-user phone:*{digits}"


def record_from_user(user: Any, *, base: str, company: str = "") -> SourceRecord:
    """A Zendesk user as a phonebook record (its one `phone`; `company`, its organization)."""
    if not isinstance(user, dict) or not isinstance(user.get("id"), int):
        raise UnreadableRecord("a user without an id")
    first, _, last = str(user.get("name") or "").strip().partition(" ")
    phone = str(user.get("phone") or "").strip()
    return SourceRecord(
        external_id=str(user["id"]),
        first_name=first,
        last_name=last.strip(),
        company=company,
        crm_url=f"{base}/agent/users/{user['id']}",
        phones=(SourcePhone(phone, "work"),) if phone else (),
    )


def in_phonebook(user: Any) -> bool:
    """The phonebook holds active end-users with a phone (agents and deleted users are not)."""
    return (
        isinstance(user, dict)
        and user.get("role") == "end-user"
        and user.get("active") is not False
        and bool(str(user.get("phone") or "").strip())
    )


def organization_id(user: Any) -> int | None:
    org = user.get("organization_id") if isinstance(user, dict) else None
    return org if isinstance(org, int) else None


def user_body(*, e164: str, name: str) -> dict[str, Any]:
    # A user needs a name: the number stands in for an unknown caller's.
    return {"user": {"name": name.strip() or e164, "phone": e164, "role": "end-user"}}


def ticket_body(ticket: TicketRequest) -> dict[str, Any]:
    """POST /api/v2/tickets: the description is the ticket's first comment."""
    body: dict[str, Any] = {
        "subject": ticket.subject[:SUBJECT_MAX],
        "comment": {"body": ticket.description, "public": ticket.public},
        "external_id": ticket.external_id,
        "tags": list(ticket.tags),
    }
    if ticket.requester_id is not None:  # else Zendesk makes the API's agent the requester
        body["requester_id"] = int(ticket.requester_id)
    if ticket.priority:
        body["priority"] = ticket.priority
    if ticket.group_id is not None:
        body["group_id"] = ticket.group_id
    return {"ticket": body}


def call_tag(call_id: str) -> str:
    """The tag that marks the ticket holding a call's note: Zendesk search finds tickets by it.

    Tags are lowercase words; anything but letters, digits and `_` becomes `_` (a `-` would read
    as "not" in a search query).
    """
    return f"{TAG}_call_" + re.sub(r"[^a-z0-9_]", "_", call_id.lower())


def call_marker(call_id: str) -> str:
    """Our call id as the call note's last line."""
    return f"CallBridge call {call_id}"


def call_note(entry: CallLogEntry) -> str:
    """The private comment for a call: tickets have no fields for its facts, so it says them."""
    lines = [
        _headline(entry),
        f"From {entry.from_number} to {entry.to_number} at "
        f"{entry.started_at.strftime('%Y-%m-%d %H:%M UTC')}",
        *_later_lines(entry),
        call_marker(entry.call_id),
    ]
    return "\n".join(lines)


def update_note(entry: CallLogEntry) -> str:
    """Comments cannot be edited: what came later is a new comment naming the call."""
    headline = f"Update to {call_marker(entry.call_id)}: {_headline(entry)}"
    return "\n".join([headline, *_later_lines(entry)])


def call_ticket(entry: CallLogEntry) -> dict[str, Any]:
    """A ticket for a call whose caller has no open ticket: the call note is its first comment."""
    request = TicketRequest(
        external_id=entry.call_id,
        subject=entry.subject or f"Call from {_caller(entry)}",
        description=call_note(entry),
        requester_id=entry.contact_external_id,
        tags=(TAG, call_tag(entry.call_id)),
    )
    return _by_agent(ticket_body(request), entry)


def missed_call_ticket(entry: CallLogEntry) -> dict[str, Any]:
    """A missed call's follow-up: a high-priority ticket for the agent, one per call id."""
    request = TicketRequest(
        external_id=entry.call_id,
        subject=f"Call back {_caller(entry)} (missed call)",
        description=call_note(entry),
        requester_id=entry.contact_external_id,
        priority="high",
        tags=(TAG, MISSED_CALL_TAG),
    )
    body = _by_agent(ticket_body(request), entry)
    if entry.owner_user_id:
        body["ticket"]["assignee_id"] = int(entry.owner_user_id)
    return body


def _by_agent(body: dict[str, Any], entry: CallLogEntry) -> dict[str, Any]:
    """The first comment's author is the agent, when known (else the API's user)."""
    if entry.owner_user_id:
        body["ticket"]["comment"]["author_id"] = int(entry.owner_user_id)
    return body


def comment_update(entry: CallLogEntry, text: str, *, tags: tuple[str, ...] = ()) -> dict[str, Any]:
    """PUT /api/v2/tickets/{id}: a private comment by the agent (when known), tags added."""
    comment: dict[str, Any] = {"body": text, "public": False}
    if entry.owner_user_id:
        comment["author_id"] = int(entry.owner_user_id)
    ticket: dict[str, Any] = {"comment": comment}
    if tags:
        ticket["additional_tags"] = list(tags)
    return {"ticket": ticket}


def _headline(entry: CallLogEntry) -> str:
    minutes, seconds = divmod(entry.duration_seconds, 60)
    return (
        f"{entry.direction.capitalize()} call {OUTCOME_WORDS[entry.outcome]}, "
        f"{minutes}:{seconds:02d}"
    )


def _later_lines(entry: CallLogEntry) -> list[str]:
    """Notes, summary and the recording link: what may arrive after the call."""
    lines = ["", *entry.notes.splitlines(), ""] if entry.notes.strip() else []
    if entry.recording_url:
        lines.append(f"Recording: {entry.recording_url}")
    return lines


def _caller(entry: CallLogEntry) -> str:
    return entry.from_number if entry.direction == "inbound" else entry.to_number


def ticket_ref(ticket: Any, *, base: str, created: bool) -> TicketRef:
    if not isinstance(ticket, dict) or not isinstance(ticket.get("id"), int):
        raise UnreadableRecord("a ticket without an id")
    return TicketRef(str(ticket["id"]), f"{base}/agent/tickets/{ticket['id']}", created)


def error_message(body: Any) -> str:
    """Zendesk's error: `RecordInvalid: Record validation errors (Subject: cannot be blank)`."""
    if not isinstance(body, dict):
        return ""
    error = body.get("error")
    if isinstance(error, dict):  # some endpoints nest {"title", "message"}
        error = error.get("title") or error.get("message")
    text = ": ".join(str(p) for p in (error, body.get("description")) if isinstance(p, str) and p)
    details = body.get("details")
    if isinstance(details, dict):
        reasons = [
            str(item["description"])
            for items in details.values()
            if isinstance(items, list)
            for item in items
            if isinstance(item, dict) and item.get("description")
        ]
        if reasons:
            text += f" ({'; '.join(reasons)})"
    return text
