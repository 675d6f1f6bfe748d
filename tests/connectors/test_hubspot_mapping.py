"""HubSpot JSON -> SourceRecord, on captured-shape search pages."""

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors.hubspot import mapping
from connectors.interface import CallLogEntry, CrmUser, SourcePhone

FIXTURES = Path(__file__).parent / "fixtures"


def page(name: str) -> list[dict]:
    return json.loads((FIXTURES / name).read_text())["results"]


def test_it_maps_a_contact_with_both_numbers_country_link_and_custom_fields():
    record = mapping.record_from_object(
        "contacts",
        page("hubspot_search_contacts.json")[0],
        portal_id="4212",
        custom_fields=["lifecyclestage"],
    )

    assert record.external_id == "51"
    assert (record.first_name, record.last_name) == ("Ada", "Lovelace")
    assert record.company == "Lovelace Analytical Engines Ltd"
    assert record.country == "GB"
    assert record.phones == (
        SourcePhone("07700 900123", "mobile"),
        SourcePhone("+44 20 7946 0018", "work"),
    )
    assert record.crm_url == "https://app.hubspot.com/contacts/4212/record/0-1/51"
    assert record.custom_fields == {"lifecyclestage": "customer"}
    assert record.owner_id == "41629779"  # an owner of GET /crm/v3/owners
    assert not record.is_company


def test_it_keeps_a_nameless_contact_drops_a_free_text_country_and_a_repeated_number():
    record = mapping.record_from_object("contacts", page("hubspot_search_contacts.json")[1])

    assert (record.first_name, record.last_name, record.company) == ("", "", "")
    assert record.country == ""  # "United States" is not an ISO code: the tenant's region reads
    assert record.phones == (SourcePhone("(415) 555-0132", "mobile"),)
    assert record.crm_url == ""  # no portal id known
    assert record.custom_fields == {}
    assert record.owner_id == ""


def test_a_record_without_an_id_is_unreadable():
    with pytest.raises(mapping.UnreadableRecord):
        mapping.record_from_object("contacts", page("hubspot_search_contacts.json")[2])


def test_a_company_becomes_a_company_contact_in_its_own_id_space():
    record = mapping.record_from_object(
        "companies", page("hubspot_search_companies.json")[0], portal_id="4212"
    )

    assert record.external_id == "company:51"
    assert record.is_company and record.company == "Globex GmbH"
    assert record.country == "DE"
    assert record.phones == (SourcePhone("+49 (0)30 1234567 ext. 12", "work"),)
    assert record.crm_url == "https://app.hubspot.com/contacts/4212/record/0-2/51"


def test_modification_times_are_read_in_epoch_ms_per_object_type():
    contact = page("hubspot_search_contacts.json")[0]
    company = page("hubspot_search_companies.json")[0]

    assert mapping.modified_ms("contacts", contact) == 1709658131907
    assert mapping.modified_ms("companies", company) == 1709713800250
    assert mapping.properties_to_request("companies", ["industry"]) == [
        "country", "hs_lastmodifieddate", "hubspot_owner_id", "industry", "name", "phone",
    ]  # fmt: skip


def call_entry(**fields) -> CallLogEntry:
    values = {
        "call_id": "call-7f3a",
        "direction": "inbound",
        "outcome": "answered",
        "started_at": datetime(2024, 3, 1, 9, 30, tzinfo=UTC),
        "duration_seconds": 125,
        "from_number": "+442079460018",
        "to_number": "+442045205757",
        "contact_external_id": "51",
        "owner_user_id": "41629779",
    }
    return CallLogEntry(**(values | fields))


def test_a_call_is_logged_in_milliseconds_with_hubspots_enumerations():
    properties = mapping.call_properties(call_entry(), disposition_id="f240bbac")

    assert properties["hs_timestamp"] == "1709285400000"
    assert properties["hs_call_duration"] == "125000"
    assert (properties["hs_call_direction"], properties["hs_call_status"]) == (
        "INBOUND",
        "COMPLETED",
    )
    assert properties["hs_call_disposition"] == "f240bbac"
    assert properties["hs_call_from_number"] == "+442079460018"
    assert properties["hs_call_external_id"] == "call-7f3a"
    assert properties["hubspot_owner_id"] == "41629779"
    assert properties["hs_call_title"] == "Inbound call +442079460018"


def test_a_plain_http_recording_link_is_left_out_as_hubspot_refuses_it():
    plain = mapping.call_properties(call_entry(recording_url="http://rec.example/1"))
    secure = mapping.call_properties(call_entry(recording_url="https://rec.example/1"))

    assert "hs_call_recording_url" not in plain
    assert secure["hs_call_recording_url"] == "https://rec.example/1"


def test_calls_and_tasks_link_to_contacts_or_companies_with_default_association_types():
    assert mapping.associations("calls", "51") == [
        {
            "to": {"id": "51"},
            "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 194}],
        }
    ]
    assert mapping.associations("tasks", "company:9")[0]["to"] == {"id": "9"}
    assert mapping.associations("tasks", "company:9")[0]["types"][0]["associationTypeId"] == 192
    assert mapping.associations("calls", None) == []


def test_an_owner_becomes_a_crm_user():
    owners = json.loads((FIXTURES / "hubspot_owners.json").read_text())["results"]

    assert mapping.user_from_owner(owners[0]) == CrmUser(
        "41629779", "priya.shah@acme.example", "Priya Shah"
    )
    assert mapping.user_from_owner(owners[1]).name == ""
