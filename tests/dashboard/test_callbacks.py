"""Callbacks: the URL and auth (the API's rules, SSRF guard), signing secret, test send, list."""

import time

import pytest

from calls.models import Delivery
from core.scoping import tenant_scope
from tenants.models import AuditEntry, Tenant
from tests.calls.test_signing import verify

pytestmark = pytest.mark.django_db

ISOLATED_ROUTES = {
    "callbacks/",
    "callbacks/settings",
    "callbacks/signing-secret",
    "callbacks/test",
    "callbacks/resume",
}


def save(client, **fields):
    page = client.get("/app/callbacks/")
    data = {
        "callback_url": "",
        "callback_auth_header": "",
        "callback_auth_value": "",
        "submit_token": page.context["settings_form"]["submit_token"].value(),
        **fields,
    }
    return client.post("/app/callbacks/settings", data, follow=True)


def test_an_admin_sets_the_url_and_auth_and_the_value_stays_write_only(
    admin_client, tenant, private_urls
):
    response = save(
        admin_client,
        callback_url="http://127.0.0.1:9/hook",
        callback_auth_header="Authorization",
        callback_auth_value="Bearer s3cret-value",
    )
    kept = save(
        admin_client, callback_url="http://127.0.0.1:9/hook", callback_auth_header="Authorization"
    )

    tenant.refresh_from_db()
    assert "Callback settings saved." in response.text
    assert "Nothing changed." in kept.text
    assert (tenant.callback_settings.url, tenant.callback_settings.auth_header) == (
        "http://127.0.0.1:9/hook",
        "Authorization",
    )
    assert tenant.callback_settings.auth_value == "Bearer s3cret-value"
    assert "s3cret" not in response.text and "An auth header value is saved." in response.text
    with tenant_scope(tenant):
        [entry] = AuditEntry.objects.all()
    assert entry.action == "callback.update"
    assert entry.changes["callback_auth_value"] == "(changed)"
    assert "s3cret" not in str(entry.changes)


def test_the_saved_auth_value_can_be_removed(admin_client, tenant):
    tenant.callback_settings.auth_header, tenant.callback_settings.auth_value = "X-Api-Key", "k"
    tenant.callback_settings.save()

    save(admin_client, callback_auth_header="X-Api-Key", clear_auth_value="on")

    tenant.refresh_from_db()
    assert tenant.callback_settings.auth_value == ""


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"callback_url": "http://127.0.0.1:9/hook"}, "callback_url", "private or reserved"),
        ({"callback_url": "ftp://crm.example.com/x"}, "callback_url", "http"),
        ({"callback_auth_header": "Content-Type"}, "callback_auth_header", "cannot be the auth"),
        ({"callback_auth_value": "a\nb"}, "callback_auth_value", "line breaks"),
    ],
)
def test_bad_settings_are_errors_beside_the_field_as_the_api_says(
    admin_client, tenant, fields, field, message
):
    response = save(admin_client, **fields)

    assert response.status_code == 200
    errors = response.context["settings_form"].errors
    assert list(errors) == [field]
    assert message in str(errors[field])
    assert f'id="id_{field}_error"' in response.text
    tenant.refresh_from_db()
    assert tenant.callback_settings.url == "" and tenant.callback_settings.auth_header == ""


def test_the_signing_secret_is_shown_once_with_the_rotation_window(admin_client, tenant):
    created = admin_client.post("/app/callbacks/signing-secret")
    first = created.context["new_secret"]
    rotated = admin_client.post("/app/callbacks/signing-secret")
    later = admin_client.get("/app/callbacks/")

    tenant.refresh_from_db()
    assert first in created.text and created.headers["Cache-Control"] == "no-store"
    assert tenant.callback_settings.signing_secret == rotated.context["new_secret"] != first
    assert tenant.callback_settings.previous_signing_secret == first
    assert "The previous secret keeps signing beside it until" in rotated.text
    assert first not in later.text and tenant.callback_settings.signing_secret not in later.text
    assert "the previous one also signs until" in later.text
    with tenant_scope(tenant):
        actions = list(AuditEntry.objects.order_by("pk").values_list("action", flat=True))
    assert actions == ["signing_secret.create", "signing_secret.rotate"]


def test_a_test_callback_shows_the_receivers_answer(admin_client, tenant, receiver, private_urls):
    tenant.callback_settings.url = f"{receiver.url}/hook"
    tenant.callback_settings.save()
    secret = admin_client.post("/app/callbacks/signing-secret").context["new_secret"]
    receiver.script = [503]

    response = admin_client.post("/app/callbacks/test")

    [request] = receiver.received
    assert response.context["test"]["answer"] == "HTTP 503"
    assert 'id="test-result"' in response.text and "HTTP 503" in response.text
    assert verify(secret, request.headers, request.body)
    assert request.json()["uuid"] == "callbridge-test-callback"
    with tenant_scope(tenant):
        assert not Delivery.objects.exists()


def test_a_test_callback_waits_at_most_a_few_seconds(admin_client, tenant, receiver, private_urls):
    tenant.callback_settings.url = f"{receiver.url}/hook"
    tenant.callback_settings.save()
    receiver.script = ["stall"]

    started = time.monotonic()
    response = admin_client.post("/app/callbacks/test")

    assert time.monotonic() - started < 5
    assert response.context["test"]["ok"] is False
    assert response.context["test"]["answer"] == "timeout"


def test_the_deliveries_list_filters_and_resends_back_to_the_list(admin_client, ended_call):
    succeeded = admin_client.get("/app/callbacks/", {"state": "succeeded"})
    failed = admin_client.get("/app/callbacks/", {"state": "failed"})
    by_number = admin_client.get("/app/callbacks/", {"number": "07400 123456"})
    bad = admin_client.get("/app/callbacks/", {"state": "exploded"})
    with tenant_scope(ended_call.tenant):
        delivery = Delivery.objects.get()
    resent = admin_client.post(
        f"/app/calls/deliveries/{delivery.pk}/resend", {"next": "/app/callbacks/?state=succeeded"}
    )

    link = f"/app/calls/{ended_call.call_id}"
    assert link in succeeded.text and link in by_number.text
    assert link not in failed.text and "No deliveries match" in failed.text
    assert bad.status_code == 200 and "Select a valid choice" in bad.text
    assert resent.headers["Location"] == "/app/callbacks/?state=succeeded"


def test_a_viewer_reads_the_settings_without_write_controls(viewer_client, tenant):
    tenant.callback_settings.url = "https://crm.example.com/hook"
    tenant.callback_settings.save()

    page = viewer_client.get("/app/callbacks/")
    posts = [
        viewer_client.post(url)
        for url in (
            "/app/callbacks/settings",
            "/app/callbacks/signing-secret",
            "/app/callbacks/test",
        )
    ]

    assert "https://crm.example.com/hook" in page.text
    assert page.text.count('method="post"') == 1
    assert [p.status_code for p in posts] == [403, 403, 403]
    tenant.refresh_from_db()
    assert tenant.callback_settings.signing_secret == ""


def test_another_tenants_member_neither_sees_nor_changes_these_settings(
    other_client, tenant, other_tenant, ended_call
):
    page = other_client.get("/app/callbacks/")
    save(other_client, callback_auth_header="X-Key")
    other_client.post("/app/callbacks/signing-secret")

    tenant.refresh_from_db()
    other_tenant.refresh_from_db()
    assert tenant.callback_settings.url not in page.text
    assert f"/app/calls/{ended_call.call_id}" not in page.text
    assert (
        tenant.callback_settings.auth_header == "" and tenant.callback_settings.signing_secret == ""
    )
    assert (
        other_tenant.callback_settings.auth_header == "X-Key"
        and other_tenant.callback_settings.signing_secret
    )
    assert Tenant.objects.count() == 2


def test_the_page_says_when_call_results_have_not_arrived_for_an_hour(
    admin_client, tenant, ended_call
):
    from tests.calls.test_alerts import tried

    with tenant_scope(tenant):
        delivery = Delivery.objects.get(call=ended_call)
        delivery.attempts.all().delete()  # its one attempt reached the receiver
    tried(tenant, delivery, 80, 404)

    page = admin_client.get("/app/callbacks/")

    assert 'id="callback-outage"' in page.text and "HTTP 404" in page.text


def test_paused_callbacks_show_why_and_an_admin_resumes_them(admin_client, viewer_client, tenant):
    from django.utils import timezone

    settings_ = tenant.callback_settings
    settings_.url = "https://crm.example.com/callbacks"
    settings_.paused_at = timezone.now()
    settings_.paused_reason = "Every attempt since 2026-12-01 10:00 UTC failed (latest: HTTP 502)."
    settings_.save()

    page = admin_client.get("/app/callbacks/")
    read_only = viewer_client.get("/app/callbacks/")
    refused = viewer_client.post("/app/callbacks/resume")
    resumed = admin_client.post("/app/callbacks/resume", follow=True)

    settings_.refresh_from_db()
    assert "Call results are paused" in page.text and "HTTP 502" in page.text
    assert "Resume and send them" in page.text and "Resume and send them" not in read_only.text
    assert refused.status_code == 403
    assert "Call results resumed: 0 held result(s)" in resumed.text
    assert settings_.paused_at is None and "Call results are paused" not in resumed.text
