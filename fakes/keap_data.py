"""Deterministic fake Keap contacts, companies and users: messy numbers, owners, gaps."""

from __future__ import annotations

import random
from typing import Any

import phonenumbers

from fakes.hubspot_data import BASE_MS, FIRST_NAMES, LAST_NAMES, iso, messy_number

TIER_FIELD_ID = 12  # a custom field ("Tier", text) on contacts and companies
COUNTRIES = ["GBR", "USA", "DEU", "", "GBR"]  # addresses name ISO alpha-3 codes [KP1]
PHONE_TYPES = ["Work", "Mobile", "Home", "Other"]
# Keap reads each number with the account's country unless it has one (the fake's is GB).
ACCOUNT_REGION = "GB"
USERS: list[dict[str, Any]] = [
    {"id": "7", "given_name": "Priya", "family_name": "Shah", "admin": False,
     "status": "ACTIVE", "email_addresses": [{"email": "priya.shah@example.com",
                                              "field": "EMAIL1"}]},
    {"id": "9", "given_name": "Mehmet", "family_name": "Yilmaz", "admin": True,
     "status": "ACTIVE", "email_addresses": [{"email": "mehmet@example.com",
                                              "field": "EMAIL1"}]},
    {"id": "11", "given_name": "Old", "family_name": "Timer", "admin": False,
     "status": "INACTIVE", "email_addresses": [{"email": "old.timer@example.com",
                                                "field": "EMAIL1"}]},
]  # fmt: skip


def phone(number: str, slot: str, kind: str, region: str = ACCOUNT_REGION) -> dict[str, Any]:
    """A phone object as Keap answers it: typed number plus its E.164 reading when it has one."""
    entry: dict[str, Any] = {"field": slot, "number": number, "type": kind, "extension": ""}
    try:
        parsed = phonenumbers.parse(number, region)
    except phonenumbers.NumberParseException:
        return entry
    if phonenumbers.is_possible_number(parsed):
        entry["number_e164"] = phonenumbers.format_number(
            parsed, phonenumbers.PhoneNumberFormat.E164
        )
    return entry


def generate_contacts(count: int, *, companies: int, seed: int = 23) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    contacts, previous = [], None
    for i in range(count):
        number = messy_number(rng, i)
        if i % 50 == 49:
            number = previous  # a shared office number
        previous = number
        phones = [phone(number, "PHONE1", rng.choice(PHONE_TYPES))] if number else []
        if i % 4 == 0:
            phones.append(phone(messy_number(rng, i + 7) or "07700 900123", "PHONE2", "Mobile"))
        company_id = 1 + i % companies if companies and i % 3 else None
        country = rng.choice(COUNTRIES)
        # Update times interleave ids, with runs of one millisecond as bulk edits leave.
        updated = BASE_MS + 60_000 + ((i * 7919) % max(count, 1)) // 3 * 1000
        contacts.append(
            {
                "id": str(i + 1),
                "given_name": rng.choice(FIRST_NAMES) if i % 17 else "",
                "family_name": rng.choice(LAST_NAMES) if i % 13 else "",
                "company": {"id": str(company_id), "company_name": f"Company {company_id}"}
                if company_id else None,
                "email_addresses": [{"email": f"contact{i + 1}@example.com", "field": "EMAIL1"}],
                "phone_numbers": phones,
                "addresses": [{"field": "BILLING", "line1": f"{i} High Street",
                               "country_code": country}] if country else [],
                "owner_id": USERS[i % 2]["id"] if i % 5 else None,
                "custom_fields": [{"id": str(TIER_FIELD_ID),
                                   "content": rng.choice(["gold", "silver", None])}],
                "create_time": iso(BASE_MS + i * 1000),
                "update_time": iso(updated),
            }
        )  # fmt: skip
    return contacts


def generate_companies(count: int, *, seed: int = 29) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    companies = []
    for i in range(count):
        number = messy_number(rng, i + 3)
        country = rng.choice(COUNTRIES)
        companies.append(
            {
                "id": str(i + 1),
                "company_name": f"Company {i + 1}",
                "phone_number": phone(number, "PHONE1", "Work") if number else None,
                "address": {"field": "BILLING", "country_code": country} if country else None,
                "email_address": {"email": f"office@company{i + 1}.example.com",
                                  "field": "EMAIL1"},
                "owner_id": USERS[0]["id"],
                "custom_fields": [{"id": str(TIER_FIELD_ID), "content": None}],
                "create_time": iso(BASE_MS + i * 1000),
                "update_time": iso(BASE_MS + 30_000 + 2000 * i),
            }
        )  # fmt: skip
    return companies
