"""An ActiveCampaign connection end to end: added through the API, synced, then the full diff."""

import pytest

from connectors import sync
from connectors.models import Connection
from contacts.models import Contact
from core.scoping import tenant_scope
from fakes.activecampaign import FakeActiveCampaign

pytestmark = pytest.mark.django_db


@pytest.fixture
def fake(start_fake) -> FakeActiveCampaign:
    return start_fake(FakeActiveCampaign, contacts=230, retry_after=1)


def run(connection_id: int, tenant, kind="incremental"):
    with tenant_scope(tenant):
        return sync.connection_sync(connection_id=connection_id, kind=kind)


def add(api, fake, **credentials):
    body = {
        "provider": "activecampaign",
        "name": "Marketing",
        "credentials": {"api_url": fake.url, "api_token": "ac-fake-api-token", **credentials},
    }
    return api.post("/api/v1/connections", body, format="json")


def test_a_connection_syncs_every_contact_then_only_what_changed(api, tenant, fake):
    response = add(api, fake)
    assert response.status_code == 201, response.json()
    assert "ac-fake-api-token" not in response.content.decode()
    connection_id = response.json()["id"]

    first = run(connection_id, tenant)

    assert first.outcome == "succeeded", first.error
    assert (first.created, first.invalid_records) == (230, 0)
    with tenant_scope(tenant):
        cursor = Connection.objects.get(pk=connection_id).sync_cursor["contacts"]
        assert cursor["after"] is None and cursor["since_ms"] > 0
    fake.touch([12])

    second = run(connection_id, tenant)

    assert second.outcome == "succeeded", second.error
    assert (second.created, second.updated, second.unchanged) == (0, 1, 0)
    with tenant_scope(tenant):
        assert Contact.objects.get(external_id="12").last_name.startswith("Edited")


def test_the_full_diff_soft_deletes_a_contact_deleted_in_activecampaign(api, tenant, fake):
    connection_id = add(api, fake).json()["id"]
    run(connection_id, tenant)
    fake.delete([40])

    diff = run(connection_id, tenant, kind="full")

    assert diff.outcome == "succeeded", diff.error
    assert diff.deleted == 1
    with tenant_scope(tenant):
        assert Contact.objects.get(external_id="40").deleted_at is not None


def test_a_connection_needs_the_accounts_api_url_and_a_token(api, fake):
    response = add(api, fake, api_url="")

    assert response.status_code == 400
    assert "api_url" in str(response.json())


def test_a_refused_token_puts_the_connection_in_needs_attention(api, tenant, fake):
    connection_id = add(api, fake, api_token="revoked").json()["id"]

    run_ = run(connection_id, tenant)

    assert run_.outcome == "failed" and "403" in run_.error
    with tenant_scope(tenant):
        assert Connection.objects.get(pk=connection_id).status == "needs_attention"
