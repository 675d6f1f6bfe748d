"""A SugarCRM connection end to end: added through the API, synced, incremental, full diff."""

import pytest

from connectors import sync
from connectors.models import Connection
from contacts.models import Contact
from core.scoping import tenant_scope
from fakes.sugarcrm import FakeSugarCrm
from fakes.sugarcrm_data import USERS

pytestmark = pytest.mark.django_db


@pytest.fixture
def sugar(start_fake) -> FakeSugarCrm:
    return start_fake(FakeSugarCrm, contacts=120, accounts=10, leads=5)


def add(api, fake: FakeSugarCrm, **credentials) -> dict:
    username, password = next(iter(fake.logins.items()))
    return api.post(
        "/api/v1/connections",
        {
            "provider": "sugarcrm",
            "name": "Sugar",
            "credentials": {
                "instance_url": fake.url,
                "username": username,
                "password": password,
                **credentials,
            },
            "settings": {
                "objects": ["contacts", "accounts", "leads"],
                "custom_fields": ["Contacts.lead_source"],
            },
        },
        format="json",
    )


def run(connection_id: int, tenant, kind="incremental"):
    with tenant_scope(tenant):
        return sync.connection_sync(connection_id=connection_id, kind=kind)


def test_a_sugar_connection_syncs_contacts_accounts_and_leads_then_only_changes(api, tenant, sugar):
    response = add(api, sugar)
    assert response.status_code == 201, response.json()
    assert "s3cret" not in response.content.decode()
    connection_id = response.json()["id"]

    first = run(connection_id, tenant)

    assert first.outcome == "succeeded", first.error
    assert (first.created, first.updated, first.invalid_records) == (135, 0, 0)
    with tenant_scope(tenant):
        stored = Contact.objects.filter(source_connection_id=connection_id)
        assert stored.filter(is_company=True, external_id__startswith="account:").count() == 10
        assert stored.filter(external_id__startswith="lead:").count() == 5
        some = stored.get(external_id=sugar.ordered_ids("Contacts")[0])
        assert some.crm_url == f"{sugar.url}/#Contacts/{some.external_id}"
    edited = sugar.ordered_ids("Contacts")[:2]
    sugar.touch("Contacts", edited)

    second = run(connection_id, tenant)

    assert second.outcome == "succeeded", second.error
    assert (second.created, second.updated) == (0, 2)
    with tenant_scope(tenant):
        names = set(
            Contact.objects.filter(external_id__in=edited).values_list("last_name", flat=True)
        )
    assert all(name.startswith("Edited ") for name in names)


def test_the_full_diff_soft_deletes_a_contact_deleted_in_sugar(api, tenant, sugar):
    connection_id = add(api, sugar).json()["id"]
    run(connection_id, tenant)
    gone = sugar.ordered_ids("Contacts")[5]
    sugar.delete("Contacts", [gone])

    diff = run(connection_id, tenant, kind="full")

    assert diff.outcome == "succeeded", diff.error
    assert diff.deleted == 1
    with tenant_scope(tenant):
        assert Contact.objects.get(external_id=gone).deleted_at is not None


def test_record_owners_become_owner_agents_by_their_sugar_users_email(
    api, tenant, sugar, make_agent
):
    agent = make_agent(tenant, email="priya.shah@example.com")
    connection_id = add(api, sugar).json()["id"]

    run(connection_id, tenant)

    with tenant_scope(tenant):
        owners = dict(
            Contact.objects.filter(is_company=False).values_list("external_id", "owner_id")
        )
    expected = {
        record_id: agent.pk if record.fields["assigned_user_id"] == USERS[1][0] else None
        for record_id, record in sugar.records["Contacts"].items()
    }
    assert {k: v for k, v in owners.items() if k in expected} == expected
    assert set(expected.values()) == {agent.pk, None}
    assert sugar.paths().count("/rest/v11/Users/filter") == 1


def test_a_connection_needs_the_instance_its_user_and_password(api, sugar):
    response = api.post(
        "/api/v1/connections",
        {"provider": "sugarcrm", "name": "x", "credentials": {"instance_url": sugar.url}},
        format="json",
    )

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["field"] == "credentials" and "username" in error["message"]


def test_a_wrong_password_puts_the_connection_in_needs_attention(api, tenant, sugar):
    connection_id = add(api, sugar, password="wrong").json()["id"]

    result = run(connection_id, tenant)

    assert result.outcome == "failed" and "need_login" in result.error
    with tenant_scope(tenant):
        connection = Connection.objects.get(pk=connection_id)
    assert connection.status == "needs_attention"
