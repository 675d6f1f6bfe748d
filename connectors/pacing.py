"""Each connection's requests kept under its CRM's published rate limits, across workers.

A limit of N requests in any S seconds is kept with a log of the connection's last N requests
under it, in Redis (one Lua round trip on Redis's clock, so every worker agrees): a request
takes its place in the log and goes at once while fewer than N went in the last S seconds, else
it is told how long until the oldest leaves the window, sleeps, and asks again. The CRM's
rolling window then never holds more than N, whoever sent them, and a long sync runs at the
limit's own rate (N at once, then one as each leaves) instead of bouncing off 429s. The log
holds when each request really went, not when it was meant to: a thread that woke late (the
GIL, a garbage collection) does not leave the CRM seeing two requests closer than we planned.
A sync sends one request at a time, so call logging on the connection waits about one interval.

Without Redis (the SQLite demo), or while it is down, the log is this process's own.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import redis
from django.conf import settings

from core.shared_redis import outage, redis_client

# Between a place taken and the request's arrival at the CRM lie the HTTP client and the
# network: a place frees when the N-th newest is S + this old.
JITTER_SECONDS = 0.025

# KEYS[1]: the times (µs, Redis's clock) of the last N requests, oldest first. ARGV: N,
# S + jitter (µs), the key's TTL (ms). Takes a place now and returns 0, or returns how long
# (µs) until one frees without taking it. (The N-th newest, not the first: a log kept for a
# larger N before the tenant's tier changed is longer.)
_TAKE = """
local now = redis.call('TIME')
local now_us = tonumber(now[1]) * 1000000 + tonumber(now[2])
if redis.call('LLEN', KEYS[1]) >= tonumber(ARGV[1]) then
  local free = tonumber(redis.call('LINDEX', KEYS[1], -tonumber(ARGV[1]))) + tonumber(ARGV[2])
  if free > now_us then
    return free - now_us
  end
end
redis.call('RPUSH', KEYS[1], string.format('%d', now_us))
redis.call('LTRIM', KEYS[1], -tonumber(ARGV[1]), -1)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 0
"""


@dataclass(frozen=True)
class RateLimit:
    """At most `requests` in any `seconds` (one of a CRM's published limits)."""

    requests: int
    seconds: float


def rate_limits(
    connection_settings: Mapping[str, Any], defaults: Mapping[str, RateLimit] | None = None
) -> dict[str, RateLimit]:
    """The connector's limits (its CRM's smallest tier), as the connection's settings raise them.

    `settings.rate_limits` names the tenant's own tier: {"requests": [190, 10], "search": [5, 1]}.
    Every connector has "requests" (CONNECTOR_REQUESTS_PER_10_SECONDS unless it says otherwise).
    """
    limits = {
        "requests": RateLimit(settings.CONNECTOR_REQUESTS_PER_10_SECONDS, 10),
        **(defaults or {}),
    }
    for name, (requests, seconds) in (connection_settings.get("rate_limits") or {}).items():
        limits[name] = RateLimit(int(requests), float(seconds))
    return limits


def take(connection_id: int, name: str, limit: RateLimit) -> float:
    """Take a place under this limit now (0), or the seconds until one frees (ask again then)."""
    key = f"callbridge:crm-pace:{connection_id}:{name}"
    span = limit.seconds + JITTER_SECONDS
    if settings.REDIS_URL and not outage.active():
        ttl_ms = round(span * 1000) + 60_000  # the log outlives its window
        try:
            wait_us = _script()(keys=[key], args=[limit.requests, round(span * 1e6), ttl_ms])
            return max(0, int(wait_us)) / 1e6
        except redis.RedisError as error:
            outage.report(error)
    return _take_here(key, limit.requests, span)


_scripts: dict[int, Any] = {}


def _script() -> Any:
    """The script, registered once per Redis client (EVALSHA after the first call)."""
    client = redis_client()
    script = _scripts.get(id(client))
    if script is None:
        script = _scripts[id(client)] = client.register_script(_TAKE)
    return script


_local_lock = threading.Lock()
_local_logs: dict[str, deque[float]] = {}


def _take_here(key: str, requests: int, span: float) -> float:
    with _local_lock:
        now = time.time()
        log = _local_logs.get(key)
        if log is None or log.maxlen != requests:  # new, or the tenant's tier changed
            log = _local_logs[key] = deque(log or (), maxlen=requests)
        if len(log) == requests and log[0] + span > now:
            return log[0] + span - now
        log.append(now)
    return 0.0
