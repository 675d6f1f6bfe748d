"""POST /api/v1/telephony/events[/{token}]: auth, validation, dedupe, and applying events to calls.

Accepting only stores; these tests then apply the stored events in-process (the worker's code),
in whatever order a test needs. test_end_to_end.py runs the same through a real worker.
"""

from pathlib import Path
from urllib.parse import parse_qs, urlencode

import pytest
from django.db import connection
from rest_framework.test import APIClient

from calls import events, signals
from calls.gateways.twilio.callbacks import twilio_signature
from calls.models import Call, CallEvent, Delivery, TelephonyEvent
from config.celery import app
from core.scoping import tenant_scope

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).parent / "fixtures" / "twilio"
TWILIO_SID = "CA5f3b1e9a0c2d4e6f8a1b3c5d7e9f0a12"


def event(event_id: str = "evt-1", type: str = "call.start", **fields) -> dict:
    return {"id": event_id, "type": type, "call_id": "pbx-42", **fields}


# One inbound call as a phone system reports it: customer 07400 123456 rings our line, agent.017
# answers; every call event repeats what the system knows of the call, the end its whole record.
DETAILS = {
    "direction": "inbound",
    "from": "+447400123456",
    "to": "+442079460000",
    "crm_username": "agent.017",
}
CALL = [
    event("e-start", "call.start", timestamp="2026-07-03T10:00:00Z", **DETAILS),
    event("e-ring", "call.ringing", timestamp="2026-07-03T10:00:01Z", **DETAILS),
    event("e-answer", "call.answered", timestamp="2026-07-03T10:00:09Z", **DETAILS),
    event("e-end", "call.end", status="ANSWER", duration=150, recording=True,
          start_time="2026-07-03T10:00:00Z", timestamp="2026-07-03T10:02:39Z", **DETAILS),
    event("e-analytics", "analytics.completed", satisfaction=2, resolved=False,
          sentiment="negative", summary="Wants a refund", transcript="Caller: I want ...",
          timestamp="2026-07-03T10:03:00Z"),
    event("e-recording", "recording.ready", recording_url="https://pbx.example/rec/42.wav",
          timestamp="2026-07-03T10:03:10Z"),
]  # fmt: skip


@pytest.fixture
def events_url(api) -> str:
    return api.post("/api/v1/telephony/token").json()["url"].removeprefix("http://127.0.0.1:8000")


def process_all(tenant) -> None:
    with tenant_scope(tenant):
        for pk in TelephonyEvent.objects.order_by("pk").values_list("pk", flat=True):
            events.telephony_event_process(event_pk=pk)


def stored(tenant) -> list[TelephonyEvent]:
    with tenant_scope(tenant):
        return list(TelephonyEvent.objects.order_by("pk"))


def test_a_server_key_posts_an_event_that_is_stored_and_answered_202(api, tenant):
    response = api.post("/api/v1/telephony/events", CALL[0], format="json")

    assert response.status_code == 202, response.json()
    assert response.json() == {"id": "e-start", "status": "accepted"}
    [row] = stored(tenant)
    assert (row.event_id, row.type, row.source, row.payload) == (
        "e-start",
        "call.start",
        "json",
        CALL[0],
    )
    assert row.processed_at is None  # processed by the worker, after the answer


def test_the_events_url_needs_no_key_and_stores_for_its_tenant(events_url, tenant):
    response = APIClient().post(events_url, CALL[0], format="json")

    assert response.status_code == 202, response.json()
    assert events_url.startswith("/api/v1/telephony/events/cbe_")
    assert [row.event_id for row in stored(tenant)] == ["e-start"]


def test_without_a_key_the_events_endpoint_is_401(tenant):
    response = APIClient().post("/api/v1/telephony/events", CALL[0], format="json")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_unknown_regenerated_and_deleted_events_urls_are_404(api, events_url, tenant):
    replaced = events_url
    current = (
        api.post("/api/v1/telephony/token").json()["url"].removeprefix("http://127.0.0.1:8000")
    )
    phone_system = APIClient()

    assert phone_system.post(replaced, CALL[0], format="json").status_code == 404
    assert phone_system.post(current[:-3] + "abc", CALL[0], format="json").status_code == 404
    assert phone_system.post(current, CALL[0], format="json").status_code == 202
    assert api.delete("/api/v1/telephony/token").status_code == 204
    gone = phone_system.post(current, CALL[1], format="json")
    assert gone.status_code == 404
    assert gone.json()["error"]["code"] == "not_found"
    assert api.get("/api/v1/telephony/token").status_code == 404
    assert [row.event_id for row in stored(tenant)] == ["e-start"]


@pytest.mark.parametrize(
    "body,field",
    [
        ({"type": "call.start", "call_id": "pbx-42"}, "id"),
        ({"id": "evt-1", "call_id": "pbx-42"}, "type"),
        (event(type="call.transferred"), "type"),
        (event(type="call.end", status="HUNG_UP"), "status"),
        (event(variables=["A-1001"]), "variables"),
        (event(variables={"order": {"nested": 1}}), "variables"),
        (event(variables={f"v{i}": i for i in range(51)}), "variables"),
        ([event()], None),
    ],
)
def test_a_bad_event_is_a_400_naming_the_field_and_nothing_is_written(api, tenant, body, field):
    response = api.post("/api/v1/telephony/events", body, format="json")

    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("invalid", field)
    assert error["message"]
    assert stored(tenant) == []


def test_a_malformed_json_body_is_a_400(api, tenant):
    response = api.post("/api/v1/telephony/events", b"{not json", content_type="application/json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_request"
    assert stored(tenant) == []


def test_an_oversized_event_is_a_413_and_nothing_is_written(api, tenant):
    body = event(type="analytics.completed", transcript="x" * 300_000)

    response = api.post("/api/v1/telephony/events", body, format="json")

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"
    assert stored(tenant) == []


@pytest.mark.parametrize(
    "content_type,body",
    [
        ("text/plain", "id=evt-1"),
        ("application/x-www-form-urlencoded", urlencode(event())),  # form: events URL only
        ("application/xml", "<event/>"),
    ],
)
def test_a_wrong_content_type_is_a_415_and_nothing_is_written(api, tenant, content_type, body):
    response = api.post("/api/v1/telephony/events", body, content_type=content_type)

    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"
    assert stored(tenant) == []


def test_the_same_event_twice_is_stored_and_applied_once(api, tenant):
    first = api.post("/api/v1/telephony/events", CALL[0], format="json")
    again = api.post("/api/v1/telephony/events", dict(reversed(CALL[0].items())), format="json")
    process_all(tenant)
    process_all(tenant)  # a redelivered task, or the sweeper racing the worker

    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json() == {"id": "e-start", "status": "duplicate"}
    assert len(stored(tenant)) == 1
    with tenant_scope(tenant):
        assert Call.objects.count() == 1
        assert CallEvent.objects.count() == 1


def test_an_event_id_reused_for_a_different_event_is_a_409(api, tenant):
    api.post("/api/v1/telephony/events", CALL[0], format="json")

    response = api.post("/api/v1/telephony/events", {**CALL[0], "type": "call.end"}, format="json")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "event_id_conflict"
    assert [row.type for row in stored(tenant)] == ["call.start"]


def test_a_transcript_and_summary_on_the_end_are_kept_without_an_analysis_signal(api, tenant):
    analyzed = []
    signals.call_analyzed.connect(lambda sender, call, **kw: analyzed.append(call), weak=False,
                                  dispatch_uid="test-analyzed")  # fmt: skip
    ended = CALL[3] | {"summary": "Wants a refund", "transcript": "Caller: I want ..."}
    try:
        for body in (CALL[0], ended):
            assert api.post("/api/v1/telephony/events", body, format="json").status_code == 202
        process_all(tenant)
    finally:
        signals.call_analyzed.disconnect(dispatch_uid="test-analyzed")

    with tenant_scope(tenant):
        call = Call.objects.get()
    assert (call.summary, call.transcript) == ("Wants a refund", "Caller: I want ...")
    assert analyzed == []  # apps on analytics.completed wait for that event


def test_an_inbound_call_is_built_from_its_events_with_analytics_and_one_callback(
    api, tenant, agent
):
    tenant.callback_settings.url = "https://crm.example.com/callbacks"
    tenant.callback_settings.save()
    for body in CALL:
        assert api.post("/api/v1/telephony/events", body, format="json").status_code == 202

    process_all(tenant)

    with tenant_scope(tenant):
        call = Call.objects.get()
        delivery = Delivery.objects.get()
    assert (call.external_id, call.direction, call.call_type) == ("pbx-42", "inbound", "server")
    assert (call.customer_number, call.from_number) == ("+447400123456", "+442079460000")
    assert (call.agent, call.crm_username, call.agent_number) == (
        agent,
        "agent.017",
        agent.phone_number,
    )
    assert (call.state, call.status, call.duration) == ("ended", "ANSWER", 150)
    assert (call.satisfaction, call.resolved, call.sentiment) == (2, False, "negative")
    assert (call.summary, call.transcript) == ("Wants a refund", "Caller: I want ...")
    payload = delivery.payload
    assert payload["call_id"] == str(call.call_id)
    assert (payload["status"], payload["duration"], payload["direction"]) == (
        "ANSWER",
        150,
        "inbound",
    )
    assert (payload["start_time"], payload["end_time"]) == (
        "2026-07-03T10:00:00Z",
        "2026-07-03T10:02:39Z",
    )
    assert (payload["customer_number"], payload["crm_username"]) == ("+447400123456", "agent.017")
    assert payload["recording_url"].startswith("http://127.0.0.1:8000/r/")
    call_record = api.get(f"/api/v1/calls/{call.call_id}").json()
    assert call_record["recording_url"] == payload["recording_url"]


def final_call(tenant, order: tuple[int, ...], call_id: str) -> dict:
    for index in order:
        body = {**CALL[index], "id": f"{call_id}-{index}", "call_id": call_id}
        with tenant_scope(tenant):
            row, _ = events.telephony_event_accept(tenant=tenant, body=body, source="json")
            events.telephony_event_process(event_pk=row.pk)
    with tenant_scope(tenant):
        call = Call.objects.get(external_id=call_id)
        callbacks = list(Delivery.objects.filter(call=call).values_list("payload", flat=True))
    fields = ("state", "status", "duration", "start_time", "answer_time", "end_time",
              "customer_number", "from_number", "crm_username", "satisfaction")  # fmt: skip
    return {
        **{name: getattr(call, name) for name in fields},
        "callbacks": [
            {k: v for k, v in c.items() if k not in ("call_id", "recording_url")} for c in callbacks
        ],
        "recording": bool(call.recording.location),
    }


@pytest.mark.parametrize(
    "order",
    [
        (3, 2, 1, 0, 4, 5),  # end first, start last
        (4, 5, 3, 0, 2, 1),  # analytics and recording before the end
        (1, 3, 0, 5, 4, 2),  # the answer after the end
    ],
)
def test_events_in_any_order_build_the_same_call_and_the_same_callback(tenant, agent, order):
    tenant.callback_settings.url = "https://crm.example.com/callbacks"
    tenant.callback_settings.save()

    in_order = final_call(tenant, (0, 1, 2, 3, 4, 5), "in-order")
    shuffled = final_call(tenant, order, "shuffled")

    assert shuffled == in_order
    assert len(in_order["callbacks"]) == 1


@pytest.fixture
def eager_tasks():
    previous, app.conf.task_always_eager = app.conf.task_always_eager, True
    yield
    app.conf.task_always_eager = previous


def test_the_sweeper_applies_events_whose_task_was_lost(api, tenant, settings, eager_tasks):
    settings.TELEPHONY_EVENT_STALE_SECONDS = 0
    api.post("/api/v1/telephony/events", CALL[0], format="json")  # its task never ran

    swept = events.telephony_events_sweep()

    assert swept == 1
    assert stored(tenant)[0].processed_at is not None
    assert events.telephony_events_sweep() == 0
    with tenant_scope(tenant):
        assert Call.objects.get().state == "initiated"


def twilio_post(url: str, name: str, auth_token: str = "", signature: str | None = None):
    body = (FIXTURES / name).read_text().strip()
    headers = {}
    if auth_token:
        params = parse_qs(body, keep_blank_values=True)
        headers["HTTP_X_TWILIO_SIGNATURE"] = signature or twilio_signature(
            auth_token, f"http://127.0.0.1:8000{url}", params
        )
    return APIClient().post(url, body, content_type="application/x-www-form-urlencoded", **headers)


def test_twilio_callbacks_on_the_events_url_become_our_events(events_url, tenant):
    for name in ("ringing", "in_progress", "completed"):
        response = twilio_post(events_url, f"status_inbound_{name}.txt")
        assert response.status_code == 202, response.json()
    ignored = twilio_post(events_url, "recording_in_progress.txt")
    again = twilio_post(events_url, "status_inbound_completed.txt")
    process_all(tenant)

    assert ignored.json() == {"id": None, "status": "ignored"}
    assert again.json()["status"] == "duplicate"
    rows = stored(tenant)
    assert [r.source for r in rows] == ["twilio"] * 3
    assert rows[2].raw["CallSid"] == TWILIO_SID and rows[2].raw["CallDuration"] == "150"
    with tenant_scope(tenant):
        call = Call.objects.get(external_id=TWILIO_SID)
    assert (call.status, call.duration, call.customer_number) == ("ANSWER", 150, "+447400123456")


def test_with_a_twilio_auth_token_only_correctly_signed_callbacks_are_accepted(
    api, events_url, tenant
):
    api.patch("/api/v1/tenant", {"twilio_auth_token": "twilio-secret"}, format="json")
    name = "status_inbound_ringing.txt"

    unsigned = APIClient().post(
        events_url, (FIXTURES / name).read_text().strip(),
        content_type="application/x-www-form-urlencoded",
    )  # fmt: skip
    forged = twilio_post(events_url, name, auth_token="twilio-secret", signature="Zm9yZ2Vk")
    wrong_key = twilio_post(events_url, name, auth_token="another-accounts-token")
    signed = twilio_post(events_url, name, auth_token="twilio-secret")

    assert [r.status_code for r in (unsigned, forged, wrong_key)] == [403, 403, 403]
    assert forged.json()["error"]["code"] == "bad_signature"
    assert signed.status_code == 202, signed.json()
    assert len(stored(tenant)) == 1
    tenant.refresh_from_db()
    assert "twilio_auth_token" not in api.get("/api/v1/tenant").json()


def test_the_twilio_auth_token_is_encrypted_at_rest(api, tenant):
    api.patch("/api/v1/tenant", {"twilio_auth_token": "twilio-secret"}, format="json")

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT twilio_auth_token FROM calls_telephonysettings WHERE tenant_id = %s",
            [tenant.pk],
        )
        stored_value = cursor.fetchone()[0]
    assert stored_value and "twilio-secret" not in stored_value
    tenant.telephony_settings.refresh_from_db()
    assert tenant.telephony_settings.twilio_auth_token == "twilio-secret"


def test_applying_an_event_reads_the_callback_settings_with_the_tenant_not_on_their_own(
    api, tenant, agent
):
    from django.test.utils import CaptureQueriesContext

    tenant.callback_settings.url = "https://crm.example.com/callbacks"
    tenant.callback_settings.save()
    for body in CALL:
        api.post("/api/v1/telephony/events", body, format="json")

    with CaptureQueriesContext(connection) as queries:
        process_all(tenant)

    alone = [q["sql"] for q in queries if q["sql"].startswith('SELECT "calls_callbacksettings"')]
    assert alone == []
    with tenant_scope(tenant):
        assert Delivery.objects.count() == 1
