"""Redis shared by every process: one client per process, expiring counters, generations.

Redis is a cache here, never the only copy: without REDIS_URL (the embedded default) counters
fall back to Django's cache and generations to "nothing is remembered"; while Redis is down,
counters count nothing (limits fail open) and generations are None (read from the database).
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass
from typing import cast

import redis
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from redis.client import PubSub
from redis.commands.core import Script

logger = logging.getLogger(__name__)

# Seconds a rate counter outlives its one-minute window.
COUNTER_TTL = 120
# A Redis that stopped answering must not hold requests: give up on it this soon...
REDIS_TIMEOUT = 0.5
# ...and leave it alone this long after it failed (the database answers meanwhile).
OUTAGE_SECONDS = 2.0
# Batched counters (BatchedCounters) send a busy counter's hits at most this often per process.
BATCH_SECONDS = 0.1
# The generation listener pings Redis this often on its subscription, and each answer vouches for
# it this long after the ping was sent (GenerationListener).
LISTENER_PING_SECONDS = 0.1
LISTENER_TRUST_SECONDS = 0.5


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


@dataclass
class _BatchedCount:
    total: int  # Redis's count when last sent
    unsent: int  # this process's hits since
    sent_at: float


class BatchedCounters:
    """Shared counters, as count_hit's, that each process adds to Redis in batches.

    A busy counter costs a round trip per BATCH_SECONDS instead of one per hit. The count returned
    is Redis's total at the last batch plus this process's hits since: it misses the other
    processes' hits since their last batch, at most BATCH_SECONDS of each one's traffic. From
    `exact_from` on (near a limit) every hit is sent at once, so a limit is never missed by more
    than that, and small limits are counted exactly, as count_hit counts them.
    """

    def __init__(self) -> None:
        self._counts: dict[str, _BatchedCount] = {}
        self._lock = threading.Lock()
        self._pruned_at = time.monotonic()

    def hit(self, counter: str, exact_from: int, ttl: int = COUNTER_TTL) -> int:
        """Add one to the counter; its count as this process knows it (0 while Redis is down)."""
        if not settings.REDIS_URL:
            return count_hit(counter, ttl)
        if outage.active():
            return 0
        now = time.monotonic()
        with self._lock:
            count = self._counts.get(counter)
            if count is None:
                self._prune(now, ttl)
                count = self._counts[counter] = _BatchedCount(0, 0, now)
            count.unsent += 1
            if count.total + count.unsent < exact_from and now - count.sent_at < BATCH_SECONDS:
                return count.total + count.unsent
            unsent, count.unsent, count.sent_at = count.unsent, 0, now
        pipeline = redis_client().pipeline(transaction=False)
        pipeline.incrby(f"callbridge:{counter}", unsent)
        pipeline.expire(f"callbridge:{counter}", ttl, nx=True)
        try:
            total = cast(int, pipeline.execute()[0])
        except redis.RedisError as error:
            outage.report(error)
            return 0
        with self._lock:
            count.total = max(count.total, total)
            return total + count.unsent

    def clear(self) -> None:
        with self._lock:
            self._counts.clear()

    def _prune(self, now: float, ttl: int) -> None:
        """Forget counters not sent for a while: their windows are over (under the lock)."""
        if now - self._pruned_at >= ttl / 2:
            self._pruned_at = now
            for name in [n for n, c in self._counts.items() if now - c.sent_at >= ttl / 2]:
                del self._counts[name]


class Generation:
    """A token in Redis that is replaced whenever what it stamps changes.

    While this process's GenerationListener is confirmed healthy, the token is the listener's
    instead (no round trip): it changes whenever any generation is replaced.
    """

    def __init__(self, key: str) -> None:
        self.key = key
        # Replacing failed (Redis down): replace it as soon as Redis answers again, or processes
        # would go on trusting what they remembered before the change.
        self.owed = False

    def current(self) -> bytes | None:
        """The token now (None without Redis, or while it is down: remember nothing then)."""
        if not settings.REDIS_URL or outage.active():
            return None
        if not self.owed:
            heard = listener_token()
            if heard is not None:
                return heard
        try:
            self.settle()
            return self._get() or self.start()
        except redis.RedisError as error:
            outage.report(error)
            return None

    def settle(self) -> None:
        """Make the replacement that failed while Redis was down (RedisError if it still is)."""
        if self.owed:
            self._publish()
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
            self._publish()
        except redis.RedisError as error:  # the change is saved; make it known once Redis is back
            self.owed = True
            outage.report(error)

    def _publish(self) -> None:
        """Set a new token and tell every listener; return once none can trust an older one."""
        client = redis_client()
        token = uuid.uuid4().hex
        names = _names(client)
        pipeline = client.pipeline(transaction=False)
        pipeline.set(self.key, token)
        pipeline.publish(names.channel, token)
        pipeline.smembers(names.listeners)
        _, receivers, registered = pipeline.execute()
        waiting_for = _live_listeners(client, names, registered)
        # Each listener acknowledges once it has changed its token. One that does not (a lost
        # connection, a stuck process) stops trusting itself within LISTENER_TRUST_SECONDS.
        deadline = time.monotonic() + LISTENER_TRUST_SECONDS
        while (waiting_for or receivers) and time.monotonic() < deadline:
            heard = cast(set[bytes], client.smembers(names.heard(token)))
            if waiting_for <= heard and len(heard) >= receivers:
                return
            time.sleep(0.001)


@dataclass(frozen=True)
class _Names:
    """The Redis names generations' listeners use on one database."""

    database: int

    @property
    def channel(self) -> str:
        # Pub/sub ignores database numbers: processes on another database of the same server
        # are another installation (a test suite, the benchmark).
        return f"callbridge:generations:{self.database}"

    @property
    def listeners(self) -> str:
        return f"callbridge:generation-listeners:{self.database}"

    def listener(self, listener_id: str | bytes) -> str:
        name = listener_id if isinstance(listener_id, str) else listener_id.decode()
        return f"{self.listeners}:{name}"

    def heard(self, token: str | bytes) -> str:
        return f"callbridge:generation-heard:{token if isinstance(token, str) else token.decode()}"


def _names(client: redis.Redis) -> _Names:
    return _Names(int(client.connection_pool.connection_kwargs.get("db", 0)))


def _live_listeners(client: redis.Redis, names: _Names, registered: set[bytes]) -> set[bytes]:
    """The registered listeners whose registration has not expired (forgets the others)."""
    if not registered:
        return set()
    ids = sorted(registered)
    alive = client.mget([names.listener(listener_id) for listener_id in ids])
    dead = [listener_id for listener_id, value in zip(ids, alive, strict=True) if value is None]
    if dead:
        client.srem(names.listeners, *dead)
    return registered - set(dead)


# Tokens handed out by listeners: never the same twice in a process, whichever listener runs.
_listener_tokens = itertools.count(1)


class GenerationListener:
    """Hears every generation replaced, so this process can compare generations without Redis.

    A thread subscribed to the generations' channel changes `token` on every message (and on
    every subscription: it may have missed some while unsubscribed), then acknowledges it.

    The token is trusted only while the listener is confirmed healthy. Every
    LISTENER_PING_SECONDS it renews its registration (a key that outlives its trust), then sends
    a PING on its subscription; the PONG vouches for it until LISTENER_TRUST_SECONDS after the
    renewal was sent. Redis answers a connection in order, so a PONG comes after every message
    published before its PING. A listener trusted after a replacement was published therefore
    has heard it, or was registered when it was published: Generation._publish waits until
    every registered listener has acknowledged, or LISTENER_TRUST_SECONDS have passed, so a
    revocation has taken effect in every process when it returns.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.pid = os.getpid()
        self.id = uuid.uuid4().hex
        self.token = b""
        self.trusted_until = 0.0
        self.stopped = False
        self._change()
        thread = threading.Thread(target=self._run, name="generation-listener", daemon=True)
        thread.start()

    def trusted_token(self) -> bytes | None:
        token = self.token  # read before the trust: a token changed meanwhile is the older one
        return token if time.monotonic() < self.trusted_until else None

    def _change(self) -> None:
        self.token = b"heard-%d" % next(_listener_tokens)

    def _run(self) -> None:
        while not self.stopped:
            try:
                self._listen()
            except Exception as error:  # Redis down, a closed socket: distrust, then try again
                logger.debug("Generation listener reconnecting: %r", error)
                time.sleep(OUTAGE_SECONDS / 4)

    def _listen(self) -> None:
        client = redis.Redis.from_url(
            self.url, socket_connect_timeout=REDIS_TIMEOUT, socket_timeout=REDIS_TIMEOUT
        )
        names = _names(client)
        subscription = client.pubsub()  # type: ignore[no-untyped-call]
        try:
            subscription.subscribe(names.channel)
            answered = time.monotonic()
            renewed = self._renew(client, names, subscription)
            while not self.stopped:
                message = subscription.get_message(timeout=LISTENER_PING_SECONDS)
                if message is not None and message["type"] in ("subscribe", "message"):
                    self._change()
                    if message["type"] == "message":
                        heard = names.heard(message["data"])
                        acknowledgement = client.pipeline(transaction=False)
                        acknowledgement.sadd(heard, self.id)
                        acknowledgement.expire(heard, 60)
                        acknowledgement.execute()
                elif message is not None and message["type"] == "pong":
                    answered = time.monotonic()
                    self.trusted_until = float(message["data"]) + LISTENER_TRUST_SECONDS
                now = time.monotonic()
                if now - renewed >= LISTENER_PING_SECONDS:
                    if now - answered > 2 * LISTENER_TRUST_SECONDS:
                        raise redis.ConnectionError("no PONG: the subscription is stuck")
                    renewed = self._renew(client, names, subscription)
        finally:
            self.trusted_until = 0.0
            subscription.close()
            client.close()

    def _renew(self, client: redis.Redis, names: _Names, subscription: PubSub) -> float:
        """Renew the registration, then PING: its PONG vouches for us from the renewal on."""
        renewed = time.monotonic()
        pipeline = client.pipeline(transaction=False)
        pipeline.sadd(names.listeners, self.id)
        pipeline.set(names.listener(self.id), 1, px=int(3000 * LISTENER_TRUST_SECONDS))
        pipeline.execute()
        subscription.ping(repr(renewed))
        return renewed


_listener: GenerationListener | None = None
_listener_lock = threading.Lock()


def listener_token() -> bytes | None:
    """The listener's token while it is confirmed healthy, else None (ask Redis then).

    Starts this process's listener on first use (anew after a fork, or when REDIS_URL changed).
    """
    if not settings.GENERATION_LISTENER:
        return None
    listener = _listener
    if listener is None or listener.pid != os.getpid() or listener.url != settings.REDIS_URL:
        listener = _start_listener()
    return listener.trusted_token()


def _start_listener() -> GenerationListener:
    global _listener
    with _listener_lock:
        listener = _listener
        if listener is None or listener.pid != os.getpid() or listener.url != settings.REDIS_URL:
            if listener is not None:
                listener.stopped = True
            listener = _listener = GenerationListener(settings.REDIS_URL)
        return listener


def forget_generations() -> None:
    """Make everything remembered against a generation stale in this process (tests)."""
    listener = _listener
    if listener is not None:
        listener._change()


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


# SET NX, and when the flag was up already, leave one signal for its holder: one round trip.
_RAISE_OR_SIGNAL = """
if redis.call('SET', KEYS[1], '1', 'EX', ARGV[1], 'NX') then return 1 end
redis.call('LPUSH', KEYS[2], '1')
redis.call('LTRIM', KEYS[2], 0, 0)
redis.call('EXPIRE', KEYS[2], ARGV[1])
return 0
"""
_raise_or_signal: Script | None = None


def flag_raise_or_signal(name: str, signal: str, ttl: int) -> bool:
    """flag_raise(name, ttl); if the flag was up already, signal its holder (`signal_wait`)."""
    if not settings.REDIS_URL or outage.active():
        return True
    try:
        global _raise_or_signal
        client = redis_client()
        if _raise_or_signal is None or _raise_or_signal.registered_client is not client:
            _raise_or_signal = client.register_script(_RAISE_OR_SIGNAL)  # then EVALSHA
        raised = _raise_or_signal([f"callbridge:{name}", f"callbridge:{signal}"], [ttl])
    except redis.RedisError as error:
        outage.report(error)
        return True
    return bool(raised)


def signal_wait(signal: str, seconds: float) -> None:
    """Wait up to `seconds` for a signal of flag_raise_or_signal (then consumed; one signal
    stands for any number sent meanwhile). Without Redis, or while it is down, sleep them out."""
    if settings.REDIS_URL and not outage.active():
        try:
            redis_client().blpop([f"callbridge:{signal}"], timeout=seconds)
            return
        except redis.RedisError as error:
            outage.report(error)
    time.sleep(seconds)


def flag_lower(name: str) -> None:
    """Lower a shared flag (nothing without Redis, or while it is down)."""
    if not settings.REDIS_URL or outage.active():
        return
    try:
        redis_client().delete(f"callbridge:{name}")
    except redis.RedisError as error:
        outage.report(error)
