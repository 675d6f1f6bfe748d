"""CRM connections page: connect (OAuth and credentials), test, sync, call logging, disconnect."""

import time
from urllib.parse import parse_qs, urlsplit

import pytest

from connectors import services, sync
from connectors.models import Connection
from contacts.models import Contact
from core.scoping import tenant_scope
from fakes.hubspot import Fault
from fakes.zendesk import FakeZendesk
from tenants.models import AuditEntry
from tests.dashboard.helpers import form_data

pytestmark = pytest.mark.django_db

ISOLATED_ROUTES = {
    "connections/new/<str:provider>/<str:mode>",
    "connections/oauth/callback",
    "connections/<int:pk>/",
    "connections/<int:pk>/call-logging",
    "connections/<int:pk>/credentials",
    "connections/<int:pk>/authorize",
    "connections/<int:pk>/test",
    "connections/<int:pk>/sync",
    "connections/<int:pk>/delete",
}
PK_ROUTES = sorted(r for r in ISOLATED_ROUTES if "<int:pk>" in r)


@pytest.fixture
def connection(tenant, hubspot) -> Connection:
    with tenant_scope(tenant):
        return services.connection_create(
            tenant=tenant,
            provider="hubspot",
            name="Acme sales CRM",
            credentials={
                "private_app_token": next(iter(hubspot.private_app_tokens)),
                "base_url": hubspot.url,
            },
            settings={"objects": ["contacts", "companies"]},
        )


def stored(connection: Connection) -> Connection:
    with tenant_scope(connection.tenant_id):
        return Connection.objects.get(pk=connection.pk)


def test_an_empty_tenant_is_told_what_a_connection_is_for(admin_client):
    response = admin_client.get("/app/connections/")

    assert response.status_code == 200
    assert "No CRM connected yet" in response.text
    for label in (
        "Connect HubSpot",
        "Connect Salesforce",
        "Connect Pipedrive",
        "Connect Zoho",
        "Connect Zendesk Support",
    ):
        assert label in response.text
    assert "/app/connections/new/generic_rest/key" in response.text
    assert "/app/connections/new/zendesk/key" in response.text


def test_the_list_shows_status_last_sync_and_error_but_no_credential(admin_client, connection):
    with tenant_scope(connection.tenant_id):
        sync.connection_sync(connection_id=connection.pk, kind="incremental")
        Connection.objects.filter(pk=connection.pk).update(
            status="needs_attention", last_error="HubSpot refused the token (401)"
        )

    page = admin_client.get("/app/connections/").text

    assert "Needs attention" in page and "HubSpot refused the token (401)" in page
    assert "succeeded" in page
    token = connection.credentials["private_app_token"]
    assert (
        token not in page
        and token not in admin_client.get(f"/app/connections/{connection.pk}/").text
    )


def test_a_viewer_sees_no_write_control_and_is_refused_writes(viewer_client, connection):
    index = viewer_client.get("/app/connections/").text
    detail = viewer_client.get(f"/app/connections/{connection.pk}/").text

    assert "Add a connection" not in index and "Connect HubSpot" not in index
    main = detail.split('id="main"', 1)[1]
    assert 'method="post"' not in main and "Disconnect…" not in main
    for route in ("sync", "test", "call-logging", "credentials", "authorize", "delete"):
        assert viewer_client.post(f"/app/connections/{connection.pk}/{route}").status_code == 403
    assert viewer_client.get("/app/connections/new/hubspot/key").status_code == 403
    assert stored(connection).pk


@pytest.mark.parametrize("route", PK_ROUTES)
def test_another_tenants_connection_is_not_found(other_client, connection, route):
    url = "/app/" + route.replace("<int:pk>", str(connection.pk))

    assert other_client.get(url).status_code in (404, 405)
    assert other_client.post(url).status_code == 404
    listed = other_client.get("/app/connections/").text
    assert "No CRM connected yet" in listed and "Acme sales CRM" not in listed
    assert stored(connection).status == "active"


def test_another_tenants_oauth_state_is_refused(other_client, tenant, hubspot, settings):
    settings.PUBLIC_BASE_URL = "https://callbridge.example.com"
    with tenant_scope(tenant):
        mine = services.connection_create(
            tenant=tenant,
            provider="hubspot",
            name="Mine",
            credentials={**OAUTH_APP, "base_url": hubspot.url},
        )
        state = state_of(services.oauth_start(connection=mine))
    code = hubspot.authorize("https://callbridge.example.com/api/v1/connections/oauth/callback")

    response = other_client.get(
        "/app/connections/oauth/callback", {"state": state, "code": code}, follow=True
    )

    assert "another tenant" in response.text
    assert "access_token" not in stored(mine).credentials


def test_a_key_connection_is_created_once_from_the_registrys_fields(admin_client, hubspot, tenant):
    page = admin_client.get("/app/connections/new/hubspot/key")
    assert 'name="private_app_token"' in page.text and 'type="password"' in page.text
    assert 'name="client_secret"' not in page.text  # that is the OAuth way
    data = form_data(
        page,
        name="Sales HubSpot",
        private_app_token=next(iter(hubspot.private_app_tokens)),
        base_url=hubspot.url,
    )

    first = admin_client.post("/app/connections/new/hubspot/key", data)
    again = admin_client.post("/app/connections/new/hubspot/key", data)

    with tenant_scope(tenant):
        connection = Connection.objects.get()
        audit = AuditEntry.objects.get(action="connection.create")
    assert first.status_code == 302 and first.url == f"/app/connections/{connection.pk}/"
    assert again.status_code == 200 and "already submitted" in again.text
    assert connection.credentials["private_app_token"] == data["private_app_token"]
    assert audit.changes == {"provider": [None, "hubspot"], "name": [None, "Sales HubSpot"]}


@pytest.mark.parametrize(
    ("provider", "expected"),
    [
        ("zendesk", ["subdomain", "email", "api_token", "access_token", "base_url"]),
        ("generic_rest", ["base_url", "username", "password", "token", "api_key", "client_id"]),
        ("pipedrive", ["api_token", "api_domain", "company_domain"]),
        ("activecampaign", ["api_url", "api_token"]),
    ],
)
def test_each_crm_asks_for_the_credentials_its_connector_declares(admin_client, provider, expected):
    page = admin_client.get(f"/app/connections/new/{provider}/key").text

    for key in expected:
        assert f'name="{key}"' in page
    assert 'name="refresh_token"' not in page and 'name="expires_at"' not in page


def test_unknown_crms_and_ways_are_not_found(admin_client):
    assert admin_client.get("/app/connections/new/acme/key").status_code == 404
    assert admin_client.get("/app/connections/new/activecampaign/oauth").status_code == 404
    assert admin_client.get("/app/connections/new/salesforce/key").status_code == 404


def test_bad_input_is_a_form_error_beside_the_field(admin_client, tenant, settings):
    settings.ALLOW_PRIVATE_URLS = False
    page = admin_client.get("/app/connections/new/hubspot/key")

    missing = admin_client.post("/app/connections/new/hubspot/key", form_data(page, name="X"))
    bad_json = admin_client.post(
        "/app/connections/new/hubspot/key",
        form_data(page, name="X", private_app_token="pat", settings="{nope"),
    )
    private_url = admin_client.post(
        "/app/connections/new/hubspot/key",
        form_data(page, name="X", private_app_token="pat", base_url="http://127.0.0.1:9/"),
    )
    bad_objects = admin_client.post(
        "/app/connections/new/hubspot/key",
        form_data(page, name="X", private_app_token="pat", settings='{"objects": ["deals"]}'),
    )

    assert missing.status_code == 200
    assert "Give private_app_token or client_id and client_secret" in missing.text
    assert bad_json.status_code == 200 and "Not valid JSON" in bad_json.text
    assert private_url.status_code == 200 and 'id="id_base_url_error"' in private_url.text
    assert bad_objects.status_code == 200
    assert "hubspot syncs companies, contacts" in bad_objects.text
    with tenant_scope(tenant):
        assert not Connection.objects.exists()


@pytest.fixture
def dynamics(settings):
    from fakes.dynamics import FakeDynamics

    settings.ALLOW_PRIVATE_URLS = True
    fake = FakeDynamics(contacts=3)
    fake.start()
    yield fake
    fake.stop()


OAUTH_APP = {"client_id": "fake-client-id", "client_secret": "fake-client-secret"}


def state_of(authorize_url: str) -> str:
    return parse_qs(urlsplit(authorize_url).query)["state"][0]


def test_oauth_sends_the_admin_to_the_crm_and_its_callback_lands_on_the_dashboard(
    admin_client, hubspot, tenant, settings
):
    settings.PUBLIC_BASE_URL = "https://callbridge.example.com"
    page = admin_client.get("/app/connections/new/hubspot/oauth")
    assert "https://callbridge.example.com/app/connections/oauth/callback" in page.text
    data = form_data(
        page,
        name="HubSpot",
        **OAUTH_APP,
        authorize_url=hubspot.url + "/oauth/authorize",
        base_url=hubspot.url,
    )

    to_crm = admin_client.post("/app/connections/new/hubspot/oauth", data)

    assert to_crm.status_code == 302 and to_crm.url.startswith(hubspot.url + "/oauth/authorize?")
    query = {k: v[0] for k, v in parse_qs(urlsplit(to_crm.url).query).items()}
    assert query["redirect_uri"] == "https://callbridge.example.com/app/connections/oauth/callback"
    with tenant_scope(tenant):
        connection = Connection.objects.get()
    assert "Waiting for authorization" in admin_client.get("/app/connections/").text
    code = hubspot.authorize(query["redirect_uri"])

    back = admin_client.get(
        "/app/connections/oauth/callback", {"state": query["state"], "code": code}
    )

    assert back.status_code == 302 and back.url == f"/app/connections/{connection.pk}/"
    assert stored(connection).credentials["access_token"].startswith("oauth-")
    assert "is connected" in admin_client.get(back.url).text
    again = admin_client.get(
        "/app/connections/oauth/callback", {"state": query["state"], "code": code}, follow=True
    )
    assert "used already" in again.text


@pytest.fixture
def zendesk(settings):
    settings.ALLOW_PRIVATE_URLS = True
    fake = FakeZendesk()
    fake.start()
    yield fake
    fake.stop()


def test_zendesk_connects_through_oauth_on_its_subdomain(admin_client, zendesk, tenant, settings):
    settings.PUBLIC_BASE_URL = "https://callbridge.example.com"
    page = admin_client.get("/app/connections/new/zendesk/oauth")
    assert page.status_code == 200 and 'name="subdomain"' in page.text
    assert 'name="api_token"' not in page.text and 'name="access_token"' not in page.text
    data = form_data(page, name="Support", **OAUTH_APP, subdomain="acme", base_url=zendesk.url)

    to_crm = admin_client.post("/app/connections/new/zendesk/oauth", data)

    assert to_crm.status_code == 302, to_crm.content
    assert to_crm.url.startswith(zendesk.url + "/oauth/authorizations/new?")
    query = {k: v[0] for k, v in parse_qs(urlsplit(to_crm.url).query).items()}
    assert query["scope"] == "read write" and query["response_type"] == "code"
    with tenant_scope(tenant):
        connection = Connection.objects.get()
    assert "Waiting for authorization" in admin_client.get("/app/connections/").text

    back = admin_client.get(
        "/app/connections/oauth/callback",
        {"state": query["state"], "code": zendesk.authorize(query["redirect_uri"])},
    )

    assert back.status_code == 302 and back.url == f"/app/connections/{connection.pk}/"
    assert stored(connection).credentials["access_token"] in zendesk.oauth_tokens
    assert "is connected" in admin_client.get(back.url).text
    assert "Waiting for authorization" not in admin_client.get("/app/connections/").text


def test_a_refused_consent_says_so(admin_client):
    response = admin_client.get(
        "/app/connections/oauth/callback", {"state": "x", "error": "access_denied"}, follow=True
    )

    assert response.status_code == 200 and "did not grant access (access_denied)" in response.text


def test_call_logging_settings_use_the_apis_rules(admin_client, connection):
    url = f"/app/connections/{connection.pk}/call-logging"
    page = admin_client.get(f"/app/connections/{connection.pk}/")

    bad = admin_client.post(url, form_data(page, enabled="on", delay_minutes="2000"))
    good = admin_client.post(
        url, form_data(page, enabled="on", delay_minutes="10", missed_call_task="on")
    )

    assert bad.status_code == 200 and 'id="id_delay_minutes_error"' in bad.text
    assert good.status_code == 302
    saved = stored(connection).settings
    assert saved["call_logging"] == {
        "enabled": True,
        "delay_minutes": 10,
        "missed_call_task": True,
        "create_unknown_contacts": False,
    }
    assert saved["objects"] == ["contacts", "companies"]  # the rest of the settings stay
    with tenant_scope(connection.tenant_id):
        entry = AuditEntry.objects.get(action="connection.call_logging")
    assert entry.changes["enabled"] == [None, True]


def test_credentials_are_replaced_write_only(admin_client, connection, hubspot):
    page = admin_client.get(f"/app/connections/{connection.pk}/")
    assert connection.credentials["private_app_token"] not in page.text
    url = f"/app/connections/{connection.pk}/credentials"

    nothing = admin_client.post(url, form_data(page, url))
    replaced = admin_client.post(url, form_data(page, url, private_app_token="pat-new"))

    assert nothing.status_code == 200 and "Type at least one new value" in nothing.text
    assert replaced.status_code == 302
    credentials = stored(connection).credentials
    assert credentials["private_app_token"] == "pat-new" and credentials["base_url"] == hubspot.url
    with tenant_scope(connection.tenant_id):
        entry = AuditEntry.objects.get(action="connection.credentials")
    assert "pat-new" not in str(entry.changes)


def test_the_connection_test_reports_success_or_the_crms_refusal(admin_client, connection):
    ok = admin_client.post(f"/app/connections/{connection.pk}/test", follow=True)
    with tenant_scope(connection.tenant_id):
        services.connection_update(connection=connection, credentials={"private_app_token": "bad"})
    refused = admin_client.post(f"/app/connections/{connection.pk}/test", follow=True)

    assert "HubSpot answered: read its contacts" in ok.text
    assert "The test failed" in refused.text and "401" in refused.text


def test_the_connection_test_gives_up_after_its_time_budget(admin_client, connection, hubspot):
    hubspot.inject(Fault(kind="slow", times=5, seconds=20))
    started = time.monotonic()

    response = admin_client.post(f"/app/connections/{connection.pk}/test", follow=True)

    assert time.monotonic() - started < services.TEST_SECONDS + 3
    assert "The test failed" in response.text


def test_sync_now_and_full_diff_are_queued(
    admin_client, connection, django_capture_on_commit_callbacks
):
    url = f"/app/connections/{connection.pk}/sync"
    with django_capture_on_commit_callbacks() as queued:
        incremental = admin_client.post(url, {"kind": "incremental"})
        full = admin_client.post(url, {"kind": "full"})
    bad = admin_client.post(url, {"kind": "everything"})

    assert incremental.status_code == full.status_code == bad.status_code == 302
    assert len(queued) == 2
    assert "Unknown sync kind" in admin_client.get(bad.url).text
    with tenant_scope(connection.tenant_id):
        kinds = [e.changes["kind"][1] for e in AuditEntry.objects.filter(action="connection.sync")]
    assert sorted(kinds) == ["full", "incremental"]


def test_sync_runs_show_their_counts_and_errors(admin_client, connection, hubspot):
    with tenant_scope(connection.tenant_id):
        sync.connection_sync(connection_id=connection.pk, kind="incremental")
    hubspot.inject(Fault(kind="status", times=50, status=500))
    with tenant_scope(connection.tenant_id):
        sync.connection_sync(connection_id=connection.pk, kind="full")

    page = admin_client.get(f"/app/connections/{connection.pk}/").text

    assert '<td class="num">270</td>' in page  # 250 contacts + 20 companies created
    assert "answered 500" in page


def test_disconnect_asks_first_then_removes_the_synced_contacts(admin_client, connection):
    with tenant_scope(connection.tenant_id):
        sync.connection_sync(connection_id=connection.pk, kind="incremental")

    confirm = admin_client.get(f"/app/connections/{connection.pk}/delete")
    gone = admin_client.post(f"/app/connections/{connection.pk}/delete")

    assert "270 contacts" in confirm.text and "Disconnect" in confirm.text
    assert gone.status_code == 302 and gone.url == "/app/connections/"
    with tenant_scope(connection.tenant_id):
        assert not Connection.objects.exists() and not Contact.objects.exists()
        assert AuditEntry.objects.filter(action="connection.delete").count() == 1
    assert admin_client.post(f"/app/connections/{connection.pk}/delete").status_code == 404


def test_a_crm_that_comes_back_with_a_form_post_is_sent_on_as_a_get(admin_client, client):
    """Copper posts its OAuth callback; the browser's cookie comes only with a top-level GET."""
    posted = client.post(
        "/app/connections/oauth/callback", {"state": "s1", "code": "c1", "extra": "x"}
    )
    refused = admin_client.post("/app/connections/oauth/callback", {"state": "x"}, follow=True)

    assert posted.status_code == 303
    assert posted["Location"] == "/app/connections/oauth/callback?state=s1&code=c1"
    assert "did not grant access (no code)" in refused.text


def test_dynamics_offers_oauth_and_client_credentials_and_shows_each_its_own_way(
    admin_client, tenant, dynamics, settings
):
    settings.PUBLIC_BASE_URL = "https://callbridge.example.com"
    index = admin_client.get("/app/connections/").text
    assert "/app/connections/new/dynamics/oauth" in index
    assert "/app/connections/new/dynamics/key" in index
    key_page = admin_client.get("/app/connections/new/dynamics/key")
    for key in ("org_url", "tenant_id", "client_id", "client_secret", "authority_url"):
        assert f'name="{key}"' in key_page.text
    assert 'name="auth"' not in key_page.text and 'name="refresh_token"' not in key_page.text
    app = dynamics.credentials()
    keyed = admin_client.post(
        "/app/connections/new/dynamics/key", form_data(key_page, name="As the app", **app)
    )
    oauth_page = admin_client.get("/app/connections/new/dynamics/oauth")
    assert 'name="tenant_id"' in oauth_page.text and 'name="auth"' not in oauth_page.text

    to_entra = admin_client.post(
        "/app/connections/new/dynamics/oauth", form_data(oauth_page, name="As a user", **app)
    )

    assert keyed.status_code == 302 and to_entra.status_code == 302
    assert to_entra.url.startswith(f"{dynamics.url}/{dynamics.tenant_id}/oauth2/v2.0/authorize?")
    with tenant_scope(tenant):
        as_app = Connection.objects.get(name="As the app")
        as_user = Connection.objects.get(name="As a user")
    assert "auth" not in as_app.credentials
    assert as_user.credentials["auth"] == "authorization_code"
    app_page = admin_client.get(f"/app/connections/{as_app.pk}/").text
    user_page = admin_client.get(f"/app/connections/{as_user.pk}/").text
    assert "Waiting for authorization" not in app_page and "Waiting for authorization" in user_page
    assert admin_client.post(f"/app/connections/{as_app.pk}/authorize").status_code == 404
    query = {k: v[0] for k, v in parse_qs(urlsplit(to_entra.url).query).items()}
    code = dynamics.authorize(query["redirect_uri"])

    back = admin_client.get(
        "/app/connections/oauth/callback", {"state": query["state"], "code": code}
    )

    assert back.status_code == 302 and back.url == f"/app/connections/{as_user.pk}/"
    assert stored(as_user).credentials["refresh_token"] in dynamics.refresh_tokens
    assert "Waiting for authorization" not in admin_client.get(back.url).text
