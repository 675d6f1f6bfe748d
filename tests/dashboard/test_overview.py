"""Overview: live calls with the caller's card, today's counts, health tiles (recorded figures)."""

import json
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from calls.models import Call, CallState
from calls.services import call_event_record, call_hang_up
from connectors.models import Connection, SyncRun
from core import metrics
from core.scoping import tenant_scope

pytestmark = pytest.mark.django_db

ISOLATED_ROUTES = {"", "live", "live/stream", "health"}


@pytest.fixture
def ringing_call(tenant, place_call, make_contact, agent):
    agent.display_name = "Priya Shah"
    agent.save()
    make_contact(
        tenant, "07400 123456", first_name="Ada", last_name="Lovelace", company="Analytical Engines"
    )
    with tenant_scope(tenant):
        return place_call(uuid="live-call-1")


def test_a_live_call_shows_the_caller_from_the_phonebook_agent_and_state(
    admin_client, tenant, ringing_call
):
    ringing = admin_client.get("/app/")
    with tenant_scope(tenant):
        call_event_record(call=ringing_call, kind=CallState.ANSWERED, occurred_at=timezone.now())
    connected = admin_client.get("/app/live", HTTP_HX_REQUEST="true")
    with tenant_scope(tenant):
        call_event_record(
            call=ringing_call, kind=CallState.ENDED, status="ANSWER", occurred_at=timezone.now()
        )
    ended = admin_client.get("/app/live", HTTP_HX_REQUEST="true")

    for text in ("Ada Lovelace", "Analytical Engines", "Priya Shah", "Ringing", "data-since"):
        assert text in ringing.text
    assert "Connected" in connected.text and "<nav" not in connected.text
    assert "No calls in progress" in ended.text
    assert ended.context["today"]["answered"] == 1 and ended.context["today"]["missed"] == 0


def test_todays_satisfaction_out_of_ten_and_resolved_share_come_from_the_analytics(
    admin_client, tenant, place_call, agent
):
    with tenant_scope(tenant):
        for uuid, satisfaction, resolved in (("a", 9, True), ("b", 3, False), ("c", None, None)):
            call = call_hang_up(call=place_call(uuid=uuid))
            Call.objects.filter(pk=call.pk).update(satisfaction=satisfaction, resolved=resolved)

    page = admin_client.get("/app/live", HTTP_HX_REQUEST="true")

    assert "6.0 / 10" in page.text and "2 rated calls" in page.text
    assert '<p class="tile-value" id="resolved-share">50%</p>' in page.text
    assert "Of 2 calls analytics judged" in page.text


def test_the_page_subscribes_to_the_dashboards_own_stream(admin_client):
    response = admin_client.get("/app/")

    assert 'data-live-stream="/app/live/stream"' in response.text
    assert 'hx-get="/app/live" hx-trigger="live-changed"' in response.text


def test_the_stream_is_the_live_feed_of_the_session_tenant_only(
    admin_client, other_client, ringing_call, settings
):
    settings.LIVE_STREAM_SECONDS = 0.2

    def snapshot(client) -> dict:
        response = client.get("/app/live/stream")
        assert response["Content-Type"] == "text/event-stream"
        body = b"".join(response.streaming_content).decode()
        return json.loads(next(line[6:] for line in body.splitlines() if line.startswith("data: ")))

    ours, theirs = snapshot(admin_client), snapshot(other_client)

    assert ours["active"] == 1 and ours["calls"][0]["call_id"] == str(ringing_call.call_id)
    assert (theirs["active"], theirs["calls"]) == (0, [])


def test_anonymous_visitors_get_no_stream(client):
    assert client.get("/app/live/stream").status_code == 302


def test_health_tiles_show_lookups_fallbacks_and_callbacks_recorded_as_they_happen(
    admin_client, api, tenant, ended_call
):
    for _ in range(3):
        assert api.get("/api/v1/lookup", {"number": "+447400123456"}).status_code == 200
    api.post("/api/v1/routing/decide", {"caller": "+447400123456"}, format="json")

    response = admin_client.get("/app/health")

    lookup = response.context["lookup"]
    assert lookup.count == 3 and lookup.p50_ms is not None and lookup.p99_ms >= lookup.p50_ms
    assert "3 lookups, last hour" in response.text
    assert response.context["fallback_percent"] == "100.0%"  # no rules: every call falls back
    assert "1 of 1 decision, last hour" in response.text
    assert response.context["callback_percent"] == "100.0%"
    assert "1 callback finished, last 24 h" in response.text


def test_connections_show_their_sync_lag_and_last_error(admin_client, tenant):
    with tenant_scope(tenant):
        fresh = Connection.objects.create(tenant=tenant, provider="hubspot", name="HubSpot EU")
        run = SyncRun.objects.create(tenant=tenant, connection=fresh, kind="incremental")
        SyncRun.objects.filter(pk=run.pk).update(
            outcome="succeeded", finished_at=timezone.now() - timedelta(minutes=7)
        )
        Connection.objects.create(
            tenant=tenant,
            provider="hubspot",
            name="HubSpot US",
            status="needs_attention",
            last_error="HubSpot refused the token (401).",
        )

    response = admin_client.get("/app/")

    assert "HubSpot EU" in response.text and "7\xa0minutes ago" in response.text
    assert "HubSpot US" in response.text and "never" in response.text
    assert "HubSpot refused the token (401)." in response.text


def test_without_redis_the_figures_are_kept_in_the_cache(admin_client, api, settings):
    settings.REDIS_URL = ""  # the embedded setup of bin/run: a file cache
    api.get("/api/v1/lookup", {"number": "+447400123456"})

    response = admin_client.get("/app/health")

    assert "1 lookup, last hour" in response.text
    assert response.context["lookup"].p50_ms is not None


def test_with_redis_down_the_tiles_say_nothing_was_recorded(admin_client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"

    response = admin_client.get("/app/health")

    assert response.status_code == 200
    assert response.text.count("Not recorded: Redis is unavailable") == 3


def test_recording_never_fails_the_caller_and_pauses_when_redis_is_down(settings, monkeypatch):
    monkeypatch.setattr(metrics, "_paused_until", 0.0)
    monkeypatch.setattr(metrics, "_written_at", 0.0)  # due: this sample is written at once
    settings.REDIS_URL = "redis://127.0.0.1:1/0"

    metrics.record(1, "lookup", 3.0)

    assert metrics._paused_until > time.monotonic()  # the next samples skip Redis for a while
    assert metrics.summary(1, "lookup") is None


def test_samples_are_added_up_in_the_process_and_written_once_a_second(settings, monkeypatch):
    monkeypatch.setattr(metrics, "_written_at", time.monotonic())  # just written: not due
    key = metrics._key(4242, "lookup", int(time.time() // 60))
    client = metrics._client(settings.REDIS_URL)
    client.delete(key)

    for _ in range(3):
        metrics.record(4242, "lookup", 2.0)
    unwritten = client.hgetall(key)
    metrics.flush()

    assert unwritten == {}
    assert client.hgetall(key) == {b"1": b"3"}


def test_percentiles_come_from_the_latency_buckets(settings, tenant):
    for latency in [1] * 98 + [40, 4000]:
        metrics.record(tenant.pk, "lookup", latency)

    summary = metrics.summary(tenant.pk, "lookup")

    assert (summary.count, summary.p50_ms, summary.p99_ms) == (100, 1, 50)


def test_another_tenants_member_sees_none_of_it(other_client, ringing_call, ended_call):
    overview = other_client.get("/app/")
    live = other_client.get("/app/live")
    health = other_client.get("/app/health")

    assert "Ada Lovelace" not in overview.text and "Ada Lovelace" not in live.text
    assert overview.context["today"]["missed"] == 0
    assert health.context["callbacks"].count == 0
