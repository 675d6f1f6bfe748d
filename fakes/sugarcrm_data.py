"""Deterministic fake SugarCRM records: GUID ids, messy numbers, shared numbers, owners."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from fakes.hubspot_data import messy_number

BASE_S = 1_700_000_000  # 2023-11-14T22:13:20Z
# Sugar answers times in the API user's time zone, with its offset (here US Eastern, winter).
USER_OFFSET = timezone(timedelta(hours=-5))
FIRST_NAMES = ["Ada", "Grace", "Alan", "Priya", "Mehmet", "Zoë", "José", "Li", "Olu", "Anna"]
LAST_NAMES = ["Lovelace", "Hopper", "Turing", "Shah", "Y\u0131lmaz", "Müller", "O'Brien", "Nguyen"]
COUNTRIES = ["GB", "United Kingdom", "US", "de", "", "DE", "TR", "USA", None]
USERS = [
    ("seed_sally_id", "sally", "Sally", "Bronsen", "sally@example.com"),
    ("b0c2a6d0-4a8e-11ee-9d8e-0242ac120002", "priya", "Priya", "Shah", "priya.shah@example.com"),
    ("b0c2a6d0-4a8e-11ee-9d8e-0242ac120003", "olu", "Olu", "Okafor", "olu.okafor@example.com"),
    ("b0c2a6d0-4a8e-11ee-9d8e-0242ac120004", "max", "Max", "Jensen", "max.jensen@example.com"),
]
INACTIVE_USER = USERS[3][0]  # Max left: Inactive, not listed by a filter on status Active


@dataclass
class FakeRecord:
    id: str
    fields: dict[str, Any]
    created_s: int
    modified_s: int


def sugar_time(seconds: int) -> str:
    """Epoch seconds as Sugar writes datetimes: ISO 8601 to the second with the user's offset."""
    return datetime.fromtimestamp(seconds, USER_OFFSET).isoformat()


def guid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def users() -> list[FakeRecord]:
    records = []
    for index, (user_id, user_name, first, last, email) in enumerate(USERS):
        fields = {
            "user_name": user_name,
            "first_name": first,
            "last_name": last,
            "full_name": f"{first} {last}",
            "email1": email,
            "email": [{"email_address": email, "primary_address": True, "invalid_email": False}],
            "status": "Inactive" if user_id == INACTIVE_USER else "Active",
            "is_group": False,
        }
        records.append(FakeRecord(user_id, fields, BASE_S, BASE_S + index))
    return records


def generate(module: str, count: int) -> list[FakeRecord]:
    return {"Contacts": _contacts, "Accounts": _accounts, "Leads": _leads}[module](count)


def _owner(i: int) -> str:
    return USERS[i % 3][0]  # the active users in turn


def _contacts(count: int) -> list[FakeRecord]:
    rng = random.Random(23)
    records, previous_phone = [], None
    for i in range(count):
        phone = messy_number(rng, i)
        if i % 50 == 49:
            phone = previous_phone  # a shared office number: duplicates across contacts
        previous_phone = phone
        fields: dict[str, Any] = {
            "first_name": rng.choice(FIRST_NAMES) if i % 17 else "",
            "last_name": rng.choice(LAST_NAMES),  # required in Sugar
            "account_name": f"Company {i % 97}" if i % 3 else "",
            "phone_work": phone,
            "phone_mobile": messy_number(rng, i + 7) if i % 4 == 0 else "",
            "phone_home": messy_number(rng, i + 11) if i % 9 == 0 else "",
            "phone_other": "",
            "primary_address_country": rng.choice(COUNTRIES),
            "lead_source": rng.choice(["Cold Call", "Web Site", "Partner", ""]),
            "assigned_user_id": _owner(i),
        }
        # Modified times interleave ids, three records a second as bulk updates produce.
        modified = BASE_S + ((i * 7919) % max(count, 1)) // 3 + 60
        records.append(FakeRecord(guid(rng), fields, BASE_S + i, modified))
    return records


def _accounts(count: int) -> list[FakeRecord]:
    rng = random.Random(29)
    records = []
    for i in range(count):
        fields: dict[str, Any] = {
            "name": f"Company {i}",  # required in Sugar
            "phone_office": messy_number(rng, i + 3),
            "phone_alternate": messy_number(rng, i + 5) if i % 5 == 0 else "",
            "billing_address_country": rng.choice(COUNTRIES),
            "industry": rng.choice(["Banking", "Energy", "Retail", ""]),
            "assigned_user_id": _owner(i),
        }
        records.append(FakeRecord(guid(rng), fields, BASE_S + i, BASE_S + i * 2 + 30))
    return records


def _leads(count: int) -> list[FakeRecord]:
    rng = random.Random(31)
    records = []
    for i in range(count):
        fields: dict[str, Any] = {
            "first_name": rng.choice(FIRST_NAMES) if i % 7 else "",
            "last_name": rng.choice(LAST_NAMES),
            "account_name": f"Prospect {i}" if i % 4 else "",
            "phone_work": messy_number(rng, i + 5),
            "phone_mobile": messy_number(rng, i + 9) if i % 3 == 0 else "",
            "phone_home": "",
            "phone_other": "",
            "primary_address_country": rng.choice(COUNTRIES),
            "status": rng.choice(["New", "Assigned", "In Process"]),
            "assigned_user_id": _owner(i),
        }
        records.append(FakeRecord(guid(rng), fields, BASE_S + i, BASE_S + i + 45))
    return records
