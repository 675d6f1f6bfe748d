"""Pipedrive JSON -> SourceRecord and CallLogEntry -> Pipedrive bodies, on captured shapes."""

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors.interface import CallLogEntry, SourcePhone
from connectors.pipedrive import mapping

FIXTURES = Path(__file__).parent / "fixtures" / "pipedrive"
TIER = "5f1b1c2a9e0d4b7c8a6e3f2d1c0b9a8e7d6c5b4a"
ORG_PHONE = "9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b"


def data(name: str):
    return json.loads((FIXTURES / name).read_text())["data"]


def entry(**fields) -> CallLogEntry:
    defaults = {
        "call_id": "c-7f3a",
        "direction": "inbound",
        "outcome": "answered",
        "started_at": datetime(2024, 3, 5, 17, 2, 11, tzinfo=UTC),
        "duration_seconds": 125,
        "from_number": "+442079460018",
        "to_number": "+442045205757",
    }
    return CallLogEntry(**{**defaults, **fields})


def test_it_maps_a_person_with_labelled_numbers_primary_first_company_link_and_custom_fields():
    record = mapping.record_from_person(
        data("persons_list.json")[0],
        app_url="https://acme.pipedrive.com",
        org_names={7: "Globex GmbH"},
        custom_fields=[TIER, "owner_id"],
    )

    assert record.external_id == "51"
    assert (record.first_name, record.last_name) == ("Ada", "Lovelace")
    assert record.company == "Globex GmbH" and not record.is_company
    assert record.country == "GB"
    assert record.phones == (
        SourcePhone("07700 900123", "mobile"),
        SourcePhone("+44 20 7946 0018", "work"),
    )
    assert record.crm_url == "https://acme.pipedrive.com/person/51"
    assert record.custom_fields == {TIER: "gold", "owner_id": 11}
    assert record.owner_id == "11"  # a user of GET /v1/users


def test_a_person_without_names_an_unknown_label_or_a_link_base_still_maps():
    record = mapping.record_from_person(data("persons_list.json")[1], custom_fields=[TIER])

    assert (record.first_name, record.last_name) == ("(415)", "555-0132")  # name split
    assert record.company == "" and record.country == "" and record.crm_url == ""
    assert record.phones == (SourcePhone("(415) 555-0132", "other"),)
    assert record.custom_fields == {}


def test_a_record_without_an_id_is_unreadable():
    with pytest.raises(mapping.UnreadableRecord):
        mapping.record_from_person(data("persons_list.json")[2])


def test_an_organization_becomes_a_company_record_numbered_from_its_phone_field():
    globex, initech = data("organizations_list.json")

    record = mapping.record_from_organization(
        globex, app_url="https://acme.pipedrive.com", phone_fields=[ORG_PHONE]
    )

    assert record.external_id == "org:7" and record.is_company
    assert record.owner_id == "11"
    assert record.company == "Globex GmbH" and record.country == "DE"
    assert record.phones == (SourcePhone("+49 (0)30 1234567 ext. 12", "work"),)
    assert record.crm_url == "https://acme.pipedrive.com/organization/7"
    other = mapping.record_from_organization(initech, phone_fields=[ORG_PHONE])
    assert other.phones == () and other.country == ""  # "United States" is not an ISO code


def test_a_search_item_has_string_phones_and_the_organization_name():
    (result,) = data("persons_search.json")["items"]

    record = mapping.record_from_search_item(result["item"], app_url="https://acme.pipedrive.com")

    assert record.external_id == "51" and record.company == "Globex GmbH"
    assert [p.number for p in record.phones] == ["+44 20 7946 0018", "07700 900123"]


def test_update_times_are_read_in_epoch_ms_and_written_back_as_rfc3339_seconds():
    person = data("persons_list.json")[0]

    ms = mapping.updated_ms(person)

    assert ms == 1709658131000
    assert mapping.rfc3339(ms + 999) == "2024-03-05T17:02:11Z"
    assert mapping.updated_ms({"update_time": "2024-03-05 17:02:11"}) == ms  # v1 style, UTC


def test_a_call_log_body_has_pipedrive_outcome_utc_times_and_seconds_as_a_string():
    body = mapping.call_log_body(
        entry(owner_user_id="11", notes="Wants a <quote>", recording_url="https://r.example/1"),
        person_id=51,
        org_id=None,
    )

    assert body["outcome"] == "connected"
    assert (body["start_time"], body["end_time"]) == ("2024-03-05 17:02:11", "2024-03-05 17:04:16")
    assert body["duration"] == "125"
    assert (body["to_phone_number"], body["from_phone_number"]) == (
        "+442045205757",
        "+442079460018",
    )
    assert (body["person_id"], body["user_id"]) == (51, 11) and "org_id" not in body
    assert "Wants a &lt;quote&gt;" in body["note"]
    assert 'href="https://r.example/1"' in body["note"] and "c-7f3a" in body["note"]
    assert mapping.call_log_body(entry(outcome="missed"), person_id=None, org_id=7)["outcome"] == (
        "no_answer"
    )


def test_a_missed_call_task_is_an_open_call_activity_with_a_primary_participant():
    body = mapping.task_body(entry(outcome="missed", duration_seconds=0), person_id=51, org_id=None)

    assert body["type"] == "call" and body["done"] is False
    assert (body["due_date"], body["due_time"]) == ("2024-03-05", "17:02")
    assert body["participants"] == [{"person_id": 51, "primary": True}]
    assert "person_id" not in body  # read-only in v2
    assert "+442079460018" in body["subject"]


def test_our_external_ids_link_to_persons_or_organizations():
    assert mapping.linked_record("51") == (51, None)
    assert mapping.linked_record("org:7") == (None, 7)
    assert mapping.linked_record(None) == (None, None)
    with pytest.raises(ValueError):
        mapping.linked_record("company:7")
