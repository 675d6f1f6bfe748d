"""Deterministic fake Dataverse rows: messy numbers, parent accounts, shared numbers, owners."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from fakes.hubspot_data import messy_number

BASE_S = 1_700_000_000  # 2023-11-14T22:13:20Z
_IDS = uuid.UUID("6f1c2a9e-3b0d-4c5e-9a7f-0d2b1e4c8a10")  # namespace of the generated GUIDs
FIRST_NAMES = ["Ada", "Grace", "Alan", "Priya", "Mehmet", "Zoë", "José", "Li", "Olu", "Anna"]
LAST_NAMES = ["Lovelace", "Hopper", "Turing", "Shah", "Y\u0131lmaz", "Müller", "O'Brien", "Nguyen"]
COUNTRIES = ["GB", "United Kingdom", "US", "gb", "", "DE", "TR", "France", None]
# systemusers: people (the agents' CRM accounts), a disabled one, and the app's application user.
USERS: list[dict[str, object]] = [
    {"fullname": "Patricia Boyle", "internalemailaddress": "pat.boyle@example.com"},
    {"fullname": "Priya Shah", "internalemailaddress": "priya.shah@example.com"},
    {"fullname": "Olu Okafor", "internalemailaddress": "olu.okafor@example.com"},
    {"fullname": "Former Employee", "internalemailaddress": "gone@example.com", "isdisabled": True},
    {"fullname": "# CallBridge", "internalemailaddress": None},  # the application user
]


@dataclass
class FakeRow:
    columns: dict[str, object]
    version: int  # the change-tracking version of its last write (one counter per fake)


def guid(kind: str, i: int) -> str:
    return str(uuid.uuid5(_IDS, f"{kind}-{i}"))


def odata_time(seconds: float) -> str:
    """Epoch seconds as Dataverse writes DateTimeOffset values (UTC, `Z`)."""
    return datetime.fromtimestamp(int(seconds), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def users() -> dict[str, FakeRow]:
    rows = {}
    for i, user in enumerate(USERS):
        user_id = guid("systemuser", i)
        columns: dict[str, object] = {"systemuserid": user_id, "isdisabled": False}
        columns.update(user)
        columns["azureactivedirectoryobjectid"] = guid("entra-user", i)
        rows[user_id] = FakeRow(columns, 0)
    return rows


def accounts(count: int, owners: list[str]) -> dict[str, FakeRow]:
    rng = random.Random(17)
    rows = {}
    for i in range(count):
        account_id = guid("account", i)
        columns: dict[str, object] = {
            "accountid": account_id,
            "name": f"Company {i}" if i % 11 else None,
            "telephone1": messy_number(rng, i + 3),
            "telephone2": messy_number(rng, i + 5) if i % 4 == 0 else None,
            "telephone3": None,
            "address1_country": rng.choice(COUNTRIES),
            "websiteurl": f"https://company{i}.example.com",
            "_ownerid_value": owners[i % len(owners)],
            "createdon": odata_time(BASE_S + i),
            "modifiedon": odata_time(BASE_S + i * 2 + 30),
        }
        rows[account_id] = FakeRow(columns, 0)
    return rows


def contacts(count: int, account_ids: list[str], owners: list[str]) -> dict[str, FakeRow]:
    rng = random.Random(13)
    rows, previous_phone = {}, None
    for i in range(count):
        contact_id = guid("contact", i)
        phone = messy_number(rng, i)
        if i % 50 == 49:
            phone = previous_phone  # a shared office number: duplicates across contacts
        previous_phone = phone
        columns: dict[str, object] = {
            "contactid": contact_id,
            "firstname": rng.choice(FIRST_NAMES) if i % 17 else None,
            "lastname": rng.choice(LAST_NAMES),
            "emailaddress1": f"person{i}@example.com" if i % 5 else None,
            "telephone1": phone,
            "telephone2": messy_number(rng, i + 11) if i % 9 == 0 else None,
            "telephone3": None,
            "mobilephone": messy_number(rng, i + 7) if i % 4 == 0 else None,
            "address1_country": rng.choice(COUNTRIES),
            "_parentcustomerid_value": account_ids[i % len(account_ids)]
            if account_ids and i % 3
            else None,
            "new_tier": rng.choice(["gold", "silver", None]),
            "_ownerid_value": owners[i % len(owners)],
            "createdon": odata_time(BASE_S + i),
            "modifiedon": odata_time(BASE_S + ((i * 7919) % max(count, 1)) // 3 + 60),
        }
        rows[contact_id] = FakeRow(columns, 0)
    return rows
