"""Deterministic fake Intercom contacts (users and leads), companies and admins."""

from __future__ import annotations

import random
from typing import Any

from fakes.hubspot_data import BASE_MS, FIRST_NAMES, LAST_NAMES, messy_number

BASE_SECONDS = BASE_MS // 1000
WORKSPACE_ID = "ecahpwf5"
COUNTRIES = ["United Kingdom", "GB", "United States", "DE", ""]
ADMINS: list[dict[str, Any]] = [
    {"type": "admin", "id": "991267491", "name": "Priya Shah", "email": "priya.shah@example.com",
     "job_title": None, "away_mode_enabled": False, "away_mode_reassign": False,
     "has_inbox_seat": True, "team_ids": []},
    {"type": "admin", "id": "991267492", "name": "Mehmet Yilmaz", "email": "mehmet@example.com",
     "job_title": None, "away_mode_enabled": False, "away_mode_reassign": False,
     "has_inbox_seat": True, "team_ids": []},
]  # fmt: skip


def contact_id(n: int) -> str:
    """Intercom's contact ids are 24 hex digits."""
    return f"6650{n:020x}"


def company_id(n: int) -> str:
    return f"6651{n:020x}"


def contact(
    n: int,
    *,
    name: str,
    phone: str | None,
    role: str,
    at: int,
    country: str = "",
    owner: Any = None,
) -> dict[str, Any]:
    """A contact as GET /contacts answers it (2.11 `contact` schema; the fields we read)."""
    return {
        "type": "contact", "id": contact_id(n), "workspace_id": WORKSPACE_ID,
        "external_id": f"user-{n}" if role == "user" else None, "role": role,
        "email": f"contact{n}@example.com" if role == "user" else None,
        "phone": phone, "name": name or None, "owner_id": owner,
        "has_hard_bounced": False, "marked_email_as_spam": False,
        "unsubscribed_from_emails": False, "created_at": at, "updated_at": at,
        "signed_up_at": at if role == "user" else None, "last_seen_at": None,
        "custom_attributes": {}, "tags": {"type": "list", "data": []},
        "location": {"type": "location", "country": country or None, "region": None,
                     "city": None},
    }  # fmt: skip


def generate_contacts(count: int, *, seed: int = 23) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    contacts = []
    for i in range(count):
        name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}" if i % 11 else ""
        # Modification times interleave ids, several a second, over a few days.
        at = BASE_SECONDS + ((i * 7919) % max(count, 1)) * 600
        row = contact(
            i + 1,
            name=name,
            phone=messy_number(rng, i),
            role="lead" if i % 3 == 0 else "user",
            at=at,
            country=rng.choice(COUNTRIES),
            owner=int(ADMINS[i % 2]["id"]) if i % 4 else None,
        )
        row["custom_attributes"] = {"tier": rng.choice(["gold", "silver", None])}
        contacts.append(row)
    return contacts


def generate_companies(count: int, *, seed: int = 29) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    companies = []
    for i in range(count):
        at = BASE_SECONDS + i * 60
        number = messy_number(rng, i + 3)
        companies.append(
            {
                "type": "company", "id": company_id(i + 1), "company_id": f"acct-{i + 1}",
                "app_id": WORKSPACE_ID, "name": f"Company {i + 1}", "remote_created_at": at,
                "created_at": at, "updated_at": at, "monthly_spend": 0, "session_count": 0,
                "user_count": 1, "size": None, "website": None, "industry": None,
                "tags": {"type": "tag.list", "tags": []},
                "segments": {"type": "segment.list", "segments": []}, "plan": {},
                # Companies have no phone field: workspaces keep one as a custom attribute.
                "custom_attributes": {"phone": number} if number else {},
            }
        )  # fmt: skip
    return companies
