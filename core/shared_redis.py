"""Redis shared by every process: one client per process, expiring counters, generations.

Redis is a cache here, never the only copy: without REDIS_URL (the embedded default) counters
fall back to Django's cache and generations to "nothing is remembered".
"""

from __future__ import annotations

import functools
import uuid
from typing import cast

import redis
from django.conf import settings
from django.core.cache import cache
from django.db import transaction

# Seconds a rate counter outlives its one-minute window.
COUNTER_TTL = 120


@functools.cache
def redis_client() -> redis.Redis:
    """The process's client: Django's cache builds a new client object for every operation."""
    return redis.Redis.from_url(settings.REDIS_URL)


def count_hit(counter: str, ttl: int = COUNTER_TTL) -> int:
    """Add one to a shared counter that expires after ttl seconds; return the new count."""
    if settings.REDIS_URL:
        # One round trip: Django's cache.incr() costs two (EXISTS, INCRBY) plus add()'s SET NX.
        pipeline = redis_client().pipeline(transaction=False)
        queue_hit(pipeline, counter, ttl)
        return cast(int, pipeline.execute()[0])
    if cache.add(counter, 1, timeout=ttl):
        return 1
    try:
        return cache.incr(counter)
    except ValueError:  # expired between add and incr
        cache.set(counter, 1, timeout=ttl)
        return 1


def queue_hit(pipeline: redis.client.Pipeline, counter: str, ttl: int = COUNTER_TTL) -> None:
    """Queue count_hit's commands on a Redis pipeline (the count is the first result)."""
    pipeline.incr(f"callbridge:{counter}")
    pipeline.expire(f"callbridge:{counter}", ttl, nx=True)


class Generation:
    """A token in Redis that is replaced whenever what it stamps changes."""

    def __init__(self, key: str) -> None:
        self.key = key

    def current(self) -> bytes | None:
        """The token now (None without Redis): what is remembered under another is stale."""
        if not settings.REDIS_URL:
            return None
        return self._get() or self.start()

    def start(self) -> bytes | None:
        """Start a generation no process can be holding (on first use, or after a flush)."""
        fresh = uuid.uuid4().hex.encode()
        if redis_client().set(self.key, fresh, nx=True):
            return fresh
        return self._get()

    def _get(self) -> bytes | None:
        return cast(bytes | None, redis_client().get(self.key))  # bytes: no decode_responses

    def replace(self) -> None:
        """Make every process read afresh, now and once this transaction commits."""
        if settings.REDIS_URL:
            self._replace()
            # A process reading between now and the commit may remember the old rows: forget
            # them again.
            transaction.on_commit(self._replace)

    def _replace(self) -> None:
        redis_client().set(self.key, uuid.uuid4().hex)
