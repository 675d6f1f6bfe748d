"""Zoho CRM v8 JSON <-> our dataclasses, on captured-shape Get Records pages."""

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors.interface import CallLogEntry, SourcePhone
from connectors.zoho import mapping

FIXTURES = Path(__file__).parent / "fixtures" / "zoho"
CRM = "https://crm.zoho.eu"


def rows(name: str) -> list[dict]:
    return json.loads((FIXTURES / name).read_text())["data"]


def entry(**fields) -> CallLogEntry:
    values = {
        "call_id": "call-7",
        "direction": "inbound",
        "outcome": "answered",
        "started_at": datetime(2024, 3, 5, 17, 2, 11, 345000, tzinfo=UTC),
        "duration_seconds": 754,
        "from_number": "+442079460018",
        "to_number": "+442079460999",
        "contact_external_id": "4150868000000624001",
        "owner_user_id": "4150868000000225013",
        **fields,
    }
    return CallLogEntry(**values)


def test_it_maps_a_contact_with_its_numbers_account_owner_link_and_custom_fields():
    record = mapping.record_from_zoho(
        "contacts",
        rows("get_records_contacts.json")[0],
        crm_base_url=CRM,
        org_id="20071234",
        custom_fields=["Lead_Source", "Account_Name"],
    )

    assert record.external_id == "4150868000000624001"
    assert (record.first_name, record.last_name) == ("Ada", "Lovelace")
    assert record.company == "Lovelace Analytical Engines Ltd"  # the Account_Name lookup's name
    assert record.country == "GB"
    assert record.phones == (
        SourcePhone("07700 900123", "mobile"),
        SourcePhone("+44 20 7946 0018", "work"),  # Home_Phone repeats it: kept once
    )
    assert record.crm_url == "https://crm.zoho.eu/crm/org20071234/tab/Contacts/4150868000000624001"
    assert record.owner_email == "patricia.boyle@example.com"
    assert record.custom_fields == {
        "Lead_Source": "Web Download",
        "Account_Name": "Lovelace Analytical Engines Ltd",
    }
    assert not record.is_company


def test_it_keeps_a_contact_without_first_name_or_account_and_drops_a_free_text_country():
    record = mapping.record_from_zoho(
        "contacts", rows("get_records_contacts.json")[1], custom_fields=["Lead_Source"]
    )

    assert (record.first_name, record.last_name, record.company) == ("", "Nguyen", "")
    assert record.country == ""  # "United States" is not an ISO code: the tenant's region reads
    assert record.phones == (SourcePhone("(415) 555-0132", "work"),)
    assert record.crm_url == ""
    assert record.custom_fields == {}


def test_a_record_without_an_id_is_unreadable():
    with pytest.raises(mapping.UnreadableRecord):
        mapping.record_from_zoho("contacts", rows("get_records_contacts.json")[2])


def test_an_account_becomes_a_company_contact_with_a_prefixed_id():
    record = mapping.record_from_zoho(
        "accounts", rows("get_records_accounts.json")[0], crm_base_url=CRM
    )

    assert record.external_id == "account:4150868000000624107"
    assert record.is_company and record.company == "Globex GmbH"
    assert (record.first_name, record.last_name) == ("", "")
    assert record.country == "DE"
    assert record.phones == (SourcePhone("+49 (0)30 1234567 ext. 12", "work"),)
    assert record.crm_url == "https://crm.zoho.eu/crm/tab/Accounts/4150868000000624107"


def test_a_lead_keeps_its_company_and_a_prefixed_id():
    record = mapping.record_from_zoho("leads", rows("get_records_leads.json")[0])

    assert record.external_id == "lead:4150868000000002175"
    assert (record.first_name, record.last_name, record.company) == ("John", "Doe", "Zylker Corp")
    assert record.phones == (SourcePhone("+1-555-123-4567", "mobile"),)
    assert record.country == "US"


def test_modification_times_with_any_offset_are_read_in_epoch_ms():
    contacts = rows("get_records_contacts.json")

    assert mapping.modified_ms(contacts[0]) == 1709658131000  # 22:32:11+05:30 = 17:02:11Z
    assert mapping.modified_ms(contacts[1]) == 1709658131000
    assert mapping.zoho_time(1709658131999) == "2024-03-05T17:02:11+00:00"
    with pytest.raises(mapping.UnreadableRecord):
        mapping.modified_ms({"id": "1", "Modified_Time": "2024-03-05T17:02:11"})


def test_it_asks_for_the_fields_it_maps_and_refuses_more_than_zoho_answers():
    assert mapping.fields_to_request("accounts", ["Website"]) == [
        "Account_Name", "Billing_Country", "Modified_Time", "Owner", "Phone", "Website",
    ]  # fmt: skip
    with pytest.raises(ValueError, match="at most 50"):
        mapping.fields_to_request("contacts", [f"Custom_{i}" for i in range(45)])


def test_an_answered_inbound_call_is_an_inbound_call_with_mm_ss_duration_and_links():
    fields = mapping.call_fields(entry(notes="Wants a quote."))

    assert fields["Call_Type"] == "Inbound"
    assert fields["Call_Duration"] == "12:34"
    assert fields["Call_Start_Time"] == "2024-03-05T17:02:11+00:00"  # no fraction, no Z
    assert fields["Who_Id"] == {"id": "4150868000000624001"}
    assert fields["Owner"] == {"id": "4150868000000225013"}
    assert fields["Subject"] == "Call from +442079460018"
    assert fields["Description"].startswith("Wants a quote.\n")
    assert "CallBridge call call-7" in fields["Description"]
    assert "Outbound_Call_Status" not in fields


def test_a_missed_inbound_call_is_missed_and_an_outbound_call_is_completed():
    missed = mapping.call_fields(entry(outcome="missed", duration_seconds=0))
    outbound = mapping.call_fields(entry(direction="outbound", duration_seconds=7265))

    assert (missed["Call_Type"], missed["Call_Duration"]) == ("Missed", "00:00")
    assert outbound["Call_Type"] == "Outbound"
    assert outbound["Outbound_Call_Status"] == "Completed"
    assert outbound["Call_Duration"] == "121:05"  # minutes run past 59
    assert outbound["Subject"] == "Call to +442079460999"


def test_a_call_with_a_lead_or_an_account_is_related_through_what_id():
    lead = mapping.call_fields(entry(contact_external_id="lead:4150868000000002175"))
    account = mapping.task_fields(entry(contact_external_id="account:4150868000000624107"))

    assert lead["What_Id"] == {"id": "4150868000000002175"} and lead["$se_module"] == "Leads"
    assert "Who_Id" not in lead
    assert account["$se_module"] == "Accounts"


def test_a_missed_call_task_is_due_the_day_of_the_call():
    task = mapping.task_fields(entry(outcome="missed", owner_user_id=None))

    assert task["Subject"] == "Missed call from +442079460018: call back"
    assert (task["Due_Date"], task["Status"], task["Priority"]) == (
        "2024-03-05",
        "Not Started",
        "High",
    )
    assert "Owner" not in task


def test_a_new_contact_needs_a_last_name_even_without_a_name():
    assert mapping.contact_fields(e164="+442079460018", name="Ada King Lovelace") == {
        "First_Name": "Ada King",
        "Last_Name": "Lovelace",
        "Phone": "+442079460018",
    }
    assert mapping.contact_fields(e164="+442079460018", name="")["Last_Name"] == "+442079460018"
