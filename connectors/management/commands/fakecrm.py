"""Serve a fake CRM on 127.0.0.1 for demos: `python manage.py fakecrm hubspot --port 8765`."""

import json
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = "Serve a strict fake CRM API (tests/fakes) with generated contacts until Ctrl-C."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("provider", choices=["hubspot", "salesforce"])
        parser.add_argument("--port", type=int, default=8765)
        parser.add_argument("--contacts", type=int, default=1000)
        parser.add_argument("--companies", type=int, default=100)
        parser.add_argument("--leads", type=int, default=100)  # Salesforce

    def handle(self, *args: Any, **options: Any) -> None:
        if options["provider"] == "salesforce":
            return self.serve_salesforce(options)
        from tests.fakes.hubspot import FakeHubSpot  # a test fake: imported only when served

        fake = FakeHubSpot(contacts=options["contacts"], companies=options["companies"])
        url = fake.start(port=options["port"])
        token = next(iter(fake.private_app_tokens))
        self.stdout.write(
            f"Fake HubSpot at {url} with {options['contacts']} contacts and "
            f"{options['companies']} companies.\nConnection credentials: "
            f'{{"private_app_token": "{token}", "base_url": "{url}"}} '
            "(the server needs ALLOW_PRIVATE_URLS=1 to reach it)."
        )
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            fake.stop()

    def serve_salesforce(self, options: dict[str, Any]) -> None:
        from tests.fakes.salesforce import FakeSalesforce

        fake = FakeSalesforce(
            contacts=options["contacts"], accounts=options["companies"], leads=options["leads"]
        )
        url = fake.start(port=options["port"])
        tokens = fake.issue_tokens()
        credentials = {
            **tokens,
            "client_id": "fake-client-id",
            "client_secret": "fake-client-secret",
            "login_url": url,
        }
        self.stdout.write(
            f"Fake Salesforce at {url} with {options['contacts']} contacts, "
            f"{options['companies']} accounts and {options['leads']} leads.\n"
            f"Connection credentials: {json.dumps(credentials)} "
            "(the server needs ALLOW_PRIVATE_URLS=1 to reach it)."
        )
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            fake.stop()
