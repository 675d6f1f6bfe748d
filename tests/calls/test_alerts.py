"""A callback URL failing for an hour: the owners get one email, the dashboard says so."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.utils import timezone

from calls import alerts
from calls.models import Attempt, Delivery
from calls.services import call_hang_up
from core.scoping import tenant_scope
from tenants.models import Membership

pytestmark = pytest.mark.django_db


@pytest.fixture
def delivery(tenant, place_call) -> Delivery:
    tenant.callback_settings.url = "https://crm.example.com/callbacks"
    tenant.callback_settings.save()
    with tenant_scope(tenant):
        call = call_hang_up(call=place_call())
        return Delivery.objects.get(call=call)


@pytest.fixture
def owners(tenant) -> list[str]:
    users = get_user_model().objects
    emails = ["owner@acme.example", "viewer@acme.example"]
    with tenant_scope(tenant):
        for email, role in zip(emails, ("owner", "viewer"), strict=True):
            user = users.create_user(username=email, email=email, password="x" * 12)
            Membership.objects.create(tenant=tenant, user=user, role=role)
    return emails[:1]


def tried(tenant, delivery: Delivery, minutes_ago: float, status: int | None) -> None:
    with tenant_scope(tenant):
        Attempt.objects.create(
            tenant=tenant,
            delivery=delivery,
            number=Attempt.objects.filter(delivery=delivery).count() + 1,
            trigger="scheduled",
            started_at=timezone.now() - timedelta(minutes=minutes_ago),
            status_code=status,
            error_class="" if status else "connect_refused",
        )


def test_an_hour_of_failures_emails_the_owners_once(tenant, delivery, owners):
    tried(tenant, delivery, 90, 200)
    tried(tenant, delivery, 70, 503)
    tried(tenant, delivery, 5, None)

    first, again = alerts.callback_alerts_send(), alerts.callback_alerts_send()

    assert (first, again) == (1, 0)
    [email] = mail.outbox
    assert email.to == owners
    assert "https://crm.example.com/callbacks" in email.subject
    assert "connect_refused" in email.body and "/app/callbacks/" in email.body


def test_failures_for_less_than_an_hour_or_a_success_since_are_no_outage(tenant, delivery, owners):
    tried(tenant, delivery, 40, 500)
    recent = alerts.callback_alerts_send()
    tried(tenant, delivery, 20, 200)
    tried(tenant, delivery, 0, 500)

    with tenant_scope(tenant):
        assert alerts.callback_outage() is None
    assert recent == 0 and mail.outbox == []


def test_a_new_outage_after_a_recovery_is_told_again(tenant, delivery, owners):
    tried(tenant, delivery, 300, 500)
    alerts.callback_alerts_send()
    tried(tenant, delivery, 200, 200)
    tried(tenant, delivery, 100, 500)

    alerts.callback_alerts_send()

    assert len(mail.outbox) == 2


DAY = 24 * 60


def test_five_days_of_failures_pause_the_callbacks_and_new_results_are_held(
    tenant, delivery, owners, place_call, api
):
    tried(tenant, delivery, 5 * DAY + 10, 500)
    tried(tenant, delivery, 30, 502)

    paused = alerts.callback_alerts_send()
    with tenant_scope(tenant):
        held = Delivery.objects.get(call=call_hang_up(call=place_call(uuid="crm-call-43")))
    shown = api.get("/api/v1/deliveries/pause").json()

    tenant.callback_settings.refresh_from_db()
    assert paused == 1 and tenant.callback_settings.paused_at is not None
    assert "HTTP 502" in tenant.callback_settings.paused_reason
    assert held.state == "held" and held.attempt_count == 0
    assert (shown["paused"], shown["held"]) == (True, 1) and "HTTP 502" in shown["reason"]
    assert [e.subject for e in mail.outbox][-1].endswith("are paused")
    assert "until you resume them" in mail.outbox[-1].body


def test_resuming_sends_the_held_results_and_starts_the_clock_again(
    tenant, delivery, owners, place_call, api, django_capture_on_commit_callbacks
):
    tried(tenant, delivery, 5 * DAY + 10, 500)
    alerts.callback_alerts_send()
    with tenant_scope(tenant):
        held = Delivery.objects.get(call=call_hang_up(call=place_call(uuid="crm-call-43")))

    with django_capture_on_commit_callbacks(execute=False) as queued:
        resumed = api.delete("/api/v1/deliveries/pause")
    again = api.delete("/api/v1/deliveries/pause")
    checked = alerts.callback_alerts_send()  # still failing, but only since the resume

    held.refresh_from_db()
    tenant.callback_settings.refresh_from_db()
    assert resumed.status_code == 200 and resumed.json()["released"] == 1
    assert resumed.json()["paused"] is False and queued
    assert again.status_code == 409 and again.json()["error"]["code"] == "not_paused"
    assert held.state == "pending"
    assert checked == 0 and tenant.callback_settings.paused_at is None
