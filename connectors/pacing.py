"""Each connection's requests kept under its CRM's published rate limits, across workers.

A limit of N requests in any S seconds is kept with a log of the last N moments reserved for
the connection and limit, in Redis (one round trip; Redis's clock, so every worker agrees): a
request may go at once while fewer than N went in the last S seconds, else at the moment the
N-th newest turns S seconds old. The CRM's rolling window then never holds more than N, whoever
sent them, and a long sync runs at the limit's own rate (N at once, then one as each leaves the
window) instead of bouncing off 429s. A sync reserves one moment at a time, so call logging on
the same connection waits at most about one interval for the next free one.

Without Redis (the SQLite demo), or while it is down, moments are reserved in this process only.
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

# Between the moment reserved and the request's arrival at the CRM lie a thread's wake-up, the
# GIL and the network: a moment waits for the N-th newest to be S + this old.
JITTER_SECONDS = 0.025

# KEYS[1]: the last N moments (µs, Redis's clock), oldest first. ARGV: N, S + jitter (µs), the
# key's TTL (ms). Returns how long (µs) to wait for the moment reserved.
_RESERVE = """
local now = redis.call('TIME')
local now_us = tonumber(now[1]) * 1000000 + tonumber(now[2])
local moment = now_us
if redis.call('LLEN', KEYS[1]) >= tonumber(ARGV[1]) then
  moment = math.max(now_us, tonumber(redis.call('LINDEX', KEYS[1], 0)) + tonumber(ARGV[2]))
end
redis.call('RPUSH', KEYS[1], string.format('%d', moment))
redis.call('LTRIM', KEYS[1], -tonumber(ARGV[1]), -1)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return moment - now_us
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


def reserve(connection_id: int, name: str, limit: RateLimit) -> float:
    """Reserve the connection's next moment under this limit: the seconds to wait for it."""
    key = f"callbridge:crm-pace:{connection_id}:{name}"
    span = limit.seconds + JITTER_SECONDS
    if settings.REDIS_URL and not outage.active():
        ttl_ms = round(span * 1000) + 60_000  # a moment's log outlives its window
        try:
            wait_us = _script()(keys=[key], args=[limit.requests, round(span * 1e6), ttl_ms])
            return max(0, int(wait_us)) / 1e6
        except redis.RedisError as error:
            outage.report(error)
    return _reserve_here(key, limit.requests, span)


_scripts: dict[int, Any] = {}


def _script() -> Any:
    """The reservation script, registered once per Redis client (EVALSHA after the first)."""
    client = redis_client()
    script = _scripts.get(id(client))
    if script is None:
        script = _scripts[id(client)] = client.register_script(_RESERVE)
    return script


_local_lock = threading.Lock()
_local_moments: dict[str, deque[float]] = {}


def _reserve_here(key: str, requests: int, span: float) -> float:
    with _local_lock:
        now = time.time()
        moments = _local_moments.setdefault(key, deque(maxlen=requests))
        moment = max(now, moments[0] + span) if len(moments) == requests else now
        moments.append(moment)
    return moment - now
