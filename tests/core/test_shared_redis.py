"""The process's one Redis client."""

import sys
import threading
import time

from core.shared_redis import (
    BATCH_SECONDS,
    BatchedCounters,
    flag_raise_or_signal,
    outage,
    redis_client,
    redis_client_forget,
    signal_wait,
)


def test_threads_asking_at_once_get_the_one_client():
    # A second client made by a racing thread used to be dropped, closing its sockets under the
    # request using them (a 500 under granian's threads, bench/README.md).
    redis_client_forget()
    start = threading.Barrier(16)
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads take turns often, as on a busy server
    clients = []

    def ask() -> None:
        start.wait()
        clients.append(redis_client())

    threads = [threading.Thread(target=ask) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sys.setswitchinterval(switch_interval)

    assert len(clients) == 16 and len({id(client) for client in clients}) == 1


def test_batched_counters_send_every_hit_to_redis():
    # Two processes counting the same key.
    first, second = BatchedCounters(), BatchedCounters()

    for _ in range(50):
        first.hit("batched", exact_from=1000)
        second.hit("batched", exact_from=1000)
    time.sleep(BATCH_SECONDS)
    last_counts = [first.hit("batched", exact_from=1000), second.hit("batched", exact_from=1000)]

    assert int(redis_client().get("callbridge:batched")) == 102
    # Each learns the others' hits when it sends its own.
    assert last_counts[0] >= 51 and last_counts[1] == 102


def test_batched_counts_are_exact_from_where_the_caller_asks():
    first, second = BatchedCounters(), BatchedCounters()

    counts = [counter.hit("near-a-limit", exact_from=2) for counter in (first, second) * 3]

    # Below 2 each counts its own hits; from 2 on every hit goes to Redis, so the count is
    # Redis's total (the others' unsent hits included once they are sent).
    assert counts == [1, 1, 2, 4, 5, 6]


def test_batched_counters_count_nothing_while_redis_is_unreachable(settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    redis_client_forget()
    try:
        counts = [BatchedCounters().hit("unreachable", exact_from=0) for _ in range(2)]
    finally:
        outage.until = 0.0
        redis_client_forget()

    assert counts == [0, 0]  # limits fail open, as count_hit's


def test_a_flag_already_up_signals_its_holder_once_however_often_raised():
    redis_client().delete("callbridge:test-flag", "callbridge:test-signal")
    raised = [flag_raise_or_signal("test-flag", "test-signal", 5) for _ in range(3)]

    assert raised == [True, False, False]
    started = time.monotonic()
    signal_wait("test-signal", 2)  # signalled: at once
    signal_wait("test-signal", 0.2)  # the two signals were one: waits it out
    assert 0.15 < time.monotonic() - started < 1
    redis_client().delete("callbridge:test-flag")


def test_without_redis_every_raise_raises_and_a_wait_is_a_sleep(settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    redis_client_forget()
    try:
        raised = [flag_raise_or_signal("test-flag", "test-signal", 5) for _ in range(2)]
        started = time.monotonic()
        signal_wait("test-signal", 0.1)
        waited = time.monotonic() - started
    finally:
        outage.until = 0.0
        redis_client_forget()

    assert raised == [True, True]  # each caller starts a drain: the sweeper's job is unchanged
    assert 0.1 <= waited < 1
