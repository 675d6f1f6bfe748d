"""End to end against the fake Salesforce: the API connects it via OAuth, the engine syncs it."""

from urllib.parse import parse_qs, urlsplit

import pytest

from connectors import sync
from connectors.models import Connection, SyncRun
from connectors.services import connection_create
from contacts.models import Contact, ContactPhone
from core.scoping import tenant_scope
from tests.connectors.conftest import salesforce_credentials

pytestmark = pytest.mark.django_db

SETTINGS = {
    "objects": ["contacts", "accounts", "leads"],
    "custom_fields": ["Contact.Tier__c", "Contact.Language__c", "Lead.Language__c"],
}


@pytest.fixture
def salesforce(make_salesforce):
    return make_salesforce(contacts=120, accounts=5, leads=10)  # one lead is converted


@pytest.fixture
def connection(tenant, salesforce) -> Connection:
    with tenant_scope(tenant):
        return connection_create(
            tenant=tenant,
            provider="salesforce",
            name="Salesforce",
            credentials=salesforce_credentials(salesforce),
            settings=SETTINGS,
        )


def run(connection, kind="incremental") -> SyncRun:
    with tenant_scope(connection.tenant_id):
        return sync.connection_sync(connection_id=connection.pk, kind=kind)


def contacts_of(connection) -> dict[str, Contact]:
    with tenant_scope(connection.tenant_id):
        contacts = Contact.objects.filter(source_connection=connection).prefetch_related("phones")
        return {c.external_id: c for c in contacts}


def test_contacts_accounts_and_leads_land_in_the_phonebook_with_e164_numbers(
    tenant, salesforce, connection
):
    result = run(connection)

    assert result.outcome == "succeeded", result.error
    assert (result.created, result.updated, result.invalid_records) == (120 + 5 + 9, 0, 0)
    assert result.pages == 3  # one batch per object
    stored = contacts_of(connection)
    assert sum(c.is_company for c in stored.values()) == 5
    first_id = salesforce.ids("Contact")[0]
    first = salesforce.records["Contact"][first_id].fields
    contact = stored[first_id]
    assert contact.last_name == first["LastName"]
    assert contact.crm_url == f"{salesforce.url}/lightning/r/Contact/{first_id}/view"
    assert contact.custom_fields == {
        k: first[k] for k in ("Tier__c", "Language__c") if first.get(k)
    }
    with tenant_scope(tenant):
        phones = ContactPhone.objects.filter(contact__source_connection=connection)
        assert phones.filter(e164__startswith="+44").exists()
        assert result.invalid_numbers == phones.filter(e164__isnull=True).count() > 0
    with tenant_scope(tenant):
        cursor = Connection.objects.get(pk=connection.pk).sync_cursor
    assert set(cursor) == {"contacts", "accounts", "leads"}
    assert all(c["after"] is None for c in cursor.values())


def test_a_second_run_is_incremental(salesforce, connection):
    run(connection)
    edited = salesforce.ids("Contact")[12]
    salesforce.touch("Contact", [edited])

    result = run(connection)

    assert result.outcome == "succeeded" and (result.created, result.updated) == (0, 1)
    assert 0 < result.unchanged < 134 - 60  # the commit-lag overlap only, not the whole org
    assert contacts_of(connection)[edited].last_name.startswith("Edited")


def test_the_full_diff_soft_deletes_records_deleted_in_salesforce(salesforce, connection):
    run(connection)
    gone = salesforce.ids("Contact")[5:8]
    salesforce.delete("Contact", gone)

    result = run(connection, "full")

    assert result.outcome == "succeeded" and result.deleted == 3
    deleted = {i for i, c in contacts_of(connection).items() if c.deleted_at is not None}
    assert deleted == set(gone)


def test_a_refused_refresh_puts_the_connection_in_needs_attention(tenant, salesforce):
    with tenant_scope(tenant):
        connection = connection_create(
            tenant=tenant,
            provider="salesforce",
            name="Salesforce",
            credentials=salesforce_credentials(salesforce, expires_at=0, refresh_token="revoked"),
            settings=SETTINGS,
        )

    result = run(connection)

    assert result.outcome == "failed"
    with tenant_scope(tenant):
        stored = Connection.objects.get(pk=connection.pk)
    assert stored.status == "needs_attention"
    assert "Refreshing the Salesforce OAuth token failed (400: invalid_grant" in stored.last_error


def test_a_tenant_connects_salesforce_through_oauth_and_syncs(api, tenant, salesforce, settings):
    settings.PUBLIC_BASE_URL = "https://callbridge.example.com"
    created = api.post(
        "/api/v1/connections",
        {
            "provider": "salesforce",
            "name": "Sales Cloud",
            "credentials": {
                "client_id": "fake-client-id",
                "client_secret": "fake-client-secret",
                "login_url": salesforce.url,
            },
            "settings": {"objects": ["contacts", "leads"]},
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    start = api.post(f"/api/v1/connections/{created.json()['id']}/oauth").json()
    authorize = urlsplit(start["authorize_url"])
    query = {k: v[0] for k, v in parse_qs(authorize.query).items()}
    assert f"{authorize.scheme}://{authorize.netloc}" == salesforce.url
    assert authorize.path == "/services/oauth2/authorize"
    assert query["response_type"] == "code" and query["scope"] == "api refresh_token"
    code = salesforce.authorize(query["redirect_uri"])  # the admin clicked Allow

    response = api.get(
        "/api/v1/connections/oauth/callback", {"state": query["state"], "code": code}
    )

    assert response.status_code == 200, response.json()
    with tenant_scope(tenant):
        stored = Connection.objects.get(pk=created.json()["id"])
    assert stored.credentials["instance_url"] == salesforce.url
    assert stored.credentials["refresh_token"].startswith("5Aep861")
    result = run(stored)
    assert result.outcome == "succeeded" and result.created == 120 + 9


def test_the_api_refuses_objects_salesforce_does_not_have(api, salesforce):
    response = api.post(
        "/api/v1/connections",
        {
            "provider": "salesforce",
            "name": "x",
            "credentials": {"client_id": "a", "client_secret": "b"},
            "settings": {"objects": ["contacts", "companies"]},
        },
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["error"]["field"] == "settings"
    assert "accounts, contacts, leads" in response.json()["error"]["message"]


def test_record_owners_become_owner_agents_by_their_salesforce_users_email(
    tenant, salesforce, connection, make_agent
):
    agent = make_agent(tenant, email="Agent1@example.com")
    user_id = next(
        u.id for u in salesforce.records["User"].values() if u.fields["Name"].endswith("1")
    )
    owned_there = {
        i for i, c in salesforce.records["Contact"].items() if c.fields["OwnerId"] == user_id
    }

    run(connection)

    stored = contacts_of(connection)
    contacts = {i: c for i, c in stored.items() if i in salesforce.records["Contact"]}
    owned_here = {i for i, c in contacts.items() if c.owner_id == agent.pk}
    assert owned_here == owned_there and owned_there  # the other users are no agents here
    assert all(c.owner_id in (None, agent.pk) for c in stored.values())  # leads, accounts too
