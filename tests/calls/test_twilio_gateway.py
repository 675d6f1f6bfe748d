"""The Twilio gateway: click-to-call through Twilio's REST API, against the strict fake Twilio.

End to end with a real Celery worker and the live server as the public URL Twilio calls back:
the agent's leg, the customer's, answered, transferred, ended, and the seed 002 callback.
"""

import base64
import time
from urllib.parse import urlencode

import pytest
import requests
from django.utils import timezone

from calls.gateways.twilio import twiml
from calls.gateways.twilio.callbacks import twilio_signature
from calls.gateways.twilio.gateway import leg_event
from calls.models import Call, CallParty, Delivery, GatewayConfig, TelephonyEvent
from core.scoping import tenant_scope
from fakes.twilio import FakeTwilio

CUSTOMER = "+447400123456"
NEW_AGENT = "+447400999888"


def wait_until(condition, timeout: float = 15.0, what: str = ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def fake_twilio():
    fake = FakeTwilio(ring_seconds=0.1)
    fake.start()
    yield fake
    fake.stop()


def use_twilio(tenant, fake: FakeTwilio, **settings) -> None:
    GatewayConfig(
        tenant=tenant,
        engine="twilio",
        credentials=fake.credentials(),
        settings={"api_base_url": fake.url, **settings},
    ).save()


# ----- TwiML and events (pure)


def test_the_agents_twiml_dials_the_customer_with_the_callers_id_and_reports_each_step():
    document = twiml.connect_customer(
        customer=CUSTOMER,
        caller_id="+442079460000",
        status_url="https://cb.example/s?leg=customer",
        after_url="https://cb.example/a",
    )

    assert document == (
        '<?xml version="1.0" encoding="UTF-8"?><Response><Dial callerId="+442079460000" '
        'answerOnBridge="true" action="https://cb.example/a" method="POST"><Number '
        'statusCallback="https://cb.example/s?leg=customer" statusCallbackEvent="initiated '
        f'ringing answered completed" statusCallbackMethod="POST">{CUSTOMER}</Number></Dial>'
        "</Response>"
    )


@pytest.mark.parametrize(
    "leg, form, expected",
    [
        ("agent", {"CallStatus": "initiated"}, None),
        ("agent", {"CallStatus": "ringing"}, ("call.ringing", "agent", "")),
        ("agent", {"CallStatus": "in-progress"}, None),
        ("agent", {"CallStatus": "busy"}, ("call.end", "", "BUSY")),
        ("agent", {"CallStatus": "no-answer"}, ("call.end", "", "NO_ANSWER")),
        ("customer", {"CallStatus": "ringing"}, ("call.ringing", "customer", "")),
        ("customer", {"CallStatus": "in-progress"}, ("call.answered", "", "")),
        ("customer", {"CallStatus": "completed", "CallDuration": "42"}, ("call.end", "", "ANSWER")),
        ("customer", {"CallStatus": "failed"}, ("call.end", "", "FAILED")),
        ("party", {"CallStatus": "in-progress"}, None),
    ],
)
def test_each_legs_progress_becomes_our_event(leg, form, expected):
    call = Call(external_id="ours", direction="outbound", engine_legs={})

    event = leg_event(call, leg, {"CallSid": "CA1", "SequenceNumber": "1", **form})

    if expected is None:
        assert event is None
    else:
        assert (event["type"], event.get("ringing", ""), event.get("status", "")) == expected
        assert event["call_id"] == "ours"
        assert event.get("duration") == (42 if form.get("CallDuration") else None)


def test_the_agents_end_after_the_bridge_leaves_the_call_to_the_customers_leg():
    bridged = Call(external_id="ours", direction="outbound", engine_legs={"customer": "CA2"})
    alone = Call(external_id="ours", direction="outbound", engine_legs={"agent": "CA1"})
    completed = {"CallSid": "CA1", "CallStatus": "completed", "CallDuration": "9"}

    assert leg_event(bridged, "agent", completed) is None
    assert leg_event(alone, "agent", completed)["status"] == "CANCELED"


# ----- the fake is as strict as Twilio


def test_the_fake_refuses_wrong_credentials_unknown_parameters_and_answers_429s(fake_twilio):
    url = f"{fake_twilio.url}/2010-04-01/Accounts/{fake_twilio.account_sid}/Calls.json"
    good = base64.b64encode(f"{fake_twilio.account_sid}:{fake_twilio.auth_token}".encode())
    form = {"To": CUSTOMER, "From": "+442079460000", "Twiml": "<Response/>"}

    def post(data: dict, auth: bytes = good) -> requests.Response:
        headers = {
            "Authorization": f"Basic {auth.decode()}",
            "Content-Type": "application/x-www-form-urlencoded",
        }
        return requests.post(url, data=urlencode(data), headers=headers, timeout=5)

    wrong = post(form, base64.b64encode(f"{fake_twilio.account_sid}:nope".encode()))
    unknown = post({**form, "Colour": "blue"})
    fake_twilio.too_many_requests = 1
    throttled = post(form)

    assert (wrong.status_code, wrong.json()["code"]) == (401, 20003)
    assert (unknown.status_code, unknown.json()["code"]) == (400, 20001)
    assert (throttled.status_code, throttled.json()["code"]) == (429, 20429)
    assert set(throttled.json()) == {"code", "message", "more_info", "status"}


# ----- end to end


@pytest.fixture
def twilio_world(
    live_server, monkeypatch, settings, receiver, fake_twilio, tenant, agent, caller_id
):
    """The tenant on the fake Twilio, with the live server as the public URL and callbacks on."""
    settings.PUBLIC_BASE_URL = live_server.url
    monkeypatch.setenv("PUBLIC_BASE_URL", live_server.url)  # for the worker started after this
    use_twilio(tenant, fake_twilio, record=True)
    tenant.callback_settings.url = f"{receiver.url}/callbacks"
    tenant.callback_settings.save()
    return fake_twilio


@pytest.mark.integration
@pytest.mark.usefixtures("private_urls")
def test_a_call_rings_the_agent_then_the_customer_is_transferred_and_ends_with_the_seed_callback(
    twilio_world, processes, api, call_body, receiver, in_tenant
):
    fake = twilio_world
    processes.worker()
    fake.talk_seconds[NEW_AGENT] = 0.5

    placed = api.post("/api/v1/calls", call_body, format="json")
    assert placed.status_code == 201, placed.json()
    call_id = placed.json()["call_id"]
    call = Call.objects.get(call_id=call_id)

    wait_until(
        lambda: Call.objects.get(call_id=call_id).state == "answered", what="the customer answers"
    )
    moved = api.post(f"/api/v1/calls/{call_id}/transfer", {"to_number": NEW_AGENT}, format="json")
    assert moved.status_code == 200, moved.json()
    (callback,) = receiver.wait_for(1, timeout=20)

    body = callback.json()
    call.refresh_from_db()
    agent_leg, customer_leg = fake.leg_to("+447400000017"), fake.leg_to(CUSTOMER)
    assert (body["call_id"], body["uuid"], body["status"]) == (call_id, "crm-call-42", "ANSWER")
    assert body["customer_number"] == CUSTOMER and isinstance(body["duration"], int)
    assert body["recording_url"], "the bridge was recorded"
    assert call.engine_legs == {
        "agent": agent_leg.sid, "customer": customer_leg.sid, "transferred": NEW_AGENT
    }  # fmt: skip
    assert customer_leg.parent_sid == agent_leg.sid
    assert fake.leg_to(NEW_AGENT).parent_sid == customer_leg.sid
    assert CallParty.objects.get(call=call).number == NEW_AGENT
    kinds = list(call.events.order_by("occurred_at").values_list("kind", flat=True))
    assert kinds == ["initiated", "agent_ringing", "customer_ringing", "answered", "ended"]
    assert fake.errors == [] and all(status == 204 or "/connect" in url or "/after-dial" in url
                                     for url, _, status in fake.callbacks)  # fmt: skip
    # The receiver has the POST a moment before the worker records its answer.
    wait_until(lambda: Delivery.objects.get().state == "succeeded", what="the delivery recorded")


THIRD_PARTY = "+447400777666"


@pytest.mark.integration
@pytest.mark.usefixtures("private_urls")
def test_a_third_party_joins_the_agent_and_customer_in_a_conference_until_the_customer_leaves(
    twilio_world, processes, api, call_body, receiver, in_tenant
):
    fake = twilio_world
    processes.worker()
    call_id = api.post("/api/v1/calls", call_body, format="json").json()["call_id"]
    wait_until(
        lambda: Call.objects.get(call_id=call_id).state == "answered", what="the customer answers"
    )

    added = api.post(f"/api/v1/calls/{call_id}/add-party", {"number": THIRD_PARTY}, format="json")
    room = f"cb-{call_id}"
    everyone = wait_until(lambda: len(fake.in_conference(room)) == 3, what="all three in the room")
    fake.hang_up(CUSTOMER)
    (callback,) = receiver.wait_for(1, timeout=20)

    call = Call.objects.get(call_id=call_id)
    legs = {fake.leg_to(n).sid for n in ("+447400000017", CUSTOMER, THIRD_PARTY)}
    assert added.status_code == 200, added.json()
    assert everyone and fake.in_conference(room) == set()
    assert legs == {
        call.engine_legs["agent"],
        call.engine_legs["customer"],
        call.engine_legs["party"],
    }
    assert all(fake.leg_to(n).status == "completed" for n in ("+447400000017", THIRD_PARTY))
    assert callback.json()["status"] == "ANSWER"
    assert CallParty.objects.get(call=call).kind == "third_party"
    assert fake.errors == []


@pytest.mark.integration
@pytest.mark.usefixtures("private_urls")
def test_an_agent_who_is_busy_ends_the_call_busy_and_the_customer_is_never_dialled(
    twilio_world, processes, api, call_body, receiver, in_tenant
):
    twilio_world.outcomes["+447400000017"] = "busy"
    processes.worker()

    placed = api.post("/api/v1/calls", call_body, format="json")
    (callback,) = receiver.wait_for(1, timeout=20)

    assert placed.status_code == 201
    assert callback.json()["status"] == "BUSY"
    assert twilio_world.leg_to(CUSTOMER) is None


@pytest.mark.django_db(transaction=True)
def test_a_request_without_twilios_signature_is_refused(live_server, settings, fake_twilio, tenant):
    settings.PUBLIC_BASE_URL = live_server.url
    use_twilio(tenant, fake_twilio)
    with tenant_scope(tenant):
        call = Call.objects.create(
            tenant=tenant,
            direction="outbound",
            customer_number=CUSTOMER,
            external_id="x",
            start_time=timezone.now(),
        )
    url = f"{live_server.url}/gateways/twilio/{tenant.pk}/calls/{call.call_id}/status?leg=customer"
    form = {"CallSid": "CA" + "0" * 32, "CallStatus": "in-progress", "SequenceNumber": "2"}

    forged = requests.post(url, data=form, headers={"X-Twilio-Signature": "Zm9yZ2Vk"}, timeout=5)
    unsigned = requests.post(url, data=form, timeout=5)

    assert (forged.status_code, unsigned.status_code) == (403, 403)
    with tenant_scope(tenant):
        assert not TelephonyEvent.objects.exists()


# ----- inbound calls to the tenant's Twilio number


TWILIO_NUMBER = "+442079460000"
CALLER = "+447400555111"


@pytest.mark.integration
@pytest.mark.usefixtures("private_urls")
def test_an_inbound_call_is_routed_by_the_rules_rings_the_agent_and_ends_with_a_callback(
    twilio_world, processes, tenant, agent, receiver, in_tenant, live_server
):
    fake = twilio_world
    agent.extension = "1093"
    agent.save()
    tenant.routing_settings.fallback_extension = "1093"  # no rules: the fallback routes
    tenant.routing_settings.save()
    fake.talk_seconds[agent.phone_number] = 0.5
    processes.worker()

    fake.inbound_call(
        caller=CALLER,
        number=TWILIO_NUMBER,
        voice_url=f"{live_server.url}/gateways/twilio/{tenant.pk}/inbound",
    )
    (callback,) = receiver.wait_for(1, timeout=20)

    body = callback.json()
    agent_leg = fake.leg_to(agent.phone_number)
    call = Call.objects.get(call_id=body["call_id"])
    assert (body["direction"], body["status"], body["customer_number"]) == (
        "inbound", "ANSWER", CALLER
    )  # fmt: skip
    assert agent_leg is not None and agent_leg.status == "completed"
    assert call.external_id == agent_leg.parent_sid
    kinds = list(call.events.order_by("occurred_at").values_list("kind", flat=True))
    assert kinds == ["initiated", "agent_ringing", "answered", "ended"]
    assert fake.errors == []


@pytest.mark.django_db(transaction=True)
def test_an_inbound_call_to_nobody_hears_so_and_an_unsigned_one_is_refused(
    live_server, settings, fake_twilio, tenant
):
    settings.PUBLIC_BASE_URL = live_server.url
    use_twilio(tenant, fake_twilio)
    url = f"{live_server.url}/gateways/twilio/{tenant.pk}/inbound"
    form = {
        "CallSid": "CA" + "1" * 32,
        "From": CALLER,
        "To": TWILIO_NUMBER,
        "CallStatus": "ringing",
    }
    signature = twilio_signature(fake_twilio.auth_token, url, {k: [v] for k, v in form.items()})

    answered = requests.post(url, data=form, headers={"X-Twilio-Signature": signature}, timeout=5)
    unsigned = requests.post(url, data=form, timeout=5)
    elsewhere = requests.post(url.replace("/twilio/", "/simulator/"), data=form, timeout=5)

    assert answered.status_code == 200 and answered.headers["Content-Type"] == "application/xml"
    assert "<Say>" in answered.text and "<Hangup />" in answered.text
    assert answered.headers["X-CallBridge-Route"].startswith("fallback")
    assert (unsigned.status_code, elsewhere.status_code) == (403, 404)
    with tenant_scope(tenant):
        assert [e.type for e in TelephonyEvent.objects.all()] == ["call.start"]
