"""Deterministic fake Pipedrive records: messy numbers with labels, organizations, gaps, shares."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fakes.hubspot_data import BASE_MS, FIRST_NAMES, LAST_NAMES, messy_number

# Custom fields are keyed by 40-character hashes in Pipedrive.
TIER_FIELD = "5f1b1c2a9e0d4b7c8a6e3f2d1c0b9a8e7d6c5b4a"  # a person's "Tier" (varchar)
ORG_PHONE_FIELD = "9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b"  # an organization's "Phone" (phone)
LABELS = ["work", "mobile", "home", "other"]
COUNTRIES = ["United Kingdom", "GB", "Germany", "US", "", None]
USERS = [
    {"id": 11, "name": "Priya Shah", "email": "priya.shah@example.com", "active_flag": True},
    {"id": 12, "name": "Mehmet Yilmaz", "email": "mehmet@example.com", "active_flag": True},
    {"id": 13, "name": "Former Agent", "email": "gone@example.com", "active_flag": False},
]


@dataclass
class FakeRecord:
    id: int
    fields: dict[str, Any]  # the v2 JSON fields other than id and the times
    add_ms: int
    update_ms: int
    deleted: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def rfc3339(ms: int) -> str:
    return datetime.fromtimestamp(ms // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def generate_persons(count: int, *, organizations: int, seed: int = 5) -> list[FakeRecord]:
    rng = random.Random(seed)
    persons, previous = [], None
    for i in range(count):
        number = messy_number(rng, i)
        if i % 50 == 49:
            number = previous  # a shared office number: duplicates across persons
        previous = number
        phones = []
        if number is not None:
            phones.append({"value": number, "primary": True, "label": rng.choice(LABELS)})
        if i % 4 == 0:
            phones.append(
                {"value": messy_number(rng, i + 7) or "", "primary": False, "label": "mobile"}
            )
        first = rng.choice(FIRST_NAMES) if i % 17 else ""
        last = rng.choice(LAST_NAMES) if i % 13 else ""
        fields: dict[str, Any] = {
            "name": f"{first} {last}".strip() or f"Person {i + 1}",
            "first_name": first or None,
            "last_name": last or None,
            "owner_id": USERS[i % 2]["id"],
            "org_id": 1 + i % organizations if organizations and i % 3 else None,
            "emails": [{"value": f"person{i + 1}@example.com", "primary": True, "label": "work"}]
            if i % 5
            else [],
            "phones": phones,
            "is_deleted": False,
            "visible_to": 3,
            "label_ids": [],
            "picture_id": None,
            "custom_fields": {TIER_FIELD: rng.choice(["gold", "silver", None])},
        }
        # Update times interleave ids, with runs of equal seconds like bulk imports produce.
        updated = BASE_MS + ((i * 7919) % max(count, 1)) // 3 * 1000 + 60_000
        persons.append(FakeRecord(i + 1, fields, BASE_MS + i * 1000, updated))
    return persons


def generate_organizations(count: int, *, seed: int = 13) -> list[FakeRecord]:
    rng = random.Random(seed)
    organizations = []
    for i in range(count):
        country = rng.choice(COUNTRIES)
        fields: dict[str, Any] = {
            "name": f"Company {i + 1}",
            "owner_id": USERS[0]["id"],
            "is_deleted": False,
            "visible_to": 3,
            "label_ids": [],
            "address": {"value": f"{i + 1} High Street", "country": country} if country else None,
            "custom_fields": {ORG_PHONE_FIELD: messy_number(rng, i + 3)},
        }
        updated = BASE_MS + i * 2000 + 30_000
        organizations.append(FakeRecord(i + 1, fields, BASE_MS + i * 1000, updated))
    return organizations
