"""The Zendesk connector against the strict fake: auth, users by phone, tickets once per id."""

import time

import pytest

from connectors.interface import ConnectionConfig, ConnectorError, TicketRequest
from connectors.zendesk.connector import ZendeskConnector
from fakes.zendesk import FakeZendesk, Fault

pytestmark = pytest.mark.django_db  # the per-connection request budget lives in the cache


@pytest.fixture
def zendesk(start_fake) -> FakeZendesk:
    return start_fake(FakeZendesk)


def connector(fake: FakeZendesk, **credentials) -> ZendeskConnector:
    config = ConnectionConfig(
        connection_id=1, credentials={**fake.credentials(), **credentials}, settings={}
    )
    return ZendeskConnector(config, lambda _: None)


def ticket(**fields) -> TicketRequest:
    defaults = {
        "external_id": "5b2c6a1e-call",
        "subject": "Refund not received",
        "description": "Still waiting for the March refund.",
        "requester_id": None,
        "priority": "high",
    }
    return TicketRequest(**{**defaults, **fields})


def test_it_authenticates_with_the_api_token_as_email_slash_token(zendesk):
    assert connector(zendesk).find_ticket("nothing") is None
    with pytest.raises(ConnectorError) as error:
        connector(zendesk, api_token="wrong").find_ticket("nothing")

    assert error.value.permanent and "Couldn't authenticate you" in str(error.value)


def test_it_authenticates_with_an_oauth_access_token(zendesk):
    zendesk.oauth_tokens.add("oauth-token-1")

    found = connector(zendesk, api_token="", access_token="oauth-token-1").find_ticket("x")

    assert found is None


def test_it_finds_end_users_by_any_stored_format_of_the_number(zendesk):
    ada = zendesk.add_user("Ada Lovelace", phone="+44 7400 123456")
    bob = zendesk.add_user("Bob Byte", phone="07400 123456")
    zendesk.add_user("Other Country", phone="+1 (740) 012-3456")  # same last digits, not him
    zendesk.add_user("Ada's Agent", phone="+447400123456", role="agent")

    found = connector(zendesk).find_by_phone("+447400123456")

    assert sorted(r.external_id for r in found) == sorted([str(ada["id"]), str(bob["id"])])
    assert found[0].crm_url.startswith("https://acme.zendesk.com/agent/users/")


def test_it_creates_an_end_user_for_an_unknown_caller(zendesk):
    record = connector(zendesk).create_contact(e164="+447400123456")

    user = zendesk.users[int(record.external_id)]
    assert (user["name"], user["phone"], user["role"]) == (
        "+447400123456",
        "+447400123456",
        "end-user",
    )


def test_a_ticket_is_created_once_per_external_id(zendesk):
    first = connector(zendesk).create_ticket(ticket())
    again = connector(zendesk).find_ticket("5b2c6a1e-call")

    assert first.created and again is not None and not again.created
    assert again.remote_id == first.remote_id and len(zendesk.tickets) == 1
    assert first.url == f"https://acme.zendesk.com/agent/tickets/{first.remote_id}"


def test_a_429_is_retried_after_retry_after(zendesk):
    zendesk.inject(Fault(429, method="POST", path_contains="/tickets", retry_after="1"))
    helpdesk = connector(zendesk)

    started = time.monotonic()
    created = helpdesk.create_ticket(ticket())

    assert time.monotonic() - started >= 1 and created.created
    assert zendesk.paths("POST") == ["/api/v2/tickets.json"] * 2 and len(zendesk.tickets) == 1
    assert helpdesk.rate_limit_waits == 1


def test_a_lost_answer_to_a_create_is_looked_up_not_created_again(zendesk):
    zendesk.inject(Fault(502, method="POST", path_contains="/tickets", after_write=True))

    created = connector(zendesk).create_ticket(ticket())

    assert len(zendesk.tickets) == 1 and not created.created
    assert zendesk.paths() == ["/api/v2/tickets.json"] * 2  # the POST, then the lookup


def test_a_refused_ticket_is_a_permanent_error_saying_why(zendesk):
    with pytest.raises(ConnectorError) as error:
        connector(zendesk).create_ticket(ticket(subject=""))

    assert error.value.permanent and "Subject: cannot be blank" in str(error.value)


def test_what_is_not_built_for_zendesk_says_so(zendesk):
    with pytest.raises(ConnectorError) as error:
        list(connector(zendesk).all_ids("contacts"))

    assert error.value.permanent and "not built for Zendesk" in str(error.value)
    assert connector(zendesk).object_types() == ()


def test_the_api_takes_a_zendesk_connection_and_refuses_one_it_cannot_use(api):
    good = {"subdomain": "acme", "email": "admin@acme.example", "api_token": "t0k3n"}
    bad_subdomain = {**good, "subdomain": "acme.evil.example/x"}

    created = api.post(
        "/api/v1/connections",
        {"provider": "zendesk", "name": "Support", "credentials": good},
        format="json",
    )
    refused = [
        api.post(
            "/api/v1/connections",
            {"provider": "zendesk", "name": "Support", "credentials": credentials},
            format="json",
        )
        for credentials in (bad_subdomain, {"subdomain": "acme", "api_token": "t0k3n"})
    ]

    assert created.status_code == 201, created.json()
    assert "t0k3n" not in str(created.json())
    assert [r.status_code for r in refused] == [400, 400]
    assert refused[0].json()["error"]["field"] == "credentials"


def test_the_api_refuses_call_logging_on_a_zendesk_connection_until_it_is_built(api):
    credentials = {"subdomain": "acme", "email": "admin@acme.example", "api_token": "t0k3n"}
    body = {"provider": "zendesk", "name": "Support", "credentials": credentials}
    logging_on = {"call_logging": {"enabled": True}}

    refused = api.post("/api/v1/connections", {**body, "settings": logging_on}, format="json")
    created = api.post(
        "/api/v1/connections",
        {**body, "settings": {"call_logging": {"enabled": False}}},
        format="json",
    )
    patched = api.patch(
        f"/api/v1/connections/{created.json()['id']}", {"settings": logging_on}, format="json"
    )

    assert created.status_code == 201, created.json()
    for response in (refused, patched):
        assert response.status_code == 400, response.json()
        error = response.json()["error"]
        assert error["field"] == "settings" and "call_logging" in error["message"]
        assert "not built for Zendesk" in error["message"]
