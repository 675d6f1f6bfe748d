"""The CRMs the sync benchmark can drive (`bench/sync/run --provider NAME`): how to serve N
generated contacts from each one's fake without its rate limit (the engine's own request budget
is lifted too: this measures the engine, not the CRM's limits), the credentials a connection to
it needs, how to delete every K-th contact (for the full diff), and its page size (the ceiling
writes the same pages).

With `--rate-limited`, a CRM's `customer` serves them instead: the fake keeps the published
limits of a stated tier, and the connection's settings name the same limits (`rate_limits`), as
a tenant on that tier would set them."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fakes.activecampaign import FakeActiveCampaign
from fakes.copper import FakeCopper
from fakes.dynamics import FakeDynamics
from fakes.hubspot import FakeHubSpot
from fakes.intercom import FakeIntercom
from fakes.keap import API as KEAP_API
from fakes.keap import FakeKeap
from fakes.pipedrive import FakePipedrive
from fakes.salesforce import FakeSalesforce
from fakes.sugarcrm import FakeSugarCrm
from fakes.zoho import FakeZoho

UNLIMITED = 10**9


@dataclass(frozen=True)
class Customer:
    """A tenant on one tier of the CRM: its fake with that tier's limits, and what they allow."""

    tier: str
    make: Callable[[int], Any]  # a fake serving this many contacts under the tier's limits
    # The CRM's speed limits (requests in any window of seconds), by the name the connector's
    # requests spend them under, and which one a request (method, path) spends.
    rate_limits: dict[str, tuple[int, float]]
    limit_of: Callable[[str, str], str]
    refused: Callable[[Any], int]  # requests the fake answered "over the limit" so far
    daily: Callable[[Any], tuple[int, int, str]]  # the day's allocation: used, allowed, unit


@dataclass(frozen=True)
class BenchFake:
    make: Callable[[int], Any]  # a fake serving this many contacts, unthrottled
    credentials: Callable[[Any], dict[str, Any]]
    contact_ids: Callable[[Any], list[Any]]  # in the order they were generated
    delete: Callable[[Any, list[Any]], None]
    page_size: int
    customer: Customer | None = None


def requests_made(fake: Any) -> list[tuple[str, str]]:
    """(method, path) of every request the fake answered, oldest first."""
    return [(request[0], request[1].split("?")[0]) for request in fake.requests]


def search_or_requests(method: str, path: str) -> str:
    return "search" if path.endswith("/search") else "requests"


def every(step: int, ids: list[Any]) -> list[Any]:
    return ids[step - 1 :: step]


FAKES: dict[str, BenchFake] = {
    "hubspot": BenchFake(
        make=lambda n: FakeHubSpot(
            contacts=n, companies=0, burst_limit=UNLIMITED, search_per_second=UNLIMITED
        ),
        credentials=lambda f: {
            "private_app_token": next(iter(f.private_app_tokens)),
            "base_url": f.url,
        },
        contact_ids=lambda f: sorted(f.objects["contacts"]),
        delete=lambda f, ids: f.archive("contacts", ids),
        page_size=200,
        customer=Customer(
            tier="Professional, private app: 190 requests a 10 s, search 5 a second, 650,000 a day",
            make=lambda n: FakeHubSpot(
                contacts=n, companies=0, burst_limit=190, search_per_second=5
            ),
            rate_limits={"requests": (190, 10), "search": (5, 1)},
            limit_of=search_or_requests,
            refused=lambda f: f.rate_limited,
            daily=lambda f: (len(f.requests), 650_000, "requests"),
        ),
    ),
    "pipedrive": BenchFake(
        make=lambda n: FakePipedrive(persons=n, burst_limit=UNLIMITED, daily_tokens=UNLIMITED),
        credentials=lambda f: {"api_token": next(iter(f.api_tokens)), "base_url": f.url},
        contact_ids=lambda f: sorted(f.records["persons"]),
        delete=lambda f, ids: f.delete("persons", ids),
        page_size=500,
        customer=Customer(
            tier="Essential, 10 seats, api_token: 20 requests a 2 s (search 10), "
            "300,000 tokens a day",
            make=lambda n: FakePipedrive(persons=n, burst_limit=20, daily_tokens=300_000),
            rate_limits={"requests": (20, 2), "search": (10, 2)},
            limit_of=search_or_requests,
            refused=lambda f: f.rate_limited,
            daily=lambda f: (f.tokens_spent, f.daily_tokens, "tokens"),
        ),
    ),
    "zoho": BenchFake(
        make=lambda n: FakeZoho(contacts=n, requests_per_minute=UNLIMITED, daily_credits=UNLIMITED),
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
        customer=Customer(
            tier="Enterprise, 10 licences: 60,000 credits a day; the fake's 1,000 requests a "
            "minute stand in for Zoho's concurrency limit",
            make=lambda n: FakeZoho(contacts=n, requests_per_minute=1000, daily_credits=60_000),
            rate_limits={"requests": (1000, 60)},
            limit_of=lambda method, path: "requests",
            refused=lambda f: f.rate_limited,
            daily=lambda f: (f.credits_spent, f.daily_credits, "credits"),
        ),
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
        customer=Customer(
            tier="Enterprise, 20 licences: 120,000 API requests a rolling 24 h, no speed limit",
            make=lambda n: FakeSalesforce(contacts=n, daily_limit=120_000),
            rate_limits={},
            limit_of=lambda method, path: "requests",
            refused=lambda f: max(0, f.api_usage - f.daily_limit),
            daily=lambda f: (f.api_usage, f.daily_limit, "API requests"),
        ),
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
    "dynamics": BenchFake(
        make=lambda n: FakeDynamics(contacts=n, requests_per_window=UNLIMITED),
        credentials=lambda f: f.credentials(),
        contact_ids=lambda f: f.ids("contacts"),
        delete=lambda f, ids: f.delete("contacts", ids),
        page_size=5000,
    ),
    "sugarcrm": BenchFake(
        make=lambda n: FakeSugarCrm(contacts=n),
        credentials=lambda f: {"instance_url": f.url, **_sugar_login(f)},
        contact_ids=lambda f: f.ordered_ids("Contacts"),
        delete=lambda f, ids: f.delete("Contacts", ids),
        page_size=500,
    ),
    "activecampaign": BenchFake(
        make=lambda n: FakeActiveCampaign(contacts=n, rate_limit=UNLIMITED),
        credentials=lambda f: {"api_url": f.url, "api_token": next(iter(f.api_tokens))},
        contact_ids=lambda f: sorted(f.contacts),
        delete=lambda f, ids: f.delete(ids),
        page_size=100,
    ),
    "intercom": BenchFake(
        make=lambda n: FakeIntercom(contacts=n, requests_per_window=UNLIMITED),
        credentials=lambda f: {"access_token": next(iter(f.tokens)), "base_url": f.url},
        contact_ids=lambda f: list(f.contacts),
        delete=lambda f, ids: f.delete(ids),
        page_size=150,
    ),
    "keap": BenchFake(
        make=lambda n: FakeKeap(contacts=n, per_second=UNLIMITED, per_minute=UNLIMITED),
        credentials=lambda f: {"api_key": next(iter(f.api_keys)), "base_url": f.url + KEAP_API},
        contact_ids=lambda f: sorted(f.records["contacts"]),
        delete=lambda f, ids: f.delete("contacts", ids),
        page_size=1000,
    ),
}


def _tokens(issued: dict[str, Any]) -> dict[str, Any]:
    """An OAuth answer as stored credentials (expires_in -> expires_at)."""
    return {
        "access_token": issued["access_token"],
        "refresh_token": issued["refresh_token"],
        "expires_at": time.time() + issued["expires_in"],
    }


def _sugar_login(fake: Any) -> dict[str, Any]:
    username, password = next(iter(fake.logins.items()))
    return {"username": username, "password": password}
