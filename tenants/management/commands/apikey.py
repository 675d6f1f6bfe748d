from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.scoping import across_all_tenants
from tenants import services
from tenants.models import ApiKey, Tenant


class Command(BaseCommand):
    help = "Create, rotate or revoke API keys. New secrets are printed once."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        create = actions.add_parser("create", help="issue a new key for a tenant")
        create.add_argument("tenant", help="tenant slug")
        create.add_argument("--kind", choices=ApiKey.Kind.values, required=True)
        create.add_argument("--name", default="")
        create.add_argument("--scope", action="append", default=[], dest="scopes")
        create.add_argument("--allow-ip", action="append", default=[], dest="cidrs")
        create.add_argument("--rate-limit", type=int, default=None, help="requests per minute")
        for name, text in (
            ("rotate", "revoke a key and issue its replacement"),
            ("revoke", "revoke a key now"),
        ):
            sub = actions.add_parser(name, help=text)
            sub.add_argument("prefix", help="the key's visible prefix, e.g. cbs_3kTq9ZpA")

    def handle(self, *args: object, **options: object) -> None:
        with across_all_tenants():
            try:
                getattr(self, f"_{options['action']}")(options)
            except (ValueError, Tenant.DoesNotExist, ApiKey.DoesNotExist) as error:
                raise CommandError(str(error)) from error

    def _create(self, options: dict) -> None:
        tenant = Tenant.objects.get(slug=options["tenant"])
        _, plaintext = services.api_key_create(
            tenant=tenant,
            kind=options["kind"],
            name=options["name"],
            scopes=options["scopes"],
            allowed_cidrs=options["cidrs"],
            rate_limit_per_minute=options["rate_limit"],
        )
        self.stdout.write(plaintext)

    def _rotate(self, options: dict) -> None:
        api_key = ApiKey.objects.get(prefix=options["prefix"], revoked_at__isnull=True)
        _, plaintext = services.api_key_rotate(api_key=api_key)
        self.stdout.write(plaintext)

    def _revoke(self, options: dict) -> None:
        services.api_key_revoke(api_key=ApiKey.objects.get(prefix=options["prefix"]))
        self.stdout.write(f"Revoked {options['prefix']}.")
