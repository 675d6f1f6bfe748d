"""Zendesk JSON -> our records and tickets, and tickets -> Zendesk bodies, on captured shapes."""

import json
from pathlib import Path

import pytest

from connectors.interface import SourcePhone, TicketRef, TicketRequest
from connectors.zendesk import mapping

FIXTURES = Path(__file__).parent / "fixtures" / "zendesk"
BASE = "https://acme.zendesk.com"


def fixture(name: str):
    return json.loads((FIXTURES / name).read_text())


def test_it_maps_an_end_user_with_its_one_phone_and_agent_link():
    record = mapping.record_from_user(fixture("users_search.json")["users"][0], base=BASE)

    assert record.external_id == "21311632247"
    assert (record.first_name, record.last_name) == ("Ada", "Lovelace")
    assert record.phones == (SourcePhone("+44 7400 123456", "work"),)
    assert record.crm_url == "https://acme.zendesk.com/agent/users/21311632247"


def test_a_user_with_one_name_and_no_phone_still_maps_and_one_without_id_does_not():
    users = fixture("users_search.json")["users"]

    record = mapping.record_from_user(users[1], base=BASE)

    assert (record.first_name, record.last_name, record.phones) == ("Madonna", "", ())
    with pytest.raises(mapping.UnreadableRecord):
        mapping.record_from_user(users[2], base=BASE)


def test_the_phone_search_sends_the_national_digits_behind_a_wildcard():
    assert mapping.phone_query("+447400123456") == "role:end-user phone:*7400123456"
    assert mapping.phone_query("+15135557611") == "role:end-user phone:*5135557611"


def test_a_ticket_body_has_the_comment_requester_queue_and_our_call_id():
    ticket = TicketRequest(
        external_id="call-1",
        subject="Refund not received " * 10,
        description="Still waiting.",
        requester_id="21311632247",
        priority="high",
        group_id=41661887,
        tags=("callbridge",),
    )

    body = mapping.ticket_body(ticket)["ticket"]

    assert len(body["subject"]) == 150
    assert body["comment"] == {"body": "Still waiting.", "public": False}
    assert (body["requester_id"], body["group_id"], body["priority"]) == (
        21311632247,
        41661887,
        "high",
    )
    assert (body["external_id"], body["tags"]) == ("call-1", ["callbridge"])


def test_a_ticket_without_requester_priority_or_queue_leaves_them_to_zendesk():
    ticket = TicketRequest(external_id="c", subject="s", description="d", requester_id=None)

    body = mapping.ticket_body(ticket)["ticket"]

    assert {"requester_id", "priority", "group_id"}.isdisjoint(body)


def test_a_created_ticket_answers_its_id_and_where_agents_open_it():
    ref = mapping.ticket_ref(fixture("tickets_create.json")["ticket"], base=BASE, created=True)

    assert ref == TicketRef("8916", "https://acme.zendesk.com/agent/tickets/8916", True)


def test_error_bodies_read_as_one_line():
    assert mapping.error_message(fixture("record_invalid.json")) == (
        "RecordInvalid: Record validation errors (Subject: cannot be blank)"
    )
    assert mapping.error_message({"error": "Couldn't authenticate you"}) == (
        "Couldn't authenticate you"
    )
    assert mapping.error_message("Rate limit exceeded") == ""
