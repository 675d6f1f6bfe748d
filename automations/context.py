"""What app templates and conditions see: event.*, contact.* and app_data.* (filled in order)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.utils import timezone

from calls.exports import change_stamp
from calls.lifecycle import callback_payload, iso_z
from calls.models import Call, CallParty
from calls.recordings import call_recording_url
from contacts import selectors as contact_selectors
from contacts.selectors import CallerCard


def app_context(
    event_type: str, card: CallerCard, *, called_number: str, fields: Mapping[str, Any] = {}
) -> dict[str, Any]:
    """The context of an inbound call from `card`'s number; `fields` add to (or replace) event.*."""
    contact = _contact_of(card)
    event = {
        "type": event_type,
        "calling_number": card.number,
        "called_number": called_number,
        # Seed 004's names: the phone system's own when it sends them, else the phonebook's.
        "calling_name": contact.get("name", ""),
        "calling_devicename": "",
        "trigger_point_type": "",
        "timestamp": iso_z(timezone.now()),
        "direction": "inbound",
        **{name: value for name, value in fields.items() if value is not None},
    }
    return {"event": event, "contact": contact, "app_data": {}}


def event_context(call: Call, event: str) -> dict[str, Any]:
    """The context of a stored call: its callback fields, analytics, notes, transfer, agent."""
    inbound = call.direction == Call.Direction.INBOUND
    payload = callback_payload(call, call_recording_url(call))
    analytics = {
        name: getattr(call, name)
        for name in ("satisfaction", "resolved", "sentiment", "summary", "transcript")
    }
    card = contact_selectors.caller_card(tenant=call.tenant, number=call.customer_number)
    called = call.from_number if inbound else call.customer_number
    fields = {
        **payload,
        **analytics,
        "type": event,
        "calling_number": call.customer_number if inbound else call.from_number,
        "timestamp": payload["end_time"] or payload["start_time"],
        "notes": call.notes,
        "variables": call.variables,
        "transfer_requested": call.parties.filter(kind=CallParty.Kind.TRANSFER).exists(),
        "agent_name": call.agent.display_name if call.agent else "",
        "updated_at": change_stamp(call.updated_at),
    }
    return app_context(event, card, called_number=called, fields=fields)


def _contact_of(card: CallerCard) -> dict[str, Any]:
    contact = card.contact
    if contact is None:
        return {"known": card.known, "number": card.number}
    return {
        "known": True,
        "number": card.number,
        "name": contact.name,
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "company": contact.company,
        "crm_url": contact.crm_url,
        "custom": contact.custom_fields,
        "owner": contact.owner.crm_username if contact.owner else None,
    }
