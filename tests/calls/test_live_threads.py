"""Open pages' live streams never take the threads the API needs.

The web process runs as the Procfile runs it (granian, one worker of 2 threads): with more
pages open than the process keeps streams for, a lookup is still answered at once, and the
extra pages get their snapshot and come back later.
"""

import threading
import time
from collections.abc import Iterator

import pytest
import requests

from tests.core.test_redis_outage import KNOWN, key, own_redis, routed, web  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_lookup_is_answered_while_more_pages_are_open_than_the_worker_has_threads(
    web,  # noqa: F811
    routed,  # noqa: F811
):
    auth = key(routed)
    first_frames: list[str] = []
    streams: list[tuple[requests.Response, Iterator[str]]] = []

    def open_page() -> None:
        response = requests.get(f"{web}/api/v1/live", headers=auth, stream=True, timeout=30)
        lines = response.iter_lines(decode_unicode=True)
        streams.append((response, lines))  # kept: a dropped iterator closes its connection
        first_frames.append(next(lines))

    pages = [threading.Thread(target=open_page) for _ in range(3)]
    for page in pages:
        page.start()
    for page in pages:
        page.join(timeout=10)
    asked = time.monotonic()
    lookup = requests.get(
        f"{web}/api/v1/lookup", params={"number": KNOWN}, headers=auth, timeout=10
    )
    took = time.monotonic() - asked
    for response, _ in streams:
        response.close()

    assert (lookup.status_code, lookup.json()["known"]) == (200, True)
    assert took < 2.0, took
    # One page streams live (the worker's other thread is the API's); two poll every 3 s.
    assert sorted(first_frames) == ["retry: 1000", "retry: 3000", "retry: 3000"]
