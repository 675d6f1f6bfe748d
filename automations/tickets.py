"""The ticket app (seed 001, "Ticket Creation"): a helpdesk ticket for a call left unresolved.

Title = the issue type (else "Call from <number>"), description = the call's summary, priority
from the sentiment, requester = the caller (found by number in the helpdesk, else created),
group = the queue. One ticket per call and helpdesk: the ticket's external_id is our call id,
looked up before anything is created, and one run at a time per call opens it.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

from django.core.cache import cache
from django.core.exceptions import ValidationError

from automations.webhooks.templates import render_text, template_errors
from connectors.interface import ConnectorError, Helpdesk, TicketRequest
from connectors.models import Connection
from connectors.services import connector_for_connection
from core import phone_numbers

HELPDESKS = ("zendesk",)
CONDITION = "resolved == false"
SUBJECT = "{{ event.issue_type }}"
DESCRIPTION = "{{ event.summary }}"
DESCRIPTION_FALLBACK = (
    "Call from {{ event.calling_number }} to {{ event.called_number }} at "
    "{{ event.timestamp }} ({{ event.status }}); no summary was given."
)
# Seed 001: "Priority: based on sentiment". Words as phone systems send them, any case, with
# spaces, dashes or underscores; anything else (or none) is normal.
PRIORITY_BY_SENTIMENT = {
    "very negative": "urgent",
    "negative": "high",
    "neutral": "normal",
    "mixed": "normal",
    "positive": "low",
    "very positive": "low",
}
SETTINGS = {"connection", "group_id", "tags", "subject", "description", "public_comment"}
TAG = re.compile(r"^[^\s,]{1,80}$")
MAX_TAGS = 20
# A second run for the same call (call.end and analytics.completed close together) waits for
# the first one's ticket rather than opening another.
LOCK_SECONDS = 120
LOCK_WAIT_SECONDS = 60.0


def config_check(config: dict[str, Any]) -> None:
    """ValidationError naming each bad setting of a ticket app."""
    unknown = set(config) - SETTINGS
    if unknown:
        raise ValidationError({"config": f"Unknown ticket setting {sorted(unknown)[0]!r}."})
    errors = {}
    connection = config.get("connection")
    if (
        not isinstance(connection, int)
        or isinstance(connection, bool)
        or not Connection.objects.filter(pk=connection, provider__in=HELPDESKS).exists()
    ):
        errors["config.connection"] = (
            "The id of one of your Zendesk connections (for another helpdesk, use a webhook app)."
        )
    group = config.get("group_id")
    if group is not None and (not isinstance(group, int) or isinstance(group, bool) or group < 1):
        errors["config.group_id"] = "The id of the helpdesk group (queue) to assign tickets to."
    tags = config.get("tags", [])
    if (
        not isinstance(tags, list)
        or len(tags) > MAX_TAGS
        or not all(isinstance(t, str) and TAG.match(t) for t in tags)
    ):
        errors["config.tags"] = f"Up to {MAX_TAGS} tags, each without spaces or commas."
    for name in ("subject", "description"):
        text = config.get(name, "")
        if not isinstance(text, str) or template_errors(text):
            errors[f"config.{name}"] = "A template such as {{ event.summary }}."
    if not isinstance(config.get("public_comment", False), bool):
        errors["config.public_comment"] = "true or false."
    if errors:
        raise ValidationError(errors)


def priority_for(sentiment: Any) -> str:
    """The ticket priority for a call's sentiment (PRIORITY_BY_SENTIMENT, else normal)."""
    words = re.sub(r"[\s_-]+", " ", str(sentiment or "")).strip().lower()
    return PRIORITY_BY_SENTIMENT.get(words, "normal")


def ticket_fields(config: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    """What the ticket will say, rendered from the app's settings and the call (no I/O)."""
    event, contact = context["event"], context.get("contact") or {}
    number = phone_numbers.normalize(str(contact.get("number") or ""), None).e164
    way = "from" if event.get("direction") == "inbound" else "to"
    fallback = f"Call {way} {number or 'a withheld number'}"
    subject = _rendered(config.get("subject") or SUBJECT, fallback, context)
    description = _rendered(config.get("description") or DESCRIPTION, DESCRIPTION_FALLBACK, context)
    # The call test has no call id: its tickets are never deduplicated.
    external_id = str(event.get("call_id") or f"test-{uuid.uuid4()}")
    return {
        "external_id": external_id,
        "subject": " ".join(subject.split())[:150],
        "description": description,
        "priority": priority_for(event.get("sentiment")),
        "group_id": config.get("group_id"),
        "tags": list(config.get("tags", [])),
        "public": config.get("public_comment", False),
        "requester": {"number": number, "name": str(contact.get("name") or "")},
    }


def ticket_open(*, connection_id: int, fields: dict[str, Any]) -> dict[str, Any]:
    """Open the call's ticket (or find the one opened already): app_data.<slug>.data."""
    connection = Connection.objects.filter(pk=connection_id, provider__in=HELPDESKS).first()
    if connection is None:
        raise ConnectorError(f"Connection {connection_id} is gone.", permanent=True)
    helpdesk = cast(Helpdesk, connector_for_connection(connection))
    with _one_run_at_a_time(f"ticket:{connection.pk}:{fields['external_id']}"):
        ticket = helpdesk.find_ticket(fields["external_id"])
        requester_id = None
        if ticket is None:
            requester_id = _requester_id(helpdesk, fields["requester"])
            ticket = helpdesk.create_ticket(
                TicketRequest(
                    external_id=fields["external_id"],
                    subject=fields["subject"],
                    description=fields["description"],
                    requester_id=requester_id,
                    priority=fields["priority"],
                    group_id=fields["group_id"],
                    tags=tuple(fields["tags"]),
                    public=fields["public"],
                )
            )
    return {
        "ticket_id": ticket.remote_id,
        "url": ticket.url,
        "created": ticket.created,
        "requester_id": requester_id,
        "priority": fields["priority"],
    }


def _requester_id(helpdesk: Helpdesk, requester: dict[str, Any]) -> str | None:
    """The caller's helpdesk user: found by number, else created; None for a withheld number."""
    number = requester["number"]
    if not number:
        return None
    found = helpdesk.find_by_phone(number)
    if found:
        return found[0].external_id
    return helpdesk.create_contact(e164=number, name=requester["name"]).external_id


def _rendered(template: str, fallback: str, context: dict[str, Any]) -> str:
    return render_text(template, context).strip() or render_text(fallback, context).strip()


@contextmanager
def _one_run_at_a_time(key: str) -> Iterator[None]:
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    while not cache.add(key, 1, timeout=LOCK_SECONDS):
        if time.monotonic() > deadline:
            raise ConnectorError("Another run is still opening this call's ticket.")
        time.sleep(0.2)
    try:
        yield
    finally:
        cache.delete(key)
