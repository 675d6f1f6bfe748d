"""A generic REST connection end to end: the sync engine, the API's checks of its settings."""

import pytest

from connectors import sync
from connectors.models import Connection
from connectors.services import connection_create
from contacts.models import Contact, ContactPhone
from core.scoping import tenant_scope
from fakes.generic_rest import LIST_PATH, FakeRestCrm

pytestmark = pytest.mark.django_db


@pytest.fixture
def crm(settings):
    settings.ALLOW_PRIVATE_URLS = True
    fake = FakeRestCrm(contacts=120, paging="cursor", auth="oauth2_client_credentials")
    fake.start()
    yield fake
    fake.stop()


def run(connection, kind="incremental"):
    with tenant_scope(connection.tenant_id):
        return sync.connection_sync(connection_id=connection.pk, kind=kind)


def test_a_generic_rest_connection_syncs_incrementally_and_deletes_what_vanished(tenant, crm):
    with tenant_scope(tenant):
        connection = connection_create(
            tenant=tenant,
            provider="generic_rest",
            name="In-house CRM",
            credentials=crm.credentials(),
            settings=crm.settings(),
        )

    first = run(connection)
    crm.touch([12])
    second = run(connection)
    crm.delete([5, 6])
    full = run(connection, "full")

    assert first.outcome == "succeeded", first.error
    assert (first.created, first.pages) == (120, 3)
    with tenant_scope(tenant):
        phones = ContactPhone.objects.filter(contact__source_connection=connection)
        assert phones.filter(e164__startswith="+44").exists()
        assert first.invalid_numbers == phones.filter(e164__isnull=True).count() > 0
        ada = Contact.objects.get(source_connection=connection, external_id="c-12")
        assert ada.crm_url == "https://crm.example.com/people/c-12"
        assert ada.last_name.startswith("Edited")
    assert second.outcome == "succeeded" and (second.created, second.updated) == (0, 1)
    assert second.unchanged < 5  # only what changed since the last run (and the overlap)
    assert "updated_since" in crm.queries(LIST_PATH)[3]
    assert full.outcome == "succeeded" and full.deleted == 2
    with tenant_scope(tenant):
        gone = Contact.objects.filter(source_connection=connection, deleted_at__isnull=False)
        assert sorted(gone.values_list("external_id", flat=True)) == ["c-5", "c-6"]
        stored = Connection.objects.get(pk=connection.pk).credentials
    assert stored["access_token"].startswith("cc-")  # the token is kept (encrypted) for next time


def test_the_api_creates_a_generic_rest_connection_and_never_returns_its_secrets(api, crm):
    response = api.post(
        "/api/v1/connections",
        {
            "provider": "generic_rest",
            "name": "In-house CRM",
            "credentials": crm.credentials(),
            "settings": crm.settings(),
        },
        format="json",
    )

    assert response.status_code == 201, response.json()
    assert "rest-client-secret" not in response.content.decode()


def test_the_api_names_the_bad_setting(api, crm):
    settings = crm.settings()
    settings["list"]["paging"]["style"] = "links"

    response = api.post(
        "/api/v1/connections",
        {
            "provider": "generic_rest",
            "name": "x",
            "credentials": crm.credentials(),
            "settings": settings,
        },
        format="json",
    )

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["field"] == "settings.list.paging.style"
    assert "'page', 'offset', 'cursor', 'next_link'" in error["message"]


def test_the_api_checks_secrets_against_the_stored_ones_on_change(api, tenant, crm):
    credentials = {"base_url": crm.url, "token": "t"}
    settings = crm.settings() | {"auth": {"kind": "bearer"}}
    created = api.post(
        "/api/v1/connections",
        {"provider": "generic_rest", "name": "x", "credentials": credentials, "settings": settings},
        format="json",
    ).json()

    switch = api.patch(
        f"/api/v1/connections/{created['id']}",
        {"settings": settings | {"auth": {"kind": "basic"}}},
        format="json",
    )
    fixed = api.patch(
        f"/api/v1/connections/{created['id']}",
        {
            "settings": settings | {"auth": {"kind": "basic"}},
            "credentials": {"username": "u", "password": "p"},
        },
        format="json",
    )

    assert switch.status_code == 400 and switch.json()["error"]["field"] == "credentials.username"
    assert fixed.status_code == 200, fixed.json()


def test_the_api_refuses_a_private_base_url_unless_allowed(api, crm, settings):
    settings.ALLOW_PRIVATE_URLS = False

    response = api.post(
        "/api/v1/connections",
        {
            "provider": "generic_rest",
            "name": "x",
            "credentials": {"base_url": "http://10.0.0.5/api"},
            "settings": crm.settings() | {"auth": {"kind": "none"}},
        },
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["error"]["field"] == "credentials"
