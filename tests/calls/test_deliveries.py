"""Call-result push, attempt by attempt, against a real local receiver (no worker needed)."""

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from calls import deliveries
from calls.models import Attempt, Call, Delivery
from calls.services import call_hang_up, signing_secret_rotate
from tests.calls.test_signing import verify

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("private_urls", "in_tenant")]


@pytest.fixture
def ended_call(tenant, receiver, place_call) -> Call:
    tenant.callback_settings.url = f"{receiver.url}/callbacks?src=callbridge"
    tenant.callback_settings.save()
    return call_hang_up(call=place_call())


@pytest.fixture
def delivery(ended_call) -> Delivery:
    return Delivery.objects.get(call=ended_call)


def attempt(delivery: Delivery) -> Attempt | None:
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    return deliveries.delivery_attempt(delivery_id=str(delivery.pk))


def test_it_posts_exactly_the_seed_payload_signed_with_every_live_secret(
    tenant, receiver, delivery, ended_call
):
    old = signing_secret_rotate(tenant=tenant)
    new = signing_secret_rotate(tenant=tenant)
    tenant.callback_settings.auth_header, tenant.callback_settings.auth_value = (
        "Authorization",
        "Bearer crm-token",
    )
    tenant.callback_settings.save()

    result = attempt(delivery)

    [request] = receiver.received
    assert request.path == "/callbacks?src=callbridge"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["authorization"] == "Bearer crm-token"
    assert request.headers["webhook-id"] == str(delivery.pk)
    assert verify(new, request.headers, request.body)
    assert verify(old, request.headers, request.body)
    assert request.json() == {
        "call_id": str(ended_call.call_id),
        "uuid": "crm-call-42",
        "status": "CANCELED",
        "duration": 0,
        "customer_number": "+447400123456",
        "agent_number": "+447400000017",
        "crm_username": "agent.017",
        "call_type": "server",
        "disposition": "CRM_CALL",
        "direction": "outbound",
        "start_time": ended_call.start_time.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "end_time": ended_call.end_time.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "recording_url": None,
    }
    assert (result.number, result.status_code, result.trigger) == (1, 200, "scheduled")
    delivery.refresh_from_db()
    assert delivery.state == "succeeded"


def test_an_expired_old_secret_no_longer_signs(tenant, receiver, delivery):
    old = signing_secret_rotate(tenant=tenant)
    new = signing_secret_rotate(tenant=tenant)
    tenant.callback_settings.previous_signing_secret_expires_at = timezone.now() - timedelta(
        seconds=1
    )
    tenant.callback_settings.save()

    attempt(delivery)

    [request] = receiver.received
    assert verify(new, request.headers, request.body)
    assert not verify(old, request.headers, request.body)


def test_a_failure_schedules_the_next_try_after_1_2_then_4_seconds_then_gives_up(
    receiver, delivery
):
    receiver.script = [500, 503, 404, 502, 200]
    delays = []
    for _ in range(4):
        before = timezone.now()
        attempt(delivery)
        delivery.refresh_from_db()
        if delivery.state == "pending":
            delays.append(round((delivery.next_attempt_at - before).total_seconds()))

    assert delays == [1, 2, 4]
    assert delivery.state == "failed"
    assert attempt(delivery) is None  # a late message for it does nothing
    assert [a.status_code for a in delivery.attempts.all()] == [500, 503, 404, 502]
    assert len({r.headers["webhook-id"] for r in receiver.received}) == 1
    assert len(receiver.received) == 4


def test_a_redirect_is_a_failed_attempt_and_is_not_followed(receiver, delivery):
    receiver.script = [302]

    result = attempt(delivery)

    assert result.status_code == 302
    assert [r.path for r in receiver.received] == ["/callbacks?src=callbridge"]
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempt_count) == ("pending", 1)


def test_no_response_is_recorded_with_its_error_class(tenant, delivery):
    Delivery.objects.filter(pk=delivery.pk).update(url="http://127.0.0.1:9/closed")
    tenant.callback_settings.auth_header, tenant.callback_settings.auth_value = (
        "X-Api-Key",
        "k3y-value",
    )
    tenant.callback_settings.save()

    result = attempt(delivery)

    assert (result.status_code, result.error_class) == (None, "connect_refused")
    assert "k3y-value" not in result.response_excerpt


def test_a_delivery_that_is_not_due_yet_waits_for_its_turn(receiver, delivery):
    Delivery.objects.filter(pk=delivery.pk).update(
        next_attempt_at=timezone.now() + timedelta(seconds=30)
    )

    assert deliveries.delivery_attempt(delivery_id=str(delivery.pk)) is None
    assert receiver.received == []


def test_a_resend_keeps_the_id_and_is_not_retried_automatically(api, receiver, delivery):
    attempt(delivery)
    receiver.script = [500]

    response = api.post(f"/api/v1/deliveries/{delivery.pk}/resend")
    result = attempt(delivery)

    assert response.status_code == 202
    assert response.json()["id"] == str(delivery.pk)
    assert (result.number, result.trigger, result.status_code) == (2, "manual", 500)
    delivery.refresh_from_db()
    assert delivery.state == "failed"
    assert {r.headers["webhook-id"] for r in receiver.received} == {str(delivery.pk)}


def test_a_pending_delivery_cannot_be_resent(api, delivery):
    response = api.post(f"/api/v1/deliveries/{delivery.pk}/resend")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "delivery_pending"


def test_the_api_lists_deliveries_with_their_attempts(api, receiver, delivery):
    receiver.script = [500]
    attempt(delivery)

    listed = api.get("/api/v1/deliveries", {"state": "pending"}).json()["results"]
    detail = api.get(f"/api/v1/deliveries/{delivery.pk}").json()

    assert [d["id"] for d in listed] == [str(delivery.pk)]
    assert detail["attempts"][0]["status_code"] == 500
    assert detail["attempts"][0]["response_excerpt"] == "ok"
    assert api.get("/api/v1/deliveries?state=lost").status_code == 400
    by_call = api.get("/api/v1/deliveries", {"call_id": str(delivery.call.call_id)}).json()
    assert [d["id"] for d in by_call["results"]] == [str(delivery.pk)]
    bad_call_id = api.get("/api/v1/deliveries?call_id=42")
    assert (bad_call_id.status_code, bad_call_id.json()["error"]["field"]) == (400, "call_id")


def test_the_sweeper_resends_a_delivery_whose_worker_died_on_the_wire(settings, delivery):
    settings.DELIVERY_STALE_SECONDS = 5
    long_ago = timezone.now() - timedelta(seconds=60)
    Delivery.objects.filter(pk=delivery.pk).update(attempt_count=1, attempting_since=long_ago)
    on_the_wire = timezone.now() - timedelta(seconds=2)
    other = Delivery.objects.create(
        tenant_id=delivery.tenant_id,
        call=delivery.call,
        url=delivery.url,
        payload={},
        next_attempt_at=on_the_wire,
        attempting_since=on_the_wire,
    )

    never_sent = Delivery.objects.create(  # committed, but its message never reached a worker
        tenant_id=delivery.tenant_id,
        call=delivery.call,
        url=delivery.url,
        payload={},
        next_attempt_at=long_ago,
    )

    swept = deliveries.deliveries_sweep()

    assert swept == 2
    delivery.refresh_from_db()
    other.refresh_from_db()
    never_sent.refresh_from_db()
    assert never_sent.next_attempt_at > long_ago
    assert not never_sent.attempts.exists()
    assert delivery.attempting_since is None
    assert [a.error_class for a in delivery.attempts.all()] == ["interrupted"]
    assert other.attempting_since == on_the_wire  # still within its deadline: left alone


def test_the_callback_row_commits_or_rolls_back_with_the_end_of_the_call(tenant, place_call):
    tenant.callback_settings.url = "https://crm.example.com/callbacks"
    tenant.callback_settings.save()
    call = place_call()

    with pytest.raises(RuntimeError), transaction.atomic():
        call_hang_up(call=call)
        raise RuntimeError("the end of the call fails to commit")

    call.refresh_from_db()
    assert (call.state, Delivery.objects.count()) == ("initiated", 0)
    call_hang_up(call=call)
    assert Delivery.objects.filter(call=call).count() == 1


@pytest.fixture
def broker_down():
    """Point the Celery app at a closed port, as if Redis were down, then restore it."""
    from config.celery import app

    saved = app.conf.broker_write_url
    app.conf.broker_write_url = "redis://127.0.0.1:9/0"
    app._pool, app.amqp._producer_pool = None, None
    yield
    app.conf.broker_write_url = saved
    app._pool, app.amqp._producer_pool = None, None


def test_a_call_placed_while_the_broker_is_down_fails_cleanly_and_says_so(
    api, call_body, tenant, broker_down, django_capture_on_commit_callbacks
):
    tenant.callback_settings.url = "https://crm.example.com/callbacks"
    tenant.callback_settings.save()

    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/v1/calls", call_body, format="json")

    assert response.status_code == 201
    call = Call.objects.get()
    assert (call.state, call.status) == ("ended", "FAILED")
    # its callback row is committed although it could not be enqueued: the sweeper sends it
    assert Delivery.objects.get(call=call).state == "pending"


def test_a_second_worker_keeps_off_a_delivery_already_on_the_wire(receiver, delivery):
    Delivery.objects.filter(pk=delivery.pk).update(attempt_count=1, attempting_since=timezone.now())

    assert deliveries.delivery_attempt(delivery_id=str(delivery.pk)) is None
    assert receiver.received == []


def test_a_wrap_up_after_the_end_sends_no_second_callback_by_default(api, ended_call):
    api.post(
        f"/api/v1/calls/{ended_call.call_id}/disposition", {"disposition": "SALE"}, format="json"
    )

    assert Delivery.objects.count() == 1  # seed 002: the result is sent once


def test_a_tenant_that_asks_gets_a_marked_call_updated_callback_per_wrap_up_change(
    api, tenant, receiver, delivery, ended_call
):
    secret = signing_secret_rotate(tenant=tenant)
    assert api.patch("/api/v1/tenant", {"callback_on_update": True}, format="json").json()[
        "callback_on_update"
    ]
    attempt(delivery)

    api.post(
        f"/api/v1/calls/{ended_call.call_id}/disposition", {"disposition": "SALE"}, format="json"
    )
    api.post(
        f"/api/v1/calls/{ended_call.call_id}/notes", {"notes": "Wants a quote."}, format="json"
    )
    updates = list(Delivery.objects.exclude(pk=delivery.pk).order_by("created_at"))
    for update in updates:
        attempt(update)

    first, *changes = receiver.received
    assert "event" not in first.json() and first.json()["disposition"] == "CRM_CALL"
    assert [c.json()["event"] for c in changes] == ["call.updated", "call.updated"]
    assert [(c.json()["disposition"], c.json()["notes"]) for c in changes] == [
        ("SALE", ""),
        ("SALE", "Wants a quote."),
    ]
    for change, update in zip(changes, updates, strict=True):
        assert change.json()["uuid"] == "crm-call-42"
        assert change.json()["call_id"] == str(ended_call.call_id)
        assert change.headers["webhook-id"] == str(update.pk) != str(delivery.pk)
        assert verify(secret, change.headers, change.body)
    assert {d.state for d in Delivery.objects.all()} == {"succeeded"}


def test_a_wrap_up_before_the_end_rides_on_the_end_callback(api, tenant, receiver, place_call):
    tenant.callback_settings.url, tenant.callback_settings.on_update = (
        f"{receiver.url}/callbacks",
        True,
    )
    tenant.callback_settings.save()
    call = place_call()

    api.post(f"/api/v1/calls/{call.call_id}/disposition", {"disposition": "SALE"}, format="json")
    call_hang_up(call=call)

    (delivery,) = Delivery.objects.all()
    assert delivery.payload["disposition"] == "SALE" and "event" not in delivery.payload
