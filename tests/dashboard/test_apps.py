"""Apps page: each kind's form (API validation, write-only secrets), enable, delete, call test."""

import secrets
from datetime import timedelta

import pytest
from django.utils import timezone

from automations.models import App, AppRun
from core.scoping import tenant_scope
from tenants.models import AuditEntry
from tests.automations import conftest as automations_fixtures
from tests.automations.receiver import Answer

pytestmark = pytest.mark.django_db

# The automations tests' fixtures: a real webhook receiver on 127.0.0.1, apps made by the service.
receiver, make_app = automations_fixtures.receiver, automations_fixtures.make_app
end_call = automations_fixtures.end_call

ISOLATED_ROUTES = {
    "apps/",
    "apps/new/<str:kind>",
    "apps/<int:pk>/edit",
    "apps/<int:pk>/toggle",
    "apps/<int:pk>/delete",
    "apps/test-call",
}


def app_form(**fields) -> dict:
    return {
        "submit_token": secrets.token_urlsafe(16),
        "name": "CRM lookup",
        "slug": "lookup",
        "timing": "post_call",
        "events": ["call.end"],
        "order": "20",
        "enabled": "on",
        **fields,
    }


def webhook_form(**fields) -> dict:
    return app_form(
        **{
            "url": "https://api.example.com/contacts/{{ event.calling_number }}",
            "method": "POST",
            "auth_kind": "bearer",
            "auth_token": "s3cret-token",
            "headers": "X-Api-Key: k3y-value\nX-Team: support",
            "query_params": "source=callbridge",
            "body": '{"phone": "{{ event.calling_number }}"}',
            "timeout": "5",
            **fields,
        }
    )


def test_a_webhook_app_is_created_with_its_secrets_kept_apart(admin_client, tenant):
    response = admin_client.post("/app/apps/new/webhook", webhook_form())

    assert response.status_code == 302
    with tenant_scope(tenant):
        app = App.objects.get()
        entry = AuditEntry.objects.get()
    assert app.config == {
        "url": "https://api.example.com/contacts/{{ event.calling_number }}",
        "method": "POST",
        "auth": {"kind": "bearer"},
        "headers": [{"key": "X-Api-Key"}, {"key": "X-Team", "value": "support"}],
        "query_params": [{"key": "source", "value": "callbridge"}],
        "body": {"phone": "{{ event.calling_number }}"},
        "timeout": 5.0,
    }
    assert app.secrets == {"auth": {"token": "s3cret-token"}, "headers": {"X-Api-Key": "k3y-value"}}
    assert entry.action == "app.create" and "s3cret" not in str(entry.changes)


def test_editing_never_shows_a_secret_and_a_blank_one_is_kept(admin_client, tenant):
    admin_client.post("/app/apps/new/webhook", webhook_form())
    with tenant_scope(tenant):
        app = App.objects.get()

    page = admin_client.get(f"/app/apps/{app.pk}/edit")
    saved = admin_client.post(
        f"/app/apps/{app.pk}/edit",
        webhook_form(auth_token="", headers="X-Api-Key: \nX-Team: sales", name="Lookup 2"),
    )

    assert "s3cret-token" not in page.text and "k3y-value" not in page.text
    assert "X-Team: support" in page.text
    assert saved.status_code == 302
    app.refresh_from_db()
    assert app.name == "Lookup 2"
    assert app.secrets == {"auth": {"token": "s3cret-token"}, "headers": {"X-Api-Key": "k3y-value"}}
    assert app.config["headers"] == [{"key": "X-Api-Key"}, {"key": "X-Team", "value": "sales"}]


def test_a_value_the_api_flagged_secret_stays_write_only_after_an_edit(
    admin_client, tenant, make_app
):
    app = make_app(
        "lookup",
        config={
            "url": "https://api.example.com/x",
            "headers": [{"key": "X-Customer", "value": "acme-42", "secret": True}],
        },
    )

    page = admin_client.get(f"/app/apps/{app.pk}/edit")
    admin_client.post(
        f"/app/apps/{app.pk}/edit",
        app_form(
            url="https://api.example.com/x", method="POST", auth_kind="none", headers="X-Customer: "
        ),
    )

    assert "acme-42" not in page.text
    app.refresh_from_db()
    assert app.config["headers"] == [{"key": "X-Customer", "secret": True}]
    assert app.secrets == {"headers": {"X-Customer": "acme-42"}}


@pytest.mark.parametrize(
    ("kind", "fields", "field", "message"),
    [
        ("webhook", {"url": "ftp://x"}, "url", ""),
        ("webhook", {"auth_kind": "basic"}, "auth_username", "Required for basic auth."),
        ("webhook", {"headers": "Host: x"}, "headers", "Host is set by CallBridge itself."),
        ("webhook", {"body": "{not json"}, "body", "Enter a valid JSON."),
        ("webhook", {"method": "GET"}, "body", "GET requests have no body"),
        ("webhook", {"order": "5"}, "order", "From 10 to 100"),
        ("slack", {"message": "hi"}, "webhook_url", "Slack incoming-webhook URL"),
        ("email", {"events": ["call.end"]}, "events", "analytics.completed"),
        ("ticket", {}, "connection", ""),
        ("warehouse", {"table": "1 bad"}, "table", "A table name"),
    ],
)
def test_bad_settings_are_errors_beside_their_field(
    admin_client, tenant, kind, fields, field, message
):
    form = webhook_form() if kind == "webhook" else app_form()
    response = admin_client.post(f"/app/apps/new/{kind}", {**form, **fields})

    assert response.status_code == 200
    assert message in " ".join(response.context["form"].errors[field])
    with tenant_scope(tenant):
        assert not App.objects.exists()


def test_each_kind_has_its_form(admin_client):
    for kind, field in [
        ("webhook", "auth_client_secret"),
        ("slack", "preset"),
        ("email", "escalation_email"),
        ("ticket", "public_comment"),
        ("warehouse", "dsn"),
    ]:
        assert f'name="{field}"' in admin_client.get(f"/app/apps/new/{kind}").text
    assert admin_client.get("/app/apps/new/fax").status_code == 404


def test_a_slack_app_is_created_from_a_preset(admin_client, tenant):
    response = admin_client.post(
        "/app/apps/new/slack",
        app_form(
            slug="alerts",
            preset="low_satisfaction",
            webhook_url="https://hooks.slack.com/services/T0/B0/x",
            events=["analytics.completed"],
        ),
    )

    assert response.status_code == 302
    with tenant_scope(tenant):
        app = App.objects.get()
    assert app.condition == "satisfaction <= 2" and app.config == {"preset": "low_satisfaction"}
    assert app.secrets == {"webhook_url": "https://hooks.slack.com/services/T0/B0/x"}


def test_a_double_submitted_app_is_created_once(admin_client, tenant):
    form = webhook_form()

    admin_client.post("/app/apps/new/webhook", form)
    second = admin_client.post("/app/apps/new/webhook", form)

    assert "already submitted" in second.text
    with tenant_scope(tenant):
        assert App.objects.count() == 1


def test_an_app_is_disabled_enabled_and_deleted(admin_client, tenant, make_app):
    app = make_app("lookup", config={"url": "https://api.example.com/x"})

    admin_client.post(f"/app/apps/{app.pk}/toggle")
    app.refresh_from_db()
    disabled = app.enabled
    admin_client.post(f"/app/apps/{app.pk}/toggle")
    app.refresh_from_db()
    confirm = admin_client.get(f"/app/apps/{app.pk}/delete")
    admin_client.post(f"/app/apps/{app.pk}/delete")

    assert (disabled, app.enabled) == (False, True)
    assert "Delete the app “Lookup”?" in confirm.text
    with tenant_scope(tenant):
        assert not App.objects.exists()
        actions = list(AuditEntry.objects.order_by("pk").values_list("action", flat=True))
    assert actions == ["app.disable", "app.enable", "app.delete"]


def test_the_call_test_shows_each_apps_request_answer_and_app_data(
    admin_client, receiver, make_app
):
    make_app(
        "lookup",
        config={"method": "GET", "url": f"{receiver.url}/lookup/{{{{ event.calling_number }}}}"},
        side_effects=False,
        order=10,
    )
    make_app(
        "ticket",
        config={
            "url": f"{receiver.url}/ticket",
            "body": {"tier": "{{ app_data.lookup.data.tier }}"},
        },
        order=20,
    )
    receiver.script = [Answer(200, {"tier": "gold"})]

    response = admin_client.post(
        "/app/apps/test-call", {"calling_number": "+442045205757", "event": "call.end"}
    )

    lookup, ticket = response.context["report"]
    assert lookup["sent"] is True and lookup["response"]["data"] == {"tier": "gold"}
    assert ticket["sent"] is False and ticket["request"]["body"] == {"tier": "gold"}
    assert "not sent" in response.text and "&#x27;tier&#x27;: &#x27;gold&#x27;" in response.text
    assert [r.path for r in receiver.received] == ["/lookup/%2B442045205757"]


def test_the_call_test_sends_only_when_asked(admin_client, receiver, make_app):
    make_app("ticket", config={"url": f"{receiver.url}/ticket"})

    admin_client.post("/app/apps/test-call", {"calling_number": "+442045205757"})
    sent = admin_client.post(
        "/app/apps/test-call", {"calling_number": "+442045205757", "send": "on"}
    )
    bad = admin_client.post(
        "/app/apps/test-call", {"calling_number": "+442045205757", "event_data": "[1]"}
    )

    assert [r.path for r in receiver.received] == ["/ticket"]
    assert sent.context["report"][0]["sent"] is True
    assert bad.context["test_form"].errors["event_data"]


def test_a_viewer_sees_the_apps_but_no_write_control_and_is_refused(
    viewer_client, tenant, make_app
):
    app = make_app("lookup", config={"url": "https://api.example.com/x"})

    page = viewer_client.get("/app/apps/")
    writes = [
        viewer_client.post("/app/apps/new/webhook", webhook_form()),
        viewer_client.post(f"/app/apps/{app.pk}/edit", webhook_form()),
        viewer_client.post(f"/app/apps/{app.pk}/toggle"),
        viewer_client.post(f"/app/apps/{app.pk}/delete"),
        viewer_client.post("/app/apps/test-call", {"calling_number": "+442045205757"}),
    ]

    assert "Lookup" in page.text and "New webhook" not in page.text and "/edit" not in page.text
    assert [w.status_code for w in writes] == [403] * len(writes)


def test_another_tenants_member_sees_and_touches_none_of_the_apps(other_client, tenant, make_app):
    app = make_app("acme-lookup", config={"url": "https://api.example.com/x"})

    page = other_client.get("/app/apps/")
    responses = [
        other_client.get(f"/app/apps/{app.pk}/edit"),
        other_client.post(f"/app/apps/{app.pk}/edit", webhook_form()),
        other_client.post(f"/app/apps/{app.pk}/toggle"),
        other_client.get(f"/app/apps/{app.pk}/delete"),
        other_client.post(f"/app/apps/{app.pk}/delete"),
    ]
    test_call = other_client.post("/app/apps/test-call", {"calling_number": "+442045205757"})
    new = other_client.get("/app/apps/new/webhook")

    assert "acme-lookup" not in page.text and "No apps yet" in page.text
    assert [r.status_code for r in responses] == [404] * len(responses)
    assert test_call.context["report"] == [] and new.status_code == 200
    with tenant_scope(tenant):
        assert App.objects.get().enabled is True


def test_an_app_failing_for_an_hour_says_so_in_the_list(admin_client, tenant, make_app, end_call):
    app = make_app("lookup", config={"url": "https://api.example.com/x"})
    call = end_call()
    with tenant_scope(tenant):
        AppRun.objects.filter(call=call, app=app).update(
            state="failed", finished_at=timezone.now() - timedelta(minutes=61), error="rejected"
        )

    page = admin_client.get("/app/apps/")

    assert '<span class="badge bad">failing</span>' in page.text
