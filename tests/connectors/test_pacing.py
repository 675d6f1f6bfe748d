"""Requests kept under a CRM's rolling-window limit, in Redis and without it."""

import time

import pytest

from connectors import pacing
from connectors.pacing import RateLimit, rate_limits, take

pytestmark = pytest.mark.django_db  # Redis is flushed between tests


@pytest.mark.parametrize("redis_url", ["redis", ""])
def test_n_requests_go_at_once_and_the_next_when_the_first_leaves_the_window(settings, redis_url):
    if not redis_url:
        settings.REDIS_URL = ""  # the SQLite demo: this process's own log
    limit = RateLimit(3, 1)

    waits = [take(7, "requests", limit) for _ in range(5)]

    assert waits[:3] == [0, 0, 0]
    assert 1 < waits[3] <= 1 + pacing.JITTER_SECONDS + 0.1
    assert waits[4] == pytest.approx(waits[3], abs=0.1)  # told to wait, it took no place
    time.sleep(waits[4] + 0.05)  # the three went microseconds apart
    assert [take(7, "requests", limit) for _ in range(3)] == [0, 0, 0]  # the three left
    assert take(7, "requests", limit) > 0.5


def test_each_connection_and_limit_has_its_own_log():
    limit = RateLimit(1, 10)
    take(7, "requests", limit)

    assert take(8, "requests", limit) == 0
    assert take(7, "search", limit) == 0
    assert take(7, "requests", limit) > 9


def test_a_connection_s_settings_name_its_tier(settings):
    settings.CONNECTOR_REQUESTS_PER_10_SECONDS = 90
    defaults = {"search": RateLimit(5, 1)}

    assert rate_limits({}, defaults) == {"requests": RateLimit(90, 10), "search": RateLimit(5, 1)}
    professional = rate_limits({"rate_limits": {"requests": [190, 10]}}, defaults)
    assert professional["requests"] == RateLimit(190, 10)
