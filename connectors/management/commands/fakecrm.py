"""Serve a fake CRM on 127.0.0.1 for demos: `python manage.py fakecrm hubspot --port 8765`.

`--contacts`/`--companies` are persons/organizations for Pipedrive, people/companies for Copper,
contacts/accounts for Salesforce, Zoho, Dynamics and SugarCRM; `--contacts` are end-users for
Zendesk.
"""

import json
import time
from importlib import import_module
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from connectors import registry


class Command(BaseCommand):
    help = "Serve a strict fake CRM API (fakes/) with generated contacts until Ctrl-C."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("provider", choices=sorted(registry.PROVIDERS))
        parser.add_argument("--port", type=int, default=8765)
        parser.add_argument("--contacts", type=int, default=1000)
        parser.add_argument("--companies", type=int, default=100)
        parser.add_argument("--leads", type=int, default=100)  # Salesforce, Zoho, SugarCRM
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
        # The fakes are test code: imported only when served.
        fakes = import_module(f"{registry.FAKES_PACKAGE}.{options['provider']}")
        fake, description, connection = fakes.serve_demo(options)
        self.stdout.write(
            f"{description}.\nConnection: {json.dumps(connection)}\n"
            "(the server needs ALLOW_PRIVATE_URLS=1 to reach it)."
        )
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            fake.stop()
