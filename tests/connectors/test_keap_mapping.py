"""Keap v2 JSON to SourceRecords and back: pure functions, no server."""

from datetime import UTC, datetime

import pytest

from connectors.interface import CallLogEntry, SourcePhone
from connectors.keap import mapping

CONTACT = {
    "id": "1001",
    "given_name": " Ada ",
    "family_name": "Lovelace",
    "company": {"id": "5", "company_name": "Analytical Engines"},
    "phone_numbers": [
        {"field": "PHONE1", "number": "020 7946 0018", "number_e164": "+442079460018",
         "type": "Work", "extension": ""},
        {"field": "PHONE2", "number": "(415) 555-0100", "type": "Mobile"},
        {"field": "PHONE3", "number": "020 7946 0018", "number_e164": "+442079460018",
         "type": "Home"},
        {"field": "PHONE4", "number": "", "type": "Other"},
    ],
    "addresses": [{"field": "BILLING", "country_code": ""},
                  {"field": "SHIPPING", "country_code": "GBR"}],
    "owner_id": "45",
    "custom_fields": [{"id": "12", "content": "gold"}, {"id": "13", "content": "x"}],
    "update_time": "2024-03-15T10:30:00.123Z",
}  # fmt: skip


def entry(**fields) -> CallLogEntry:
    defaults = {
        "call_id": "c-7",
        "direction": "inbound",
        "outcome": "missed",
        "started_at": datetime(2024, 3, 5, 17, 2, 11, tzinfo=UTC),
        "duration_seconds": 0,
        "from_number": "+442079460018",
        "to_number": "+442045205757",
        "contact_external_id": "1001",
    }
    return CallLogEntry(**{**defaults, **fields})


def test_a_contact_maps_names_company_country_owner_and_chosen_custom_fields():
    record = mapping.record_from_contact(CONTACT, custom_fields=["12"])

    assert (record.external_id, record.first_name, record.last_name) == ("1001", "Ada", "Lovelace")
    assert (record.company, record.country, record.owner_id) == ("Analytical Engines", "GB", "45")
    assert record.custom_fields == {"12": "gold"} and not record.is_company


def test_numbers_are_keaps_e164_reading_when_it_has_one_each_once():
    assert mapping.record_from_contact(CONTACT).phones == (
        SourcePhone("+442079460018", "work"),
        SourcePhone("(415) 555-0100", "mobile"),
    )


def test_a_company_is_an_is_company_record_with_its_one_number():
    company = {"id": "5", "company_name": "Analytical Engines", "owner_id": "0",
               "phone_number": {"number": "+1 212 555 0100", "type": "Work"},
               "address": {"country_code": "USA"}}  # fmt: skip

    record = mapping.record_from_company(company)

    assert (record.external_id, record.company, record.is_company) == (
        "company:5",
        "Analytical Engines",
        True,
    )
    assert (record.country, record.owner_id) == ("US", "")
    assert record.phones == (SourcePhone("+1 212 555 0100", "work"),)


@pytest.mark.parametrize("row", [{}, {"id": None}, {"id": "abc"}, "1001", None])
def test_a_record_without_a_numeric_id_is_unreadable(row):
    with pytest.raises(mapping.UnreadableRecord):
        mapping.record_from_contact(row)


def test_update_times_read_as_epoch_ms_and_filters_get_ms_with_an_offset():
    assert mapping.update_ms(CONTACT) == 1_710_498_600_123
    assert mapping.keap_time(1_710_498_600_123) == "2024-03-15T10:30:00.123Z"
    assert mapping.keap_time(0) == "1970-01-01T00:00:00.000Z"
    with pytest.raises(mapping.UnreadableRecord):
        mapping.update_ms({"update_time": "2024-03-15T10:30:00"})  # no offset


def test_a_call_note_is_of_type_call_with_our_id_as_its_last_line():
    body = mapping.note_body(
        entry(outcome="answered", duration_seconds=95, notes="Hi"), user_id="7"
    )

    assert (body["type"], body["user_id"], body["title"]) == ("Call", "7", "Inbound call")
    lines = body["text"].splitlines()
    assert lines[0] == "Outcome: answered; duration 1:35" and "Hi" in lines
    assert lines[-1] == "CallBridge call c-7"


def test_a_missed_call_task_is_essential_due_at_the_call_for_the_contact():
    body = mapping.task_body(entry(), user_id="7")

    assert body["title"] == "Call back +442079460018 (missed call)"
    assert (body["priority"], body["completed"], body["contact_id"]) == ("ESSENTIAL", False, "1001")
    assert (body["due_time"], body["assigned_to_user_id"]) == ("2024-03-05T17:02:11.000Z", "7")


def test_notes_and_tasks_belong_to_contacts_not_companies():
    with pytest.raises(ValueError, match="contact id"):
        mapping.task_body(entry(contact_external_id="company:5"), user_id="7")


def test_a_new_contact_has_the_number_in_phone1_and_the_name_split_once():
    assert mapping.contact_body(e164="+447400999888", name="Ada King Lovelace") == {
        "phone_numbers": [{"field": "PHONE1", "number": "+447400999888", "type": "Mobile"}],
        "given_name": "Ada",
        "family_name": "King Lovelace",
    }
    assert "given_name" not in mapping.contact_body(e164="+447400999888", name="")
