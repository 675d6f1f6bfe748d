"""Redis shared by every process: one client per process, expiring counters, generations.

Redis is a cache here, never the only copy: without REDIS_URL (the embedded default) counters
fall back to Django's cache and generations to "nothing is remembered"; while Redis is down,
counters count nothing (limits fail open) and generations are None (read from the database).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import cast

import redis
from django.conf import settings
from django.core.cache import cache
from django.db import transaction

logger = logging.getLogger(__name__)

# Seconds a rate counter outlives its one-minute window.
COUNTER_TTL = 120
# A Redis that stopped answering must not hold requests: give up on it this soon...
REDIS_TIMEOUT = 0.5
# ...and leave it alone this long after it failed (the database answers meanwhile).
OUTAGE_SECONDS = 2.0


class RedisOutage:
    """Whether Redis failed a moment ago: skip it meanwhile, and say so once, not per request."""

    def __init__(self) -> None:
        self.until = 0.0

    def active(self) -> bool:
        return time.monotonic() < self.until

    def report(self, error: Exception) -> None:
        if not self.active():
            logger.warning(
                "Redis unavailable (%s): API keys and routing rules are read from the database "
                "and rate limits are not enforced until it answers again.",
                error,
            )
        self.until = time.monotonic() + OUTAGE_SECONDS


outage = RedisOutage()


_client: redis.Redis | None = None
_client_lock = threading.Lock()


def redis_client() -> redis.Redis:
    """The process's client: Django's cache builds a new client object for every operation."""
    global _client
    client = _client
    if client is None:
        # Made once under a lock: a second client made by a thread racing the first would be
        # dropped, and dropping a client closes its sockets under the request still using them.
        with _client_lock:
            if _client is None:
                _client = redis.Redis.from_url(
                    settings.REDIS_URL,
                    socket_connect_timeout=REDIS_TIMEOUT,
                    socket_timeout=REDIS_TIMEOUT,
                )
            client = _client
    return client


def redis_client_forget() -> None:
    """Make the next redis_client() connect afresh (after REDIS_URL changed)."""
    global _client
    _client = None


def count_hit(counter: str, ttl: int = COUNTER_TTL) -> int:
    """Add one to a shared counter that expires after ttl seconds; return the new count.

    While Redis is down nothing is counted (0): limits fail open rather than refuse everyone.
    """
    if settings.REDIS_URL:
        if outage.active():
            return 0
        # One round trip: Django's cache.incr() costs two (EXISTS, INCRBY) plus add()'s SET NX.
        pipeline = redis_client().pipeline(transaction=False)
        queue_hit(pipeline, counter, ttl)
        try:
            return cast(int, pipeline.execute()[0])
        except redis.RedisError as error:
            outage.report(error)
            return 0
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
        # Replacing failed (Redis down): replace it as soon as Redis answers again, or processes
        # would go on trusting what they remembered before the change.
        self.owed = False

    def current(self) -> bytes | None:
        """The token now (None without Redis, or while it is down: remember nothing then)."""
        if not settings.REDIS_URL or outage.active():
            return None
        try:
            self.settle()
            return self._get() or self.start()
        except redis.RedisError as error:
            outage.report(error)
            return None

    def settle(self) -> None:
        """Make the replacement that failed while Redis was down (RedisError if it still is)."""
        if self.owed:
            redis_client().set(self.key, uuid.uuid4().hex)
            self.owed = False

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
        try:
            redis_client().set(self.key, uuid.uuid4().hex)
        except redis.RedisError as error:  # the change is saved; make it known once Redis is back
            self.owed = True
            outage.report(error)


def flag_raise(name: str, ttl: int, *, again: bool = False) -> bool:
    """Raise a shared flag for ttl seconds; True if this raised it (it was down), or `again`
    (renew it). Without Redis, or while it is down, every caller raises it: True.
    """
    if not settings.REDIS_URL or outage.active():
        return True
    try:
        raised = redis_client().set(f"callbridge:{name}", 1, ex=ttl, nx=not again)
    except redis.RedisError as error:
        outage.report(error)
        return True
    return bool(raised)


def flag_lower(name: str) -> None:
    """Lower a shared flag (nothing without Redis, or while it is down)."""
    if not settings.REDIS_URL or outage.active():
        return
    try:
        redis_client().delete(f"callbridge:{name}")
    except redis.RedisError as error:
        outage.report(error)
