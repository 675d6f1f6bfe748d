"""Call-result push throughput and latency against the ceiling, in one run.

1. Creates a fresh PostgreSQL database and a tenant whose callback URL is a local receiver.
2. Starts a real Celery worker on the realtime queue (the Procfile's worker-realtime command).
3. Ends N inbound calls the way a phone system does (a call.end event each, accepted by the same
   service as POST /api/v1/telephony/events); each goes event task -> call ended -> outbox row ->
   delivery task -> signed POST to the receiver. Latency is from the event's acceptance to the
   callback's arrival.
4. The ceiling: a bare `requests` loop posting the same payloads to the same receiver.

Run with bench/deliveries/run (see bench/README.md).
"""

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
DATABASE = "callbridge_bench_deliveries"
ENV = {
    "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DATABASE}",
    # Redis databases nobody else flushes meanwhile (a flushed broker loses queued tasks).
    "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/4"),
    "CELERY_BROKER_URL": os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/5"),
    "SECRET_KEY": "bench-" + "x" * 60,
    "FIELD_ENCRYPTION_KEY": "YmVuY2gtb25seS1maWVsZC1rZXktMzItYnl0ZXMhISE=",
    "ALLOW_PRIVATE_URLS": "true",
    "DJANGO_SETTINGS_MODULE": "config.settings",
    "LOG_LEVEL": "WARNING",
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=8, help="worker processes")
    parser.add_argument("--pool", default="prefork", help="the worker's pool (prefork, threads)")
    parser.add_argument("--prefetch-multiplier", type=int, default=1)
    parser.add_argument("--senders", type=int, default=4, help="threads ending calls")
    parser.add_argument(
        "--rate", type=float, default=0, help="calls ended per second (0: flat out)"
    )
    parser.add_argument(
        "--events-per-call",
        type=int,
        choices=(1, 3),
        default=1,
        help="1: call.end alone; 3: call.start, call.answered, then call.end",
    )
    parser.add_argument(
        "--over-http",
        type=float,
        metavar="SECONDS",
        help="instead: wrk posts call.end events to the Procfile's web server for this long",
    )
    parser.add_argument(
        "--profile", type=int, metavar="N", help="instead: where one call's time goes (stages.py)"
    )
    args = parser.parse_args()
    os.environ.update(ENV)
    recreate_database()
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, check=True)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from tests.calls.receiver import CallbackReceiver

    receiver = CallbackReceiver().start()
    tenant = make_tenant(f"{receiver.url}/callbacks")
    forget_drains()
    if args.profile:
        import stages

        stages.run(tenant, args.profile)
        receiver.stop()
        return
    if args.over_http:
        over_http(args, tenant, receiver)
        receiver.stop()
        return
    with worker(args.concurrency, args.pool, args.prefetch_multiplier) as celery:
        cpu_before = cpu_seconds(group_pids(celery.pid)), cpu_seconds(postgres_pids())
        started = time.monotonic()
        accepted_at = end_calls(tenant, args.calls, args.senders, args.rate, args.events_per_call)
        accepting = time.monotonic() - started
        received = receiver.wait_for(args.calls, timeout=60 + args.calls / 2)
        cpu_used = (
            cpu_seconds(group_pids(celery.pid)) - cpu_before[0],
            cpu_seconds(postgres_pids()) - cpu_before[1],
        )
    arrivals = {r.json()["call_id"]: r.at for r in received}
    accepted_at = by_call_id(tenant, accepted_at)
    payloads = [r.body for r in received]
    latencies = sorted(arrivals[c] - accepted_at[c] for c in arrivals if c in accepted_at)
    order = sorted(accepted_at, key=accepted_at.get)
    slowest = sorted(order, key=lambda c: accepted_at[c] - arrivals.get(c, 1e12))[:5]
    callbridge = {
        "callbacks": len(received),
        "unique": len({r.json()["call_id"] for r in received}),
        "per_s": len(received) / (max(arrivals.values()) - min(accepted_at.values())),
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "accepted_per_s": args.calls * args.events_per_call / accepting,
        "worker_cpu_ms": cpu_used[0] * 1000 / args.calls,
        "postgres_cpu_ms": cpu_used[1] * 1000 / args.calls,
        # Which calls were slowest (n-th accepted, ms): the first few point at a cold worker.
        "slowest": [
            (order.index(c), round((arrivals[c] - accepted_at[c]) * 1000)) for c in slowest
        ],
    }
    ceiling = requests_loop(f"{receiver.url}/callbacks", payloads)
    receiver.stop()
    report(args, callbridge, ceiling)


PORT = 8872
WEB = (
    "-m granian --interface wsgi config.wsgi:application --host 127.0.0.1 --port {port} "
    "--workers 2 --blocking-threads 2 --no-ws --log-level warning"
)  # the Procfile's web command


def over_http(args: argparse.Namespace, tenant: object, receiver: object) -> None:
    """The phone system's side over HTTP: wrk -c 16 posts a new call's call.end per request to
    the Procfile's web server (granian), then every callback is waited for. Twice:

    - shared: the worker drains while wrk posts, both on this machine's CPUs (one machine);
    - web alone: no worker runs while wrk posts (the web tier's acceptance capacity when the
      drain has CPUs of its own); then the worker starts and drains the backlog, timed from the
      drain's start to the last callback.
    """
    from core.scoping import tenant_scope
    from tenants.models import ApiKey
    from tenants.services import api_key_create

    key = "cbs_BenchKy2_deliveries-server-key-local-only"
    with tenant_scope(tenant):
        api_key_create(tenant=tenant, kind=ApiKey.Kind.SERVER, plaintext=key)
    web_command = [sys.executable, *WEB.format(port=PORT).split()]
    with subprocess.Popen(web_command, cwd=ROOT, start_new_session=True) as web:
        try:
            wait_for_web()
            shared = accept_over_http(args, tenant, receiver, web.pid, key, drain_meanwhile=True)
            alone = accept_over_http(args, tenant, receiver, web.pid, key, drain_meanwhile=False)
        finally:
            os.killpg(web.pid, signal.SIGTERM)
    print(
        f"\ncall.end events posted over HTTP by wrk -c 16 for {args.over_http:g} s to granian "
        f"(2 workers x 2 threads), worker --concurrency {args.concurrency} --pool {args.pool}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}\n"
    )
    print("| drain | events accepted/s | 202 p50 ms | 202 p99 ms | non-2xx | callbacks (distinct) "
          "| callbacks/s | CPU ms per event: web + worker + PostgreSQL |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for label, run in (("meanwhile, same CPUs", shared), ("after the accept window", alone)):
        print(
            f"| {label} | {run['rate']:,.0f} | {run['p50']:.1f} | {run['p99']:.1f} "
            f"| {run['errors']} | {run['callbacks']:,} ({run['distinct']:,}) "
            f"| {run['callbacks_per_s']:,.0f} | {run['web_ms']:.2f} + {run['worker_ms']:.2f} "
            f"+ {run['postgres_ms']:.2f} |"
        )
    print(json.dumps({"shared": shared, "web_alone": alone}))


def accept_over_http(
    args: argparse.Namespace,
    tenant: object,
    receiver: object,
    web: int,
    key: str,
    *,
    drain_meanwhile: bool,
) -> dict:
    """One wrk window and its callbacks; with `drain_meanwhile` the worker runs throughout,
    else it starts once wrk is done. Callbacks/s: while wrk posts and after (meanwhile), or from
    the drain's start to the last callback (after)."""
    from calls.events import _drain_start
    from calls.models import TelephonyEvent
    from core.scoping import tenant_scope

    run = "shared" if drain_meanwhile else "alone"
    with tenant_scope(tenant):
        before_count = TelephonyEvent.objects.count()
    already = len(receiver.received)
    drain = worker(args.concurrency, args.pool, args.prefetch_multiplier)
    celery = drain.__enter__() if drain_meanwhile else None
    try:
        cpu = [cpu_seconds(group_pids(web)), cpu_seconds(postgres_pids())]
        worker_cpu = cpu_seconds(group_pids(celery.pid)) if celery else 0.0
        started = time.monotonic()
        output = subprocess.run(
            ["wrk", "-t", "2", "-c", "16", "-d", f"{args.over_http:g}s", "--latency",
             "-s", str(HERE / "call_end.lua"), f"http://127.0.0.1:{PORT}"],
            env={**os.environ, "BENCH_KEY": key, "BENCH_RUN": run},
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        accepted, counted = -1, 0
        while counted != accepted:  # requests still in flight when wrk stopped: let them end
            time.sleep(0.2)
            with tenant_scope(tenant):
                accepted, counted = counted, TelephonyEvent.objects.count() - before_count
        if celery is None:
            web_cpu = cpu_seconds(group_pids(web))
            celery = drain.__enter__()
            worker_cpu = cpu_seconds(group_pids(celery.pid))
            forget_drains()  # the flag the first accept raised: its task went with --purge
            started = time.monotonic()
            _drain_start(tenant.pk, slot=0)
        received = receiver.wait_for(already + accepted, timeout=60 + accepted / 2)[already:]
        worker_cpu = cpu_seconds(group_pids(celery.pid)) - worker_cpu
        if drain_meanwhile:
            web_cpu = cpu_seconds(group_pids(web))
        postgres_cpu = cpu_seconds(postgres_pids()) - cpu[1]
    finally:
        if celery is not None:
            drain.__exit__()
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    p50, p99 = (to_ms(re.search(rf"{pct}%\s+([\d.]+\w+)", output).group(1)) for pct in (50, 99))
    per_event = 1000 / max(accepted, 1)
    return {
        "accepted": accepted,
        "rate": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "p50": p50,
        "p99": p99,
        "errors": int(errors.group(1)) if errors else 0,
        "callbacks": len(received),
        "distinct": len({r.json()["call_id"] for r in received}),
        "callbacks_per_s": len(received) / (max(r.at for r in received) - started),
        "web_ms": (web_cpu - cpu[0]) * per_event,
        "worker_ms": worker_cpu * per_event,
        "postgres_ms": postgres_cpu * per_event,
    }


def wait_for_web() -> None:
    import urllib.request

    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{PORT}/healthz", timeout=1)
            return
        except OSError:
            time.sleep(0.2)
    sys.exit("the web server did not start")


def to_ms(value: str) -> float:
    number, unit = re.match(r"([\d.]+)(\w+)", value).groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def recreate_database() -> None:
    import psycopg

    with psycopg.connect("postgres://postgres@127.0.0.1:5432/postgres", autocommit=True) as db:
        db.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        db.execute(f'CREATE DATABASE "{DATABASE}"')


def forget_drains() -> None:
    """Lower drain flags an earlier run left up (its tenant had the same id): none runs now."""
    from core.shared_redis import redis_client

    for key in redis_client().scan_iter("callbridge:events-drain:*"):
        redis_client().delete(key)


def make_tenant(callback_url: str) -> object:
    from calls.services import signing_secret_rotate
    from tenants.models import Tenant
    from tenants.services import tenant_update

    tenant = Tenant.objects.create(name="Bench", slug="bench")
    tenant_update(tenant=tenant, callback_settings={"url": callback_url})
    signing_secret_rotate(tenant=tenant)
    return tenant


class worker:
    """The Procfile's worker-realtime command on the bench database, ready before use."""

    def __init__(self, concurrency: int, pool: str, prefetch_multiplier: int) -> None:
        self.command = [
            sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "realtime",
            "--concurrency", str(concurrency), "--pool", pool,
            "--prefetch-multiplier", str(prefetch_multiplier), "--without-gossip",
            "--without-mingle", "--purge", "-l", "INFO",
        ]  # fmt: skip

    def __enter__(self) -> subprocess.Popen:
        (ROOT / "var").mkdir(exist_ok=True)
        self.log = open(ROOT / "var" / "bench-deliveries-worker.log", "w+")
        self.process = subprocess.Popen(
            self.command, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while "ready." not in Path(self.log.name).read_text():
            if time.monotonic() > deadline:
                sys.exit("the Celery worker did not start; see var/bench-deliveries-worker.log")
            time.sleep(0.2)
        return self.process

    def __exit__(self, *exc: object) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(timeout=60)
        self.log.close()


def cpu_seconds(pids: list[int]) -> float:
    """CPU time these processes have used so far (Linux /proc)."""
    ticks = sum(int(_stat(pid)[11]) + int(_stat(pid)[12]) for pid in pids)
    return ticks / os.sysconf("SC_CLK_TCK")


def group_pids(group: int) -> list[int]:
    """The processes of a process group: the worker and its pool."""
    pids = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]
    return [pid for pid in pids if _stat(pid)[2] == str(group)]


def _stat(pid: int) -> list[str]:
    """/proc/<pid>/stat from field 3 on (state, ppid, pgrp, ... utime is [11], stime [12])."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:  # gone meanwhile
        return ["x"] + ["0"] * 20


def postgres_pids() -> list[int]:
    """The PostgreSQL backends serving the bench database (web side and worker)."""
    import psycopg

    with psycopg.connect("postgres://postgres@127.0.0.1:5432/postgres", autocommit=True) as db:
        rows = db.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", [DATABASE])
        return [pid for (pid,) in rows]


EVENT_KINDS = ("call.start", "call.answered", "call.end")


def end_calls(
    tenant: object, count: int, senders: int, rate: float, events_per_call: int = 1
) -> dict[str, float]:
    """Accept each call's events from `senders` threads (a phone system's connections): its
    call.end alone, or call.start, call.answered and call.end one after the other.

    With a `rate`, call n ends no sooner than n / rate seconds after the first (a steady load).

    Returns when each call's end was accepted (the moment the phone system got its 202), by id.
    """
    from django.db import connection

    from calls.events import telephony_event_accept
    from core.scoping import tenant_scope

    accepted_at = {}
    started = time.monotonic()

    def end(numbers: range) -> None:
        with tenant_scope(tenant):
            for n in numbers:
                if rate:
                    time.sleep(max(0.0, started + n / rate - time.monotonic()))
                for kind in EVENT_KINDS[-events_per_call:]:
                    body = {
                        "id": f"{kind}-{n}",
                        "type": kind,
                        "call_id": f"bench-{n}",
                        "from": f"+1415200{n:04d}",
                        "to": "+14155550100",
                    }
                    if kind == "call.end":
                        body.update(status="ANSWER", duration=60)
                    telephony_event_accept(tenant=tenant, body=body, source="json")
                accepted_at[f"bench-{n}"] = time.monotonic()
        connection.close()

    with ThreadPoolExecutor(senders) as pool:
        list(pool.map(end, [range(i, count, senders) for i in range(senders)]))
    return accepted_at


def by_call_id(tenant: object, times: dict[str, float]) -> dict[str, float]:
    """Key the phone system's call ids by our call_id, which the callbacks carry."""
    from calls.models import Call
    from core.scoping import tenant_scope

    with tenant_scope(tenant):
        ids = dict(Call.objects.values_list("external_id", "call_id"))
    return {str(ids[key]): at for key, at in times.items() if key in ids}


def requests_loop(url: str, payloads: list[bytes]) -> dict:
    """The ceiling: one requests.Session posting the same bodies back to back."""
    import requests

    latencies = []
    with requests.Session() as session:
        started = time.monotonic()
        for body in payloads:
            sent = time.monotonic()
            session.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=10)
            latencies.append(time.monotonic() - sent)
        elapsed = time.monotonic() - started
    latencies.sort()
    return {
        "per_s": len(payloads) / elapsed,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
    }


def percentile(values: list[float], pct: float) -> float:
    return values[min(len(values) - 1, int(len(values) * pct / 100))] if values else float("nan")


def report(args: argparse.Namespace, callbridge: dict, ceiling: dict) -> None:
    print(
        f"\n{args.calls} calls ended by {args.senders} threads "
        f"{f'at {args.rate:g}/s ' if args.rate else ''}"
        f"({args.events_per_call} event{'s' if args.events_per_call > 1 else ''} a call, "
        f"{callbridge['accepted_per_s']:,.0f} events accepted/s), worker "
        f"--concurrency {args.concurrency} --pool {args.pool} --prefetch-multiplier "
        f"{args.prefetch_multiplier}, {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.1f}; {callbridge['callbacks']} callbacks received "
        f"({callbridge['unique']} distinct calls); CPU per callback: worker "
        f"{callbridge['worker_cpu_ms']:.1f} ms, PostgreSQL {callbridge['postgres_cpu_ms']:.1f} ms\n"
    )
    print("| sender | callbacks/s | × ceiling | p50 ms | p99 ms |")
    print("|---|---:|---:|---:|---:|")
    print(
        f"| ceiling (bare requests loop, same payloads) | {ceiling['per_s']:,.0f} | 1.00 "
        f"| {ceiling['p50_ms']:.1f} | {ceiling['p99_ms']:.1f} |"
    )
    print(
        f"| CallBridge (call.end accepted -> callback received) | {callbridge['per_s']:,.0f} "
        f"| {callbridge['per_s'] / ceiling['per_s']:.2f} | {callbridge['p50_ms']:.1f} "
        f"| {callbridge['p99_ms']:.1f} |"
    )
    print(json.dumps({"callbridge": callbridge, "ceiling": ceiling}))


if __name__ == "__main__":
    main()
