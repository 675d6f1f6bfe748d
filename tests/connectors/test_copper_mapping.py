"""Copper JSON -> SourceRecord, and our calls -> Copper activities and tasks (pure functions)."""

from datetime import UTC, datetime

import pytest

from connectors.copper import mapping
from connectors.interface import CallLogEntry, SourcePhone

PERSON = {
    "id": 7,
    "name": "Taylor Lowe",
    "first_name": "Taylor",
    "last_name": "Lowe",
    "address": {"street": "221 Main Street", "city": "Vancouver", "country": "CA"},
    "assignee_id": 137658,
    "company_id": 2,
    "company_name": "ProsperWorks",
    "phone_numbers": [
        {"number": "4158546956", "category": "work"},
        {"number": "4158546956", "category": "mobile"},
        {"number": " +1 415 555 0100 ", "category": "mobile"},
        {"number": "", "category": "home"},
        {"number": "07700 900123", "category": "fax"},
    ],
    "custom_fields": [
        {"custom_field_definition_id": 6, "value": "gold"},
        {"custom_field_definition_id": 8, "value": None},
        {"custom_field_definition_id": 9, "value": "not asked for"},
    ],
    "date_modified": 1516313340,
}


def call(**fields) -> CallLogEntry:
    defaults = {
        "call_id": "c-91",
        "direction": "inbound",
        "outcome": "answered",
        "started_at": datetime(2024, 3, 5, 17, 2, 11, tzinfo=UTC),
        "duration_seconds": 95,
        "from_number": "+442079460018",
        "to_number": "+442045205757",
        "contact_external_id": "7",
        "owner_user_id": "137658",
    }
    return CallLogEntry(**{**defaults, **fields})


def test_a_person_keeps_names_company_country_owner_and_each_number_once():
    record = mapping.record_from_person(
        PERSON, app_url="https://app.copper.com/companies/1/app#", custom_fields=["6", "8"]
    )

    assert (record.external_id, record.first_name, record.last_name) == ("7", "Taylor", "Lowe")
    assert (record.company, record.country, record.owner_id) == ("ProsperWorks", "CA", "137658")
    assert record.phones == (
        SourcePhone("4158546956", "work"),
        SourcePhone("+1 415 555 0100", "mobile"),
        SourcePhone("07700 900123", "other"),
    )
    assert record.custom_fields == {"6": "gold"}
    assert record.crm_url == "https://app.copper.com/companies/1/app#/people/7"


def test_a_person_with_only_a_full_name_is_split_once():
    record = mapping.record_from_person({"id": 3, "name": "Jo Bennett Smith"})

    assert (record.first_name, record.last_name, record.owner_id) == ("Jo", "Bennett Smith", "")


def test_a_company_is_a_company_record_with_its_own_id_space():
    record = mapping.record_from_company(
        {"id": 2, "name": "Dunder Mifflin", "address": {"country": "United States"},
         "phone_numbers": [{"number": "570-555-0100", "category": "work"}]}
    )  # fmt: skip

    assert (record.external_id, record.company, record.is_company) == (
        "company:2",
        "Dunder Mifflin",
        True,
    )
    assert record.country == ""  # free text, not an ISO code
    assert record.phones == (SourcePhone("570-555-0100", "work"),)


@pytest.mark.parametrize("obj", [{"name": "no id"}, {"id": "7"}, None, []])
def test_a_record_without_an_integer_id_is_unreadable(obj):
    with pytest.raises(mapping.UnreadableRecord):
        mapping.record_from_person(obj)


def test_times_are_unix_seconds_or_unreadable():
    assert mapping.unix_seconds(PERSON, "date_modified") == 1516313340
    with pytest.raises(mapping.UnreadableRecord):
        mapping.unix_seconds({"date_modified": "2018-01-18"}, "date_modified")


def test_our_ids_name_a_person_or_a_company_parent():
    assert mapping.parent_of("7") == {"type": "person", "id": 7}
    assert mapping.parent_of("company:2") == {"type": "company", "id": 2}
    assert mapping.parent_of(None) is None
    with pytest.raises(ValueError):
        mapping.parent_of("lead:9")


def test_a_call_is_a_phone_call_activity_with_everything_in_its_details():
    entry = call(notes="Asked about pricing\nCall back Friday", recording_url="https://r.example/1")

    body = mapping.activity_body(entry, phone_call_type=190711, agent="Priya Shah <p@example.com>")

    assert body["parent"] == {"type": "person", "id": 7}
    assert body["type"] == {"category": "user", "id": 190711}
    assert body["activity_date"] == 1709658131 and body["user_id"] == 137658
    assert body["details"].splitlines() == [
        "Inbound call",
        "Outcome: answered; duration 1:35",
        "From +442079460018 to +442045205757",
        "",
        "Asked about pricing",
        "Call back Friday",
        "Recording: https://r.example/1",
        "Agent: Priya Shah <p@example.com>",
        "CallBridge call c-91",
    ]


def test_a_missed_call_task_is_open_high_priority_and_due_at_the_call():
    body = mapping.task_body(
        call(outcome="missed", duration_seconds=0, contact_external_id="company:2")
    )

    assert body["name"] == "Call back +442079460018 (missed call)"
    assert (body["status"], body["priority"], body["due_date"]) == ("Open", "High", 1709658131)
    assert body["related_resource"] == {"type": "company", "id": 2}
    assert body["assignee_id"] == 137658
    assert body["details"].endswith("CallBridge call c-91")


def test_a_task_for_an_unknown_caller_has_no_related_resource():
    body = mapping.task_body(call(outcome="missed", contact_external_id=None, owner_user_id=None))

    assert "related_resource" not in body and "assignee_id" not in body


def test_a_new_person_is_named_after_the_number_when_no_name_is_known():
    assert mapping.person_body(e164="+447700900999", name=" ") == {
        "name": "+447700900999",
        "phone_numbers": [{"number": "+447700900999", "category": "mobile"}],
    }
