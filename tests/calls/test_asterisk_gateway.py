"""The Asterisk (ARI) gateway, against the strict fake ARI (REST and its events WebSocket).

End to end with the processes the Procfile runs: a real Celery worker and `manage.py ari_events`
reading the app's socket: the agent's leg, the customer's, bridged, transferred, ended, and the
seed 002 callback; a socket dropped mid-call loses no state change.
"""

import base64
import json
import time
from urllib.parse import urlsplit

import pytest
import requests
from websockets.sync.client import connect

from calls.gateways import GatewayConfigError, gateway_class
from calls.gateways.asterisk.events import _meaning
from calls.models import Call, CallParty, Delivery, GatewayConfig
from fakes.asterisk import FakeAsterisk

CUSTOMER = "+447400123456"
AGENT = "agent.017"  # the agent's endpoint: PJSIP/<crm_username> (no extension set)
NEW_AGENT = "+447400999888"
THIRD_PARTY = "+447400777666"
SETTINGS = {"agent_endpoint": "PJSIP/{extension}", "customer_endpoint": "PJSIP/{number}@trunk"}


def wait_until(condition, timeout: float = 20.0, what: str = ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def fake_ari():
    fake = FakeAsterisk(ring_seconds=0.1)
    fake.start()
    yield fake
    fake.stop()


# ----- configuration and the meaning of events (no network)


@pytest.mark.parametrize(
    ("credentials", "options", "field"),
    [
        ({}, {"ari_url": "https://pbx.example.com", **SETTINGS}, "credentials"),
        ({"username": "u", "password": "p"}, {"ari_url": "ftp://pbx", **SETTINGS}, "settings"),
        ({"username": "u", "password": "p"}, {"ari_url": "https://pbx.example.com"}, "settings"),
        (
            {"username": "u", "password": "p"},
            {"ari_url": "https://pbx.example.com", **SETTINGS, "app": "no spaces"},
            "settings",
        ),
    ],
)
def test_a_configuration_asterisk_cannot_use_is_refused_with_what_to_fix(
    credentials, options, field
):
    with pytest.raises(GatewayConfigError) as refused:
        gateway_class("asterisk").check_config(credentials, options)
    assert refused.value.field == field


def test_the_private_address_of_a_pbx_is_refused_unless_private_urls_are_allowed(settings):
    settings.ALLOW_PRIVATE_URLS = False
    good = {"username": "u", "password": "p"}
    with pytest.raises(GatewayConfigError, match="ari_url"):
        gateway_class("asterisk").check_config(
            good, {"ari_url": "http://10.0.0.5:8088", **SETTINGS}
        )


def _call(**legs) -> Call:
    return Call(call_id="5b0c6f0e-0000-4000-8000-000000000001", external_id="x", engine_legs=legs)


RINGING = {"type": "ChannelStateChange", "channel": {"state": "Ringing"}}
UP = {"type": "StasisStart", "channel": {}}


def gone(cause: int) -> dict:
    return {"type": "ChannelDestroyed", "channel": {}, "cause": cause}


BRIDGED = {"customer": "c", "answered": True}
TRANSFERRED = {"party1": NEW_AGENT, "transferred": NEW_AGENT}


@pytest.mark.parametrize(
    ("legs", "leg", "message", "event", "step"),
    [
        ({}, "agent", RINGING, ("call.ringing", None), ""),
        ({}, "agent", UP, None, "dial_customer"),
        ({}, "agent", gone(17), ("call.end", "BUSY"), ""),
        ({}, "agent", gone(19), ("call.end", "NO_ANSWER"), ""),
        ({}, "agent", gone(20), ("call.end", "FAILED"), ""),
        ({"customer": "c"}, "agent", gone(16), None, "hang_up:customer"),
        ({"customer": "c"}, "customer", UP, ("call.answered", None), "bridge"),
        (BRIDGED, "customer", gone(16), ("call.end", "ANSWER"), "hang_up_rest"),
        ({"customer": "c"}, "customer", gone(19), ("call.end", "NO_ANSWER"), "hang_up_rest"),
        ({"bridge": "b"}, "party1", UP, None, "join:party1"),
        (TRANSFERRED, "party1", gone(16), None, "hang_up:customer"),
        ({}, "agent", {"type": "Dial", "peer": {}, "dialstatus": "RINGING"}, None, ""),
    ],
)
def test_each_ari_event_reads_as_our_event_and_the_next_step(legs, leg, message, event, step, db):
    call = _call(**legs)
    call.save = lambda **kwargs: None  # _meaning notes an answer on the (unsaved) call

    ours, next_step = _meaning(call, leg, message)

    assert next_step == step
    if event is None:
        assert ours is None
    else:
        assert (ours["type"], ours.get("status")) == event
        assert ours["id"] == f"ari:cb-{call.call_id}-{leg}:{ours['type'].split('.')[1]}"


# ----- the fake is strict


def ari(fake: FakeAsterisk, method: str, path: str, auth=None, **params) -> requests.Response:
    auth = auth or (fake.username, fake.password)
    return requests.request(method, f"{fake.url}/ari/{path}", params=params, auth=auth, timeout=5)


def test_the_fake_refuses_what_asterisk_refuses(fake_ari):
    fake = fake_ari
    dial = {"endpoint": "PJSIP/1", "app": "x"}

    anonymous = ari(fake, "POST", "channels", auth=("", ""), **dial)
    reader = ari(fake, "POST", "bridges", auth=("reader", "reader-pass"))
    no_endpoint = ari(fake, "POST", "channels", app="x")
    bad_endpoint = ari(fake, "POST", "channels", endpoint="1001", app="x")
    neither = ari(fake, "POST", "channels", endpoint="PJSIP/1001")
    no_socket = ari(fake, "POST", "channels", **dial)
    gone = ari(fake, "DELETE", "channels/nope")
    key = f"{fake.username}:{fake.password}"
    by_key = requests.get(f"{fake.url}/ari/applications/x", params={"api_key": key}, timeout=5)

    assert anonymous.status_code == 401 and "Basic" in anonymous.headers["WWW-Authenticate"]
    assert reader.status_code == 403 and reader.json() == {"message": "Write access denied"}
    assert no_endpoint.json() == {"message": "Endpoint must be specified"}
    assert bad_endpoint.json() == {"message": "Invalid endpoint specified"}
    assert neither.json() == {"message": "Application or extension must be specified"}
    assert no_socket.status_code == 400
    assert gone.status_code == 404 and gone.json() == {"message": "Channel not found"}
    assert by_key.status_code == 200 and by_key.json()["channel_ids"] == []


def test_the_fakes_socket_plays_a_channel_and_refuses_bridging_one_not_in_stasis(fake_ari):
    fake = fake_ari
    header = "Basic " + base64.b64encode(f"{fake.username}:{fake.password}".encode()).decode()
    ws_url = fake.url.replace("http", "ws") + "/ari/events?app=cb"
    fake.outcomes["1001"] = "no-answer"
    with connect(ws_url, additional_headers={"Authorization": header}) as events:
        made = ari(fake, "POST", "channels", endpoint="PJSIP/1001", app="cb", channelId="c1")
        again = ari(fake, "POST", "channels", endpoint="PJSIP/1001", app="cb", channelId="c1")
        ari(fake, "POST", "bridges", bridgeId="b1")
        ringing = ari(fake, "POST", "bridges/b1/addChannel", channel="c1")
        kinds = []
        while not kinds or kinds[-1] != "ChannelDestroyed":
            kinds.append(json.loads(events.recv(timeout=5))["type"])

    assert made.status_code == 200 and made.json()["id"] == "c1"
    assert again.status_code == 409
    assert ringing.status_code == 422
    assert kinds == ["ChannelCreated", "Dial", "Dial", "ChannelStateChange", "Dial",
                     "ChannelHangupRequest", "ChannelDestroyed"]  # fmt: skip


# ----- end to end: the worker, the events listener and the fake


@pytest.fixture
def kept_recordings(monkeypatch, settings, tmp_path):
    """Where the worker (started after this) and this process keep recordings' copies."""
    monkeypatch.setenv("RECORDINGS_DIR", str(tmp_path / "kept"))
    settings.STORAGES = {
        **settings.STORAGES,
        "recordings": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "kept")},
        },
    }
    return tmp_path / "kept"


@pytest.fixture
def asterisk_world(kept_recordings, receiver, fake_ari, tenant, agent, caller_id):
    GatewayConfig(
        tenant=tenant,
        engine="asterisk",
        credentials=fake_ari.credentials(),
        settings={"ari_url": fake_ari.url, "app": "callbridge", "record": True, **SETTINGS},
    ).save()
    tenant.callback_settings.url = f"{receiver.url}/callbacks"
    tenant.callback_settings.save()
    return fake_ari


@pytest.fixture
def running(asterisk_world, processes):
    """The worker and the events listener, once the listener holds the app's socket."""
    processes.worker()
    processes.manage("ari_events", "--rescan", "0.5")
    wait_until(lambda: asterisk_world.connected("callbridge"), what="the listener connects")
    return asterisk_world


@pytest.mark.integration
@pytest.mark.usefixtures("private_urls")
def test_a_call_rings_the_agent_then_the_customer_is_transferred_and_ends_with_the_seed_callback(
    running, api, client, call_body, receiver, in_tenant, kept_recordings
):
    fake = running
    fake.talk_seconds[NEW_AGENT] = 0.5

    placed = api.post("/api/v1/calls", call_body, format="json")
    assert placed.status_code == 201, placed.json()
    call_id = placed.json()["call_id"]
    wait_until(lambda: Call.objects.get(call_id=call_id).state == "answered", what="an answer")
    moved = api.post(f"/api/v1/calls/{call_id}/transfer", {"to_number": NEW_AGENT}, format="json")
    (callback,) = receiver.wait_for(1, timeout=30)

    call = Call.objects.get(call_id=call_id)
    body = callback.json()
    assert moved.status_code == 200, moved.json()
    assert (body["call_id"], body["uuid"], body["status"]) == (call_id, "crm-call-42", "ANSWER")
    assert body["customer_number"] == CUSTOMER and isinstance(body["duration"], int)
    assert fake.channel_to(AGENT).destroyed, "the agent left when the transfer was answered"
    assert fake.channel_to(CUSTOMER).destroyed and fake.channel_to(NEW_AGENT).destroyed
    assert call.engine_legs["transferred"] == NEW_AGENT
    assert CallParty.objects.get(call=call).number == NEW_AGENT
    kinds = list(call.events.order_by("occurred_at").values_list("kind", flat=True))
    assert kinds == ["initiated", "agent_ringing", "customer_ringing", "answered", "ended"]
    # The receiver has the POST a moment before the worker records its answer.
    wait_until(lambda: Delivery.objects.get().state == "succeeded", what="the delivery recorded")
    # The bridge was recorded; ARI keeps the file behind its login, so it is copied to ours.
    link = urlsplit(body["recording_url"]).path
    audio = wait_until(lambda: (r := client.get(link)).status_code == 200 and r, what="the copy")
    assert audio["Content-Type"] == "audio/wav"
    assert b"".join(audio.streaming_content) == fake.stored[f"cb-{call_id}"]
    assert list(kept_recordings.glob("*/*.wav"))


@pytest.mark.integration
@pytest.mark.usefixtures("private_urls")
def test_a_third_party_joins_the_bridge_and_the_call_ends_when_the_customer_leaves(
    running, api, call_body, receiver, in_tenant
):
    fake = running
    call_id = api.post("/api/v1/calls", call_body, format="json").json()["call_id"]
    wait_until(lambda: Call.objects.get(call_id=call_id).state == "answered", what="an answer")

    added = api.post(f"/api/v1/calls/{call_id}/add-party", {"number": THIRD_PARTY}, format="json")
    bridge = f"cb-{call_id}"
    everyone = wait_until(lambda: len(fake.bridges.get(bridge, ())) == 3, what="three bridged")
    fake.hang_up(CUSTOMER)
    (callback,) = receiver.wait_for(1, timeout=30)

    assert added.status_code == 200, added.json()
    assert everyone
    assert callback.json()["status"] == "ANSWER"
    wait_until(lambda: fake.channel_to(AGENT).destroyed and fake.channel_to(THIRD_PARTY).destroyed,
               what="the others hung up with the customer")  # fmt: skip


@pytest.mark.integration
@pytest.mark.usefixtures("private_urls")
def test_an_agent_who_is_busy_ends_the_call_busy_and_the_customer_is_never_dialled(
    running, api, call_body, receiver, in_tenant
):
    running.outcomes[AGENT] = "busy"

    placed = api.post("/api/v1/calls", call_body, format="json")
    (callback,) = receiver.wait_for(1, timeout=30)

    assert placed.status_code == 201
    assert callback.json()["status"] == "BUSY"
    assert running.channel_to(CUSTOMER) is None


@pytest.mark.integration
@pytest.mark.usefixtures("private_urls")
def test_a_socket_dropped_mid_call_loses_no_state_change(
    running, api, call_body, receiver, in_tenant
):
    fake = running
    call_id = api.post("/api/v1/calls", call_body, format="json").json()["call_id"]
    wait_until(lambda: Call.objects.get(call_id=call_id).state == "answered", what="an answer")

    fake.drop_sockets()
    fake.hang_up(CUSTOMER)  # while nobody listens: Asterisk drops these events
    (callback,) = receiver.wait_for(1, timeout=30)

    assert any(event["type"] == "ChannelDestroyed" for event in fake.lost)
    assert callback.json()["status"] == "ANSWER"
    assert wait_until(lambda: fake.connected("callbridge"), what="the listener reconnects")
    wait_until(lambda: fake.channel_to(AGENT).destroyed, what="the agent hung up after it")


@pytest.mark.integration
@pytest.mark.usefixtures("private_urls")
def test_a_call_hung_up_from_the_api_hangs_up_every_leg(
    running, api, call_body, receiver, in_tenant
):
    fake = running
    call_id = api.post("/api/v1/calls", call_body, format="json").json()["call_id"]
    wait_until(lambda: Call.objects.get(call_id=call_id).state == "answered", what="an answer")

    ended = api.post(f"/api/v1/calls/{call_id}/hangup", format="json")
    (callback,) = receiver.wait_for(1, timeout=30)

    assert ended.status_code == 200, ended.json()
    assert callback.json()["status"] == "ANSWER"
    wait_until(lambda: fake.channel_to(AGENT).destroyed and fake.channel_to(CUSTOMER).destroyed,
               what="both legs hung up")  # fmt: skip
