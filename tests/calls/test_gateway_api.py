"""GET/PATCH /api/v1/gateway: the tenant picks its telephony engine; credentials never shown."""

from django.db import connection

from calls.models import GatewayConfig
from core.scoping import tenant_scope

SID = "AC" + "0123456789abcdef" * 2
TWILIO = {"engine": "twilio", "credentials": {"account_sid": SID, "auth_token": "s3cret-token"}}


def test_a_tenant_runs_the_simulator_until_it_picks_an_engine(api):
    assert api.get("/api/v1/gateway").json() == {
        "engine": "simulator",
        "settings": {},
        "credentials_set": [],
        "updated_at": None,
    }


def test_twilio_is_set_with_its_credentials_which_are_never_shown_and_encrypted(api, tenant):
    response = api.patch(
        "/api/v1/gateway", {**TWILIO, "settings": {"caller_id": "+442079460000"}}, format="json"
    )

    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["engine"], body["credentials_set"]) == ("twilio", ["account_sid", "auth_token"])
    assert "s3cret-token" not in response.content.decode()
    assert "s3cret-token" not in api.get("/api/v1/gateway").content.decode()
    with connection.cursor() as cursor:
        cursor.execute("SELECT credentials_json FROM calls_gatewayconfig")
        assert "s3cret-token" not in cursor.fetchone()[0]


def test_settings_change_alone_and_the_credentials_stay(api, tenant):
    api.patch("/api/v1/gateway", TWILIO, format="json")

    response = api.patch("/api/v1/gateway", {"settings": {"record": True}}, format="json")

    assert response.status_code == 200, response.json()
    with tenant_scope(tenant):
        config = GatewayConfig.objects.get()
    assert config.credentials == TWILIO["credentials"] and config.settings == {"record": True}


def test_back_to_the_simulator_forgets_the_twilio_credentials(api, tenant):
    api.patch("/api/v1/gateway", TWILIO, format="json")

    response = api.patch("/api/v1/gateway", {"engine": "simulator"}, format="json")

    assert response.json()["credentials_set"] == []


def test_what_an_engine_cannot_use_is_a_400_naming_it(api, settings):
    settings.ALLOW_PRIVATE_URLS = False
    cases = [
        ({**TWILIO, "credentials": {"account_sid": "AC1", "auth_token": "x"}}, "credentials"),
        ({"engine": "twilio", "credentials": {"account_sid": SID}}, "credentials"),
        ({**TWILIO, "credentials": {**TWILIO["credentials"], "pin": "1"}}, "credentials"),
        ({**TWILIO, "settings": {"colour": "blue"}}, "settings"),
        ({**TWILIO, "settings": {"caller_id": "020 7946 0000"}}, "settings"),
        ({**TWILIO, "settings": {"agent_ring_seconds": 2}}, "settings"),
        ({**TWILIO, "settings": {"api_base_url": "http://169.254.169.254/"}}, "settings"),
        ({"engine": "asterisk-1"}, "engine"),
        (["twilio"], None),
    ]  # fmt: skip

    answers = [api.patch("/api/v1/gateway", body, format="json") for body, _ in cases]

    assert [a.status_code for a in answers] == [400] * len(cases)
    assert [a.json()["error"]["field"] for a in answers] == [field for _, field in cases]
    assert api.get("/api/v1/gateway").json()["engine"] == "simulator"
