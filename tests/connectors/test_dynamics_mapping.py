"""Dataverse Web API rows <-> our dataclasses, on captured-shape delta and listing pages."""

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors.dynamics import mapping
from connectors.interface import CallLogEntry, SourcePhone

FIXTURES = Path(__file__).parent / "fixtures" / "dynamics"
ORG = "https://contoso.crm.dynamics.com"


def rows(name: str) -> list[dict]:
    return json.loads((FIXTURES / name).read_text())["value"]


def entry(**fields) -> CallLogEntry:
    values = {
        "call_id": "call-7",
        "direction": "inbound",
        "outcome": "answered",
        "started_at": datetime(2024, 3, 5, 17, 2, 11, 345000, tzinfo=UTC),
        "duration_seconds": 754,
        "from_number": "+442079460018",
        "to_number": "+442079460999",
        "contact_external_id": "6b3d7a1e-4c2f-4e8a-9b1d-2f3a4b5c6d7e",
        "owner_user_id": "b1e4c3f2-7a6d-4e5c-8b9a-0d1c2e3f4a5b",
        **fields,
    }
    return CallLogEntry(**values)


def test_a_contact_brings_its_numbers_company_owner_country_link_and_custom_columns():
    record = mapping.record_from_row(
        "contacts",
        rows("contacts_delta.json")[0],
        org_url=ORG,
        custom_fields=["contact.new_tier", "account.new_rank"],
    )

    assert record.external_id == "6b3d7a1e-4c2f-4e8a-9b1d-2f3a4b5c6d7e"  # GUIDs in lower case
    assert (record.first_name, record.last_name) == ("Ada", "Lovelace")
    assert record.company == "Lovelace Analytical Engines Ltd"  # the lookup's formatted value
    assert record.phones == (
        SourcePhone("07700 900123", "mobile"),
        SourcePhone("+44 20 7946 0018", "work"),  # telephone2 repeats it: kept once
    )
    assert (record.country, record.owner_id) == ("GB", "b1e4c3f2-7a6d-4e5c-8b9a-0d1c2e3f4a5b")
    assert record.crm_url == (
        f"{ORG}/main.aspx?pagetype=entityrecord&etn=contact&id={record.external_id}"
    )
    assert record.custom_fields == {"new_tier": "gold"}
    assert not record.is_company


def test_a_contact_with_gaps_keeps_what_it_has():
    record = mapping.record_from_row("contacts", rows("contacts_delta.json")[1])

    assert (record.first_name, record.company, record.country) == ("", "", "")  # not ISO
    assert record.phones == (SourcePhone("n/a", "work"), SourcePhone("(415) 555-1001", "other"))
    assert (record.owner_id, record.crm_url, record.custom_fields) == ("", "", {})


def test_deleted_rows_are_told_apart_and_a_row_without_key_is_unreadable():
    deleted, keyless = rows("contacts_delta.json")[2:]

    assert mapping.is_deleted_row(deleted)
    assert not mapping.is_deleted_row(rows("contacts_delta.json")[0])
    with pytest.raises(mapping.UnreadableRecord):
        mapping.record_from_row("contacts", keyless)


def test_an_account_is_a_company_with_its_own_id_space():
    record = mapping.record_from_row("accounts", rows("accounts_page.json")[0], org_url=ORG)

    assert record.external_id == "account:60c4e274-0d87-e711-80e5-00155db19e6d"
    assert (record.company, record.is_company, record.country) == ("Monte Orton", True, "US")
    assert record.phones == (SourcePhone("555000", "work"), SourcePhone("+1 212 555 0100", "other"))
    assert "etn=account&id=60c4e274" in record.crm_url


def test_the_select_names_every_column_read_and_custom_columns_per_table():
    contacts = mapping.columns_to_select("contacts", ["new_tier", "account.new_rank", "Bad-Name"])

    assert contacts[0] == "contactid" and "new_rank" not in contacts and "Bad-Name" not in contacts
    assert {"mobilephone", "telephone1", "telephone2", "telephone3", "new_tier"} <= set(contacts)
    assert "new_rank" in mapping.columns_to_select("accounts", ["account.new_rank"])


def test_the_phone_filter_ors_every_column_and_form_with_quotes_doubled():
    condition = mapping.phone_filter("accounts", ["+44 20 7946 0018", "it's"])

    assert condition == (
        "telephone1 eq '+44 20 7946 0018' or telephone2 eq '+44 20 7946 0018' or "
        "telephone3 eq '+44 20 7946 0018' or telephone1 eq 'it''s' or telephone2 eq 'it''s' or "
        "telephone3 eq 'it''s'"
    )


def test_a_phonecall_carries_direction_minutes_times_links_and_our_call_id():
    columns = mapping.phonecall_columns(
        entry(notes="Wants a quote.", recording_url="https://r.example/7.wav")
    )

    assert columns["directioncode"] is False  # inbound
    assert columns["actualdurationminutes"] == 13  # 754 s, rounded up
    assert (columns["actualstart"], columns["actualend"]) == (
        "2024-03-05T17:02:11Z",
        "2024-03-05T17:14:45Z",
    )
    assert columns["phonenumber"] == "+442079460018"
    assert columns["regardingobjectid_contact@odata.bind"] == (
        "/contacts(6b3d7a1e-4c2f-4e8a-9b1d-2f3a4b5c6d7e)"
    )
    assert columns["ownerid@odata.bind"] == "/systemusers(b1e4c3f2-7a6d-4e5c-8b9a-0d1c2e3f4a5b)"
    assert columns["description"].splitlines() == [
        "Wants a quote.",
        "Outcome: answered, 12 min 34 s. From +442079460018 to +442079460999.",
        "Recording: https://r.example/7.wav",
        "CallBridge call call-7",
    ]


def test_an_outbound_call_to_an_account_regards_the_account():
    columns = mapping.phonecall_columns(
        entry(direction="outbound", contact_external_id="account:60c4e274", owner_user_id=None)
    )

    assert columns["directioncode"] is True
    assert columns["regardingobjectid_account@odata.bind"] == "/accounts(60c4e274)"
    assert "ownerid@odata.bind" not in columns and columns["phonenumber"] == "+442079460999"
    assert columns["subject"] == "Call to +442079460999"


def test_long_notes_are_cut_but_the_call_id_line_stays():
    description = mapping.phonecall_columns(entry(notes="x" * 5000))["description"]

    assert len(description) == mapping.DESCRIPTION_MAX
    assert description.endswith("\nCallBridge call call-7")


def test_a_missed_call_task_is_high_priority_and_due_at_the_call():
    columns = mapping.task_columns(entry(outcome="missed", duration_seconds=0))

    assert (columns["prioritycode"], columns["scheduledend"]) == (2, "2024-03-05T17:02:11Z")
    assert columns["subject"] == "Missed call from +442079460018: call back"
    assert columns["description"].endswith("CallBridge call call-7")


def test_a_new_contact_is_named_or_else_named_after_its_number():
    assert mapping.contact_columns(e164="+447400999888", name="Ada King Lovelace") == {
        "firstname": "Ada King",
        "lastname": "Lovelace",
        "mobilephone": "+447400999888",
    }
    assert mapping.contact_columns(e164="+447400999888", name="")["lastname"] == "+447400999888"
