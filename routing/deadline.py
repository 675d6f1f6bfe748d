"""Answer a routing decision within the tenant's deadline, whatever the database does.

The decision (authentication, phonebook lookup, rule evaluation) runs on a small bounded thread
pool; the request thread waits for it until just before the deadline and otherwise answers the
tenant's fallback. Each pool connection carries a PostgreSQL statement_timeout equal to the
deadline, so a slow query is cancelled and frees its thread instead of piling up. What the
fallback needs (tenant, deadline, fallback extension) is remembered in-process per credential
after each successful authentication, so the fallback is answered even when the database is
unreachable.

While all is well, a caller whose deadline is known is decided on the request thread itself:
handing a decision to the pool and back cost a quarter of its CPU (bench/README.md). Every query
of the request's open connection then stops waiting at the deadline; one that did not answer in
time is cancelled and its connection left, and the process decides on the pool for a while, as
it does after any decision made here was late.
"""

from __future__ import annotations

import contextvars
import functools
import hashlib
import logging
import os
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from django.conf import settings
from django.core.cache import caches
from django.db import close_old_connections, connection
from django.http import HttpRequest, HttpResponse, JsonResponse

from core.hot_path import Answer, check_connection
from routing.models import RoutingSettings
from tenants.models import Tenant

logger = logging.getLogger(__name__)

DEFAULT_DEADLINE_MS = RoutingSettings._meta.get_field("deadline_ms").default
# Threads per process deciding at once; beyond MAX_IN_FLIGHT waiting decisions (the database is
# stuck) new calls get the fallback at once rather than queueing behind them.
POOL_SIZE = 16
MAX_IN_FLIGHT = 4 * POOL_SIZE
# How long a remembered profile is used to size the wait and to answer fallbacks.
PROFILE_TTL_SECONDS = 300
MAX_PROFILES = 10_000
# Bodies larger than this are not read: no phone number needs them.
MAX_BODY_BYTES = 16 * 1024
# Statuses passed through as they are: the caller is not who they claim to be, or did not ask
# for a decision (another method).
PASS_THROUGH = {200, 401, 403, 404, 405}
# After a decision on the request thread was late, decide on the pool for this long.
HERE_PAUSE_SECONDS = 10.0
# How long a query given up at the deadline may take to be cancelled, on the side.
CANCEL_TIMEOUT_SECONDS = 5.0
# What deciding answers: Django's response, or the hot path's (core/hot_path.py).
Response = TypeVar("Response", bound=HttpResponse | Answer)


@dataclass(frozen=True)
class Profile:
    tenant_id: int
    deadline_ms: int
    fallback_extension: str
    remembered_at: float


class ProfileCache:
    """credential digest -> what a fallback needs; in-process, bounded, short-lived."""

    def __init__(self) -> None:
        self._profiles: OrderedDict[str, Profile] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, credential: str, tenant: Tenant) -> None:
        routing = tenant.routing_settings
        profile = Profile(tenant.pk, routing.deadline_ms, routing.fallback_extension, time.time())
        with self._lock:
            self._profiles[credential] = profile
            self._profiles.move_to_end(credential)
            while len(self._profiles) > MAX_PROFILES:
                self._profiles.popitem(last=False)

    def recall(self, credential: str) -> Profile | None:
        with self._lock:
            profile = self._profiles.get(credential)
        if profile is None or time.time() - profile.remembered_at > PROFILE_TTL_SECONDS:
            return None
        return profile

    def clear(self) -> None:
        with self._lock:
            self._profiles.clear()


profiles = ProfileCache()
_in_flight = threading.BoundedSemaphore(MAX_IN_FLIGHT)
_thread_state = threading.local()


def credential_digest(secret: str) -> str:
    """Key under which a credential's profile is remembered (never the secret itself)."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def answer_within(
    request: HttpRequest,
    credential: str,
    decide: Callable[[str], Response],
    fallback: Callable[[Profile | None, str], HttpResponse] | None = None,
) -> Response | HttpResponse:
    """Run `decide(body_problem)` on the pool; its response, or the fallback if late or failing.

    `body_problem` says what is wrong with the request's body ("" when it could be read);
    `fallback(profile, reason)` renders the fallback (default: our JSON decision).
    """
    fallback_response = fallback or json_fallback
    started = time.monotonic()
    profile = profiles.recall(credential)
    deadline_ms = profile.deadline_ms if profile else DEFAULT_DEADLINE_MS
    # Read the body here: once we have answered, the worker must not touch the client's socket.
    body_problem = _read_body(request)
    here = profile is not None and _can_decide_here()
    if not here and not _in_flight.acquire(blocking=False):
        return fallback_response(profile, "routing is overloaded")
    try:
        if here:
            give_up_at = started + _waiting_ms(deadline_ms) / 1000
            response = _decide_here(functools.partial(decide, body_problem), give_up_at)
        else:
            decision = _Decision(
                functools.partial(
                    _run,
                    functools.partial(decide, body_problem),
                    deadline_ms,
                    started + deadline_ms / 1000,
                )
            )
            _hand_over(decision)
            response = _wait(decision, credential, profile, started)
            if response is not None and response.status_code == 200:
                _connect_here(started, deadline_ms)
    except Exception as error:  # database unreachable and the like: never a 5xx
        logger.warning("Routing decision failed: %r", error)
        reason = f"lookup failed ({_describe(error)})"
    else:
        if response is None:
            reason = "deadline exceeded"
        elif response.status_code in PASS_THROUGH:
            return response
        elif response.status_code == 429:
            # Still the fallback (never an error), but saying when to ask again.
            retry_after = response.get("Retry-After", "")
            answer = fallback_response(
                profiles.recall(credential) or profile, f"rate_limited, retry in {retry_after} s"
            )
            answer["Retry-After"] = retry_after
            return answer
        else:
            reason = f"lookup failed (HTTP {response.status_code})"
    # The worker may have authenticated the caller meanwhile.
    profile = profiles.recall(credential) or profile
    if reason == "deadline exceeded":
        reason += f" ({profile.deadline_ms if profile else DEFAULT_DEADLINE_MS} ms)"
    return fallback_response(profile, reason)


class _Decision:
    """A decision handed to a deciding thread; `finished` is released once it has run.

    Lighter than a Future: one lock, acquired by the waiting request thread.
    """

    __slots__ = ("error", "finished", "response", "run")

    def __init__(self, run: Callable[[], Any]) -> None:
        self.run = run
        self.finished = threading.Lock()
        self.finished.acquire()
        self.response: Any = None
        self.error: BaseException | None = None

    def result(self, timeout: float) -> Any:
        """The response (None when not finished within timeout); raises what deciding raised."""
        if not self.finished.acquire(timeout=timeout):
            return None
        if self.error is not None:
            raise self.error
        return self.response


_decisions: queue.SimpleQueue[_Decision] = queue.SimpleQueue()
# Deciding threads are started as decisions find none idle, up to POOL_SIZE per process (as a
# ThreadPoolExecutor does): each keeps a database connection, so no more than the load needs.
_idle = threading.Semaphore(0)
_deciders = {"pid": 0, "count": 0}  # the process's deciding threads (none yet after a fork)
_deciders_lock = threading.Lock()


def _hand_over(decision: _Decision) -> None:
    _decisions.put(decision)
    if _idle.acquire(blocking=False):
        return
    with _deciders_lock:
        if _deciders["pid"] != os.getpid():
            _deciders.update(pid=os.getpid(), count=0)
        if _deciders["count"] < POOL_SIZE:
            name = f"routing-decide-{_deciders['count']}"
            threading.Thread(target=_decide_forever, name=name, daemon=True).start()
            _deciders["count"] += 1


def _decide_forever() -> None:
    while True:
        decision = _decisions.get()
        try:
            decision.response = decision.run()
        except BaseException as error:  # handed to the request thread, which says so
            decision.error = error
        finally:
            _in_flight.release()
            decision.finished.release()
            _idle.release()


def _wait(decision: _Decision, credential: str, profile: Profile | None, started: float) -> Any:
    """The worker's response, or None just before the caller's deadline."""
    while profile is None:
        # Whose call it is (so which deadline) is known once the worker has authenticated it.
        response = decision.result(timeout=_remaining(started, DEFAULT_DEADLINE_MS, cap=0.005))
        if response is not None or _remaining(started, DEFAULT_DEADLINE_MS) <= 0:
            return response
        profile = profiles.recall(credential)
    return decision.result(timeout=_remaining(started, profile.deadline_ms))


def json_fallback(profile: Profile | None, reason: str) -> HttpResponse:
    if profile is None:
        # We cannot tell whose call it is: let the phone system use its own fallback.
        return JsonResponse({"extension": None, "rule": None, "reason": f"unrouted: {reason}"})
    return JsonResponse(
        {
            "extension": profile.fallback_extension or None,
            "rule": None,
            "reason": f"fallback: {reason}",
        }
    )


def _remaining(started: float, deadline_ms: int, cap: float | None = None) -> float:
    """Seconds left to wait, keeping a margin to render and send the answer in time."""
    left = max(0.0, started + _waiting_ms(deadline_ms) / 1000 - time.monotonic())
    return left if cap is None else min(left, cap)


def _waiting_ms(deadline_ms: int) -> float:
    """How long a decision may take: the deadline less a margin to render and send the answer."""
    return deadline_ms - min(25.0, deadline_ms * 0.15)


_here_paused_until = 0.0  # this process decides on the pool only until then


def _can_decide_here() -> bool:
    """Whether the request thread may decide itself: its connection is open (a connect is not
    bounded by the deadline) and it may decide here (`_may_decide_here`)."""
    return connection.connection is not None and _may_decide_here()


def _may_decide_here() -> bool:
    """On PostgreSQL, outside any transaction, and no decision made here lately was late."""
    return (
        connection.vendor == "postgresql"
        and not connection.in_atomic_block
        and time.monotonic() >= _here_paused_until
    )


def _decide_here(decide: Callable[[], Response], give_up_at: float) -> Response | None:
    """Decide on the request thread, every query giving up at `give_up_at`; None when late."""
    raw = connection.connection
    gave_up = False

    def wait(gen: Any, *args: Any, **kwargs: Any) -> Any:  # psycopg's Connection.wait
        nonlocal gave_up
        try:
            return type(raw).wait(raw, gen, timeout=max(give_up_at - time.monotonic(), 0.001))
        except BaseException:
            gave_up = gave_up or time.monotonic() >= give_up_at
            raise

    # psycopg runs each query of the connection through its wait(): this one stops at the
    # deadline (errors._WaitTimeout, an OperationalError the decision answers as a failure).
    raw.wait = wait
    try:
        response = decide()
    finally:
        del raw.wait
        if gave_up:  # its query is still running: the connection cannot be used again
            _leave_connection()
    if gave_up or time.monotonic() >= give_up_at:
        _pause_here("a decision on the request thread was late")
        return None
    return response


def _connect_here(started: float, deadline_ms: int) -> None:
    """Open the request thread's connection, so that its next decisions are made here.

    After a decision the pool made in under half the time allowed: a connect is not bounded by
    the deadline, but the database has just answered. Once per thread and connection lifetime
    (CONN_MAX_AGE); a connect that made the answer late sends decisions to the pool a while.
    """
    waiting_ms = _waiting_ms(deadline_ms)
    if connection.connection is not None or not _may_decide_here():
        return
    if time.monotonic() - started > waiting_ms / 2000:
        return
    try:
        connection.ensure_connection()
    except Exception as error:  # the decision stands; the next ones go to the pool
        _pause_here(f"the request thread could not connect ({_describe(error)})")
        return
    if time.monotonic() >= started + waiting_ms / 1000:
        _pause_here("connecting on the request thread made a decision late")


def _pause_here(why: str) -> None:
    global _here_paused_until
    _here_paused_until = time.monotonic() + HERE_PAUSE_SECONDS
    logger.warning("Routing decides on the pool for %.0f s: %s", HERE_PAUSE_SECONDS, why)


def _leave_connection() -> None:
    """Drop this thread's connection, whose query is still running: cancel it on the side."""
    raw = connection.connection
    connection.connection = None  # Django connects afresh at the next query
    threading.Thread(target=_cancel_and_close, args=(raw,), name="routing-cancel").start()


def _cancel_and_close(raw: Any) -> None:
    try:
        raw.cancel_safe(timeout=CANCEL_TIMEOUT_SECONDS)
    except Exception as error:  # the server is gone: closing is all there is to do
        logger.info("Could not cancel a late routing query: %r", error)
    finally:
        raw.close()


def _read_body(request: HttpRequest) -> str:
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > MAX_BODY_BYTES:
        return f"request body over {MAX_BODY_BYTES // 1024} KB"
    try:
        request.body  # noqa: B018 - reads and caches the body
    except Exception as error:  # a client that hangs up mid-body, an oversized stream
        return f"request body unreadable ({_describe(error)})"
    return ""


def _run(
    decide: Callable[[], Response], deadline_ms: int, deadline_at: float
) -> Response | HttpResponse:
    """On a pool thread: decide unless already too late, under a statement timeout."""
    if time.monotonic() >= deadline_at:
        return HttpResponse(status=504)  # queued past its deadline: nobody waits for it
    close_old_connections()
    check_connection()
    try:
        _limit_statements(deadline_ms)
        return _task_context().run(decide)
    finally:
        close_old_connections()


def _task_context() -> contextvars.Context:
    """A context of its own for each decision, so a tenant scope never outlives it.

    Copied from one context per thread holding the cache handles, so decisions share their
    Redis connections instead of opening one each (database connections are per thread anyway).
    """
    base = getattr(_thread_state, "context", None)
    if base is None:
        base = _thread_state.context = contextvars.copy_context()
        base.run(lambda: [caches[alias] for alias in settings.CACHES])
    return base.copy()


def _limit_statements(deadline_ms: int) -> None:
    """Cancel any query of this thread's connection that runs longer than the deadline."""
    if connection.vendor != "postgresql":
        return
    connection.ensure_connection()
    raw = connection.connection
    if getattr(raw, "routing_statement_timeout_ms", None) != deadline_ms:
        with connection.cursor() as cursor:
            cursor.execute(f"SET statement_timeout = {int(deadline_ms)}")
        raw.routing_statement_timeout_ms = deadline_ms


def _describe(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {text[:120]}" if text else type(error).__name__
