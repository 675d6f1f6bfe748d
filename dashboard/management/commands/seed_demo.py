# The demo spans every app (routing rules included), so it lives in the top one, the dashboard.
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from connectors.models import Connection
from connectors.services import connection_create, sync_enqueue
from contacts.services import PhoneInput, contact_upsert
from core.scoping import tenant_scope
from routing.models import RoutingRule
from routing.services import routing_rule_create
from tenants import services
from tenants.models import Agent, ApiKey, CallerIdNumber, Membership, Tenant

# Fixed so the printed credentials stay valid across runs. Demo only: the embedded setup.
# The admin is the demo tenant's owner in the dashboard (/app/) and staff in /admin/; the viewer
# only reads the dashboard.
DEMO_ADMIN = ("admin", "callbridge-demo")
DEMO_VIEWER = ("viewer", "callbridge-demo")
DEMO_KEYS = {
    ApiKey.Kind.SERVER: "cbs_DemoSrv1_demo-server-key-for-local-use-only",
    ApiKey.Kind.BROWSER: "cbb_DemoBrw1_demo-browser-key-for-local-use-only",
}
# Seed 002's agent.017 answers on its example agent_number; extensions are the agents' own.
DEMO_AGENTS = [
    ("agent.017", "Priya Sharma", "priya@demo.example", "+919876543211", "101"),
    ("agent.018", "Mehmet Yilmaz", "mehmet@demo.example", "+919876543212", "102"),
    ("agent.019", "Sam Carter", "sam@demo.example", "+919876543213", "103"),
]
DEMO_CONNECTION = "Demo HubSpot (fake)"
DEMO_NUMBERS = [("+918047000100", "Main line"), ("+918047000101", "Sales campaign")]
# Seed 003's caller (a registered customer: routed to 1093) and seed 002's customer, who the
# printed launch URL dials as the seed writes the number (the demo reads numbers as Indian).
DEMO_CUSTOMERS: list[dict[str, Any]] = [
    {
        "external_id": "demo-ada",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "company": "Analytical Engines Ltd",
        "crm_url": "https://crm.example.com/contacts/demo-ada",
        "custom_fields": {"tier": "gold", "language": "en"},
        "owner": "agent.017",
        "number": "+442045205757",
    },
    {
        "external_id": "demo-ravi",
        "first_name": "Ravi",
        "last_name": "Kumar",
        "company": "Kumar Textiles",
        "crm_url": "https://crm.example.com/contacts/demo-ravi",
        "custom_fields": {"tier": "silver", "language": "hi"},
        "owner": "agent.018",
        "number": "9876543210",
    },
]
DEMO_CUSTOMER_NUMBER = DEMO_CUSTOMERS[1]["number"]  # the launch URL dials Ravi
# Seed 003's routing: gold customers to the VIP extension, other known callers to their owner
# agent, unknown callers to the general queue (also the fallback when routing is slow).
DEMO_FALLBACK_EXTENSION = "1094"
DEMO_RULES = [
    {
        "name": "Gold customers to the VIP line",
        "position": 10,
        "conditions": {"fields": [{"field": "tier", "op": "equals", "value": "gold"}]},
        "action": RoutingRule.Action.EXTENSION,
        "extension": "1093",
    },
    {
        "name": "Known callers to their owner",
        "position": 20,
        "conditions": {"known": True, "has_owner": True},
        "action": RoutingRule.Action.OWNER,
    },
    {
        "name": "Unknown callers to the general queue",
        "position": 30,
        "conditions": {"known": False},
        "action": RoutingRule.Action.QUEUE,
        "queue": "general",
        "extension": DEMO_FALLBACK_EXTENSION,
    },
]


class Command(BaseCommand):
    help = "Create or refresh the demo tenant (idempotent) and print how to use it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--fake-hubspot",
            metavar="URL",
            help="connect the demo tenant to the fake HubSpot served at URL (manage.py fakecrm)",
        )

    @transaction.atomic
    def handle(self, *args: object, **options: object) -> None:
        tenant, created = Tenant.objects.get_or_create(
            slug="demo",
            defaults={
                "name": "Demo Co",
                "default_region": "IN",
                "timezone": "Asia/Kolkata",
            },
        )
        if created:
            services.tenant_update(
                tenant=tenant,
                routing_settings={"fallback_extension": DEMO_FALLBACK_EXTENSION},
                telephony_settings={"simulator_recording": True, "simulator_talk_seconds": 8.0},
            )
        username, password = DEMO_ADMIN
        admin, _ = get_user_model().objects.get_or_create(username=username)
        admin.is_staff = admin.is_superuser = True
        admin.set_password(password)
        admin.save()
        with tenant_scope(tenant):
            Membership.objects.update_or_create(
                tenant=tenant, user=admin, defaults={"role": Membership.Role.OWNER}
            )
            viewer, _ = get_user_model().objects.get_or_create(username=DEMO_VIEWER[0])
            viewer.set_password(DEMO_VIEWER[1])
            viewer.save()
            Membership.objects.update_or_create(
                tenant=tenant, user=viewer, defaults={"role": Membership.Role.VIEWER}
            )
            for crm_username, name, email, phone, extension in DEMO_AGENTS:
                Agent.objects.update_or_create(
                    tenant=tenant,
                    crm_username=crm_username,
                    defaults={
                        "display_name": name,
                        "email": email,
                        "phone_number": phone,
                        "extension": extension,
                    },
                )
            for number, label in DEMO_NUMBERS:
                CallerIdNumber.objects.get_or_create(
                    tenant=tenant, number=number, defaults={"label": label}
                )
            for kind, plaintext in DEMO_KEYS.items():
                if not ApiKey.objects.filter(prefix=plaintext[: services.PREFIX_LENGTH]).exists():
                    services.api_key_create(
                        tenant=tenant, kind=kind, name=f"demo {kind}", plaintext=plaintext
                    )
            _demo_customers(tenant)
            _demo_rules(tenant)
            if options["fake_hubspot"]:
                self._connect_fake_hubspot(tenant, str(options["fake_hubspot"]))
        self.stdout.write(f"Demo tenant '{tenant.slug}': owner login {username} / {password}")
        viewer_login = " / ".join(DEMO_VIEWER)
        self.stdout.write(f"  dashboard: {settings.PUBLIC_BASE_URL}/app/ (viewer: {viewer_login})")
        self.stdout.write(f"  server key:  {DEMO_KEYS[ApiKey.Kind.SERVER]}")
        self.stdout.write(f"  browser key: {DEMO_KEYS[ApiKey.Kind.BROWSER]}")
        launch = urlencode(
            {
                "crm_username": DEMO_AGENTS[0][0],
                "api_key": DEMO_KEYS[ApiKey.Kind.BROWSER],
                "to_number": DEMO_CUSTOMER_NUMBER,
                "from_number": DEMO_NUMBERS[0][0],
            }
        )
        url = f"{settings.PUBLIC_BASE_URL}/webphone/launch?{launch}"
        self.stdout.write(f"  click-to-call (open in a browser): {url}")
        console = urlencode(
            {"crm_username": DEMO_AGENTS[0][0], "api_key": DEMO_KEYS[ApiKey.Kind.BROWSER]}
        )
        self.stdout.write(
            f"  agent console (inbound calls pop up): "
            f"{settings.PUBLIC_BASE_URL}/webphone/?{console}"
        )

    def _connect_fake_hubspot(self, tenant: Tenant, url: str) -> None:
        """Connect (once) to the demo's fake HubSpot and sync it now."""
        from fakes.hubspot import FakeHubSpot  # the demo's fake CRM, as fakecrm serves it

        token = next(iter(FakeHubSpot().private_app_tokens))
        connection = Connection.objects.filter(name=DEMO_CONNECTION).first()
        if connection is None:
            connection = connection_create(
                tenant=tenant,
                provider="hubspot",
                name=DEMO_CONNECTION,
                credentials={"private_app_token": token, "base_url": url},
                settings={
                    "custom_fields": ["lifecyclestage"],
                    # A call to a number HubSpot does not know still lands on a contact there.
                    "call_logging": {"enabled": True, "create_unknown_contacts": True},
                },
            )
        sync_enqueue(connection=connection, kind="incremental")
        self.stdout.write(f"  connection:  {DEMO_CONNECTION} at {url}, syncing now")


def _demo_customers(tenant: Tenant) -> None:
    """The callers the first steps use, in the phonebook for lookups, routing and the call card."""
    for customer in DEMO_CUSTOMERS:
        fields = dict(customer)
        owner = Agent.objects.get(crm_username=fields.pop("owner"))
        phone = PhoneInput(fields.pop("number"), "mobile")
        contact_upsert(tenant=tenant, owner=owner, phones=[phone], **fields)


def _demo_rules(tenant: Tenant) -> None:
    """Seed 003's rules, once (a rule the user changed or deleted is left as it is)."""
    if RoutingRule.objects.exists():
        return
    for rule in DEMO_RULES:
        routing_rule_create(tenant=tenant, **rule)
