"""Figures the running system records for the dashboard's health tiles, per tenant.

Each sample adds its latency to a bucket of a per-period Redis hash, and counts it as
`flagged` when it is the bad case (a routing fallback, a callback that finally failed): one
pipelined round trip with a short timeout. Lookups and routing decisions are kept per minute
(read over the last hour), finished callbacks per hour (read over the last 24 hours), so a
page view reads at most 60 small hashes, whatever the traffic. With Redis down nothing is
recorded and the recording paths work as before. Without Redis (the embedded default of
bin/run) the samples go to counters in Django's cache instead, as the API rate limits do.
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass

import redis
from django.conf import settings
from django.core.cache import cache

from core.shared_redis import count_hit

logger = logging.getLogger(__name__)

# Upper bounds (ms) of the latency buckets; a sample above the last one counts as "more".
BUCKETS_MS = (1, 2, 3, 5, 8, 13, 20, 30, 50, 80, 130, 200, 300, 500, 800, 1300, 2000, 5000)
# Seconds per recorded period, and how many periods a summary reads (the window).
PERIODS = {"lookup": (60, 60), "decide": (60, 60), "callback": (3600, 24)}
# After Redis failed once, samples are dropped for this long instead of each paying a timeout.
PAUSE_AFTER_FAILURE_SECONDS = 5.0
_paused_until = 0.0


@functools.cache
def _client(url: str) -> redis.Redis:
    # Short timeouts: a slow Redis must not slow a phone system's lookup.
    return redis.Redis.from_url(url, socket_connect_timeout=0.1, socket_timeout=0.1)


def _key(tenant_id: int, name: str, period: int) -> str:
    return f"callbridge:metrics:{tenant_id}:{name}:{period}"


def _bucket(latency_ms: float) -> str:
    for index, bound in enumerate(BUCKETS_MS):
        if latency_ms <= bound:
            return str(index)
    return str(len(BUCKETS_MS))


def record(tenant_id: int, name: str, latency_ms: float, *, flagged: bool = False) -> None:
    """Count one sample of `name` (a key of PERIODS); never raises."""
    seconds, window = PERIODS[name]
    key = _key(tenant_id, name, int(time.time() // seconds))
    if not settings.REDIS_URL:
        fields = [_bucket(latency_ms), *(["flagged"] if flagged else [])]
        for field in fields:
            count_hit(f"{key}:{field}", ttl=seconds * (window + 1))
        return
    global _paused_until
    if time.monotonic() < _paused_until:
        return
    try:
        pipeline = _client(settings.REDIS_URL).pipeline(transaction=False)
        pipeline.hincrby(key, _bucket(latency_ms), 1)
        if flagged:
            pipeline.hincrby(key, "flagged", 1)
        pipeline.expire(key, seconds * (window + 1), nx=True)
        pipeline.execute()
    except redis.RedisError:
        _paused_until = time.monotonic() + PAUSE_AFTER_FAILURE_SECONDS
        logger.warning("Metrics not recorded for a while: Redis unavailable", exc_info=True)


@dataclass(frozen=True)
class Summary:
    count: int
    p50_ms: int | None  # the bucket's upper bound: "at most"
    p99_ms: int | None
    flagged: int

    @property
    def flagged_share(self) -> float | None:
        return self.flagged / self.count if self.count else None

    @property
    def succeeded_share(self) -> float | None:
        return 1 - self.flagged / self.count if self.count else None


def summary(tenant_id: int, name: str) -> Summary | None:
    """The samples of `name` over its window, or None when they cannot be read."""
    seconds, window = PERIODS[name]
    now = int(time.time() // seconds)
    keys = [_key(tenant_id, name, period) for period in range(now - window + 1, now + 1)]
    if not settings.REDIS_URL:
        periods = _cached_periods(keys)
    else:
        try:
            pipeline = _client(settings.REDIS_URL).pipeline(transaction=False)
            for key in keys:
                pipeline.hgetall(key)
            periods = pipeline.execute()
        except redis.RedisError:
            logger.warning("Could not read metrics", exc_info=True)
            return None
    counts = [0] * (len(BUCKETS_MS) + 1)
    flagged = 0
    for fields in periods:
        for field, value in fields.items():
            if field == b"flagged":
                flagged += int(value)
            else:
                counts[int(field)] += int(value)
    total = sum(counts)
    p50, p99 = _percentile(counts, total, 0.5), _percentile(counts, total, 0.99)
    return Summary(total, p50, p99, flagged)


def _cached_periods(keys: list[str]) -> list[dict[bytes, int]]:
    """The counters record() keeps in Django's cache without Redis, shaped as Redis hashes."""
    fields = [*(str(index) for index in range(len(BUCKETS_MS) + 1)), "flagged"]
    found = cache.get_many([f"{key}:{field}" for key in keys for field in fields])
    return [
        {field.encode(): found[f"{key}:{field}"] for field in fields if f"{key}:{field}" in found}
        for key in keys
    ]


def _percentile(counts: list[int], total: int, share: float) -> int | None:
    if not total:
        return None
    seen = 0
    for index, count in enumerate(counts):
        seen += count
        if seen >= share * total:
            return BUCKETS_MS[index] if index < len(BUCKETS_MS) else BUCKETS_MS[-1] + 1
    return None
