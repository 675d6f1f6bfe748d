"""The HubSpot write side against the strict fake: owners, call engagements, tasks, contacts."""

import time
from datetime import UTC, datetime

import pytest

from connectors.hubspot.connector import HubSpotConnector
from connectors.interface import CallLogEntry, ConnectionConfig, ConnectorError

pytestmark = pytest.mark.django_db  # the per-connection request budget lives in the cache


def connector(fake, saved=None, **credentials) -> HubSpotConnector:
    credentials = credentials or {"private_app_token": next(iter(fake.private_app_tokens))}
    config = ConnectionConfig(
        connection_id=1,
        credentials={**credentials, "base_url": fake.url, "hub_id": "4212"},
        settings={},
        background=False,
    )
    return HubSpotConnector(config, (saved if saved is not None else []).append)


def entry(**fields) -> CallLogEntry:
    values = {
        "call_id": "call-7f3a",
        "direction": "inbound",
        "outcome": "answered",
        "started_at": datetime(2024, 3, 1, 9, 30, tzinfo=UTC),
        "duration_seconds": 125,
        "from_number": "+442079460018",
        "to_number": "+442045205757",
        "contact_external_id": "12",
        "notes": "Asked about the invoice.",
    }
    return CallLogEntry(**(values | fields))


def test_it_finds_the_owner_of_an_agents_email(hubspot):
    hubspot.add_owner("someone@acme.example", "Some", "One")
    owner_id = hubspot.add_owner("Priya.Shah@acme.example", "Priya", "Shah")

    user = connector(hubspot).find_user("priya.shah@acme.example")

    assert (user.external_id, user.name) == (owner_id, "Priya Shah")
    assert connector(hubspot).find_user("nobody@acme.example") is None
    assert "/crm/v3/owners" in hubspot.paths("GET")


def test_it_lists_every_active_owner_page_by_page(hubspot):
    owner_ids = [hubspot.add_owner(f"agent{i}@acme.example") for i in range(502)]
    hubspot.owners[-1]["archived"] = True  # a deactivated user

    users = connector(hubspot).users()

    assert [user.external_id for user in users] == owner_ids[:-1]
    assert users[0].email == "agent0@acme.example"
    assert hubspot.paths("GET").count("/crm/v3/owners") == 2  # 500 a page


def test_it_logs_a_call_engagement_linked_to_the_contact_and_the_owner(hubspot):
    owner_id = hubspot.add_owner("priya.shah@acme.example")

    remote_id = connector(hubspot).log_call(entry(owner_user_id=owner_id))

    written = hubspot.written["calls"][remote_id]
    properties = written["properties"]
    assert properties["hs_call_duration"] == "125000"  # HubSpot counts milliseconds
    assert properties["hs_timestamp"] == "1709285400000"
    assert properties["hs_call_direction"] == "INBOUND"
    assert properties["hs_call_status"] == "COMPLETED"
    assert properties["hs_call_disposition"] == "f240bbac-87c9-4f6e-bf70-924b57d47db7"  # Connected
    assert properties["hs_call_body"] == "Asked about the invoice."
    assert properties["hs_call_external_id"] == "call-7f3a"
    assert properties["hubspot_owner_id"] == owner_id
    assert written["associations"] == [{"to": "contacts", "id": "12", "typeId": 194}]


def test_a_missed_call_gets_hubspots_no_answer_outcome(hubspot):
    remote_id = connector(hubspot).log_call(entry(outcome="missed", duration_seconds=0))

    properties = hubspot.written["calls"][remote_id]["properties"]
    assert properties["hs_call_status"] == "NO_ANSWER"
    assert properties["hs_call_disposition"] == "73a0d17f-1163-4015-bdd5-ec830791da20"


def test_updating_a_call_log_changes_the_same_engagement(hubspot):
    hubspot_connector = connector(hubspot)
    remote_id = hubspot_connector.log_call(entry())

    hubspot_connector.update_call_log(
        remote_id, entry(notes="Summary: will pay Friday.", recording_url="https://rec.example/1")
    )

    assert list(hubspot.written["calls"]) == [remote_id]  # no duplicate
    properties = hubspot.written["calls"][remote_id]["properties"]
    assert properties["hs_call_body"] == "Summary: will pay Friday."
    assert properties["hs_call_recording_url"] == "https://rec.example/1"
    assert hubspot.paths("PATCH") == [f"/crm/v3/objects/calls/{remote_id}"]
    assert hubspot.paths("GET").count("/calling/v1/dispositions") == 1  # read once per connector


def test_updating_a_call_hubspot_does_not_have_is_a_permanent_error(hubspot):
    with pytest.raises(ConnectorError, match="404") as error:
        connector(hubspot).update_call_log("123", entry())

    assert error.value.permanent


def test_a_call_linked_to_a_contact_hubspot_does_not_have_is_refused(hubspot):
    with pytest.raises(ConnectorError, match="No contact with id 999999") as error:
        connector(hubspot).log_call(entry(contact_external_id="999999"))

    assert error.value.permanent and hubspot.written["calls"] == {}


def test_it_creates_a_call_back_task_linked_to_the_contact(hubspot):
    remote_id = connector(hubspot).create_task(entry(outcome="missed", duration_seconds=0))

    task = hubspot.written["tasks"][remote_id]
    assert task["properties"]["hs_task_subject"] == "Call back +442079460018 (missed call)"
    assert task["properties"]["hs_task_type"] == "CALL"
    assert task["properties"]["hs_task_status"] == "NOT_STARTED"
    assert task["associations"] == [{"to": "contacts", "id": "12", "typeId": 204}]


def test_it_creates_a_contact_for_an_unknown_number(hubspot):
    record = connector(hubspot).create_contact(e164="+447700900123", name="Ada King Lovelace")

    stored = hubspot.objects["contacts"][int(record.external_id)].properties
    assert stored == {"phone": "+447700900123", "firstname": "Ada", "lastname": "King Lovelace"}
    assert (record.first_name, record.last_name) == ("Ada", "King Lovelace")
    assert record.phones[0].number == "+447700900123"
    assert record.crm_url.endswith(f"/record/0-1/{record.external_id}")


def test_writes_refresh_an_expired_oauth_token_first(hubspot):
    saved = []
    tokens = hubspot.issue_oauth_tokens(expires_in=5)
    credentials = {
        "access_token": tokens["access_token"],
        "refresh_token": tokens["refresh_token"],
        "expires_at": time.time() + 5,
        "client_id": "fake-client-id",
        "client_secret": "fake-client-secret",
    }

    connector(hubspot, saved, **credentials).create_task(entry())

    assert hubspot.paths("POST")[0] == "/oauth/v1/token" and len(saved) == 1
