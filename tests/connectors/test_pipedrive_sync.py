"""A Pipedrive connection end to end: added through the API, synced, incremental, full diff."""

import pytest

from connectors import sync
from connectors.models import Connection
from connectors.services import connection_create
from contacts.models import Contact, ContactPhone
from core.scoping import tenant_scope
from fakes.pipedrive_data import ORG_PHONE_FIELD

pytestmark = pytest.mark.django_db


def connect(tenant, fake, **settings) -> Connection:
    with tenant_scope(tenant):
        return connection_create(
            tenant=tenant,
            provider="pipedrive",
            name="Pipedrive",
            credentials={"api_token": "pd-fake-api-token", "base_url": fake.url},
            settings=settings,
        )


def run(connection_id: int, tenant, kind="incremental"):
    with tenant_scope(tenant):
        return sync.connection_sync(connection_id=connection_id, kind=kind)


def test_a_pipedrive_connection_syncs_persons_and_organizations_then_only_changes(
    api, tenant, make_pipedrive
):
    fake = make_pipedrive(persons=240, organizations=10)
    response = api.post(
        "/api/v1/connections",
        {
            "provider": "pipedrive",
            "name": "Sales Pipedrive",
            "credentials": {
                "api_token": "pd-fake-api-token",
                "base_url": fake.url,
                "company_domain": "acme",
            },
            "settings": {"organization_phone_fields": [ORG_PHONE_FIELD]},
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert "pd-fake-api-token" not in response.content.decode()
    connection_id = response.json()["id"]

    first = run(connection_id, tenant)

    assert first.outcome == "succeeded", first.error
    assert (first.created, first.invalid_records) == (250, 0)
    with tenant_scope(tenant):
        stored = Contact.objects.filter(source_connection_id=connection_id)
        assert stored.filter(is_company=True, external_id__startswith="org:").count() == 10
        ada = stored.get(external_id="2")
        assert ada.crm_url == "https://acme.pipedrive.com/person/2"
        phones = ContactPhone.objects.filter(contact__source_connection_id=connection_id)
        assert phones.filter(e164__startswith="+44").exists()
        assert first.invalid_numbers == phones.filter(e164__isnull=True).count() > 0
        cursor = Connection.objects.get(pk=connection_id).sync_cursor
        assert cursor["contacts"]["after"] is None and cursor["companies"]["since_ms"] > 0

    fake.touch("persons", [12])
    second = run(connection_id, tenant)

    assert second.outcome == "succeeded", second.error
    assert (second.created, second.updated) == (0, 1)
    assert second.created + second.updated + second.unchanged < 50  # not the whole account
    with tenant_scope(tenant):
        assert Contact.objects.get(external_id="12").last_name.startswith("Edited")


def test_an_api_token_connection_links_records_with_the_company_domain_asked_once(
    tenant, make_pipedrive
):
    fake = make_pipedrive(persons=30, organizations=3)
    connection = connect(tenant, fake, objects=["contacts", "companies"])  # no company_domain

    run(connection.pk, tenant)
    run(connection.pk, tenant)

    with tenant_scope(tenant):
        stored = Contact.objects.filter(source_connection=connection)
        assert stored.get(external_id="2").crm_url == "https://fakeco.pipedrive.com/person/2"
        assert stored.get(external_id="org:1").crm_url == (
            "https://fakeco.pipedrive.com/organization/1"
        )
        assert Connection.objects.get(pk=connection.pk).credentials["company_domain"] == "fakeco"
    assert [path for _, path, _ in fake.requests].count("/api/v1/users/me") == 1


def test_the_full_diff_soft_deletes_a_person_deleted_in_pipedrive(tenant, make_pipedrive):
    fake = make_pipedrive(persons=120, organizations=5)
    connection = connect(tenant, fake, objects=["contacts", "companies"])
    run(connection.pk, tenant)
    fake.delete("persons", [5])

    diff = run(connection.pk, tenant, kind="full")

    assert diff.outcome == "succeeded", diff.error
    assert diff.deleted == 1
    with tenant_scope(tenant):
        gone = Contact.objects.get(source_connection=connection, external_id="5")
        assert gone.deleted_at is not None
        assert Contact.objects.filter(source_connection=connection, deleted_at=None).count() == 124


def test_a_pipedrive_connection_needs_an_api_token_or_an_oauth_app(api):
    response = api.post(
        "/api/v1/connections",
        {"provider": "pipedrive", "name": "x", "credentials": {"private_app_token": "pat"}},
        format="json",
    )

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["field"] == "credentials" and "api_token" in error["message"]


def test_record_owners_become_owner_agents_by_their_pipedrive_users_email(
    tenant, make_pipedrive, make_agent
):
    fake = make_pipedrive(persons=20, organizations=2)
    agent = make_agent(tenant, email="priya.shah@example.com")  # user 11; user 12 is no agent
    connection = connect(tenant, fake)

    run(connection.pk, tenant)

    with tenant_scope(tenant):
        owners = dict(Contact.objects.values_list("external_id", "owner_id"))
    expected = {
        str(r.id): agent.pk if r.fields["owner_id"] == 11 else None
        for r in fake.records["persons"].values()
    }
    assert {k: v for k, v in owners.items() if not k.startswith("org:")} == expected
    assert set(expected.values()) == {agent.pk, None}
    assert fake.paths("GET").count("/api/v1/users") == 1
