"""Salesforce JSON -> SourceRecord and CallLogEntry -> Task fields, on captured-shape fixtures."""

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors.interface import CallLogEntry, SourcePhone
from connectors.salesforce import mapping

FIXTURES = Path(__file__).parent / "fixtures" / "salesforce"
INSTANCE = "https://acme.my.salesforce.com"


def records(name: str) -> list[dict]:
    body = json.loads((FIXTURES / name).read_text())
    return body.get("records") or body["searchRecords"]


def test_it_maps_a_contact_with_its_account_numbers_owner_link_and_custom_fields():
    record = mapping.record_from_sobject(
        "contacts",
        records("query_contacts.json")[0],
        instance_url=INSTANCE,
        custom_fields=["Tier__c", "Lead.Language__c"],
    )

    assert record.external_id == "0038d00000Ab12XAAR"
    assert (record.first_name, record.last_name) == ("Ada", "Lovelace")
    assert record.company == "Lovelace Analytical Engines Ltd"
    assert record.country == "GB" and record.owner_id == "0058d000004IuqQAAS"
    assert record.phones == (
        SourcePhone("07700 900123", "mobile"),
        SourcePhone("+44 20 7946 0018", "work"),
    )  # the home number repeats the work number: kept once
    assert record.crm_url == f"{INSTANCE}/lightning/r/Contact/0038d00000Ab12XAAR/view"
    assert record.custom_fields == {"Tier__c": "Gold"}
    assert not record.is_company


def test_it_keeps_a_contact_without_account_drops_a_free_text_country_and_keeps_junk_numbers():
    record = mapping.record_from_sobject("contacts", records("query_contacts.json")[1])

    assert (record.first_name, record.last_name, record.company) == ("", "Hopper", "")
    assert record.country == ""  # "United States" is not an ISO code: the tenant's region reads
    assert record.phones == (SourcePhone("(415) 555-0132", "work"), SourcePhone("n/a", "other"))
    assert record.crm_url == "" and record.custom_fields == {}


def test_a_record_without_an_id_is_unreadable():
    with pytest.raises(mapping.UnreadableRecord):
        mapping.record_from_sobject("contacts", records("query_contacts.json")[2])


def test_an_account_becomes_a_company_contact_with_a_prefixed_id():
    record = mapping.record_from_sobject(
        "accounts", records("query_accounts.json")[0], instance_url=INSTANCE
    )

    assert record.external_id == "account:0018d00000Xy9AbAAJ"
    assert record.is_company and record.company == "Globex GmbH"
    assert record.country == "DE"
    assert record.phones == (SourcePhone("+49 (0)30 1234567 ext. 12", "work"),)
    assert record.crm_url == f"{INSTANCE}/lightning/r/Account/0018d00000Xy9AbAAJ/view"


def test_a_lead_keeps_its_company_and_object_qualified_custom_fields():
    record = mapping.record_from_sobject(
        "leads", records("query_leads.json")[0], custom_fields=["Lead.Language__c", "Tier__c"]
    )

    assert (record.first_name, record.last_name) == ("Mehmet", "Y\u0131lmaz")
    assert record.company == "Boğaziçi Lojistik" and record.country == "TR"
    assert [p.kind for p in record.phones] == ["mobile", "work"]
    assert record.custom_fields == {"Language__c": "tr"}


def test_search_records_map_like_query_records():
    contact, lead = records("search_phone.json")

    assert mapping.record_from_sobject("contacts", contact).phones == (
        SourcePhone("020 7946 0018", "work"),
    )
    assert mapping.record_from_sobject("leads", lead).company == "Lagos Freight"


def test_the_field_list_has_phones_custom_fields_for_this_object_only_and_the_modstamp():
    fields = mapping.fields_to_select(
        "accounts", ["Tier__c", "Contact.Language__c", "Bad Name; DELETE"]
    )

    assert fields == [
        "Id", "Name", "BillingCountry", "OwnerId", "Phone", "Tier__c", "SystemModstamp",
    ]  # fmt: skip


def test_modification_times_and_soql_literals():
    contact = records("query_contacts.json")[0]

    assert mapping.modstamp_ms(contact) == 1709658131000
    assert mapping.soql_datetime(1709658131999) == "2024-03-05T17:02:11Z"
    assert mapping.soql_string("o'brien\\x@example.com") == "'o\\'brien\\\\x@example.com'"


def entry(**overrides) -> CallLogEntry:
    fields = {
        "call_id": "c7d1a7e0-call",
        "direction": "inbound",
        "outcome": "answered",
        "started_at": datetime(2024, 3, 5, 23, 30, tzinfo=UTC),
        "duration_seconds": 125,
        "from_number": "+442079460018",
        "to_number": "+442079460999",
        "contact_external_id": "0038d00000Ab12XAAR",
        "owner_user_id": "0058d000004IuqQAAS",
        "notes": "Wants a quote.",
        "recording_url": "https://rec.example.com/r/1",
    }
    return CallLogEntry(**{**fields, **overrides})


def test_a_call_is_a_completed_task_of_subtype_call_in_seconds():
    fields = mapping.task_fields(entry())

    assert fields == {
        "Subject": "Inbound call +442079460018",
        "Status": "Completed",
        "ActivityDate": "2024-03-05",
        "Description": "Wants a quote.\nFrom +442079460018 to +442079460999.\n"
        "Recording: https://rec.example.com/r/1",
        "CallType": "Inbound",
        "CallDurationInSeconds": 125,
        "CallDisposition": "Answered",
        "CallObject": "c7d1a7e0-call",
        "TaskSubtype": "Call",
        "WhoId": "0038d00000Ab12XAAR",
        "OwnerId": "0058d000004IuqQAAS",
    }


def test_an_update_never_sends_the_create_only_subtype_or_the_links():
    fields = mapping.task_fields(entry(outcome="transferred"), update=True)

    assert "TaskSubtype" not in fields and "WhoId" not in fields and "OwnerId" not in fields
    assert fields["CallDisposition"] == "Transferred"


def test_a_call_with_an_account_is_related_to_it_not_named():
    fields = mapping.task_fields(entry(contact_external_id="account:0018d00000Xy9AbAAJ"))

    assert fields["WhatId"] == "0018d00000Xy9AbAAJ" and "WhoId" not in fields


def test_a_missed_call_becomes_an_open_high_priority_task():
    fields = mapping.missed_call_task_fields(entry(outcome="missed", duration_seconds=0, notes=""))

    assert fields["Status"] == "Not Started" and fields["Priority"] == "High"
    assert fields["TaskSubtype"] == "Task"
    assert fields["Subject"] == "Missed call from +442079460018: call back"
    assert fields["WhoId"] == "0038d00000Ab12XAAR"
