import json
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from tenants.services import tenant_onboard


class Command(BaseCommand):
    help = "Create a tenant with its owner user, one browser key and one server key."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--slug", default="")
        parser.add_argument("--region", default="US", help="default region, e.g. GB")
        parser.add_argument("--timezone", default="UTC")
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args: object, **options: Any) -> None:
        try:
            onboarding = tenant_onboard(
                name=options["name"],
                slug=options["slug"],
                default_region=str(options["region"]).upper(),
                timezone_name=options["timezone"],
            )
        except Exception as error:  # ValueError or the model's ValidationError
            raise CommandError(str(error)) from error
        result = onboarding.as_dict()
        if options["json"]:
            self.stdout.write(json.dumps(result))
            return
        tenant, owner = result["tenant"], result["admin"]
        self.stdout.write(f"Tenant:      {tenant['name']} ({tenant['slug']})")
        self.stdout.write(f"Owner:       {owner['username']} / {owner['password']}")
        self.stdout.write(f"Dashboard:   {settings.PUBLIC_BASE_URL}/app/login (as the owner)")
        self.stdout.write(f"Server key:  {result['server_key']}")
        self.stdout.write(f"Browser key: {result['browser_key']}")
        self.stdout.write("Keys are shown once; store them now.")
