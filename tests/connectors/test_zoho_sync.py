"""A Zoho CRM connection end to end: API, OAuth, the sync engine and the full diff, on the fake."""

import time
from urllib.parse import parse_qs, urlsplit

import pytest

from connectors import sync
from connectors.models import Connection, SyncRun
from connectors.services import connection_create
from contacts.models import Contact, ContactPhone
from core.scoping import tenant_scope
from fakes.zoho import FakeZoho

pytestmark = pytest.mark.django_db

CLIENT = {"client_id": "1000.FAKECLIENTID", "client_secret": "fake-client-secret"}
SETTINGS = {
    "objects": ["contacts", "accounts", "leads"],
    "custom_fields": ["Contacts.Lead_Source", "Leads.Lead_Status"],
    "org_id": "20071234",
}


@pytest.fixture
def zoho(settings):
    settings.ALLOW_PRIVATE_URLS = True
    fake = FakeZoho(contacts=120, accounts=10, leads=5)
    fake.start()
    yield fake
    fake.stop()


def connect(tenant, fake: FakeZoho, **credentials) -> Connection:
    tokens = fake.issue_tokens()
    given = {
        **CLIENT,
        "access_token": tokens["access_token"],
        "refresh_token": tokens["refresh_token"],
        "expires_at": time.time() + 3600,
        "accounts_url": fake.url,
        "api_domain": fake.url,
        **credentials,
    }
    with tenant_scope(tenant):
        return connection_create(
            tenant=tenant, provider="zoho", name="Zoho", credentials=given, settings=SETTINGS
        )


def run(connection, kind="incremental") -> SyncRun | None:
    with tenant_scope(connection.tenant_id):
        return sync.connection_sync(connection_id=connection.pk, kind=kind)


def contacts_of(connection) -> list[Contact]:
    with tenant_scope(connection.tenant_id):
        return list(Contact.objects.filter(source_connection=connection).prefetch_related("phones"))


def test_a_first_sync_brings_contacts_accounts_and_leads_with_e164_numbers(tenant, zoho):
    connection = connect(tenant, zoho)

    result = run(connection)

    assert result.outcome == "succeeded", result.error
    assert (result.created, result.updated, result.invalid_records) == (135, 0, 0)
    stored = {c.external_id: c for c in contacts_of(connection)}
    assert sum(c.is_company for c in stored.values()) == 10
    assert sum(e.startswith("lead:") for e in stored) == 5
    assert {tuple(c.custom_fields) for c in stored.values()} == {
        (),  # accounts, and contacts without a Lead_Source
        ("Lead_Source",),
        ("Lead_Status",),  # leads: custom fields are per module ("Leads.Lead_Status")
    }
    first = stored[str(zoho.ids("Contacts", 0)[0])]
    assert first.crm_url == f"https://crm.zoho.com/crm/org20071234/tab/Contacts/{first.external_id}"
    with tenant_scope(tenant):
        phones = ContactPhone.objects.filter(contact__source_connection=connection)
        assert phones.filter(e164__startswith="+44").exists()
        assert phones.exclude(e164__isnull=True).exclude(e164__startswith="+").count() == 0
        assert result.invalid_numbers == phones.filter(e164__isnull=True).count() > 0
    with tenant_scope(tenant):
        cursor = Connection.objects.get(pk=connection.pk).sync_cursor
    assert set(cursor) == {"contacts", "accounts", "leads"}
    assert all(c["after"] is None and c["since_ms"] > 0 for c in cursor.values())


def test_without_an_org_id_records_link_with_the_organization_asked_once(tenant, zoho):
    connection = connect(tenant, zoho)
    with tenant_scope(tenant):
        Connection.objects.filter(pk=connection.pk).update(settings={"objects": ["contacts"]})

    run(connection)
    run(connection)

    first = next(iter(contacts_of(connection)))
    assert first.crm_url == (
        f"https://crm.zoho.com/crm/org{zoho.zgid}/tab/Contacts/{first.external_id}"
    )
    with tenant_scope(tenant):
        assert Connection.objects.get(pk=connection.pk).credentials["org_id"] == zoho.zgid
    assert [path for _, path, _ in zoho.requests].count("/crm/v8/org") == 1


def test_a_second_sync_is_incremental(tenant, zoho):
    connection = connect(tenant, zoho)
    run(connection)
    (edited,) = zoho.ids("Contacts", 12)
    zoho.touch("Contacts", [edited])
    listings_before = len(zoho.requests)

    result = run(connection)

    assert result.outcome == "succeeded"
    assert (result.created, result.updated) == (0, 1)
    assert result.unchanged <= 3 * 3  # the last second of each module, read again
    assert len(zoho.requests) - listings_before == 3  # one page per module
    (stored,) = [c for c in contacts_of(connection) if c.external_id == str(edited)]
    assert stored.last_name.startswith("Edited")


def test_the_full_diff_soft_deletes_records_deleted_in_zoho(tenant, zoho):
    connection = connect(tenant, zoho)
    run(connection)
    gone = zoho.ids("Contacts", slice(5, 8)) + zoho.ids("Accounts", 0)
    zoho.delete("Contacts", gone[:3])
    zoho.delete("Accounts", gone[3:])

    result = run(connection, "full")

    assert result.outcome == "succeeded" and result.deleted == 4
    deleted = {c.external_id for c in contacts_of(connection) if c.deleted_at is not None}
    assert deleted == {str(i) for i in gone[:3]} | {f"account:{gone[3]}"}


def test_a_refused_refresh_puts_the_connection_in_needs_attention(tenant, zoho):
    connection = connect(tenant, zoho, expires_at=0, refresh_token="1000.revoked")

    result = run(connection)

    assert result.outcome == "failed"
    with tenant_scope(tenant):
        stored = Connection.objects.get(pk=connection.pk)
    assert stored.status == "needs_attention"
    assert "Refreshing the Zoho OAuth token failed (invalid_code)" in stored.last_error


def test_the_api_creates_a_zoho_connection_and_never_returns_its_secrets(api, zoho):
    response = api.post(
        "/api/v1/connections",
        {
            "provider": "zoho",
            "name": "Zoho EU",
            "credentials": {**CLIENT, "accounts_url": zoho.url},
            "settings": SETTINGS,
        },
        format="json",
    )

    assert response.status_code == 201, response.json()
    assert "fake-client-secret" not in response.content.decode()
    assert response.json()["provider"] == "zoho"


@pytest.mark.parametrize(
    ("credentials", "connection_settings", "field"),
    [
        ({"private_app_token": "pat-x"}, {}, "credentials"),  # HubSpot's kind of token
        ({"client_id": "1000.X"}, {}, "credentials"),
        (CLIENT, {"objects": ["companies"]}, "settings"),  # Zoho calls them accounts
        ({**CLIENT, "api_domain": "http://169.254.169.254"}, {}, "credentials"),
    ],
)
def test_the_api_refuses_a_zoho_connection_it_could_not_use(
    api, settings, credentials, connection_settings, field
):
    settings.ALLOW_PRIVATE_URLS = False
    body = {"provider": "zoho", "name": "x", "credentials": credentials}

    response = api.post(
        "/api/v1/connections", {**body, "settings": connection_settings}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["error"]["field"] == field


def test_a_tenant_connects_zoho_through_oauth_and_syncs(api, tenant, zoho, settings):
    settings.PUBLIC_BASE_URL = "https://callbridge.example.com"
    with tenant_scope(tenant):
        connection = connection_create(
            tenant=tenant,
            provider="zoho",
            name="Zoho",
            credentials={**CLIENT, "accounts_url": zoho.url},
            settings=SETTINGS,
        )
    authorize = api.post(f"/api/v1/connections/{connection.pk}/oauth").json()["authorize_url"]
    query = {k: v[0] for k, v in parse_qs(urlsplit(authorize).query).items()}
    code = zoho.accept(authorize)  # the user clicked Accept

    response = api.get(
        "/api/v1/connections/oauth/callback", {"state": query["state"], "code": code}
    )

    assert response.status_code == 200, response.json()
    with tenant_scope(tenant):
        stored = Connection.objects.get(pk=connection.pk).credentials
    assert stored["api_domain"] == zoho.url and stored["refresh_token"].startswith("1000.")
    assert run(connection).created == 135


def test_the_crm_owner_becomes_the_owner_agent_when_an_agent_has_that_email(
    tenant, zoho, make_agent
):
    owners = {user["email"] for user in zoho.users}
    first_email = sorted(owners)[0]
    agent = make_agent(tenant, "agent.owner", email=first_email.upper())  # any case matches
    connection = connect(tenant, zoho)

    run(connection)

    contacts = contacts_of(connection)
    with tenant_scope(tenant):
        owned = [c for c in contacts if c.owner_id == agent.pk]
        assert owned and len(owned) < len(contacts)  # the others' owners are not agents here
        assert all(c.owner_id is None for c in contacts if c.owner_id != agent.pk)
