"""Lookup and routing-decide throughput and latency against the ceiling, in one run.

1. Creates a fresh PostgreSQL database, migrates it, loads N contacts with COPY.
2. Serves the ceiling (ceiling.py) and CallBridge one after the other on the same machine, under
   each web server asked for (--server, default the Procfile's), with the same options.
3. Drives each with wrk at a fixed concurrency for a fixed time; reports requests/s, p50, p99.

Run with bench/lookup/run (see bench/README.md).
"""

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
PORT = 8871


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", 2)))
    parser.add_argument("--database", default="callbridge_bench")
    parser.add_argument("--reuse", action="store_true", help="keep an already loaded database")
    parser.add_argument(
        "--server",
        action="append",
        choices=SERVERS,
        help=f"web server to measure, repeatable (default {DEFAULT_SERVER}, the Procfile's)",
    )
    args = parser.parse_args()

    dsn = f"postgres://postgres@127.0.0.1:5432/{args.database}"
    env = {
        **os.environ,
        "DATABASE_URL": dsn,
        # A Redis of its own by default: test suites flush their databases on the main one.
        "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6380/11"),
        "CELERY_BROKER_URL": os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6380/12"),
        "SECRET_KEY": "bench-" + "x" * 60,
        "FIELD_ENCRYPTION_KEY": "YmVuY2gtb25seS1maWVsZC1rZXktMzItYnl0ZXMhISE=",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "API_KEY_RATE_LIMIT_PER_MINUTE": "100000000",
        "LOG_LEVEL": "WARNING",
    }
    if not args.reuse:
        recreate_database(args.database)
    run([sys.executable, "manage.py", "migrate", "-v", "0"], env)  # a kept one may be behind
    if not args.reuse:
        started = time.monotonic()
        run([sys.executable, str(HERE / "load.py"), str(args.contacts)], env)
        print(f"loaded {args.contacts:,} contacts in {time.monotonic() - started:.0f} s")
    setup = json.loads(run([sys.executable, str(HERE / "load.py"), "--setup"], env).stdout)

    bench_env = {**env, "BENCH_DSN": dsn, "BENCH_TENANT_ID": str(setup["tenant_id"])}
    for server_name in args.server or [DEFAULT_SERVER]:
        results = {}
        for name, app, mode in (
            ("ceiling (bare WSGI + psycopg, lookup's query)", "ceiling:application", "ceiling"),
            ("ceiling, its earlier query (8 columns)", "ceiling:application", "ceiling-earlier"),
            ("GET /api/v1/lookup", "config.wsgi:application", "lookup"),
            ("POST /api/v1/routing/decide", "config.wsgi:application", "decide"),
        ):
            with WebServer(server_name, app, args.workers, bench_env) as server:
                check(mode, setup["server_key"])
                wrk(mode, setup["server_key"], args, warmup=True)
                meter = CpuMeter(server.pid, args.database, env["REDIS_URL"])
                results[name] = wrk(mode, setup["server_key"], args)
                used = meter.milliseconds()
                results[name]["cpu"] = {
                    part: ms / results[name]["requests"] for part, ms in used.items()
                }
        report(server_name, results, args)


class CpuMeter:
    """CPU time used since creation by the web server's processes, their database backends and
    Redis: unlike requests/s, CPU per request hardly moves when other work shares the machine.
    """

    def __init__(self, server_pid: int, database: str, redis_url: str) -> None:
        import redis

        self.server_pid, self.database = server_pid, database
        self.redis_pid = redis.Redis.from_url(redis_url).info("server")["process_id"]
        self.start = self.usage()

    def pids(self) -> dict[int, str]:
        """The processes measured, each with its part: web, PostgreSQL or Redis."""
        import psycopg

        parents: dict[int, int] = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
        workers = {pid for pid, ppid in parents.items() if ppid == self.server_pid}
        with psycopg.connect("postgres://postgres@127.0.0.1:5432/postgres") as db:
            backends = db.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s", [self.database]
            ).fetchall()
        return {
            **{pid: "postgres" for (pid,) in backends},
            **dict.fromkeys({self.server_pid, *workers}, "web"),
            self.redis_pid: "redis",
        }

    def usage(self) -> dict[int, tuple[str, int]]:
        """Clock ticks (user + system) per process, with its part."""
        ticks = {}
        for pid, part in self.pids().items():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # ended meanwhile
            ticks[pid] = (part, int(fields[11]) + int(fields[12]))
        return ticks

    def milliseconds(self) -> dict[str, float]:
        """CPU milliseconds used since creation, by part."""
        used = dict.fromkeys(("web", "postgres", "redis"), 0.0)
        for pid, (part, ticks) in self.usage().items():
            used[part] += (
                (ticks - self.start.get(pid, (part, 0))[1]) * 1000 / os.sysconf("SC_CLK_TCK")
            )
        return used


def recreate_database(name: str) -> None:
    import psycopg

    with psycopg.connect("postgres://postgres@127.0.0.1:5432/postgres", autocommit=True) as db:
        db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        db.execute(f'CREATE DATABASE "{name}"')


def run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if result.returncode:
        sys.exit(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")
    return result


# Candidate web servers, each serving a WSGI app on PORT with WORKERS processes.
GRANIAN = "-m granian --interface wsgi {app} --host 127.0.0.1 --port {port} --workers {workers}"
GUNICORN = "-m gunicorn {app} --bind 127.0.0.1:{port} --workers {workers} --timeout 30"
SERVERS: dict[str, str] = {
    # The Procfile's web: a Rust HTTP front with two Python threads per worker (live streams
    # beyond one a worker are served polling, calls/live.py, or by the Procfile's `live`).
    "granian": f"{GRANIAN} --blocking-threads 2 --log-level warning --no-ws",
    # Its web until 2026-12-05: four threads, more of them sharing each worker's GIL.
    "granian-4-threads": f"{GRANIAN} --blocking-threads 4 --log-level warning --no-ws",
    "granian-1-thread": f"{GRANIAN} --blocking-threads 1 --log-level warning --no-ws",
    "gunicorn-sync": f"{GUNICORN} --log-level warning",
    "gunicorn-gthread": f"{GUNICORN} --threads 4 --log-level warning",
}
DEFAULT_SERVER = "granian"


class WebServer:
    """One of SERVERS on a local port, serving `app` from the repository or this folder."""

    def __init__(self, server: str, app: str, workers: int, env: dict[str, str]) -> None:
        values = {"app": app, "port": str(PORT), "workers": str(workers)}
        self.command = [sys.executable, *SERVERS[server].format(**values).split()]
        self.env = {**env, "PYTHONPATH": f"{ROOT}:{HERE}"}
        self.server = server

    def __enter__(self) -> subprocess.Popen:
        self.process = subprocess.Popen(self.command, cwd=ROOT, env=self.env)
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{PORT}/healthz", timeout=1)
                return self.process
            except urllib.error.HTTPError:
                return self.process  # the ceiling answers anything
            except OSError:
                time.sleep(0.2)
        sys.exit(f"{self.server} did not start")

    def __exit__(self, *exc: object) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)


def check(mode: str, key: str) -> None:
    """One known number must be found, so the load measures real answers, not errors."""
    number = "%2B14152000000"
    if mode == "decide":
        request = urllib.request.Request(
            f"http://127.0.0.1:{PORT}/api/v1/routing/decide",
            data=b'{"caller": "+14152000000"}',
            headers={"Content-Type": "application/json"},
        )
    else:
        path = {"ceiling": "/", "ceiling-earlier": "/earlier"}.get(mode, "/api/v1/lookup")
        request = urllib.request.Request(f"http://127.0.0.1:{PORT}{path}?number={number}")
    request.add_header("Authorization", f"Bearer {key}")
    request.add_header("X-Forwarded-Proto", "https")
    body = json.loads(urllib.request.urlopen(request, timeout=5).read())
    print(mode, "->", json.dumps(body)[:160])
    assert body.get("known") or body.get("extension"), body


def wrk(mode: str, key: str, args: argparse.Namespace, warmup: bool = False) -> dict:
    env = {**os.environ, "BENCH_MODE": mode, "BENCH_KEY": key, "BENCH_CONTACTS": str(args.contacts)}
    seconds = 3 if warmup else args.seconds
    output = subprocess.run(
        [
            "wrk",
            "-t",
            "2",
            "-c",
            str(args.concurrency),
            "-d",
            f"{seconds}s",
            "--latency",
            "-s",
            str(HERE / "random_number.lua"),
            f"http://127.0.0.1:{PORT}",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {
        "requests": int(re.search(r"(\d+) requests in", output).group(1)),
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "p50_ms": to_ms(re.search(r"50%\s+([\d.]+\w+)", output).group(1)),
        "p99_ms": to_ms(re.search(r"99%\s+([\d.]+\w+)", output).group(1)),
        "non_2xx": int(errors.group(1)) if errors else 0,
    }


def to_ms(value: str) -> float:
    number, unit = re.match(r"([\d.]+)(\w+)", value).groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def report(server: str, results: dict, args: argparse.Namespace) -> None:
    ceiling, earlier = (r["rps"] for r in list(results.values())[:2])
    print(
        f"\n{server}, {args.workers} workers: {args.contacts:,} contacts, "
        f"wrk -c {args.concurrency} for {args.seconds} s, {os.cpu_count()} CPUs\n"
    )
    print(
        "| endpoint | requests/s | × ceiling | × earlier ceiling | p50 ms | p99 ms | non-2xx "
        "| CPU ms/request | web / PostgreSQL / Redis |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for name, r in results.items():
        print(
            f"| {name} | {r['rps']:,.0f} | {r['rps'] / ceiling:.2f} | {r['rps'] / earlier:.2f} "
            f"| {r['p50_ms']:.1f} "
            f"| {r['p99_ms']:.1f} | {r['non_2xx']} | {sum(r['cpu'].values()):.2f} "
            f"| {r['cpu']['web']:.2f} / {r['cpu']['postgres']:.2f} / {r['cpu']['redis']:.3f} |"
        )


if __name__ == "__main__":
    random.seed(1)
    main()
