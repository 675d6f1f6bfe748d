"""End to end: PostgreSQL, Redis, a real Celery worker (and beat) and a real callback receiver.

A server-to-server call goes through the simulator in the worker; its result arrives at the
receiver exactly as seed 002 describes, retried on the seed's schedule, and survives a killed
worker.
"""

import itertools
import os
import signal
import time
from pathlib import Path

import pytest
from django.db import connection
from rest_framework.test import APIClient

from calls.lifecycle import CALLBACK_FIELDS
from calls.models import Attempt, Call, CallEvent, Delivery, TelephonyEvent
from core.scoping import tenant_scope
from tests.calls.test_signing import verify

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("private_urls")]

SEED_FIELDS = {
    "call_id",
    "uuid",
    "status",
    "duration",
    "customer_number",
    "agent_number",
    "crm_username",
    "call_type",
    "disposition",
    "direction",
    "start_time",
    "end_time",
    "recording_url",
}


def logs(tmp_path: Path) -> str:
    return "\n".join(p.read_text() for p in sorted(tmp_path.glob("*.log")))


def deliveries_when_done(timeout: float = 10) -> list[Delivery]:
    """The deliveries once none is pending: a worker records an outcome after its POST arrived."""
    deadline = time.monotonic() + timeout
    while Delivery.objects.filter(state="pending").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    return list(Delivery.objects.all())


@pytest.fixture
def callback_setup(api, receiver) -> str:
    """Point the tenant's callbacks at the receiver, with short simulated calls; its secret."""
    response = api.patch(
        "/api/v1/tenant",
        {
            "callback_url": f"{receiver.url}/callbacks",
            "callback_auth_header": "Authorization",
            "callback_auth_value": "Bearer crm-token",
            "simulator_ring_seconds": 0.2,
            "simulator_talk_seconds": 1.0,
            "simulator_outcomes": [
                {"pattern": f"+4474001234{digit}?", "status": status}
                for digit, status in (
                    (1, "NO_ANSWER"),
                    (2, "BUSY"),
                    (3, "FAILED"),
                    (4, "CANCELED"),
                )
            ],
        },
        format="json",
    )
    assert response.status_code == 200, response.json()
    return api.post("/api/v1/tenant/signing-secret").json()["signing_secret"]


def test_a_server_call_is_simulated_and_its_result_pushed_exactly_once_per_uuid(
    api, call_body, callback_setup, receiver, processes, tenant, tmp_path
):
    processes.worker("--purge")
    first = api.post("/api/v1/calls", call_body, format="json")
    again = api.post("/api/v1/calls", call_body, format="json")
    others = {
        status: api.post(
            "/api/v1/calls",
            {**call_body, "to_number": f"07400 1234{digit}0", "uuid": f"crm-{status}"},
            format="json",
        )
        for digit, status in ((1, "NO_ANSWER"), (2, "BUSY"), (3, "FAILED"), (4, "CANCELED"))
    }

    received = receiver.wait_for(5, timeout=30)
    time.sleep(1.5)  # room for a duplicate to show up, had there been one

    assert (first.status_code, again.status_code) == (201, 200), logs(tmp_path)
    assert first.json()["call_id"] == again.json()["call_id"]
    assert len(receiver.received) == 5, logs(tmp_path)
    by_uuid = {r.json()["uuid"]: r for r in received}
    answered = by_uuid["crm-call-42"]
    payload = answered.json()
    assert set(payload) == SEED_FIELDS == set(CALLBACK_FIELDS)
    assert payload["call_id"] == first.json()["call_id"]
    assert payload["status"] == "ANSWER"
    assert payload["duration"] in (1, 2)  # 1 s of simulated talk, give or take a busy worker
    assert payload["customer_number"] == "+447400123456"
    assert (payload["crm_username"], payload["agent_number"]) == ("agent.017", "+447400000017")
    assert (payload["call_type"], payload["direction"]) == ("server", "outbound")
    assert payload["disposition"] == "CRM_CALL"
    assert payload["start_time"].endswith("Z") and payload["end_time"].endswith("Z")
    assert payload["recording_url"] is None
    assert answered.headers["authorization"] == "Bearer crm-token"
    assert verify(callback_setup, answered.headers, answered.body)
    for status, response in others.items():
        result = by_uuid[f"crm-{status}"].json()
        assert (result["status"], result["duration"]) == (status, 0)
        assert result["call_id"] == response.json()["call_id"]
    with tenant_scope(tenant):
        call = Call.objects.get(call_id=payload["call_id"])
        kinds = list(
            CallEvent.objects.filter(call=call)
            .order_by("occurred_at")
            .values_list("kind", flat=True)
        )
        assert kinds == ["initiated", "agent_ringing", "customer_ringing", "answered", "ended"]
        assert answered.headers["webhook-id"] == str(Delivery.objects.get(call=call).pk)
        assert {d.state for d in deliveries_when_done()} == {"succeeded"}, logs(tmp_path)


def test_failed_pushes_are_retried_after_1_2_and_4_seconds_with_the_same_id(
    api, call_body, callback_setup, receiver, processes, tenant, tmp_path
):
    processes.worker("--purge")
    receiver.script = [503, 500, 504, 200]

    api.post("/api/v1/calls", call_body, format="json")
    received = receiver.wait_for(4, timeout=40)

    assert len(received) == 4, logs(tmp_path)
    gaps = [round(b.at - a.at, 3) for a, b in itertools.pairwise(received)]
    print(f"measured retry gaps: {gaps}")
    for gap, expected in zip(gaps, (1, 2, 4), strict=True):
        assert expected - 0.05 <= gap <= expected + 0.5, gaps
    assert len({r.headers["webhook-id"] for r in received}) == 1
    assert len({r.body for r in received}) == 1
    assert all(verify(callback_setup, r.headers, r.body) for r in received)
    with tenant_scope(tenant):
        [delivery] = deliveries_when_done()
        assert delivery.state == "succeeded", logs(tmp_path)
        assert [a.status_code for a in delivery.attempts.all()] == [503, 500, 504, 200]


def test_a_push_survives_its_worker_being_killed_mid_delivery(
    api, call_body, callback_setup, receiver, processes, tenant, tmp_path
):
    first_worker = processes.worker("--purge")
    processes("beat", "-l", "INFO", "--pidfile=", f"--schedule={tmp_path}/beat", name="beat")
    receiver.script = ["stall"]  # the first request hangs, as a slow CRM would

    api.post("/api/v1/calls", call_body, format="json")
    assert len(receiver.wait_for(1, timeout=30)) == 1, logs(tmp_path)
    os.killpg(first_worker.pid, signal.SIGKILL)
    first_worker.wait(timeout=10)
    processes.worker()
    received = receiver.wait_for(2, timeout=40)

    assert len(received) == 2, logs(tmp_path)
    assert received[0].headers["webhook-id"] == received[1].headers["webhook-id"]
    assert received[0].body == received[1].body
    assert verify(callback_setup, received[1].headers, received[1].body)
    with tenant_scope(tenant):
        [delivery] = deliveries_when_done()
        assert delivery.state == "succeeded", logs(tmp_path)
        attempts = list(Attempt.objects.filter(delivery=delivery).order_by("number"))
        assert [(a.error_class, a.status_code) for a in attempts] == [
            ("interrupted", None),
            ("", 200),
        ]


def test_an_inbound_call_reported_out_of_order_gets_exactly_one_callback(
    api, agent, callback_setup, receiver, processes, tenant, tmp_path
):
    processes.worker("--purge")
    events_url = (
        api.post("/api/v1/telephony/token").json()["url"].removeprefix("http://127.0.0.1:8000")
    )
    details = {"call_id": "pbx-77", "direction": "inbound", "from": "07400 123456",
               "to": "+442079460000", "crm_username": "agent.017"}  # fmt: skip
    end = {"id": "e-end", "type": "call.end", "status": "ANSWER", "duration": 150,
           "recording": True, "start_time": "2026-07-03T10:00:00Z",
           "timestamp": "2026-07-03T10:02:39Z", **details}  # fmt: skip
    sent = [
        end,
        {"id": "e-start", "type": "call.start", "timestamp": "2026-07-03T10:00:00Z", **details},
        end,  # the phone system retried
        {"id": "e-answer", "type": "call.answered", "timestamp": "2026-07-03T10:00:09Z",
         **details},
        {"id": "e-analytics", "type": "analytics.completed", "call_id": "pbx-77",
         "satisfaction": 5, "resolved": True, "summary": "Booked a visit"},
    ]  # fmt: skip
    phone_system = APIClient()
    answers = [phone_system.post(events_url, body, format="json").status_code for body in sent]

    received = receiver.wait_for(1, timeout=30)
    time.sleep(1.5)  # room for a duplicate to show up, had there been one

    assert answers == [202, 202, 200, 202, 202]
    assert len(receiver.received) == 1, logs(tmp_path)
    payload = received[0].json()
    assert set(payload) == SEED_FIELDS
    assert (payload["status"], payload["duration"], payload["direction"]) == (
        "ANSWER",
        150,
        "inbound",
    )
    assert (payload["customer_number"], payload["crm_username"]) == ("+447400123456", "agent.017")
    assert (payload["start_time"], payload["end_time"]) == (
        "2026-07-03T10:00:00Z",
        "2026-07-03T10:02:39Z",
    )
    assert (payload["call_type"], payload["uuid"]) == ("server", None)
    assert payload["recording_url"].startswith("http://127.0.0.1:8000/r/")
    assert verify(callback_setup, received[0].headers, received[0].body)
    with tenant_scope(tenant):
        deadline = time.monotonic() + 10
        while TelephonyEvent.objects.filter(processed_at=None).exists():
            assert time.monotonic() < deadline, logs(tmp_path)
            time.sleep(0.1)
        call = Call.objects.get(external_id="pbx-77")
        assert (call.answer_time.isoformat(), call.satisfaction, call.resolved) == (
            "2026-07-03T10:00:09+00:00", 5, True,
        )  # fmt: skip
        assert TelephonyEvent.objects.count() == 4


def test_the_worker_keeps_its_database_connection_from_one_task_to_the_next(
    api, processes, tenant, tmp_path
):
    processes.worker("--purge")
    own = connection.cursor().connection.info.backend_pid
    first_sent = time.time()
    ends = [
        {"id": f"e-{n}", "type": "call.end", "call_id": f"pbx-{n}", "status": "BUSY"}
        for n in range(3)
    ]
    for body in ends:
        assert api.post("/api/v1/telephony/events", body, format="json").status_code == 202
        time.sleep(0.3)
    last_sent = time.time()

    with tenant_scope(tenant):
        deadline = time.monotonic() + 20
        while TelephonyEvent.objects.filter(processed_at=None).exists():
            assert time.monotonic() < deadline, logs(tmp_path)
            time.sleep(0.1)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT extract(epoch FROM backend_start) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> %s",
            [own],
        )
        opened = [started for (started,) in cursor.fetchall()]

    # Celery's Django fixup would close it after each task; a new backend per task is costly.
    assert any(first_sent < started < last_sent for started in opened), (opened, last_sent)
