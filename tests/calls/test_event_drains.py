"""Telephony events applied by drains: accepted in one statement, applied in batches, one task
per burst, a bad event never holding back the rest, first callbacks sent and recorded together.

Real PostgreSQL commits (transactional tests) and a real HTTP receiver; drains run in-process.
"""

import json
import threading
import time

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from redis import Redis

from calls import events, live
from calls.models import Attempt, Call, CallbackSettings, Delivery, TelephonyEvent
from core import batch_cache
from core.scoping import tenant_scope
from core.shared_redis import redis_client

pytestmark = pytest.mark.usefixtures("private_urls")


def end(n: int, call_id: str = "") -> dict:
    return {"id": f"end-{n}", "type": "call.end", "call_id": call_id or f"pbx-{n}",
            "from": f"+1415200{n:04d}", "to": "+14155550100", "status": "ANSWER",
            "duration": 60}  # fmt: skip


@pytest.fixture
def callbacks_to(transactional_db, tenant, receiver):
    tenant.callback_settings.url = f"{receiver.url}/callbacks"
    tenant.callback_settings.save()
    return receiver


def accept(tenant, *bodies: dict) -> None:
    with tenant_scope(tenant):
        for body in bodies:
            events.telephony_event_accept(tenant=tenant, body=body, source="json")


def drain(tenant) -> int:
    with tenant_scope(tenant):
        return events.telephony_events_drain(tenant_id=tenant.pk)


@pytest.fixture
def drain_running(tenant) -> None:
    """As if a drain ran: accepting starts no task, and the test runs the drain in-process."""
    redis_client().set(f"callbridge:events-drain:{tenant.pk}:0", 1, ex=60)


def test_an_event_is_accepted_in_one_statement_and_a_duplicate_in_two(db, tenant):
    with tenant_scope(tenant), CaptureQueriesContext(connection) as new:
        row, created = events.telephony_event_accept(tenant=tenant, body=end(1), source="json")
    with tenant_scope(tenant), CaptureQueriesContext(connection) as again:
        same, created_again = events.telephony_event_accept(
            tenant=tenant, body=end(1), source="json"
        )

    assert (created, created_again, same.pk) == (True, False, row.pk)
    assert len(new.captured_queries) == 1, new.captured_queries
    assert "ON CONFLICT" in new.captured_queries[0]["sql"]
    assert len(again.captured_queries) == 2


def test_a_drain_applies_a_burst_in_batches_and_sends_every_callback_once(
    callbacks_to, tenant, drain_running, settings
):
    settings.TELEPHONY_EVENT_DRAIN_WAIT_SECONDS = 0  # no look for more after the last batch
    accept(tenant, *[end(n) for n in range(120)])

    with CaptureQueriesContext(connection) as queries:
        applied = drain(tenant)

    assert applied == 120
    claims = [q for q in queries.captured_queries if "SKIP LOCKED" in q["sql"]]
    assert len(claims) == 5  # 50, 50, 20, none, and none again after lowering the flag
    commits = [q for q in queries.captured_queries if q["sql"] == "COMMIT"]
    assert len(commits) <= 10, len(commits)  # per batch, not per event
    received = callbacks_to.wait_for(120, timeout=10)
    assert sorted(r.json()["customer_number"] for r in received) == sorted(
        f"+1415200{n:04d}" for n in range(120)
    )
    with tenant_scope(tenant):
        assert not TelephonyEvent.objects.filter(processed_at__isnull=True).exists()
        assert Call.objects.filter(state="ended").count() == 120
        assert set(Delivery.objects.values_list("state", "attempt_count")) == {("succeeded", 1)}
        assert Attempt.objects.filter(status_code=200).count() == 120
    assert not redis_client().exists(f"callbridge:events-drain:{tenant.pk}:0")


def test_a_call_is_locked_and_read_once_a_batch_and_not_at_all_by_the_event_creating_it(
    callbacks_to, tenant, drain_running, settings
):
    settings.TELEPHONY_EVENT_DRAIN_WAIT_SECONDS = 0
    start = {"id": "start-1", "type": "call.start", "call_id": "pbx-1", "from": "+14152000001",
             "to": "+14155550100", "timestamp": "2026-12-04T10:00:00Z"}  # fmt: skip
    answered = {**start, "id": "answered-1", "type": "call.answered",
                "timestamp": "2026-12-04T10:00:05Z"}  # fmt: skip
    accept(tenant, start, end(2))

    with CaptureQueriesContext(connection) as first:
        assert drain(tenant) == 2
    accept(tenant, answered, end(1, call_id="pbx-1"))
    with CaptureQueriesContext(connection) as later:
        assert drain(tenant) == 2

    def statements(queries, start: str) -> list[str]:
        return [q["sql"] for q in queries if q["sql"].startswith(start)]

    def reads(queries, table: str) -> list[str]:
        return statements(queries, f'SELECT "{table}"')

    def locks(queries) -> list[str]:  # insert the call, or lock it and read it with its events
        return statements(queries, 'WITH "locked" AS (INSERT INTO "calls_call"')

    assert reads(first, "calls_call") == reads(first, "calls_callevent") == []
    assert len(locks(first)) == 2
    # Both events of a call that exists, in one batch: it is locked and read once, with its
    # events and recording, in one statement.
    assert len(locks(later)) == 1
    assert reads(later, "calls_call") == reads(later, "calls_callevent") == []
    assert reads(later, "calls_recording") == []
    with tenant_scope(tenant):
        call = Call.objects.get(external_id="pbx-1")
        assert (call.state, call.status, call.duration) == ("ended", "ANSWER", 60)
        assert call.start_time.isoformat() == "2026-12-04T10:00:00+00:00"
        assert sorted(call.events.values_list("kind", flat=True)) == [
            "answered", "ended", "initiated"
        ]  # fmt: skip
    assert len(callbacks_to.wait_for(2, timeout=10)) == 2


def test_a_call_changed_while_its_lock_was_awaited_is_read_again(
    callbacks_to, tenant, drain_running, settings
):
    """The lock's statement reads the call's events as its snapshot saw them: had another
    transaction added one meanwhile, merging without it would lose the call's answer."""
    settings.TELEPHONY_EVENT_DRAIN_WAIT_SECONDS = 0
    start = {"id": "start-1", "type": "call.start", "call_id": "pbx-1", "from": "+14152000001",
             "to": "+14155550100", "timestamp": "2026-12-04T10:00:00Z"}  # fmt: skip
    answered = {**start, "id": "answered-1", "type": "call.answered",
                "timestamp": "2026-12-04T10:00:05Z"}  # fmt: skip
    accept(tenant, start)
    assert drain(tenant) == 1
    accept(tenant, end(1, call_id="pbx-1"))
    answered_row = TelephonyEvent(tenant=tenant, event_id="answered-1", type="call.answered",
                                  source="json", payload=answered, body_hash="x",
                                  received_at=timezone.now())  # fmt: skip
    locked = threading.Event()

    def answer_meanwhile() -> None:
        """Another drain: apply the answer under the call's lock, commit once the end waits."""
        with tenant_scope(tenant), transaction.atomic():
            events._process(answered_row)
            answered_row.save()
            locked.set()
            time.sleep(0.5)  # the drain below takes its snapshot, then waits for the lock
        connection.close()

    other = threading.Thread(target=answer_meanwhile)
    other.start()
    assert locked.wait(5)
    assert drain(tenant) == 1
    other.join()

    with tenant_scope(tenant):
        call = Call.objects.get(external_id="pbx-1")
        assert sorted(call.events.values_list("kind", flat=True)) == [
            "answered", "ended", "initiated"
        ]  # fmt: skip
        assert call.answer_time.isoformat() == "2026-12-04T10:00:05+00:00"
        assert (call.state, call.status, call.duration) == ("ended", "ANSWER", 60)
    assert len(callbacks_to.wait_for(1, timeout=10)) == 1


def test_a_running_drain_holds_callbacks_from_the_batch_after_they_were_paused(
    callbacks_to, tenant, drain_running
):
    """Settings a running drain keeps between batches (apps, connections) never include the
    callback's: a callback written unheld after a pause would be sent, and one written held
    after a resume would stay held."""
    with tenant_scope(tenant), batch_cache.kept_between_batches(events.DRAIN_SETTINGS_SECONDS):
        accept(tenant, end(1))
        assert events._batch_apply(tenant.pk, skip=set()).applied == 1
        CallbackSettings.objects.filter(tenant=tenant).update(paused_at=timezone.now())
        accept(tenant, end(2))
        assert events._batch_apply(tenant.pk, skip=set()).applied == 1

        states = dict(Delivery.objects.values_list("call__external_id", "state"))
    assert states == {"pbx-1": "pending", "pbx-2": "held"}  # pbx-1 sent by a task


def test_one_event_that_fails_does_not_hold_back_the_others(callbacks_to, tenant, drain_running):
    with connection.cursor() as cursor:  # the database refuses one call, as a bug might
        cursor.execute("""
            CREATE FUNCTION refuse_poison() RETURNS trigger AS $$ BEGIN
              IF NEW.external_id = 'poison' THEN RAISE EXCEPTION 'refused'; END IF;
              RETURN NEW; END $$ LANGUAGE plpgsql;
            CREATE TRIGGER refuse_poison BEFORE INSERT ON calls_call
              FOR EACH ROW EXECUTE FUNCTION refuse_poison();
        """)
    accept(tenant, end(1), end(2, call_id="poison"), end(3))

    assert drain(tenant) == 2

    with tenant_scope(tenant):
        waiting = TelephonyEvent.objects.filter(processed_at__isnull=True)
        assert list(waiting.values_list("event_id", flat=True)) == ["end-2"]  # for the sweeper
        assert sorted(Call.objects.values_list("external_id", flat=True)) == ["pbx-1", "pbx-3"]
    assert len(callbacks_to.wait_for(2, timeout=10)) == 2


def test_after_a_failed_callback_the_rest_of_the_batch_go_back_to_the_queue(
    callbacks_to, tenant, drain_running
):
    callbacks_to.script = [503]
    accept(tenant, *[end(n) for n in range(3)])

    drain(tenant)

    assert len(callbacks_to.received) == 1  # no more to a receiver that just failed
    with tenant_scope(tenant):
        failed = Delivery.objects.get(attempts__status_code=503)
        assert (failed.state, failed.attempt_count, failed.attempting_since) == ("pending", 1, None)
        rest = Delivery.objects.exclude(pk=failed.pk)
        # Released: due now, no attempt counted, for their own tasks (or the sweeper).
        assert [(d.state, d.attempt_count, d.attempting_since) for d in rest] == [
            ("pending", 0, None)
        ] * 2
        assert not Attempt.objects.filter(delivery__in=rest).exists()


def test_while_a_drain_runs_new_events_start_no_task_and_are_still_applied(callbacks_to, tenant):
    queue = Redis.from_url(settings.CELERY_BROKER_URL)
    queue.delete("realtime")
    accept(tenant, end(1))  # no drain running: this starts one
    accept(tenant, *[end(n) for n in range(2, 30)])  # its flag is up: none of these do

    assert queue.llen("realtime") == 1
    assert drain(tenant) == 29  # the queued drain's work, done here
    queue.delete("realtime")


def test_a_drain_waiting_for_events_takes_one_as_soon_as_it_is_accepted(
    callbacks_to, tenant, drain_running, settings
):
    settings.TELEPHONY_EVENT_DRAIN_WAIT_SECONDS = 1  # a look on a timer: up to 1 s late
    accept(tenant, end(1))
    applied: list[int] = []

    def run() -> None:
        applied.append(drain(tenant))
        connection.close()

    running = threading.Thread(target=run)
    running.start()
    callbacks_to.wait_for(1, timeout=5)
    time.sleep(0.1)  # the drain is waiting
    accepted = time.monotonic()
    accept(tenant, end(2))
    callbacks_to.wait_for(2, timeout=5)
    took = time.monotonic() - accepted
    running.join()

    assert took < 0.5, took
    assert applied == [2]  # one drain took both


@pytest.mark.parametrize("gather, fewest, most", [(0.1, 2, 7), (0, 10, 31)])
def test_a_steady_stream_is_applied_a_few_events_a_batch_while_the_first_waits_nothing(
    callbacks_to, tenant, drain_running, settings, gather, fewest, most
):
    settings.TELEPHONY_EVENT_DRAIN_GATHER_SECONDS = gather
    batches: list[dict] = []

    def run() -> None:
        with CaptureQueriesContext(connection) as queries:
            drain(tenant)
        marked = 'UPDATE "calls_telephonyevent" SET "call_id"'  # once a batch
        batches.extend(q for q in queries.captured_queries if q["sql"].startswith(marked))
        connection.close()

    accept(tenant, end(0))
    accepted = time.monotonic()
    running = threading.Thread(target=run)
    running.start()
    callbacks_to.wait_for(1, timeout=5)
    first_took = time.monotonic() - accepted
    for n in range(1, 31):  # 100 events a second for 0.3 s
        accept(tenant, end(n))
        time.sleep(0.01)
    callbacks_to.wait_for(31, timeout=10)
    running.join()

    assert first_took < 0.5, first_took  # a drain's first batch is claimed at once
    # Gathering 0.1 s: about one batch a tenth of a second; without, one for every event or two.
    assert fewest <= len(batches) <= most, len(batches)
    # Ten events a gathered batch are not a drain falling behind: no second drain was started.
    assert not redis_client().exists(f"callbridge:events-drain:{tenant.pk}:1")


def test_a_live_view_hears_every_event_of_a_drained_batch(callbacks_to, tenant, drain_running):
    client = Redis.from_url(settings.REDIS_URL)
    listener = client.pubsub(ignore_subscribe_messages=True)
    listener.subscribe(live._channel(client, f"tenant:{tenant.pk}"))
    accept(tenant, *[end(n) for n in range(3)])

    drain(tenant)

    heard, deadline = [], time.monotonic() + 5
    while len(heard) < 3 and time.monotonic() < deadline:
        if message := listener.get_message(timeout=0.5):  # None too for the subscription
            heard.append(json.loads(message["data"]))
    assert sorted(m["customer_number"] for m in heard) == [f"+1415200{n:04d}" for n in range(3)]
    assert {(m["kind"], m["state"], m["caller_name"], m["completed"]) for m in heard} == {
        ("ended", "ended", "", 3)
    }


def test_a_drain_that_keeps_finding_events_hands_over_to_a_new_task(
    callbacks_to, tenant, drain_running, monkeypatch
):
    monkeypatch.setattr(events, "DRAIN_RUN_SECONDS", 0)  # as if it had run for long
    queue = Redis.from_url(settings.CELERY_BROKER_URL)
    queue.delete("realtime")
    accept(tenant, *[end(n) for n in range(3)])

    assert drain(tenant) == 3

    assert queue.llen("realtime") == 1  # the next drain, within the task time limit
    assert redis_client().exists(f"callbridge:events-drain:{tenant.pk}:0")  # still held
    queue.delete("realtime")
