"""Deterministic fake HubSpot records: messy real-world numbers, companies, gaps, duplicates."""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass
from datetime import UTC, datetime

BASE_MS = 1_700_000_000_000  # 2023-11-14T22:13:20Z
FIRST_NAMES = ["Ada", "Grace", "Alan", "Priya", "Mehmet", "Zoë", "José", "Li", "Olu", "Anna"]
LAST_NAMES = ["Lovelace", "Hopper", "Turing", "Shah", "Y\u0131lmaz", "Müller", "O'Brien", "Nguyen"]
COUNTRIES = ["GB", "United Kingdom", "US", "us", "", "DE", "TR", "France", None]


@dataclass
class FakeObject:
    id: int
    properties: dict[str, str | None]
    created_ms: int
    modified_ms: int
    archived: bool = False
    archived_ms: int | None = None


def iso(ms: int) -> str:
    """Epoch milliseconds as HubSpot writes times (2023-11-14T22:13:20.000Z)."""
    seconds, milliseconds = divmod(ms, 1000)
    day, second_of_day = divmod(seconds, 86_400)
    hours, rest = divmod(second_of_day, 3600)
    return f"{_date(day)}T{hours:02d}:{rest // 60:02d}:{rest % 60:02d}.{milliseconds:03d}Z"


@functools.lru_cache(maxsize=4096)
def _date(day: int) -> str:
    # Formatting a datetime was 40 % of the fake's time serving a sync page: days repeat.
    return datetime.fromtimestamp(day * 86_400, UTC).strftime("%Y-%m-%d")


def messy_number(rng: random.Random, i: int) -> str | None:
    """A number as people type them into a CRM: any format, sometimes unreadable or empty."""
    n = 1000 + i % 9000
    formats = [
        f"+44 20 7946 {n % 1000:04d}",
        f"020 7946 {n % 1000:04d}",
        f"0044 (0)20 7946 {n % 1000:04d}",
        f"(415) 555-{n:04d}",
        f"+1-212-555-{n:04d}",
        f"+49 (0)30 1234{n:04d} ext. 12",
        f"07700 900{n % 1000:03d}",
        f"+90 212 555 {n % 100:02d} {n % 100:02d}",
        "n/a",
        "12",
        "",
        None,
    ]
    return rng.choice(formats)


def generate_contacts(count: int, *, seed: int = 7, start_id: int = 1) -> list[FakeObject]:
    rng = random.Random(seed)
    contacts = []
    previous_phone: str | None = None
    for i in range(count):
        object_id = start_id + i
        created = BASE_MS + i * 1000
        # Modified times interleave ids, with runs of equal times like bulk imports produce.
        modified = BASE_MS + ((i * 7919) % max(count, 1)) // 3 * 1000 + 60_000
        phone = messy_number(rng, i)
        if i % 50 == 49:
            phone = previous_phone  # a shared office number: duplicates across contacts
        previous_phone = phone
        props: dict[str, str | None] = {
            "firstname": rng.choice(FIRST_NAMES) if i % 17 else None,
            "lastname": rng.choice(LAST_NAMES) if i % 13 else None,
            "email": f"person{object_id}@example.com" if i % 5 else None,
            "company": f"Company {i % 97}" if i % 3 else None,
            "phone": phone,
            "mobilephone": messy_number(rng, i + 7) if i % 4 == 0 else None,
            "country": rng.choice(COUNTRIES),
            "lifecyclestage": rng.choice(["lead", "customer", "subscriber", None]),
        }
        contacts.append(FakeObject(object_id, props, created, modified))
    return contacts


def generate_companies(count: int, *, seed: int = 11, start_id: int = 1) -> list[FakeObject]:
    rng = random.Random(seed)
    companies = []
    for i in range(count):
        props: dict[str, str | None] = {
            "name": f"Company {i}" if i % 11 else None,
            "domain": f"company{i}.example.com",
            "phone": messy_number(rng, i + 3),
            "country": rng.choice(COUNTRIES),
        }
        modified = BASE_MS + i * 2000 + 30_000
        companies.append(FakeObject(start_id + i, props, BASE_MS + i * 1000, modified))
    return companies
