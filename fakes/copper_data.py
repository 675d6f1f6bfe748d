"""Deterministic fake Copper people and companies: messy numbers, categories, owners, gaps."""

from __future__ import annotations

import random
from typing import Any

from fakes.hubspot_data import BASE_MS, FIRST_NAMES, LAST_NAMES, messy_number

BASE_SECONDS = BASE_MS // 1000
ACCOUNT_ID = 424242
TIER_FIELD_ID = 6  # a custom field definition ("Tier", a text field) on people and companies
CATEGORIES = ["work", "mobile", "home", "other"]  # Copper's phone categories (API appendix)
COUNTRIES = ["GB", "US", "DE", "", "United Kingdom"]
USERS: list[dict[str, Any]] = [
    {"id": 137658, "name": "Priya Shah", "email": "priya.shah@example.com"},
    {"id": 159258, "name": "Mehmet Yilmaz", "email": "mehmet@example.com"},
]
# Per-account ids (never hard-coded by the connector): `Note` alone is always 0.
PHONE_CALL_TYPE_ID = 190711
ACTIVITY_TYPES: dict[str, list[dict[str, Any]]] = {
    "user": [
        {"id": 0, "category": "user", "name": "Note", "is_disabled": False,
         "count_as_interaction": False},
        {"id": PHONE_CALL_TYPE_ID, "category": "user", "name": "Phone Call",
         "is_disabled": False, "count_as_interaction": True},
        {"id": 190712, "category": "user", "name": "Meeting", "is_disabled": False,
         "count_as_interaction": True},
    ],
    "system": [
        {"id": 1, "category": "system", "name": "Property Changed", "is_disabled": False,
         "count_as_interaction": False},
        {"id": 3, "category": "system", "name": "Pipeline Stage Changed", "is_disabled": False,
         "count_as_interaction": False},
    ],
}  # fmt: skip


def generate_people(count: int, *, companies: int, seed: int = 11) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    people, previous = [], None
    for i in range(count):
        number = messy_number(rng, i)
        if i % 50 == 49:
            number = previous  # a shared office number
        previous = number
        phones = [{"number": number, "category": rng.choice(CATEGORIES)}] if number else []
        if i % 4 == 0:
            phones.append({"number": messy_number(rng, i + 7) or "", "category": "mobile"})
        first = rng.choice(FIRST_NAMES) if i % 17 else ""
        last = rng.choice(LAST_NAMES) if i % 13 else ""
        company_id = 1 + i % companies if companies and i % 3 else None
        country = rng.choice(COUNTRIES)
        # Modification times interleave ids, with runs of equal seconds as bulk edits leave.
        modified = BASE_SECONDS + 60 + ((i * 7919) % max(count, 1)) // 3
        people.append(
            {
                "id": i + 1,
                "name": f"{first} {last}".strip() or f"Person {i + 1}",
                "prefix": None,
                "first_name": first or None,
                "middle_name": None,
                "last_name": last or None,
                "suffix": None,
                "address": {"street": f"{i} High Street", "city": "London", "state": None,
                            "postal_code": None, "country": country} if country else None,
                "assignee_id": USERS[i % 2]["id"] if i % 5 else None,
                "company_id": company_id,
                "company_name": f"Company {company_id}" if company_id else None,
                "contact_type_id": 8,
                "details": None,
                "emails": [{"email": f"person{i + 1}@example.com", "category": "work"}]
                if i % 5
                else [],
                "phone_numbers": phones,
                "socials": [],
                "tags": [],
                "title": None,
                "websites": [],
                "custom_fields": [
                    {"custom_field_definition_id": TIER_FIELD_ID,
                     "value": rng.choice(["gold", "silver", None])}
                ],
                "date_created": BASE_SECONDS + i,
                "date_modified": modified,
                "interaction_count": 0,
            }
        )  # fmt: skip
    return people


def generate_companies(count: int, *, seed: int = 17) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    companies = []
    for i in range(count):
        number = messy_number(rng, i + 3)
        country = rng.choice(COUNTRIES)
        companies.append(
            {
                "id": i + 1,
                "name": f"Company {i + 1}",
                "address": {"street": None, "city": None, "state": None, "postal_code": None,
                            "country": country} if country else None,
                "assignee_id": USERS[0]["id"],
                "contact_type_id": 9,
                "details": None,
                "email_domain": f"company{i + 1}.example.com",
                "phone_numbers": [{"number": number, "category": "work"}] if number else [],
                "socials": [],
                "tags": [],
                "websites": [],
                "custom_fields": [{"custom_field_definition_id": TIER_FIELD_ID, "value": None}],
                "interaction_count": 0,
                "date_created": BASE_SECONDS + i,
                "date_modified": BASE_SECONDS + 30 + 2 * i,
            }
        )  # fmt: skip
    return companies
