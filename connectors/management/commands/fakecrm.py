"""Serve a fake CRM on 127.0.0.1 for demos: `python manage.py fakecrm hubspot --port 8765`.

`--contacts`/`--companies` are persons/organizations for Pipedrive, contacts/accounts for
Salesforce and Zoho; `--contacts` are end-users for Zendesk.
"""

import json
import time
from collections.abc import Callable
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

# provider -> start a fake from the options; answer (fake, description, connection JSON).
# Each fake (fakes/) is imported only when it is served.
Served = tuple[Any, str, dict[str, Any]]


def _hubspot(options: dict[str, Any]) -> Served:
    from fakes.hubspot import FakeHubSpot

    fake = FakeHubSpot(contacts=options["contacts"], companies=options["companies"])
    owner_ids = [fake.add_owner(email) for email in options["owners"]]
    for n, owner_id in enumerate(owner_ids):  # every third contact, in turn
        fake.set_owner(
            "contacts", list(fake.objects["contacts"])[n :: 3 * len(owner_ids)], owner_id
        )
    url = fake.start(port=options["port"])
    token = next(iter(fake.private_app_tokens))
    return (
        fake,
        f"Fake HubSpot at {url} with {options['contacts']} contacts and "
        f"{options['companies']} companies",
        {"credentials": {"private_app_token": token, "base_url": url}},
    )


def _pipedrive(options: dict[str, Any]) -> Served:
    from fakes.pipedrive import FakePipedrive

    fake = FakePipedrive(persons=options["contacts"], organizations=options["companies"])
    url = fake.start(port=options["port"])
    token = next(iter(fake.api_tokens))
    return (
        fake,
        f"Fake Pipedrive at {url} with {options['contacts']} persons and "
        f"{options['companies']} organizations",
        {"credentials": {"api_token": token, "base_url": url}},
    )


def _generic_rest(options: dict[str, Any]) -> Served:
    from fakes.generic_rest import FakeRestCrm

    fake = FakeRestCrm(contacts=options["contacts"], paging=options["paging"], auth=options["auth"])
    url = fake.start(port=options["port"])
    return (
        fake,
        f"Fake REST CRM at {url} with {options['contacts']} contacts",
        {"credentials": fake.credentials(), "settings": fake.settings()},
    )


def _zoho(options: dict[str, Any]) -> Served:
    from fakes.zoho import FakeZoho

    fake = FakeZoho(
        contacts=options["contacts"], accounts=options["companies"], leads=options["leads"]
    )
    url = fake.start(port=options["port"])
    refresh = fake.issue_tokens()["refresh_token"]
    client_id, secret = next(iter(fake.clients.items()))
    credentials = {
        "client_id": client_id,
        "client_secret": secret,
        "refresh_token": refresh,
        "accounts_url": url,
        "api_domain": url,
    }
    return (
        fake,
        f"Fake Zoho CRM at {url} with {options['contacts']} contacts, "
        f"{options['companies']} accounts and {options['leads']} leads",
        {"credentials": credentials},
    )


def _salesforce(options: dict[str, Any]) -> Served:
    from fakes.salesforce import FakeSalesforce

    fake = FakeSalesforce(
        contacts=options["contacts"], accounts=options["companies"], leads=options["leads"]
    )
    url = fake.start(port=options["port"])
    credentials = {
        **fake.issue_tokens(),
        "client_id": "fake-client-id",
        "client_secret": "fake-client-secret",
        "login_url": url,
    }
    return (
        fake,
        f"Fake Salesforce at {url} with {options['contacts']} contacts, "
        f"{options['companies']} accounts and {options['leads']} leads",
        {"credentials": credentials},
    )


def _zendesk(options: dict[str, Any]) -> Served:
    from fakes.zendesk import FakeZendesk

    fake = FakeZendesk(users=options["contacts"])
    fake.start(port=options["port"])
    return (
        fake,
        f"Fake Zendesk Support at {fake.url} with {options['contacts']} end-users",
        {"credentials": fake.credentials()},
    )


FAKES: dict[str, Callable[[dict[str, Any]], Served]] = {
    "hubspot": _hubspot,
    "pipedrive": _pipedrive,
    "generic_rest": _generic_rest,
    "zoho": _zoho,
    "salesforce": _salesforce,
    "zendesk": _zendesk,
}


class Command(BaseCommand):
    help = "Serve a strict fake CRM API (fakes/) with generated contacts until Ctrl-C."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("provider", choices=sorted(FAKES))
        parser.add_argument("--port", type=int, default=8765)
        parser.add_argument("--contacts", type=int, default=1000)
        parser.add_argument("--companies", type=int, default=100)
        parser.add_argument("--leads", type=int, default=100)  # Salesforce, Zoho
        parser.add_argument(
            "--owners",
            type=lambda emails: [e.strip() for e in emails.split(",") if e.strip()],
            default=[],
            help="HubSpot: users (emails, comma-separated) owning every third contact in turn",
        )
        parser.add_argument(
            "--paging", choices=["page", "offset", "cursor", "next_link"], default="cursor"
        )
        parser.add_argument(
            "--auth",
            choices=["none", "basic", "bearer", "api_key", "oauth2_client_credentials"],
            default="bearer",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        fake, description, connection = FAKES[options["provider"]](options)
        self.stdout.write(
            f"{description}.\nConnection: {json.dumps(connection)}\n"
            "(the server needs ALLOW_PRIVATE_URLS=1 to reach it)."
        )
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            fake.stop()
