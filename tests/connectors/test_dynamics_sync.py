"""A Dynamics 365 connection end to end on the fake: the API, the sync engine with delta links,
owners matched to agents, the full diff and the connection test."""

from urllib.parse import parse_qs, urlsplit

import pytest

from connectors import sync
from connectors.models import Connection, SyncRun
from connectors.services import connection_create, connection_test, connection_update
from contacts.models import Contact
from core.scoping import tenant_scope
from fakes.dynamics import FakeDynamics
from tenants.models import Agent

pytestmark = pytest.mark.django_db


@pytest.fixture
def dynamics(start_fake) -> FakeDynamics:
    return start_fake(FakeDynamics, contacts=60, accounts=6)


def connect(tenant, fake: FakeDynamics, **settings) -> Connection:
    with tenant_scope(tenant):
        return connection_create(
            tenant=tenant,
            provider="dynamics",
            name="Dynamics",
            credentials=fake.credentials(),
            settings={"objects": ["contacts", "accounts"], **settings},
        )


def run(connection, kind="incremental") -> SyncRun:
    with tenant_scope(connection.tenant_id):
        result = sync.connection_sync(connection_id=connection.pk, kind=kind)
    assert result is not None
    return result


def contacts_of(connection) -> dict[str, Contact]:
    with tenant_scope(connection.tenant_id):
        live = Contact.objects.filter(source_connection=connection, deleted_at__isnull=True)
        return {c.external_id: c for c in live}


def test_a_first_sync_brings_contacts_and_accounts_and_their_owners(tenant, dynamics):
    with tenant_scope(tenant):
        agent = Agent(tenant=tenant, crm_username="priya", email="Priya.Shah@example.com")
        agent.save()
    connection = connect(tenant, dynamics)

    result = run(connection)

    assert result.outcome == "succeeded", result.error
    assert (result.created, result.invalid_records) == (66, 0)
    stored = contacts_of(connection)
    assert sum(c.is_company for c in stored.values()) == 6
    priya = next(
        key
        for key, row in dynamics.rows["systemusers"].items()
        if row.columns["internalemailaddress"] == "priya.shah@example.com"
    )
    owned = {
        k for k, r in dynamics.rows["contacts"].items() if r.columns["_ownerid_value"] == priya
    }
    assert owned and {k for k, c in stored.items() if c.owner_id == agent.pk} >= owned
    connection.refresh_from_db()
    assert "$deltatoken=" in connection.sync_cursor["contacts"]["after"]
    assert connection.credentials["access_token"] in dynamics.access_tokens  # kept, encrypted


def test_the_next_run_reads_only_the_delta(tenant, dynamics):
    connection = connect(tenant, dynamics)
    run(connection)
    edited = dynamics.ids("contacts")[:2]
    dynamics.touch("contacts", edited)
    before = len(dynamics.requests)

    result = run(connection)

    assert (result.outcome, result.updated, result.created) == ("succeeded", 2, 0)
    listed = [q for _, p, q, _ in dynamics.requests[before:] if p.endswith("/contacts")]
    assert len(listed) == 1 and listed[0].get("$deltatoken")
    assert contacts_of(connection)[edited[0]].last_name.startswith("Edited")


def test_an_expired_delta_link_is_a_new_baseline_not_a_failure(tenant, dynamics):
    connection = connect(tenant, dynamics)
    run(connection)
    dynamics.expire_delta_links()

    result = run(connection)

    assert (result.outcome, result.created, result.unchanged) == ("succeeded", 0, 66)


def test_the_full_diff_deletes_rows_gone_from_dataverse(tenant, dynamics):
    connection = connect(tenant, dynamics)
    run(connection)
    gone = dynamics.ids("contacts")[:3]
    dynamics.delete("contacts", gone)
    run(connection)  # the delta's tombstones are skipped: the full diff deletes

    result = run(connection, kind="full")

    assert (result.outcome, result.deleted) == ("succeeded", 3)
    assert not set(gone) & set(contacts_of(connection))


def test_the_connection_test_reads_changes_since_now(tenant, dynamics):
    connection = connect(tenant, dynamics)

    with tenant_scope(tenant):
        message = connection_test(connection=connection)

    assert message.startswith("Microsoft Dynamics 365 answered: read its contacts")
    (query,) = [q for m, p, q, _ in dynamics.requests if p.endswith("/contacts")]
    assert query["$filter"][0].startswith("modifiedon ge ")


@pytest.mark.parametrize(
    ("credentials", "error"),
    [
        ({"tenant_id": ""}, "Give client_id and client_secret and org_url and tenant_id."),
        ({"org_url": "https://contoso.crm.dynamics.com/main.aspx"}, "org_url: the environment"),
        ({"tenant_id": "contoso onmicrosoft"}, "tenant_id: the Entra ID directory"),
        ({"secret": "x"}, "Unknown key 'secret'"),
    ],
)
def test_the_api_refuses_credentials_it_cannot_use(api, dynamics, credentials, error):
    body = {
        "provider": "dynamics",
        "name": "Dynamics",
        "credentials": {**dynamics.credentials(), **credentials},
        "settings": {},
    }

    response = api.post("/api/v1/connections", body, format="json")

    assert response.status_code == 400
    assert error in str(response.json())


def test_the_api_refuses_custom_fields_that_are_not_column_logical_names(api, dynamics):
    body = {
        "provider": "dynamics",
        "name": "Dynamics",
        "credentials": dynamics.credentials(),
        "settings": {"custom_fields": ["new_tier", "Contact.New Tier"]},
    }

    response = api.post("/api/v1/connections", body, format="json")

    assert response.status_code == 400
    assert "'Contact.New Tier' is not a column logical name" in str(response.json())


def delegated_connection(tenant, dynamics, objects: list[str]) -> Connection:
    """A connection that signs in as a user (OAuth authorization code), not yet authorized."""
    with tenant_scope(tenant):
        return connection_create(
            tenant=tenant,
            provider="dynamics",
            name="Dynamics as Priya",
            credentials=dynamics.credentials(auth="authorization_code"),
            settings={"objects": objects},
        )


def test_a_tenant_connects_dynamics_as_a_user_through_oauth_and_syncs(
    api, tenant, dynamics, settings
):
    settings.PUBLIC_BASE_URL = "https://callbridge.example.com"
    connection = delegated_connection(tenant, dynamics, ["contacts", "accounts"])
    authorize = api.post(f"/api/v1/connections/{connection.pk}/oauth").json()["authorize_url"]
    query = {k: v[0] for k, v in parse_qs(urlsplit(authorize).query).items()}
    assert authorize.startswith(f"{dynamics.url}/{dynamics.tenant_id}/oauth2/v2.0/authorize?")
    code = dynamics.authorize(query["redirect_uri"])  # the user signed in and consented

    response = api.get(
        "/api/v1/connections/oauth/callback", {"state": query["state"], "code": code}
    )

    assert response.status_code == 200, response.json()
    with tenant_scope(tenant):
        stored = Connection.objects.get(pk=connection.pk).credentials
    assert stored["refresh_token"] in dynamics.refresh_tokens
    assert run(connection).created == 66
    bearer = {h["Authorization"] for m, p, _, h in dynamics.requests if p.startswith("/api/")}
    assert bearer == {f"Bearer {stored['access_token']}"}

    dynamics.touch("contacts", dynamics.ids("contacts")[:2])
    with tenant_scope(tenant):  # the token expired: the next sync refreshes it first
        connection_update(
            connection=Connection.objects.get(pk=connection.pk), credentials={"expires_at": 0}
        )
    assert run(connection).updated == 2
    with tenant_scope(tenant):
        fresh = Connection.objects.get(pk=connection.pk).credentials
    assert fresh["refresh_token"] != stored["refresh_token"]  # the rotated one was kept
    assert fresh["refresh_token"] in dynamics.refresh_tokens
    grants = [parse_qs(form)["grant_type"][0] for form in dynamics.token_forms]
    assert grants == ["authorization_code", "refresh_token"]


def test_a_reused_code_leaves_the_connection_waiting(api, tenant, dynamics, settings):
    connection = delegated_connection(tenant, dynamics, ["contacts"])
    states, code = [], None
    for _ in range(2):
        authorize = api.post(f"/api/v1/connections/{connection.pk}/oauth").json()
        query = {k: v[0] for k, v in parse_qs(urlsplit(authorize["authorize_url"]).query).items()}
        states.append(query["state"])
        code = code or dynamics.authorize(query["redirect_uri"])
    first = api.get("/api/v1/connections/oauth/callback", {"state": states[0], "code": code})

    again = api.get("/api/v1/connections/oauth/callback", {"state": states[1], "code": code})

    assert first.status_code == 200 and again.status_code == 400
    assert "AADSTS54005" in str(again.json())
