"""OAuth authorization-code flow against the fake HubSpot: state checked, tokens stored, synced."""

import time
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core import signing

from connectors import sync
from connectors.models import Connection
from connectors.services import connector_for_connection
from contacts.models import Contact
from core.scoping import tenant_scope
from fakes.hubspot import Fault
from fakes.zendesk import FakeZendesk

pytestmark = pytest.mark.django_db

REDIRECT_URI = "https://callbridge.example.com/api/v1/connections/oauth/callback"


@pytest.fixture
def oauth_connection(tenant, hubspot, make_connection, settings) -> Connection:
    settings.PUBLIC_BASE_URL = "https://callbridge.example.com"
    credentials = {
        "client_id": "fake-client-id",
        "client_secret": "fake-client-secret",
        "authorize_url": hubspot.url + "/oauth/authorize",
    }
    return make_connection(tenant, hubspot, credentials=credentials)


def start(api, connection) -> dict[str, str]:
    response = api.post(f"/api/v1/connections/{connection.pk}/oauth")
    assert response.status_code == 200, response.json()
    url = urlsplit(response.json()["authorize_url"])
    return {k: v[0] for k, v in parse_qs(url.query).items()}


def test_a_tenant_connects_hubspot_and_the_tokens_sync_its_contacts(api, hubspot, oauth_connection):
    query = start(api, oauth_connection)
    assert query["client_id"] == "fake-client-id" and query["redirect_uri"] == REDIRECT_URI
    assert "crm.objects.contacts.read" in query["scope"]
    code = hubspot.authorize(query["redirect_uri"])  # the user clicked "Connect app"

    response = api.get(
        "/api/v1/connections/oauth/callback", {"state": query["state"], "code": code}
    )

    assert response.status_code == 200, response.json()
    assert response.json() == {"connection": oauth_connection.pk, "status": "active"}
    with tenant_scope(oauth_connection.tenant_id):
        stored = Connection.objects.get(pk=oauth_connection.pk)
        assert stored.credentials["access_token"].startswith("oauth-")
        assert stored.credentials["hub_id"] == "4212"
        run = sync.connection_sync(connection_id=stored.pk, kind="incremental")
        assert run.outcome == "succeeded" and run.created == 270
        assert Contact.objects.filter(
            crm_url__startswith="https://app.hubspot.com/contacts/4212/"
        ).exists()


def test_a_state_works_once(api, hubspot, oauth_connection):
    query = start(api, oauth_connection)
    code = hubspot.authorize(query["redirect_uri"])
    api.get("/api/v1/connections/oauth/callback", {"state": query["state"], "code": code})

    again = api.get("/api/v1/connections/oauth/callback", {"state": query["state"], "code": code})

    assert again.status_code == 400 and again.json()["error"]["field"] == "state"


def test_a_forged_state_is_refused(client, other_tenant, oauth_connection):
    forged = signing.dumps(
        {"tenant": other_tenant.pk, "connection": oauth_connection.pk, "nonce": "x"}
    )

    response = client.get("/api/v1/connections/oauth/callback", {"state": forged, "code": "c"})

    assert response.status_code == 400


def test_a_refused_consent_or_a_bad_code_leaves_the_tokens_alone(api, hubspot, oauth_connection):
    denied = api.get(
        "/api/v1/connections/oauth/callback",
        {"state": start(api, oauth_connection)["state"], "error": "access_denied"},
    )
    bad_code = api.get(
        "/api/v1/connections/oauth/callback",
        {"state": start(api, oauth_connection)["state"], "code": "code-made-up"},
    )

    assert denied.status_code == 400 and bad_code.status_code == 400
    with tenant_scope(oauth_connection.tenant_id):
        stored = Connection.objects.get(pk=oauth_connection.pk)
    assert "access_token" not in stored.credentials
    assert stored.status == "needs_attention" and "Connecting HubSpot failed" in stored.last_error


def test_a_token_endpoint_that_stalls_holds_the_callback_no_longer_than_its_budget(
    api, hubspot, oauth_connection, settings
):
    settings.WEB_REQUEST_OUTBOUND_SECONDS = 2  # 10 s by default: the same rule, quicker
    hubspot.inject(Fault("slow", times=10, path_contains="/oauth/v1/token", seconds=30))
    query = start(api, oauth_connection)
    code = hubspot.authorize(query["redirect_uri"])

    started = time.monotonic()
    response = api.get(
        "/api/v1/connections/oauth/callback", {"state": query["state"], "code": code}
    )

    assert time.monotonic() - started < 3.5
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "code"


@pytest.mark.django_db
def test_the_api_callback_takes_a_form_post_as_it_takes_a_get(client):
    """Copper's consent page comes back with a POST; a bad state is refused the same way."""
    response = client.post("/api/v1/connections/oauth/callback", {"state": "forged", "code": "c1"})

    assert response.status_code == 400 and "state" in str(response.json()).lower()


# ----- Zendesk Support: the same flow on the account's own host, a token that does not expire
@pytest.fixture
def zendesk(start_fake) -> FakeZendesk:
    fake = start_fake(FakeZendesk)
    fake.add_user("Ada Lovelace", phone="+44 7400 123456")
    fake.advance(61)  # the export withholds the last minute
    return fake


@pytest.fixture
def zendesk_connection(api, tenant, zendesk, settings) -> Connection:
    settings.PUBLIC_BASE_URL = "https://callbridge.example.com"
    created = api.post(
        "/api/v1/connections",
        {"provider": "zendesk", "name": "Support", "credentials": zendesk.oauth_credentials()},
        format="json",
    )
    assert created.status_code == 201, created.json()
    with tenant_scope(tenant):
        return Connection.objects.get(pk=created.json()["id"])


def test_a_tenant_connects_zendesk_and_the_bearer_token_syncs_and_finds(
    api, zendesk, zendesk_connection
):
    query = start(api, zendesk_connection)
    assert query["scope"] == "read write" and query["redirect_uri"] == REDIRECT_URI
    code = zendesk.authorize(query["redirect_uri"])

    response = api.get(
        "/api/v1/connections/oauth/callback", {"state": query["state"], "code": code}
    )

    assert response.status_code == 200, response.json()
    assert response.json() == {"connection": zendesk_connection.pk, "status": "active"}
    with tenant_scope(zendesk_connection.tenant_id):
        stored = Connection.objects.get(pk=zendesk_connection.pk)
        assert stored.credentials["access_token"] in zendesk.oauth_tokens
        run = sync.connection_sync(connection_id=stored.pk, kind="incremental")
        assert (run.outcome, run.created) == ("succeeded", 1), run.error
        found = connector_for_connection(stored).find_by_phone("+447400123456")
    assert [(r.first_name, r.last_name) for r in found] == [("Ada", "Lovelace")]
    assert "/oauth/tokens" in zendesk.paths("POST")


def test_a_reused_or_made_up_zendesk_code_leaves_the_connection_needing_attention(
    api, zendesk, zendesk_connection
):
    query = start(api, zendesk_connection)
    code = zendesk.authorize(query["redirect_uri"])
    api.get("/api/v1/connections/oauth/callback", {"state": query["state"], "code": code})
    with tenant_scope(zendesk_connection.tenant_id):
        token = Connection.objects.get(pk=zendesk_connection.pk).credentials["access_token"]

    reused = api.get(
        "/api/v1/connections/oauth/callback",
        {"state": start(api, zendesk_connection)["state"], "code": code},
    )
    made_up = api.get(
        "/api/v1/connections/oauth/callback",
        {"state": start(api, zendesk_connection)["state"], "code": "code-made-up"},
    )

    assert reused.status_code == 400 and made_up.status_code == 400
    with tenant_scope(zendesk_connection.tenant_id):
        stored = Connection.objects.get(pk=zendesk_connection.pk)
    assert stored.credentials["access_token"] == token  # the granted token is kept
    assert stored.status == "needs_attention"
    assert "Connecting Zendesk Support failed (400: invalid_grant" in stored.last_error
