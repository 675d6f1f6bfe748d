"""Serve a fake CRM on 127.0.0.1 for demos: `python manage.py fakecrm hubspot --port 8765`."""

import json
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = "Serve a strict fake CRM API (tests/fakes) with generated contacts until Ctrl-C."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("provider", choices=["hubspot", "generic_rest"])
        parser.add_argument("--port", type=int, default=8765)
        parser.add_argument("--contacts", type=int, default=1000)
        parser.add_argument("--companies", type=int, default=100)
        parser.add_argument(
            "--paging", choices=["page", "offset", "cursor", "next_link"], default="cursor"
        )
        parser.add_argument(
            "--auth",
            choices=["none", "basic", "bearer", "api_key", "oauth2_client_credentials"],
            default="bearer",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        # Test fakes: imported only when served.
        if options["provider"] == "generic_rest":
            from tests.fakes.generic_rest import FakeRestCrm

            fake: Any = FakeRestCrm(
                contacts=options["contacts"], paging=options["paging"], auth=options["auth"]
            )
            url = fake.start(port=options["port"])
            connection = {"credentials": fake.credentials(), "settings": fake.settings()}
            description = f"Fake REST CRM at {url} with {options['contacts']} contacts"
        else:
            from tests.fakes.hubspot import FakeHubSpot

            fake = FakeHubSpot(contacts=options["contacts"], companies=options["companies"])
            url = fake.start(port=options["port"])
            token = next(iter(fake.private_app_tokens))
            connection = {"credentials": {"private_app_token": token, "base_url": url}}
            description = (
                f"Fake HubSpot at {url} with {options['contacts']} contacts and "
                f"{options['companies']} companies"
            )
        self.stdout.write(
            f"{description}.\nConnection: {json.dumps(connection)}\n"
            "(the server needs ALLOW_PRIVATE_URLS=1 to reach it)."
        )
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            fake.stop()
