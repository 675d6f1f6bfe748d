"""Serve a fake CRM on 127.0.0.1 for demos: `python manage.py fakecrm hubspot --port 8765`."""

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = "Serve a strict fake CRM API (tests/fakes) with generated contacts until Ctrl-C."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("provider", choices=["hubspot", "zoho"])
        parser.add_argument("--port", type=int, default=8765)
        parser.add_argument("--contacts", type=int, default=1000)
        parser.add_argument("--companies", type=int, default=100)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["provider"] == "zoho":
            fake, credentials = self._zoho(options)
        else:
            fake, credentials = self._hubspot(options)
        self.stdout.write(
            f"Fake {options['provider']} at {fake.url} with {options['contacts']} contacts and "
            f"{options['companies']} companies.\nConnection credentials: {credentials} "
            "(the server needs ALLOW_PRIVATE_URLS=1 to reach it)."
        )
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            fake.stop()

    def _hubspot(self, options: dict[str, Any]) -> tuple[Any, str]:
        from tests.fakes.hubspot import FakeHubSpot  # a test fake: imported only when served

        fake = FakeHubSpot(contacts=options["contacts"], companies=options["companies"])
        url = fake.start(port=options["port"])
        token = next(iter(fake.private_app_tokens))
        return fake, f'{{"private_app_token": "{token}", "base_url": "{url}"}}'

    def _zoho(self, options: dict[str, Any]) -> tuple[Any, str]:
        from tests.fakes.zoho import FakeZoho  # a test fake: imported only when served

        fake = FakeZoho(
            contacts=options["contacts"], accounts=options["companies"], leads=options["companies"]
        )
        url = fake.start(port=options["port"])
        refresh = fake.issue_tokens()["refresh_token"]
        client_id, secret = next(iter(fake.clients.items()))
        return fake, (
            f'{{"client_id": "{client_id}", "client_secret": "{secret}", '
            f'"refresh_token": "{refresh}", "accounts_url": "{url}", "api_domain": "{url}"}}'
        )
