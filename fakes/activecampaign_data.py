"""Deterministic fake ActiveCampaign contacts and users: messy numbers, gaps, shared numbers."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from fakes.hubspot_data import BASE_MS, FIRST_NAMES, LAST_NAMES, messy_number

# The documented examples show times in the account's zone with its offset (AC1): US Central.
ACCOUNT_ZONE = timezone(timedelta(hours=-5))
USERS: list[dict[str, Any]] = [
    {"id": "1", "username": "priya", "firstName": "Priya", "lastName": "Shah",
     "email": "priya.shah@example.com", "phone": "", "signature": None},
    {"id": "2", "username": "mehmet", "firstName": "Mehmet", "lastName": "Yilmaz",
     "email": "mehmet@example.com", "phone": "", "signature": None},
]  # fmt: skip
# GET /dealTasktypes as documented (AC1): the account's task types.
TASK_TYPES: list[dict[str, Any]] = [
    {"id": str(i), "title": title, "status": "0", "defduration": "0", "cdate": None,
     "udate": None, "links": []}
    for i, title in enumerate(["Call", "Email", "Lunch", "Meeting"], start=1)
]  # fmt: skip


@dataclass
class FakeContact:
    id: int
    first_name: str
    last_name: str
    email: str
    phone: str
    created_ms: int
    updated_ms: int


def account_time(ms: int) -> str:
    """Epoch ms as ActiveCampaign writes times: the account's zone, seconds, offset."""
    return datetime.fromtimestamp(ms // 1000, ACCOUNT_ZONE).isoformat()


def generate_contacts(count: int, *, seed: int = 11) -> list[FakeContact]:
    rng = random.Random(seed)
    contacts, previous = [], ""
    for i in range(count):
        number = messy_number(rng, i) or ""
        if i % 50 == 49:
            number = previous  # a shared office number
        previous = number
        first = rng.choice(FIRST_NAMES) if i % 17 else ""
        last = rng.choice(LAST_NAMES) if i % 13 else ""
        # Update times interleave ids, with runs of equal seconds like imports produce.
        updated = BASE_MS + ((i * 7919) % max(count, 1)) // 3 * 1000 + 60_000
        email = f"contact{i + 1}@example.com" if i % 7 else ""  # some phone-only contacts
        contacts.append(FakeContact(i + 1, first, last, email, number, BASE_MS + i * 1000, updated))
    return contacts
