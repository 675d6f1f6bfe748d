"""Deterministic fake Salesforce records: real-looking 18-character ids, messy numbers, gaps."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fakes.hubspot_data import FIRST_NAMES, LAST_NAMES, messy_number

BASE_MS = 1_700_000_000_000  # 2023-11-14T22:13:20Z
KEY_PREFIXES = {"Account": "001", "Contact": "003", "User": "005", "Task": "00T", "Lead": "00Q"}
COUNTRIES = ["GB", "United Kingdom", "US", "us", "", "DE", "TR", "France", None]
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_CHECKSUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


@dataclass(slots=True)
class SObjectRecord:
    id: str
    fields: dict[str, Any]
    created_ms: int
    modified_ms: int  # SystemModstamp
    deleted: bool = False  # in the recycle bin: gone from query, still in queryAll
    extra: dict[str, Any] = field(default_factory=dict)


def salesforce_id(sobject: str, number: int) -> str:
    """An 18-character id: key prefix, pod, a base-62 number, and Salesforce's case checksum."""
    digits = ""
    for _ in range(9):
        number, remainder = divmod(number, 62)
        digits = _BASE62[remainder] + digits
    short = KEY_PREFIXES[sobject] + "8d0" + digits
    suffix = ""
    for chunk in range(3):
        part = short[chunk * 5 : chunk * 5 + 5]
        suffix += _CHECKSUM[sum(1 << i for i, c in enumerate(part) if "A" <= c <= "Z")]
    return short + suffix


def modstamp(ms: int) -> str:
    """Salesforce's REST datetime format: 2024-03-05T17:02:11.000+0000."""
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}+0000"


def _modified_ms(i: int, count: int) -> int:
    # Whole seconds, ids interleaved, runs of three equal times (bulk edits), a minute apart.
    return BASE_MS + ((i * 7919) % max(count, 1)) // 3 * 60_000 + 60_000


def generate_users(count: int) -> list[SObjectRecord]:
    users = []
    for i in range(count):
        name = f"{FIRST_NAMES[i % len(FIRST_NAMES)]} Agent{i}"
        fields = {
            "Name": name,
            "Email": f"agent{i}@example.com",
            "Username": f"agent{i}@example.com.acme",
            "IsActive": i != 2,  # one deactivated user: never an owner of new calls
        }
        users.append(SObjectRecord(salesforce_id("User", i + 1), fields, BASE_MS, BASE_MS))
    return users


def generate_accounts(count: int, users: list[str], *, seed: int = 11) -> list[SObjectRecord]:
    rng = random.Random(seed)
    accounts = []
    for i in range(count):
        fields = {
            "Name": f"Company {i}",
            "Phone": messy_number(rng, i + 3),
            "BillingCountry": rng.choice(COUNTRIES),
            "OwnerId": users[i % len(users)] if users else None,
            "Tier__c": rng.choice(["Gold", "Silver", None]),
        }
        record = SObjectRecord(
            salesforce_id("Account", i + 1), fields, BASE_MS, _modified_ms(i, count)
        )
        accounts.append(record)
    return accounts


def generate_contacts(
    count: int, users: list[str], accounts: list[str], *, seed: int = 7
) -> list[SObjectRecord]:
    rng = random.Random(seed)
    contacts, previous_phone = [], None
    for i in range(count):
        phone = messy_number(rng, i)
        if i % 50 == 49:
            phone = previous_phone  # a shared office number: duplicates across contacts
        previous_phone = phone
        fields = {
            "FirstName": rng.choice(FIRST_NAMES) if i % 17 else None,
            "LastName": rng.choice(LAST_NAMES),  # required in Salesforce
            "Email": f"person{i}@example.com" if i % 5 else None,
            "AccountId": accounts[i % len(accounts)] if accounts and i % 3 else None,
            "Phone": phone,
            "MobilePhone": messy_number(rng, i + 7) if i % 4 == 0 else None,
            "HomePhone": messy_number(rng, i + 9) if i % 10 == 0 else None,
            "OtherPhone": None,
            "MailingCountry": rng.choice(COUNTRIES),
            "OwnerId": users[i % len(users)] if users else None,
            "Tier__c": rng.choice(["Gold", "Silver", "Bronze", None]),
            "Language__c": rng.choice(["en", "de", "tr", None]),
        }
        created = BASE_MS + i * 1000
        contacts.append(
            SObjectRecord(salesforce_id("Contact", i + 1), fields, created, _modified_ms(i, count))
        )
    return contacts


def generate_leads(count: int, users: list[str], *, seed: int = 13) -> list[SObjectRecord]:
    rng = random.Random(seed)
    leads = []
    for i in range(count):
        fields = {
            "FirstName": rng.choice(FIRST_NAMES),
            "LastName": rng.choice(LAST_NAMES),
            "Company": f"Prospect {i % 41}",  # required on a lead
            "Email": f"lead{i}@example.com",
            "Phone": messy_number(rng, i + 5),
            "MobilePhone": messy_number(rng, i + 11) if i % 3 == 0 else None,
            "Country": rng.choice(COUNTRIES),
            "OwnerId": users[i % len(users)] if users else None,
            "Status": "Open - Not Contacted",
            "IsConverted": i % 10 == 9,  # converted leads live on as contacts
            "Language__c": rng.choice(["en", "fr", None]),
        }
        leads.append(
            SObjectRecord(salesforce_id("Lead", i + 1), fields, BASE_MS, _modified_ms(i, count))
        )
    return leads
