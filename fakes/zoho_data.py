"""Deterministic fake Zoho CRM records: messy numbers, lookups, gaps, shared numbers, owners."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from fakes.hubspot_data import messy_number

BASE_S = 1_700_000_000  # 2023-11-14T22:13:20Z
# Zoho record ids are 19-digit numbers; each module gets its own range here.
ID_BASES = {
    "Contacts": 4150868000100000000,
    "Accounts": 4150868000200000000,
    "Leads": 4150868000300000000,
    "Calls": 4150868000400000000,
    "Tasks": 4150868000500000000,
}
# Zoho answers times in the org's time zone, with its offset (here India, like Zoho's examples).
ORG_OFFSET = timezone(timedelta(hours=5, minutes=30))
FIRST_NAMES = ["Ada", "Grace", "Alan", "Priya", "Mehmet", "Zoë", "José", "Li", "Olu", "Anna"]
LAST_NAMES = ["Lovelace", "Hopper", "Turing", "Shah", "Y\u0131lmaz", "Müller", "O'Brien", "Nguyen"]
COUNTRIES = ["GB", "United Kingdom", "US", "in", "", "DE", "TR", "India", None]
USERS = [
    {"id": "4150868000000225013", "full_name": "Patricia Boyle", "email": "pat.boyle@example.com"},
    {"id": "4150868000000225027", "full_name": "Priya Shah", "email": "priya.shah@example.com"},
    {"id": "4150868000000225041", "full_name": "Olu Okafor", "email": "olu.okafor@example.com"},
]


@dataclass
class FakeRecord:
    id: int
    fields: dict[str, object]
    created_s: int
    modified_s: int
    owner: dict[str, str] = field(default_factory=lambda: dict(USERS[0]))


def zoho_time(seconds: int) -> str:
    """Epoch seconds as Zoho writes times: ISO 8601 to the second with the org's offset."""
    return datetime.fromtimestamp(seconds, ORG_OFFSET).isoformat()


def generate(module: str, count: int) -> list[FakeRecord]:
    return {"Contacts": _contacts, "Accounts": _accounts, "Leads": _leads}[module](count)


def _contacts(count: int) -> list[FakeRecord]:
    rng = random.Random(13)
    records, previous_phone = [], None
    for i in range(count):
        phone = messy_number(rng, i)
        if i % 50 == 49:
            phone = previous_phone  # a shared office number: duplicates across contacts
        previous_phone = phone
        account = i % 3
        fields: dict[str, object] = {
            "First_Name": rng.choice(FIRST_NAMES) if i % 17 else None,
            "Last_Name": rng.choice(LAST_NAMES),  # mandatory in Zoho
            "Email": f"person{i}@example.com" if i % 5 else None,
            "Account_Name": (
                {"name": f"Company {i % 97}", "id": str(ID_BASES["Accounts"] + i % 97)}
                if account
                else None
            ),
            "Phone": phone,
            "Mobile": messy_number(rng, i + 7) if i % 4 == 0 else None,
            "Home_Phone": messy_number(rng, i + 11) if i % 9 == 0 else None,
            "Other_Phone": None,
            "Asst_Phone": None,
            "Mailing_Country": rng.choice(COUNTRIES),
            "Lead_Source": rng.choice(["Cold Call", "Web Download", "Partner", None]),
        }
        # Modified times interleave ids, three records per second like bulk edits produce.
        modified = BASE_S + ((i * 7919) % max(count, 1)) // 3 + 60
        owner = dict(USERS[i % len(USERS)])
        records.append(FakeRecord(ID_BASES["Contacts"] + i, fields, BASE_S + i, modified, owner))
    return records


def _accounts(count: int) -> list[FakeRecord]:
    rng = random.Random(17)
    records = []
    for i in range(count):
        fields: dict[str, object] = {
            "Account_Name": f"Company {i}",  # mandatory in Zoho
            "Phone": messy_number(rng, i + 3),
            "Billing_Country": rng.choice(COUNTRIES),
            "Website": f"https://company{i}.example.com",
        }
        modified = BASE_S + i * 2 + 30
        records.append(FakeRecord(ID_BASES["Accounts"] + i, fields, BASE_S + i, modified))
    return records


def _leads(count: int) -> list[FakeRecord]:
    rng = random.Random(19)
    records = []
    for i in range(count):
        fields: dict[str, object] = {
            "First_Name": rng.choice(FIRST_NAMES) if i % 7 else None,
            "Last_Name": rng.choice(LAST_NAMES),
            "Company": f"Prospect {i}" if i % 4 else None,
            "Email": f"lead{i}@example.com",
            "Phone": messy_number(rng, i + 5),
            "Mobile": messy_number(rng, i + 9) if i % 3 == 0 else None,
            "Country": rng.choice(COUNTRIES),
            "Lead_Status": rng.choice(["Not Contacted", "Contacted", "Junk Lead"]),
        }
        modified = BASE_S + i + 45
        records.append(FakeRecord(ID_BASES["Leads"] + i, fields, BASE_S + i, modified))
    return records
