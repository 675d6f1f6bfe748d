"""The process's one Redis client."""

import sys
import threading

from core.shared_redis import redis_client, redis_client_forget


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
