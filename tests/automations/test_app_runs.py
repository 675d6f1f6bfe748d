"""Apps on call events: in order, each one's answer feeding the next, conditions, failures."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from automations import app_runs
from automations.models import App, AppRun
from calls.models import CallStatus
from calls.services import signing_secret_rotate
from core.scoping import tenant_scope
from tests.automations.receiver import Answer
from tests.calls.test_signing import verify

pytestmark = pytest.mark.django_db


def run_all(tenant, call, event=App.Event.CALL_END) -> dict[str, AppRun]:
    with tenant_scope(tenant):
        app_runs.app_runs_execute(call_pk=call.pk, event=event)
        return {r.app.slug: r for r in AppRun.objects.filter(call=call, event=event)}


def test_apps_run_in_order_and_each_sees_the_answers_before_it(
    tenant, receiver, make_app, end_call
):
    make_app(
        "notify",
        config={
            "url": f"{receiver.url}/notify",
            "body": {
                "customer": "{{ app_data.crm.data.customer_id }}",
                "vip": "{{ app_data.crm.data.vip }}",
                "caller": "{{ event.calling_number }}",
                "status": "{{ event.status }}",
            },
        },
        order=40,
    )
    make_app(
        "crm",
        config={"method": "GET", "url": f"{receiver.url}/crm/{{{{ event.called_number }}}}"},
        order=20,
    )
    receiver.script = [Answer(200, {"customer_id": "CUST-12345", "vip": True})]

    call = end_call()
    runs = run_all(tenant, call)

    assert [r.path for r in receiver.received] == ["/crm/%2B447400123456", "/notify"]
    assert receiver.received[1].json() == {
        "customer": "CUST-12345",
        "vip": True,
        "caller": "+442079460000",
        "status": "ANSWER",
    }
    assert runs["crm"].result["data"] == {"customer_id": "CUST-12345", "vip": True}
    assert {r.state for r in runs.values()} == {"succeeded"}


def test_a_failing_app_does_not_stop_the_apps_after_it(tenant, receiver, make_app, end_call):
    make_app("first", config={"url": f"{receiver.url}/first"}, order=10)
    make_app("second", config={"url": f"{receiver.url}/second"}, order=20)
    receiver.script = [Answer(400, {"error": "bad"})]

    runs = run_all(tenant, end_call())

    assert (runs["first"].state, runs["second"].state) == ("failed", "succeeded")
    assert runs["first"].error == "rejected" and len(runs["first"].attempts) == 1
    assert [r.path for r in receiver.received] == ["/first", "/second"]


def test_apps_are_signed_with_the_tenants_secret_as_callbacks_are(
    tenant, receiver, make_app, end_call
):
    make_app("signed", config={"url": f"{receiver.url}/signed"}, order=10)
    unsigned = run_all(tenant, end_call())
    secret = signing_secret_rotate(tenant=tenant)
    call = end_call()
    receiver.script = [Answer(503, {}), Answer(200, {})]  # a retry keeps the message id

    signed = run_all(tenant, call)

    first, second, third = receiver.received
    assert unsigned["signed"].state == signed["signed"].state == "succeeded"
    assert "webhook-signature" not in first.headers
    assert verify(secret, second.headers, second.body) and verify(secret, third.headers, third.body)
    assert second.headers["webhook-id"] == third.headers["webhook-id"]
    assert second.headers["webhook-id"].startswith("msg_")


def test_an_app_whose_condition_is_false_is_skipped(tenant, receiver, make_app, end_call):
    make_app("missed", config={"url": f"{receiver.url}/missed"}, condition='status == "NO_ANSWER"')

    runs = run_all(tenant, end_call(CallStatus.ANSWER))

    assert runs["missed"].state == "skipped" and receiver.received == []


def test_a_missed_call_is_also_a_call_missed_event(tenant, receiver, make_app, end_call):
    make_app("on-missed", config={"url": f"{receiver.url}/missed"}, events=["call.missed"])

    call = end_call(CallStatus.NO_ANSWER)
    runs = run_all(tenant, call, App.Event.CALL_MISSED)

    assert runs["on-missed"].state == "succeeded" and len(receiver.received) == 1
    with tenant_scope(tenant):
        assert AppRun.objects.filter(call=call).count() == 1


def test_running_an_event_twice_sends_each_app_once(tenant, receiver, make_app, end_call):
    make_app("once", config={"url": f"{receiver.url}/once"})
    call = end_call()

    run_all(tenant, call)
    run_all(tenant, call)

    assert len(receiver.received) == 1


def test_disabled_and_real_time_apps_are_not_run_after_the_call(
    tenant, receiver, make_app, end_call
):
    make_app("off", config={"url": "http://127.0.0.1:9/off"}, enabled=False)
    make_app("live", config={"url": "http://127.0.0.1:9/live"}, timing="realtime")

    call = end_call()

    with tenant_scope(tenant):
        assert AppRun.objects.filter(call=call).count() == 0


@pytest.mark.parametrize("change", ["disable", "delete"])
def test_disabling_or_deleting_an_app_cancels_its_pending_runs(
    tenant, api, receiver, make_app, end_call, change
):
    app = make_app("crm", config={"url": f"{receiver.url}/crm"})
    call = end_call()
    with tenant_scope(tenant):  # its task was lost: the sweeper would enqueue it again
        AppRun.objects.update(created_at=timezone.now() - timedelta(minutes=5))

    if change == "disable":
        response = api.patch(f"/api/v1/apps/{app.pk}", {"enabled": False}, format="json")
    else:
        response = api.delete(f"/api/v1/apps/{app.pk}")

    assert response.status_code in (200, 204)
    assert app_runs.app_runs_sweep() == 0
    run_all(tenant, call)
    assert receiver.received == []
    with tenant_scope(tenant):
        assert not AppRun.objects.filter(state=AppRun.State.PENDING).exists()


def test_the_call_test_waits_on_slow_apps_no_longer_than_its_budget_and_names_them(
    tenant, api, receiver, make_app, settings
):
    settings.WEB_REQUEST_OUTBOUND_SECONDS = 2  # 10 s by default: the same rule, quicker
    make_app("slow", config={"url": f"{receiver.url}/slow"}, order=10)  # 30 s timeout, retries
    make_app("after", config={"url": f"{receiver.url}/after"}, order=20)
    receiver.script = [Answer(200, {}, delay=30)] * 5

    started = time.monotonic()
    response = api.post(
        "/api/v1/apps/test-call",
        {"calling_number": "+442079460000", "send": True},
        format="json",
    )

    assert time.monotonic() - started < 3.5
    assert response.status_code == 200
    assert response.json()["unfinished"] == ["slow", "after"]
    assert [app["state"] for app in response.json()["apps"]] == ["unfinished", "unfinished"]
    assert [r.path for r in receiver.received] == ["/slow"]


def test_the_call_test_renders_apps_with_side_effects_and_sends_lookups(
    tenant, api, receiver, make_app
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

    response = api.post(
        "/api/v1/apps/test-call",
        {"calling_number": "+442045205757", "called_number": "+442079460000"},
        format="json",
    )

    lookup, ticket = response.json()["apps"]
    assert lookup["sent"] is True and lookup["response"]["data"] == {"tier": "gold"}
    assert ticket["sent"] is False and ticket["request"]["body"] == {"tier": "gold"}
    assert ticket["app_data"]["lookup"]["data"] == {"tier": "gold"}
    assert [r.path for r in receiver.received] == ["/lookup/%2B442045205757"]


def test_slack_presets_work_out_of_the_box(tenant, api, receiver, make_app):
    make_app(
        "alerts",
        kind="slack",
        config={"preset": "low_satisfaction", "webhook_url": f"{receiver.url}/slack"},
        events=["analytics.completed"],
    )
    test_call = {
        "calling_number": "+442045205757",
        "event": "analytics.completed",
        "event_data": {"satisfaction": 1, "summary": "Refund still missing"},
        "send": True,
    }

    happy = api.post(
        "/api/v1/apps/test-call", {**test_call, "event_data": {"satisfaction": 5}}, format="json"
    )
    unhappy = api.post("/api/v1/apps/test-call", test_call, format="json")

    assert happy.json()["apps"][0]["state"] == "skipped"
    assert unhappy.json()["apps"][0]["state"] == "succeeded"
    assert [r.json() for r in receiver.received] == [
        {"text": "#alerts - Unhappy customer: Refund still missing"}
    ]


@pytest.mark.parametrize(
    ("analytics", "subject"),
    [
        ({"satisfaction": 5, "resolved": True}, "Thank you for your call"),
        ({"satisfaction": 1, "resolved": True}, "We're sorry"),
        ({"satisfaction": 4, "resolved": False}, "More help with your question"),
    ],
)
def test_the_follow_up_email_is_chosen_by_the_outcome(
    tenant, api, make_app, make_contact, mailoutbox, analytics, subject
):
    make_contact(
        tenant, "+442045205757", first_name="Ada", custom_fields={"email": "ada@example.com"}
    )
    make_app(
        "follow-up",
        kind="email",
        config={"escalation_email": "manager@acme.example"},
        events=["analytics.completed"],
    )

    response = api.post(
        "/api/v1/apps/test-call",
        {
            "calling_number": "+442045205757",
            "event": "analytics.completed",
            "event_data": analytics,
            "send": True,
        },
        format="json",
    )

    assert response.json()["apps"][0]["state"] == "succeeded"
    assert [m.subject for m in mailoutbox] == [subject]
    assert mailoutbox[0].to == ["ada@example.com"] and "Hello Ada" in mailoutbox[0].body
    assert mailoutbox[0].cc == (["manager@acme.example"] if subject == "We're sorry" else [])


def test_the_sweeper_runs_again_a_run_whose_worker_died_but_never_resends_an_email(
    tenant, receiver, make_app, end_call
):
    analytics = App.Event.ANALYTICS_COMPLETED
    make_app("hook", config={"url": f"{receiver.url}/hook"}, events=[analytics])
    make_app("follow-up", kind="email", events=[analytics])
    call = end_call()
    long_ago = timezone.now() - app_runs.STALE_RUN - timedelta(seconds=1)
    with tenant_scope(tenant):
        app_runs.app_runs_create(call=call, event=analytics)
        AppRun.objects.filter(call=call).update(started_at=long_ago, attempting_since=long_ago)

    assert app_runs.app_runs_sweep() == 1  # one event to run again
    runs = run_all(tenant, call, analytics)

    assert runs["follow-up"].state == "failed" and "not sent again" in runs["follow-up"].error
    assert runs["hook"].state == "succeeded" and len(receiver.to("/hook")) == 1


def test_a_run_claimed_by_a_live_worker_is_left_alone(tenant, receiver, make_app, end_call):
    make_app("hook", config={"url": f"{receiver.url}/hook"})
    call = end_call()
    with tenant_scope(tenant):
        AppRun.objects.filter(call=call).update(attempting_since=timezone.now())

    assert app_runs.app_runs_sweep() == 0
    assert run_all(tenant, call)["hook"].state == "pending" and not receiver.received
