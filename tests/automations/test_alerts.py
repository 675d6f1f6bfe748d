"""A CRM connection's call logging or an app failing for an hour: the owners get one email."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.utils import timezone

from automations import alerts
from automations.models import AppRun, CrmLog, CrmLogAttempt
from connectors.models import Connection
from core.scoping import tenant_scope
from tenants.models import Membership

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner(tenant) -> str:
    user = get_user_model().objects.create_user(
        username="owner", email="owner@acme.example", password="x" * 12
    )
    with tenant_scope(tenant):
        Membership.objects.create(tenant=tenant, user=user, role="owner")
    return user.email


def ago(minutes: float):
    return timezone.now() - timedelta(minutes=minutes)


def test_an_app_failing_for_an_hour_is_told_once(tenant, owner, make_app, end_call):
    app = make_app("crm-notify", config={"url": "https://crm.example.com/hook"})
    for minutes, state in ((90, "succeeded"), (70, "failed"), (2, "failed")):
        call = end_call()  # writes the app's run, still pending
        with tenant_scope(tenant):
            AppRun.objects.filter(call=call, app=app).update(
                state=state,
                finished_at=ago(minutes),
                error="" if state == "succeeded" else "rejected",
            )

    told, again = alerts.after_call_alerts_send(), alerts.after_call_alerts_send()

    [email] = mail.outbox
    assert (told, again, email.to) == (1, 0, [owner])
    assert "Crm-Notify keeps failing" in email.subject and "rejected" in email.body


def test_a_connection_whose_call_logging_fails_for_an_hour_is_told(tenant, owner, end_call):
    call = end_call()
    with tenant_scope(tenant):
        connection = Connection.objects.create(
            tenant=tenant, provider="hubspot", name="Sales HubSpot", credentials_json="{}"
        )
        log = CrmLog.objects.create(
            tenant=tenant, call=call, connection=connection, kind="call", next_attempt_at=ago(0)
        )
        for number, minutes in enumerate((65, 30), start=1):
            CrmLogAttempt.objects.create(
                tenant=tenant, crm_log=log, number=number, action="create",
                started_at=ago(minutes), error="HTTP 401: token rejected",
            )  # fmt: skip
        fresh = Connection.objects.create(tenant=tenant, provider="hubspot", name="Other")
        CrmLogAttempt.objects.create(
            tenant=tenant,
            crm_log=CrmLog.objects.create(
                tenant=tenant, call=call, connection=fresh, kind="call", next_attempt_at=ago(0)
            ),
            number=1, action="create", started_at=ago(20), error="HTTP 500",
        )  # fmt: skip

    alerts.after_call_alerts_send()

    [email] = mail.outbox
    assert "calls are not being logged into Sales HubSpot" in email.subject
    assert "token rejected" in email.body


def test_the_alert_goes_to_the_tenants_slack_apps_too(tenant, owner, make_app, end_call, receiver):
    make_app("team", kind="slack", config={"message": "x", "webhook_url": f"{receiver.url}/slack"})
    app = make_app("crm-notify", config={"url": "https://crm.example.com/hook"})
    call = end_call()
    with tenant_scope(tenant):
        AppRun.objects.filter(call=call, app=app).update(
            state="failed", finished_at=ago(61), error="rejected"
        )

    alerts.after_call_alerts_send()

    slack = [r for r in receiver.received if r.path == "/slack"]
    assert [r.json() for r in slack] == [
        {"text": ":warning: CallBridge: the app Crm-Notify keeps failing"}
    ]
    assert len(mail.outbox) == 1
