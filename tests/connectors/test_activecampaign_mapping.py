"""ActiveCampaign JSON -> SourceRecord and CallLogEntry -> note and task bodies, on real shapes."""

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors.activecampaign import mapping
from connectors.interface import CallLogEntry, CrmUser, SourcePhone

FIXTURES = Path(__file__).parent / "fixtures" / "activecampaign"


def answer(name: str):
    return json.loads((FIXTURES / name).read_text())


def entry(**fields) -> CallLogEntry:
    defaults = {
        "call_id": "c-7f3a",
        "direction": "inbound",
        "outcome": "answered",
        "started_at": datetime(2024, 3, 5, 17, 2, 11, tzinfo=UTC),
        "duration_seconds": 125,
        "from_number": "+442079460018",
        "to_number": "+442045205757",
        "contact_external_id": "5",
    }
    return CallLogEntry(**{**defaults, **fields})


def test_it_maps_a_contact_with_its_one_phone_and_a_link_to_the_app():
    contact = answer("contacts_list.json")["contacts"][0]

    record = mapping.record_from_contact(contact, app_url="https://acme.activehosted.com")

    assert record.external_id == "5"
    assert (record.first_name, record.last_name) == ("Ada", "Lovelace")
    assert record.phones == (SourcePhone("+44 20 7946 0018", "other"),)
    assert record.crm_url == "https://acme.activehosted.com/app/contacts/5"
    assert not record.is_company and record.owner_id == "" and record.owner_email == ""


def test_a_contact_without_a_phone_has_no_numbers_and_falls_back_to_cdate():
    contact = answer("contacts_list.json")["contacts"][1]

    assert mapping.record_from_contact(contact).phones == ()
    assert mapping.updated_ms(contact) == int(
        datetime(2018, 8, 17, 18, 46, 58, tzinfo=UTC).timestamp() * 1000
    )


def test_udate_is_read_with_the_accounts_offset():
    contact = answer("contacts_list.json")["contacts"][0]

    assert mapping.updated_ms(contact) == int(
        datetime(2018, 9, 12, 22, 0, 0, tzinfo=UTC).timestamp() * 1000
    )


@pytest.mark.parametrize("contact", [{}, {"id": None}, {"id": "abc"}, {"id": True}, "7"])
def test_a_contact_without_an_id_is_unreadable(contact):
    with pytest.raises(mapping.UnreadableRecord):
        mapping.record_from_contact(contact)


def test_an_unreadable_udate_is_unreadable():
    with pytest.raises(mapping.UnreadableRecord):
        mapping.updated_ms({"id": "3", "udate": "0000-00-00 00:00:00"})


def test_updated_after_goes_two_days_back_from_the_cursors_utc_date():
    # 2024-03-05T02:00Z is still 03-04 in the account's zone (UTC-5), and "after" a day may
    # exclude that day: only 03-03 surely includes everything from the cursor on.
    since = int(datetime(2024, 3, 5, 2, 0, tzinfo=UTC).timestamp() * 1000)

    assert mapping.updated_after(since) == "2024-03-03"


def test_a_call_is_a_note_on_the_contact_with_what_happened_and_our_id_last():
    call = entry(
        notes="Wants a quote.",
        recording_url="https://callbridge.example.com/r/abc",
        subject="Inbound call answered",
    )

    body = mapping.note_body(call, contact_id=5, agent="Priya Shah <priya.shah@example.com>")

    note = body["note"]
    assert (note["relid"], note["reltype"]) == (5, "Subscriber")
    lines = note["note"].splitlines()
    assert lines[0] == "Inbound call answered"
    assert "started 2024-03-05 17:02:11 UTC, talk time 2:05." in lines[1]
    assert "From +442079460018 to +442045205757." in lines
    assert "Agent: Priya Shah <priya.shah@example.com>" in lines
    assert "Wants a quote." in lines
    assert "Recording: https://callbridge.example.com/r/abc" in lines
    assert lines[-1] == "CallBridge call c-7f3a"


def test_a_missed_call_is_an_open_contact_task_of_the_call_type_due_at_the_call():
    body = mapping.task_body(
        entry(outcome="missed", duration_seconds=0, owner_user_id="2"),
        contact_id=5,
        task_type_id=1,
    )

    task = body["dealTask"]
    assert (task["ownerType"], task["relid"], task["status"]) == ("contact", 5, 0)
    assert (task["dealTasktype"], task["assignee"]) == (1, 2)
    assert task["duedate"] == "2024-03-05T17:02:11+00:00"
    assert task["title"] == "Call back +442079460018 (missed call)"
    assert "Inbound call missed" in task["note"]


def test_an_unknown_callers_contact_is_phone_only_and_named_when_known():
    assert mapping.contact_body(e164="+447400999888", name="Ada King Lovelace") == {
        "contact": {
            "phone": "+447400999888",
            "allowNullEmail": True,
            "firstName": "Ada",
            "lastName": "King Lovelace",
        }
    }
    assert mapping.contact_body(e164="+447400999888")["contact"] == {
        "phone": "+447400999888",
        "allowNullEmail": True,
    }


def test_only_digit_ids_are_contacts_to_link():
    assert mapping.contact_number("42") == 42
    for bad in (None, "", "company:4", "4a"):
        with pytest.raises(ValueError, match="not an ActiveCampaign contact id"):
            mapping.contact_number(bad)


def test_a_user_is_named_by_first_and_last_name():
    user = mapping.user_from_json(answer("users_email.json")["user"])

    assert user == CrmUser("1", "priya.shah@example.com", "Priya Shah")
    assert mapping.agent_text(user) == "Priya Shah <priya.shah@example.com>"
    assert mapping.user_from_json({"email": "x@example.com"}) is None


def test_record_links_use_the_accounts_app_host_when_the_api_url_names_it():
    assert mapping.app_url("https://acme.api-us1.com") == "https://acme.activehosted.com"
    assert mapping.app_url("http://127.0.0.1:8766") == ""
