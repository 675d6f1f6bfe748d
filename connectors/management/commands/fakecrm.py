"""Serve a fake CRM on 127.0.0.1 for demos: `python manage.py fakecrm hubspot --port 8765`.

`--contacts`/`--companies` are persons/organizations for Pipedrive.
"""

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = "Serve a strict fake CRM API (tests/fakes) with generated contacts until Ctrl-C."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("provider", choices=["hubspot", "pipedrive"])
        parser.add_argument("--port", type=int, default=8765)
        parser.add_argument("--contacts", type=int, default=1000)
        parser.add_argument("--companies", type=int, default=100)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["provider"] == "pipedrive":
            fake, credentials = self._pipedrive(options)
        else:
            fake, credentials = self._hubspot(options)
        self.stdout.write(
            f"Connection credentials: {credentials} "
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
        self.stdout.write(
            f"Fake HubSpot at {url} with {options['contacts']} contacts and "
            f"{options['companies']} companies."
        )
        token = next(iter(fake.private_app_tokens))
        return fake, f'{{"private_app_token": "{token}", "base_url": "{url}"}}'

    def _pipedrive(self, options: dict[str, Any]) -> tuple[Any, str]:
        from tests.fakes.pipedrive import FakePipedrive  # a test fake: imported only when served

        fake = FakePipedrive(persons=options["contacts"], organizations=options["companies"])
        url = fake.start(port=options["port"])
        self.stdout.write(
            f"Fake Pipedrive at {url} with {options['contacts']} persons and "
            f"{options['companies']} organizations."
        )
        token = next(iter(fake.api_tokens))
        return fake, f'{{"api_token": "{token}", "base_url": "{url}"}}'
