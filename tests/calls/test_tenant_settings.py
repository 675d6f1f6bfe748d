"""Callback, signing and simulator settings on PATCH /api/v1/tenant and the secret endpoint."""

import pytest
from django.db import connection

from calls.selectors import live_signing_secrets

pytestmark = pytest.mark.django_db


def test_it_saves_the_callback_settings_and_never_shows_the_auth_value(api, tenant):
    response = api.patch(
        "/api/v1/tenant",
        {
            "callback_url": "https://crm.example.com/callbacks",
            "callback_auth_header": "Authorization",
            "callback_auth_value": "Bearer crm-s3cret",
            "default_disposition": "SALES",
        },
        format="json",
    )

    assert response.status_code == 200, response.json()
    assert "callback_auth_value" not in response.json()
    assert "crm-s3cret" not in api.get("/api/v1/tenant").content.decode()
    tenant.refresh_from_db()
    assert tenant.callback_settings.auth_value == "Bearer crm-s3cret"
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT auth_value FROM calls_callbacksettings WHERE tenant_id = %s", [tenant.pk]
        )
        assert "crm-s3cret" not in cursor.fetchone()[0]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",
        "http://localhost/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::ffff:127.0.0.1]/hook",
        "http://10.1.2.3/hook",
        "https://user:pw@crm.example.com/hook",
        "ftp://crm.example.com/hook",
        "not a url",
    ],
)
def test_it_refuses_callback_urls_we_must_not_call(api, settings, url):
    settings.ALLOW_PRIVATE_URLS = False

    response = api.patch("/api/v1/tenant", {"callback_url": url}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["field"] == "callback_url"


def test_private_callback_urls_are_allowed_only_by_the_operator_setting(api, settings):
    settings.ALLOW_PRIVATE_URLS = True

    response = api.patch(
        "/api/v1/tenant", {"callback_url": "http://127.0.0.1:9000/h"}, format="json"
    )

    assert response.status_code == 200


@pytest.mark.parametrize(
    "change,field",
    [
        ({"callback_auth_header": "Content-Type"}, "callback_auth_header"),
        ({"callback_auth_header": "webhook-signature"}, "callback_auth_header"),
        ({"callback_auth_header": "Bad Header:"}, "callback_auth_header"),
        ({"callback_auth_value": "a\r\nX-Evil: 1"}, "callback_auth_value"),
        ({"simulator_outcomes": [{"pattern": "+44*", "status": "MAYBE"}]}, "simulator_outcomes"),
        ({"simulator_outcomes": [{"pattern": "", "status": "BUSY"}]}, "simulator_outcomes"),
        ({"simulator_outcomes": {"pattern": "+44*"}}, "simulator_outcomes"),
        ({"simulator_ring_seconds": -1}, "simulator_ring_seconds"),
        ({"simulator_talk_seconds": 99999}, "simulator_talk_seconds"),
        ({"default_disposition": ""}, "default_disposition"),
    ],
)
def test_bad_settings_are_a_clear_400(api, tenant, change, field):
    response = api.patch("/api/v1/tenant", change, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["field"] == field
    tenant.telephony_settings.refresh_from_db()
    assert tenant.telephony_settings.simulator_outcomes == []


def test_it_saves_simulator_outcomes(api, tenant):
    outcomes = [{"pattern": "+447400*", "status": "BUSY"}]

    response = api.patch(
        "/api/v1/tenant",
        {"simulator_outcomes": outcomes, "simulator_ring_seconds": 0.2},
        format="json",
    )

    assert response.status_code == 200, response.json()
    simulator = tenant.telephony_settings
    simulator.refresh_from_db()
    assert (simulator.simulator_outcomes, simulator.simulator_ring_seconds) == (outcomes, 0.2)


def test_the_signing_secret_is_shown_once_and_the_old_one_signs_for_a_grace_period(api, tenant):
    first = api.post("/api/v1/tenant/signing-secret")
    second = api.post("/api/v1/tenant/signing-secret")

    assert first.status_code == second.status_code == 201
    old, new = first.json()["signing_secret"], second.json()["signing_secret"]
    assert old.startswith("whsec_") and new.startswith("whsec_") and old != new
    assert first.json()["previous_secret_expires_at"] is None
    assert second.json()["previous_secret_expires_at"].endswith("Z")
    tenant.refresh_from_db()
    assert live_signing_secrets(tenant) == [new, old]
    assert old not in api.get("/api/v1/tenant").content.decode()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT signing_secret FROM calls_callbacksettings WHERE tenant_id = %s", [tenant.pk]
        )
        assert new not in cursor.fetchone()[0]


def test_rotating_the_signing_secret_needs_the_tenant_scope(make_client, tenant):
    client = make_client(tenant, scopes=["calls:write"])

    assert client.post("/api/v1/tenant/signing-secret").status_code == 403
