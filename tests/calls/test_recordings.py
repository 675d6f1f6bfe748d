"""Recording URLs: unguessable per call, served by us (redirect), revocable, tenant-scoped."""

import hashlib

import pytest
from django.db import connection
from rest_framework.test import APIClient

from calls import events
from calls.gateways.simulator.gateway import simulator_step
from calls.models import Call, CallState, Delivery, Recording, TelephonyEvent
from core.scoping import tenant_scope

pytestmark = pytest.mark.django_db

BASE = "http://127.0.0.1:8000"


@pytest.fixture(autouse=True)
def _scoped(in_tenant) -> None:
    """Assertions read the calling tenant's rows."""


def inbound_event(tenant, **fields) -> Call:
    """Accept and apply one event of call pbx-7 the way the worker does."""
    body = {"id": f"e-{fields['type']}", "call_id": "pbx-7", "from": "+447400123456", **fields}
    with tenant_scope(tenant):
        row, _ = events.telephony_event_accept(tenant=tenant, body=body, source="json")
        events.telephony_event_process(event_pk=row.pk)
        return TelephonyEvent.objects.get(pk=row.pk).call


def play(call: Call, step: int) -> None:
    """One simulator step, and its event applied the way the worker does."""
    simulator_step(call_id=str(call.call_id), step=step)
    for row in TelephonyEvent.objects.filter(processed_at__isnull=True):
        events.telephony_event_process(event_pk=row.pk)


def simulate(call: Call) -> Call:
    """Play the simulator's whole sequence for the call here, without waiting between steps."""
    for step in range(5):
        play(call, step)
    call.refresh_from_db()
    assert call.state == CallState.ENDED
    return call


@pytest.fixture
def recorded(api, call_body, place_call):
    """Simulated calls are recorded; each of seed 002's outcomes has its own number."""
    outcomes = [
        {"pattern": f"+4474001234{digit}?", "status": status}
        for digit, status in ((1, "NO_ANSWER"), (2, "BUSY"), (3, "FAILED"), (4, "CANCELED"))
    ]
    api.patch(
        "/api/v1/tenant",
        {"simulator_recording": True, "simulator_outcomes": outcomes},
        format="json",
    )
    return place_call


def path_of(url: str) -> str:
    return url.removeprefix(BASE)


def test_the_simulator_records_an_answered_call_when_the_tenant_turns_recording_on(api, recorded):
    call = recorded()
    assert api.get(f"/api/v1/calls/{call.call_id}").json()["recording_url"] is None  # ringing

    simulate(call)
    record = api.get(f"/api/v1/calls/{call.call_id}").json()
    audio = APIClient().get(path_of(record["recording_url"]))

    assert record["status"] == "ANSWER"
    assert record["recording_url"].startswith(f"{BASE}/r/")
    assert audio.status_code == 200
    assert audio["Content-Type"] == "audio/wav" and audio.content[:4] == b"RIFF"
    assert audio["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    ("to_number", "status"),
    [
        ("07400 123410", "NO_ANSWER"),
        ("07400 123420", "BUSY"),
        ("07400 123430", "FAILED"),
        ("07400 123440", "CANCELED"),
    ],
)
def test_a_simulated_call_that_never_connected_has_no_recording(api, recorded, to_number, status):
    call = simulate(recorded(to_number=to_number))

    assert api.get(f"/api/v1/calls/{call.call_id}").json()["status"] == status
    assert api.get(f"/api/v1/calls/{call.call_id}").json()["recording_url"] is None
    assert api.get(f"/api/v1/calls/{call.call_id}/recording").status_code == 404
    assert not Recording.objects.exists()


def test_a_call_hung_up_before_the_answer_has_no_recording(api, recorded):
    call = recorded()
    play(call, 0)  # the agent's phone rings

    api.post(f"/api/v1/calls/{call.call_id}/hangup")
    simulate(call)

    assert api.get(f"/api/v1/calls/{call.call_id}").json()["status"] == "CANCELED"
    assert not Recording.objects.exists()


def test_without_recording_a_call_has_no_recording_url(api, place_call):
    call = place_call()

    assert api.get(f"/api/v1/calls/{call.call_id}").json()["recording_url"] is None
    assert api.get(f"/api/v1/calls/{call.call_id}/recording").status_code == 404


def test_the_url_is_unguessable_and_stored_only_hashed_and_encrypted(api, recorded):
    calls = [simulate(recorded(uuid=f"crm-{n}")) for n in range(2)]
    urls = [api.get(f"/api/v1/calls/{c.call_id}").json()["recording_url"] for c in calls]
    tokens = [url.rsplit("/", 1)[1] for url in urls]

    assert len(set(tokens)) == 2
    assert all(len(token) >= 43 for token in tokens)  # 256 random bits
    assert all(
        str(c.call_id) not in url and token != str(c.pk)
        for c, url, token in zip(calls, urls, tokens, strict=True)
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT token_hash, token FROM calls_recording")
        rows = cursor.fetchall()
    assert {row[0] for row in rows} == {hashlib.sha256(t.encode()).hexdigest() for t in tokens}
    assert not any(t in str(rows) for t in tokens)
    guess = tokens[0][:-2] + ("AA" if not tokens[0].endswith("AA") else "BB")
    assert APIClient().get(f"/r/{guess}").status_code == 404
    assert APIClient().get("/r/").status_code == 404


def test_a_phone_system_recording_answers_503_until_ready_then_redirects(api, tenant):
    call = inbound_event(tenant, type="call.start", recording=True)
    url = api.get(f"/api/v1/calls/{call.call_id}/recording").json()["url"]

    pending = APIClient().get(path_of(url))
    inbound_event(tenant, type="recording.ready", recording_url="https://pbx.example/rec/7.wav")
    ready = APIClient().get(path_of(url))

    assert (pending.status_code, pending["Retry-After"]) == (503, "30")
    assert ready.status_code == 302
    assert ready["Location"] == "https://pbx.example/rec/7.wav"
    assert (ready["Cache-Control"], ready["Referrer-Policy"]) == ("no-store", "no-referrer")
    assert api.get(f"/api/v1/calls/{call.call_id}/recording").json()["ready"] is True


def test_the_tenant_revokes_a_recording_url_for_good(api, tenant):
    tenant.callback_settings.url = "https://crm.example.com/callbacks"
    tenant.callback_settings.save()
    call = inbound_event(tenant, type="recording.ready", recording_url="https://pbx.example/7.wav")
    url = api.get(f"/api/v1/calls/{call.call_id}").json()["recording_url"]
    assert APIClient().get(path_of(url)).status_code == 302

    revoked = api.delete(f"/api/v1/calls/{call.call_id}/recording")
    inbound_event(tenant, type="call.end", status="NO_ANSWER")

    assert revoked.status_code == 200
    assert (revoked.json()["url"], revoked.json()["revoked_at"] is not None) == (None, True)
    assert APIClient().get(path_of(url)).status_code == 404
    assert api.get(f"/api/v1/calls/{call.call_id}").json()["recording_url"] is None
    with tenant_scope(tenant):
        assert Delivery.objects.get().payload["recording_url"] is None
        assert Recording.objects.get().location == "https://pbx.example/7.wav"


def test_a_deactivated_tenants_recordings_are_gone(api, tenant):
    call = inbound_event(tenant, type="recording.ready", recording_url="https://pbx.example/7.wav")
    url = api.get(f"/api/v1/calls/{call.call_id}").json()["recording_url"]
    tenant.is_active = False
    tenant.save()

    assert APIClient().get(path_of(url)).status_code == 404


def test_only_get_and_head_reach_a_recording(api, tenant):
    call = inbound_event(tenant, type="recording.ready", recording_url="https://pbx.example/7.wav")
    url = path_of(api.get(f"/api/v1/calls/{call.call_id}").json()["recording_url"])

    assert APIClient().head(url).status_code == 302
    assert APIClient().post(url).status_code == 405
