"""The CRMs the sync benchmark can drive (`bench/sync/run --provider NAME`): how to serve N
generated contacts from each one's fake without its rate limit (the engine's own request budget
is lifted too: this measures the engine, not the CRM's limits), the credentials a connection to
it needs, how to delete every K-th contact (for the full diff), and its page size (the ceiling
writes the same pages)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fakes.copper import FakeCopper
from fakes.hubspot import FakeHubSpot
from fakes.pipedrive import FakePipedrive
from fakes.salesforce import FakeSalesforce
from fakes.zoho import FakeZoho

UNLIMITED = 10**9


@dataclass(frozen=True)
class BenchFake:
    make: Callable[[int], Any]  # a fake serving this many contacts, unthrottled
    credentials: Callable[[Any], dict[str, Any]]
    contact_ids: Callable[[Any], list[Any]]  # in the order they were generated
    delete: Callable[[Any, list[Any]], None]
    page_size: int


def every(step: int, ids: list[Any]) -> list[Any]:
    return ids[step - 1 :: step]


FAKES: dict[str, BenchFake] = {
    "hubspot": BenchFake(
        make=lambda n: FakeHubSpot(contacts=n, companies=0, burst_limit=UNLIMITED),
        credentials=lambda f: {
            "private_app_token": next(iter(f.private_app_tokens)),
            "base_url": f.url,
        },
        contact_ids=lambda f: sorted(f.objects["contacts"]),
        delete=lambda f, ids: f.archive("contacts", ids),
        page_size=200,
    ),
    "pipedrive": BenchFake(
        make=lambda n: FakePipedrive(persons=n, burst_limit=UNLIMITED),
        credentials=lambda f: {"api_token": next(iter(f.api_tokens)), "base_url": f.url},
        contact_ids=lambda f: sorted(f.records["persons"]),
        delete=lambda f, ids: f.delete("persons", ids),
        page_size=500,
    ),
    "zoho": BenchFake(
        make=lambda n: FakeZoho(contacts=n, requests_per_minute=UNLIMITED),
        credentials=lambda f: {
            "client_id": "1000.FAKECLIENTID",
            "client_secret": "fake-client-secret",
            **_tokens(f.issue_tokens()),
            "accounts_url": f.url,
            "api_domain": f.url,
        },
        contact_ids=lambda f: sorted(f.records["Contacts"]),
        delete=lambda f, ids: f.delete("Contacts", ids),
        page_size=200,
    ),
    "salesforce": BenchFake(
        make=lambda n: FakeSalesforce(contacts=n, daily_limit=UNLIMITED),
        credentials=lambda f: {
            **f.issue_tokens(),
            "expires_at": time.time() + 7000,
            "client_id": "fake-client-id",
            "client_secret": "fake-client-secret",
            "login_url": f.url,
        },
        contact_ids=lambda f: f.ids("Contact"),
        delete=lambda f, ids: f.delete("Contact", ids),
        page_size=2000,
    ),
    "copper": BenchFake(
        make=lambda n: FakeCopper(people=n, requests_per_minute=UNLIMITED),
        credentials=lambda f: {
            "api_key": next(iter(f.api_keys)),
            "user_email": next(iter(f.api_keys.values())),
            "base_url": f.url,
        },
        contact_ids=lambda f: sorted(f.records["people"]),
        delete=lambda f, ids: f.delete("people", ids),
        page_size=200,
    ),
}


def _tokens(issued: dict[str, Any]) -> dict[str, Any]:
    """An OAuth answer as stored credentials (expires_in -> expires_at)."""
    return {
        "access_token": issued["access_token"],
        "refresh_token": issued["refresh_token"],
        "expires_at": time.time() + issued["expires_in"],
    }
