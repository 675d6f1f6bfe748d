"""SugarCRM REST v11 JSON <-> our dataclasses, on captured-shape /<Module>/filter pages."""

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors.interface import CallLogEntry, SourcePhone
from connectors.sugarcrm import mapping

FIXTURES = Path(__file__).parent / "fixtures" / "sugarcrm"
INSTANCE = "https://acme.sugarondemand.com"


def records(name: str) -> list[dict]:
    return json.loads((FIXTURES / name).read_text())["records"]


def entry(**fields) -> CallLogEntry:
    values = {
        "call_id": "call-7",
        "direction": "inbound",
        "outcome": "answered",
        "started_at": datetime(2024, 3, 5, 17, 2, 11, 345000, tzinfo=UTC),
        "duration_seconds": 754,
        "from_number": "+442079460018",
        "to_number": "+442079460999",
        "contact_external_id": "f2c1a3a8-3b7e-11ee-8c6e-02a1b2c3d4e5",
        "owner_user_id": "seed_sally_id",
        **fields,
    }
    return CallLogEntry(**values)


def test_it_maps_a_contact_with_its_numbers_account_owner_link_and_custom_fields():
    record = mapping.record_from_sugar(
        "contacts",
        records("contacts_filter.json")[0],
        instance_url=INSTANCE + "/",
        custom_fields=["lead_source"],
    )

    assert record.external_id == "f2c1a3a8-3b7e-11ee-8c6e-02a1b2c3d4e5"
    assert (record.first_name, record.last_name) == ("Ada", "Lovelace")
    assert record.company == "Lovelace Analytical Engines Ltd"
    assert record.country == "GB"  # Sugar's country is free text: an ISO code, any case, is read
    assert record.phones == (
        SourcePhone("07700 900123", "mobile"),
        SourcePhone("+44 20 7946 0018", "work"),  # phone_home repeats it: kept once
    )
    assert record.crm_url == f"{INSTANCE}/#Contacts/f2c1a3a8-3b7e-11ee-8c6e-02a1b2c3d4e5"
    assert record.owner_id == "seed_sally_id" and record.owner_email == ""
    assert record.custom_fields == {"lead_source": "Web Site"}
    assert not record.is_company


def test_empty_strings_are_no_value_and_a_country_name_is_not_a_code():
    record = mapping.record_from_sugar(
        "contacts", records("contacts_filter.json")[1], custom_fields=["lead_source"]
    )

    assert (record.first_name, record.company, record.country, record.owner_id) == ("", "", "", "")
    assert record.phones == (SourcePhone("n/a", "work"), SourcePhone("(415) 555-0100", "other"))
    assert record.custom_fields == {} and record.crm_url == ""


def test_an_account_is_a_company_with_a_prefixed_id_and_its_office_numbers():
    record = mapping.record_from_sugar(
        "accounts", records("accounts_filter.json")[0], instance_url=INSTANCE
    )

    assert record.external_id == "account:9b1e4f02-3b80-11ee-8c6e-02a1b2c3d4e5"
    assert record.is_company and record.company == "Lovelace Analytical Engines Ltd"
    assert record.phones == (
        SourcePhone("020 7946 0000", "work"),
        SourcePhone("020 7946 0001", "other"),
    )
    assert record.crm_url == f"{INSTANCE}/#Accounts/9b1e4f02-3b80-11ee-8c6e-02a1b2c3d4e5"


def test_a_lead_is_a_person_with_a_prefixed_id():
    record = mapping.record_from_sugar("leads", records("leads_filter.json")[0])

    assert record.external_id == "lead:c4d5e6f7-3b81-11ee-8c6e-02a1b2c3d4e5"
    assert (record.first_name, record.last_name, record.company) == (
        "Mehmet",
        "Y\u0131lmaz",  # a Turkish dotless i
        "Prospect Tekstil",
    )
    assert record.phones == (SourcePhone("+90 532 555 12 34", "mobile"),)
    assert record.country == "TR"


def test_a_record_without_an_id_is_unreadable():
    with pytest.raises(mapping.UnreadableRecord):
        mapping.record_from_sugar("contacts", {"last_name": "Nobody"})


def test_modification_times_keep_their_offset():
    first = records("contacts_filter.json")[0]

    assert mapping.modified_ms(first) == int(
        datetime(2024, 3, 5, 17, 2, 11, tzinfo=UTC).timestamp() * 1000
    )
    assert mapping.sugar_time(mapping.modified_ms(first)) == "2024-03-05T17:02:11+00:00"
    with pytest.raises(mapping.UnreadableRecord):
        mapping.modified_ms({"id": "x", "date_modified": "2024-03-05 17:02:11"})


def test_users_carry_their_primary_email():
    sally, priya = (mapping.user_from_sugar(r) for r in records("users_filter.json"))

    assert (sally.external_id, sally.email, sally.name) == (
        "seed_sally_id",
        "sally@example.com",
        "Sally Bronsen",
    )
    assert (priya.email, priya.name) == ("Priya.Shah@example.com", "priya")


def test_fields_to_request_name_every_mapped_field_and_the_custom_ones():
    fields = mapping.fields_to_request("accounts", ["industry"])

    assert fields == sorted(
        [
            "name",
            "phone_office",
            "phone_alternate",
            "billing_address_country",
            "assigned_user_id",
            "industry",
        ]
    )


def test_an_answered_call_is_held_inbound_with_whole_minutes_and_its_contact():
    fields = mapping.call_fields(entry(notes="Asked for a quote.", subject="Inbound call answered"))

    assert fields["name"] == "Inbound call answered"
    assert (fields["direction"], fields["status"]) == ("Inbound", "Held")
    assert fields["date_start"] == "2024-03-05T17:02:11+00:00"  # no fraction, with an offset
    assert (fields["duration_hours"], fields["duration_minutes"]) == (0, 13)  # 12 min 34 s
    assert (fields["parent_type"], fields["parent_id"]) == (
        "Contacts",
        "f2c1a3a8-3b7e-11ee-8c6e-02a1b2c3d4e5",
    )
    assert fields["assigned_user_id"] == "seed_sally_id"
    assert fields["description"].split("\n") == [
        "CallBridge call call-7",
        "Asked for a quote.",
        "Outcome: answered, 754 s. From +442079460018 to +442079460999.",
    ]


def test_missed_busy_and_failed_calls_are_not_held_and_long_calls_count_hours():
    assert mapping.call_fields(entry(outcome="missed", duration_seconds=0))["status"] == "Not Held"
    assert mapping.call_fields(entry(outcome="busy"))["status"] == "Not Held"
    assert mapping.call_fields(entry(outcome="transferred"))["status"] == "Held"
    long = mapping.call_fields(entry(duration_seconds=2 * 3600 + 61, direction="outbound"))
    assert (long["duration_hours"], long["duration_minutes"], long["direction"]) == (
        2,
        2,
        "Outbound",
    )


def test_a_call_is_related_to_the_account_or_lead_it_was_with():
    account = mapping.call_fields(entry(contact_external_id="account:9b1e"))
    lead = mapping.call_fields(entry(contact_external_id="lead:c4d5", owner_user_id=None))

    assert (account["parent_type"], account["parent_id"]) == ("Accounts", "9b1e")
    assert (lead["parent_type"], lead["parent_id"]) == ("Leads", "c4d5")
    assert "assigned_user_id" not in lead
    assert "parent_type" not in mapping.call_fields(entry(contact_external_id=None))


def test_a_recording_link_is_in_the_description():
    fields = mapping.call_fields(entry(recording_url="https://cb.example.com/r/abc"))

    assert "Recording: https://cb.example.com/r/abc" in fields["description"]


def test_a_missed_call_task_is_high_priority_and_due_at_the_call():
    fields = mapping.task_fields(entry(outcome="missed", duration_seconds=0))

    assert fields["name"] == "Missed call from +442079460018: call back"
    assert (fields["status"], fields["priority"]) == ("Not Started", "High")
    assert fields["date_due"] == "2024-03-05T17:02:11+00:00"
    assert fields["description"].startswith("CallBridge call call-7\n")


def test_notes_go_under_the_call_and_name_the_contact():
    fields = mapping.note_fields(entry(notes="  Call back Friday. "), "call-remote-1")

    assert (fields["parent_type"], fields["parent_id"]) == ("Calls", "call-remote-1")
    assert fields["description"] == "Call back Friday."
    assert fields["contact_id"] == "f2c1a3a8-3b7e-11ee-8c6e-02a1b2c3d4e5"
    assert "contact_id" not in mapping.note_fields(entry(contact_external_id="lead:c4d5"), "c1")


def test_a_new_contact_needs_a_last_name():
    assert mapping.contact_fields(e164="+447400123456", name="") == {
        "first_name": "",
        "last_name": "+447400123456",
        "phone_work": "+447400123456",
    }
    assert mapping.contact_fields(e164="+447400123456", name="Ada King Lovelace") == {
        "first_name": "Ada King",
        "last_name": "Lovelace",
        "phone_work": "+447400123456",
    }
