"""Telephony: the engine (the API's rules, credentials write-only) and the call page's frames."""

import pytest

from calls.models import GatewayConfig
from core.scoping import tenant_scope
from tenants.models import AuditEntry

pytestmark = pytest.mark.django_db

ISOLATED_ROUTES = {"telephony/", "telephony/engine", "telephony/frames"}
SID = "AC" + "0123456789abcdef" * 2


def token(client, form: str) -> str:
    return client.get("/app/telephony/").context[form]["submit_token"].value()


def save_engine(client, **fields):
    data = {"engine": "twilio", "agent_ring_seconds": "20", **fields}
    data["submit_token"] = token(client, "engine_form")
    return client.post("/app/telephony/engine", data, follow=True)


def save_origins(client, origins: str):
    data = {"origins": origins, "submit_token": token(client, "frames_form")}
    return client.post("/app/telephony/frames", data, follow=True)


def test_an_admin_switches_to_twilio_and_the_token_stays_write_only(admin_client, tenant):
    response = save_engine(
        admin_client, account_sid=SID, auth_token="s3cret-token", caller_id="+442079460000"
    )
    kept = save_engine(admin_client, account_sid=SID, record="on")

    assert "Calls now go through Twilio." in response.text
    assert "s3cret-token" not in response.text + kept.text
    assert "(auth token saved)" in kept.text
    with tenant_scope(tenant):
        config = GatewayConfig.objects.get()
        entries = list(AuditEntry.objects.values_list("action", "changes"))
    assert config.credentials == {"account_sid": SID, "auth_token": "s3cret-token"}
    assert config.settings == {"agent_ring_seconds": 20, "record": True}
    assert [action for action, _ in entries] == ["gateway.update", "gateway.update"]
    assert "s3cret" not in str(entries)


def test_what_twilio_cannot_use_is_said_beside_its_field(admin_client, tenant):
    response = save_engine(admin_client, account_sid="AC123", auth_token="x")

    assert response.status_code == 400
    assert "AC and 32 hex digits" in str(response.context["engine_form"].errors["account_sid"])
    with tenant_scope(tenant):
        assert not GatewayConfig.objects.exists()


ASTERISK = {
    "engine": "asterisk",
    "ari_url": "https://pbx.example.com:8089",
    "username": "callbridge",
    "app": "callbridge",
    "agent_endpoint": "PJSIP/{extension}",
    "customer_endpoint": "PJSIP/{number}@trunk",
}


def test_an_admin_switches_to_asterisk_and_the_password_stays_write_only(admin_client, tenant):
    saved = save_engine(admin_client, **ASTERISK, password="ari-s3cret")
    kept = save_engine(admin_client, **{**ASTERISK, "app": "sales"})

    assert "Calls now go through Asterisk (ARI)." in saved.text
    assert "ari-s3cret" not in saved.text + kept.text and "(password saved)" in kept.text
    with tenant_scope(tenant):
        config = GatewayConfig.objects.get()
    assert config.credentials == {"username": "callbridge", "password": "ari-s3cret"}
    assert config.settings["app"] == "sales"
    assert config.settings["ari_url"] == "https://pbx.example.com:8089"


def test_what_asterisk_cannot_use_is_said_beside_its_field(admin_client, tenant, settings):
    settings.ALLOW_PRIVATE_URLS = False
    private = save_engine(
        admin_client, **{**ASTERISK, "ari_url": "http://10.0.0.5:8088"}, password="p"
    )
    no_slot = save_engine(
        admin_client, **{**ASTERISK, "customer_endpoint": "PJSIP/trunk"}, password="p"
    )

    assert private.status_code == 400 and private.context["engine_form"].errors["ari_url"]
    assert "{number}" in str(no_slot.context["engine_form"].errors["customer_endpoint"])
    with tenant_scope(tenant):
        assert not GatewayConfig.objects.exists()


def test_origins_are_saved_and_a_bad_one_is_refused_beside_the_box(admin_client, tenant):
    saved = save_origins(admin_client, "https://acme.my.salesforce.com\n\nhttps://*.hubspot.com")
    refused = save_origins(admin_client, "http://crm.example.com")

    tenant.webphone_settings.refresh_from_db()
    assert "may be framed by these origins" in saved.text
    assert refused.status_code == 400 and refused.context["frames_form"].errors["origins"]
    assert tenant.webphone_settings.frame_origins == [
        "https://acme.my.salesforce.com",
        "https://*.hubspot.com",
    ]


def test_a_viewer_reads_the_engine_without_write_controls(viewer_client, tenant):
    page = viewer_client.get("/app/telephony/")
    posts = [viewer_client.post(f"/app/telephony/{what}") for what in ("engine", "frames")]

    assert page.status_code == 200 and "Save phone engine" not in page.text
    assert "Simulator" in page.text
    assert [p.status_code for p in posts] == [403, 403]


def test_another_tenants_member_changes_only_their_own(other_client, tenant, other_tenant):
    save_engine(other_client, account_sid=SID, auth_token="theirs")
    save_origins(other_client, "https://globex.example.com")

    tenant.webphone_settings.refresh_from_db()
    assert tenant.webphone_settings.frame_origins == []
    with tenant_scope(tenant):
        assert not GatewayConfig.objects.exists()
    with tenant_scope(other_tenant):
        assert GatewayConfig.objects.get().engine == "twilio"


def test_a_form_the_engine_refused_can_be_fixed_and_sent_again(admin_client, tenant):
    page = admin_client.get("/app/telephony/")
    data = {**ASTERISK, "agent_ring_seconds": "20", "password": "p"}
    data["submit_token"] = page.context["engine_form"]["submit_token"].value()

    refused = admin_client.post("/app/telephony/engine", {**data, "ari_url": "ftp://pbx"})
    fixed = admin_client.post("/app/telephony/engine", data, follow=True)

    assert refused.status_code == 400
    assert "Calls now go through Asterisk (ARI)." in fixed.text
