"""Zendesk Support JSON <-> our dataclasses: users, tickets, error bodies (pure functions).

Reference: ../shared/reference/crm-apis.md section 5.
"""

from __future__ import annotations

import re
from typing import Any

from connectors.interface import SourcePhone, SourceRecord, TicketRef, TicketRequest
from core import phone_numbers

SUBJECT_MAX = 150


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


def record_from_user(user: Any, *, base: str) -> SourceRecord:
    """A Zendesk user as a phonebook record (its one `phone`)."""
    if not isinstance(user, dict) or not isinstance(user.get("id"), int):
        raise UnreadableRecord("a user without an id")
    first, _, last = str(user.get("name") or "").strip().partition(" ")
    phone = str(user.get("phone") or "").strip()
    return SourceRecord(
        external_id=str(user["id"]),
        first_name=first,
        last_name=last.strip(),
        crm_url=f"{base}/agent/users/{user['id']}",
        phones=(SourcePhone(phone, "work"),) if phone else (),
    )


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
