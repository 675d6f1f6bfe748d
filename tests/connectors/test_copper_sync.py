"""A Copper connection end to end: added through the API, synced, incremental, full diff, owners."""

import pytest

from connectors import sync
from contacts.models import Contact
from core.scoping import tenant_scope
from fakes.copper import FakeCopper
from fakes.copper_data import ACCOUNT_ID

pytestmark = pytest.mark.django_db


@pytest.fixture
def copper(start_fake) -> FakeCopper:
    return start_fake(FakeCopper, people=240, companies=10)


def add_connection(api, fake: FakeCopper) -> int:
    response = api.post(
        "/api/v1/connections",
        {
            "provider": "copper",
            "name": "Sales Copper",
            "credentials": {
                "api_key": "cu-fake-api-key",
                "user_email": "priya.shah@example.com",
                "base_url": fake.url,
            },
            "settings": {"custom_fields": ["6"]},
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert "cu-fake-api-key" not in response.content.decode()
    return response.json()["id"]


def run(connection_id: int, tenant, kind="incremental"):
    with tenant_scope(tenant):
        return sync.connection_sync(connection_id=connection_id, kind=kind)


def test_a_copper_connection_syncs_people_and_companies_then_only_changes(api, tenant, copper):
    connection_id = add_connection(api, copper)

    first = run(connection_id, tenant)

    assert first.outcome == "succeeded", first.error
    assert (first.created, first.invalid_records) == (250, 0)
    with tenant_scope(tenant):
        stored = Contact.objects.filter(source_connection_id=connection_id)
        assert stored.filter(is_company=True, external_id__startswith="company:").count() == 10
        assert stored.get(external_id="2").crm_url == (
            f"https://app.copper.com/companies/{ACCOUNT_ID}/app#/people/2"
        )

    latest = max(p["date_modified"] for p in copper.records["people"].values())
    copper.touch("people", [12])
    second = run(connection_id, tenant)

    assert second.outcome == "succeeded", second.error
    assert (second.created, second.updated) == (0, 1)
    recent = [p for p in copper.records["people"].values() if p["date_modified"] >= latest - 30]
    assert copper.bodies("/people/search")[-1]["minimum_modified_date"] == latest - 30
    assert second.unchanged == len(recent) - 1 + 10  # the last 30 s again, and every company
    with tenant_scope(tenant):
        assert Contact.objects.get(external_id="12").last_name.startswith("Edited")


def test_the_full_diff_soft_deletes_a_person_deleted_in_copper(api, tenant, copper):
    connection_id = add_connection(api, copper)
    run(connection_id, tenant)
    copper.delete("people", [5])

    diff = run(connection_id, tenant, kind="full")

    assert (diff.outcome, diff.deleted) == ("succeeded", 1), diff.error
    with tenant_scope(tenant):
        assert Contact.objects.get(external_id="5").deleted_at is not None


def test_record_owners_become_owner_agents_by_their_copper_users_email(
    api, tenant, copper, make_agent
):
    agent = make_agent(tenant, email="Priya.Shah@example.com")  # user 137658; 159258 is no agent
    connection_id = add_connection(api, copper)

    run(connection_id, tenant)

    with tenant_scope(tenant):
        owners = dict(
            Contact.objects.filter(is_company=False).values_list("external_id", "owner_id")
        )
    expected = {
        str(i): agent.pk if p["assignee_id"] == 137658 else None
        for i, p in copper.records["people"].items()
    }
    assert owners == expected and set(expected.values()) == {agent.pk, None}
    assert len(copper.bodies("/users/search")) == 1  # read once a run


def test_a_copper_connection_needs_a_key_with_its_owner_or_an_oauth_app(api):
    response = api.post(
        "/api/v1/connections",
        {"provider": "copper", "name": "Copper", "credentials": {"api_key": "k"}},
        format="json",
    )

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["field"] == "credentials" and "user_email" in error["message"]
