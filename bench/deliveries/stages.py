"""Where one callback's time goes: queries, locks, publishes and the POST, stage by stage.

Runs the path of bench.py in this one process (no worker, no contention): accept N call.end
events, then run one drain over them, as the worker would (its batches, their commits, and the
callbacks' first attempts). Each database statement, Redis command and broker publish is counted
and timed with its stage, and shown per call. Run it after bench.py, which leaves its database
migrated: `bench/deliveries/run --profile 200`.
"""

from __future__ import annotations

import re
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager


class Meter:
    """Statement counts and seconds by stage and kind; the current stage is `stage`."""

    def __init__(self) -> None:
        self.stage = "idle"
        self.count: Counter = Counter()
        self.seconds: defaultdict = defaultdict(float)
        self.wall: defaultdict = defaultdict(float)
        self.cpu: defaultdict = defaultdict(float)

    def add(self, kind: str, seconds: float) -> None:
        self.count[self.stage, kind] += 1
        self.seconds[self.stage, kind] += seconds

    @contextmanager
    def timing(self, stage: str) -> Iterator[None]:
        self.stage, started, cpu = stage, time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.wall[stage] += time.perf_counter() - started
            self.cpu[stage] += time.process_time() - cpu
            self.stage = "idle"

    def sql(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.add(_sql_kind(sql), time.perf_counter() - started)


def _sql_kind(sql: str) -> str:
    verb = sql.split(None, 1)[0].upper()
    table = re.search(r'(?:FROM|INTO|UPDATE)\s+"(\w+)"', sql)
    lock = " FOR UPDATE" if "FOR UPDATE" in sql else ""
    return f"sql {verb} {table.group(1) if table else ''}{lock}".strip()


def run(tenant: object, calls: int) -> None:
    import kombu.messaging
    import redis.client
    from django.db import connection, connections

    from calls import tasks
    from calls.events import telephony_event_accept
    from calls.models import Delivery
    from core import hot_path, http
    from core.scoping import tenant_scope
    from core.shared_redis import redis_client

    meter = Meter()
    _wrap(redis.client.Redis, "execute_command", meter, "redis command")
    _wrap(redis.client.Pipeline, "execute", meter, "redis pipeline")
    _wrap(kombu.messaging.Producer, "publish", meter, "broker publish")
    _wrap_function(http, "post", meter, "http POST")
    # Statements run on the raw cursor (the accept's insert, the claim, the drain's inserts),
    # which the execute wrapper below does not see.
    original_fetch_all = hot_path.fetch_all

    def fetch_all(sql, params):
        started = time.perf_counter()
        try:
            return original_fetch_all(sql, params)
        finally:
            meter.add(_sql_kind(sql), time.perf_counter() - started)

    hot_path.fetch_all = fetch_all
    _wrap(type(connections["default"]), "commit", meter, "sql COMMIT")
    with connection.execute_wrapper(meter.sql), tenant_scope(tenant):
        run_id = time.time_ns()
        # As if a drain were running: accepting starts no task, the drain below does the work.
        redis_client().set(f"callbridge:events-drain:{tenant.pk}:0", 1, ex=60)
        with meter.timing("1 accept (web)"):
            for n in range(calls):
                body = {"id": f"{run_id}-{n}", "type": "call.end", "call_id": f"{run_id}-{n}",
                        "from": f"+1415300{n:04d}", "to": "+14155550100", "status": "ANSWER",
                        "duration": 60}  # fmt: skip
                telephony_event_accept(tenant=tenant, body=body, source="json")
        with meter.timing("2 drain (worker)"):
            tasks.telephony_events_drain.run(tenant.pk)
        sent = Delivery.objects.filter(call__external_id__startswith=f"{run_id}-")
        assert sent.filter(state=Delivery.State.SUCCEEDED).count() == calls, "callbacks missing"
    report(meter, calls)


def _wrap(owner: type, name: str, meter: Meter, kind: str) -> None:
    original = getattr(owner, name)

    def timed(self, *args, **kwargs):
        started = time.perf_counter()
        try:
            return original(self, *args, **kwargs)
        finally:
            meter.add(kind, time.perf_counter() - started)

    setattr(owner, name, timed)


def _wrap_function(module: object, name: str, meter: Meter, kind: str) -> None:
    original = getattr(module, name)

    def timed(*args, **kwargs):
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            meter.add(kind, time.perf_counter() - started)

    setattr(module, name, timed)


def report(meter: Meter, calls: int) -> None:
    print(f"\nPer call, averaged over {calls} calls (one process, no contention):\n")
    print("| stage | what | count | ms |")
    print("|---|---|---:|---:|")
    for stage in sorted(meter.wall):
        rows = sorted(
            (k for s, k in meter.count if s == stage), key=lambda k: -meter.seconds[stage, k]
        )
        for kind in rows:
            print(
                f"| {stage} | {kind} | {meter.count[stage, kind] / calls:.1f} "
                f"| {meter.seconds[stage, kind] * 1000 / calls:.2f} |"
            )
        total = sum(meter.count[stage, k] for k in rows if k.startswith("sql")) / calls
        print(f"| **{stage}** | **all ({total:.0f} statements; CPU in this process "
              f"{meter.cpu[stage] * 1000 / calls:.1f} ms)** | | "
              f"**{meter.wall[stage] * 1000 / calls:.1f}** |")  # fmt: skip
