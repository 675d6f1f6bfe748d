"""Intercom contacts and companies read into SourceRecords, and calls written as notes."""

from datetime import UTC, datetime

import pytest

from connectors.intercom import mapping
from connectors.interface import CallLogEntry, SourcePhone
from fakes.intercom_data import contact, generate_companies

CALL = CallLogEntry(
    call_id="c-91",
    direction="inbound",
    outcome="transferred",
    started_at=datetime(2024, 3, 5, 17, 2, 11, tzinfo=UTC),
    duration_seconds=125,
    from_number="+442079460018",
    to_number="+442045205757",
    contact_external_id="665000000000000000000003",
    notes="Wants a quote.\nCall back <Friday>.",
    recording_url="https://callbridge.example.com/r/abc",
)


def test_a_user_is_a_record_with_its_phone_owner_and_role():
    row = contact(3, name="Ada King Lovelace", phone="+44 20 7946 0018", role="user", at=1,
                  country="GB", owner=991267491)  # fmt: skip
    row["custom_attributes"] = {"tier": "gold", "plan": ""}

    record = mapping.record_from_contact(row, custom_fields=["tier", "plan"])

    assert (record.external_id, record.first_name, record.last_name) == (
        "665000000000000000000003",
        "Ada",
        "King Lovelace",
    )
    assert record.phones == (SourcePhone("+44 20 7946 0018", "mobile"),)
    assert (record.country, record.owner_id) == ("GB", "991267491")
    assert record.custom_fields == {"role": "user", "tier": "gold"}  # empty values left out
    assert record.crm_url == (
        "https://app.intercom.com/a/apps/ecahpwf5/users/665000000000000000000003/all-conversations"
    )


def test_a_lead_without_name_phone_or_owner_is_still_a_record():
    row = contact(4, name="", phone=None, role="lead", at=1, country="United Kingdom")

    record = mapping.record_from_contact(row)

    assert (record.first_name, record.phones, record.owner_id) == ("", (), "")
    assert record.country == ""  # a country name, not an ISO code
    assert record.custom_fields == {"role": "lead"}


def test_a_company_is_a_company_record_with_its_phone_attribute():
    row = generate_companies(2)[1]

    record = mapping.record_from_company(row)

    assert (record.external_id, record.company, record.is_company) == (
        f"company:{row['id']}",
        "Company 2",
        True,
    )
    assert record.phones == (SourcePhone(row["custom_attributes"]["phone"], "work"),)


@pytest.mark.parametrize("row", [None, {}, {"id": ""}, {"id": None, "updated_at": 5}])
def test_a_record_without_an_id_is_unreadable(row):
    with pytest.raises(mapping.UnreadableRecord):
        mapping.record_from_contact(row)


def test_updated_at_must_be_unix_seconds():
    assert mapping.updated_at({"updated_at": 1700000000}) == 1700000000
    for bad in ({"updated_at": "1700000000"}, {"updated_at": True}, {}):
        with pytest.raises(mapping.UnreadableRecord):
            mapping.updated_at(bad)


def test_a_call_note_is_escaped_html_ending_with_our_call_id():
    body = mapping.note_body(CALL, agent="Priya Shah <priya.shah@example.com>")

    assert body == (
        "<p>Inbound call</p>"
        "<p>Outcome: answered and transferred; duration 2:05</p>"
        "<p>From +442079460018 to +442045205757 at 2024-03-05 17:02 UTC</p>"
        "<p>Wants a quote.</p><p>Call back &lt;Friday&gt;.</p>"
        "<p>Recording: https://callbridge.example.com/r/abc</p>"
        "<p>Agent: Priya Shah &lt;priya.shah@example.com&gt;</p>"
        "<p>CallBridge call c-91</p>"
    )
    assert mapping.note_lines(body)[-1] == "CallBridge call c-91"
    assert "Call back <Friday>." in mapping.note_lines(body)


def test_an_update_note_names_the_call_and_tells_the_same_things():
    update = mapping.update_body(CALL)

    assert update.startswith("<p>Update to CallBridge call c-91:</p><p>Inbound call</p>")
    assert mapping.told(update) == mapping.told(mapping.note_body(CALL))


def test_a_missed_calls_conversation_is_plain_text():
    body = mapping.conversation_body(CALL)

    assert body.splitlines() == [
        "Missed call from +442079460018 at 2024-03-05 17:02 UTC: please call back.",
        "Wants a quote.",
        "Call back <Friday>.",
        "CallBridge call c-91",
    ]


def test_notes_belong_to_contacts_not_companies():
    assert mapping.contact_of("665000000000000000000003") == "665000000000000000000003"
    assert mapping.contact_of(None) is None
    with pytest.raises(ValueError, match="not companies"):
        mapping.contact_of("company:665100000000000000000001")


def test_an_unknown_caller_becomes_a_lead():
    assert mapping.contact_body(e164="+447400999888", name=" ") == {
        "role": "lead",
        "phone": "+447400999888",
    }
    assert mapping.contact_body(e164="+447400999888", name="Ada")["name"] == "Ada"
