# The demo spans every app, so this command imports downstream of tenants (demo only).
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from connectors.models import Connection
from connectors.services import connection_create, sync_enqueue
from contacts.services import PhoneInput, contact_upsert
from core.scoping import tenant_scope
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
DEMO_AGENTS = [
    ("agent.017", "Priya Sharma", "priya@demo.example", "+14155550117", "1093"),
    ("agent.018", "Mehmet Yilmaz", "mehmet@demo.example", "+14155550118", "1094"),
    ("agent.019", "Sam Carter", "sam@demo.example", "+14155550119", "1095"),
]
DEMO_CONNECTION = "Demo HubSpot (fake)"
DEMO_NUMBERS = [("+12125550100", "Main line"), ("+12125550101", "Sales campaign")]
DEMO_CUSTOMER = {
    "external_id": "demo-ada",
    "first_name": "Ada",
    "last_name": "Lovelace",
    "company": "Analytical Engines Ltd",
    "crm_url": "https://crm.example.com/contacts/demo-ada",
    "custom_fields": {"tier": "gold", "language": "en"},
}
DEMO_CUSTOMER_NUMBER = "+12125550199"


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
        tenant, _ = Tenant.objects.get_or_create(
            slug="demo",
            defaults={"name": "Demo Co", "default_region": "US", "timezone": "America/New_York"},
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
            _demo_customer(tenant)
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
                settings={"custom_fields": ["lifecyclestage"], "call_logging": {"enabled": True}},
            )
        sync_enqueue(connection=connection, kind="incremental")
        self.stdout.write(f"  connection:  {DEMO_CONNECTION} at {url}, syncing now")


def _demo_customer(tenant: Tenant) -> None:
    """The customer the printed launch URL dials, in the phonebook for the caller card."""
    owner = Agent.objects.get(crm_username=DEMO_AGENTS[0][0])
    contact_upsert(
        tenant=tenant,
        owner=owner,
        phones=[PhoneInput(DEMO_CUSTOMER_NUMBER, "mobile")],
        **DEMO_CUSTOMER,
    )
