"""The application's own CPU per lookup or decision: requests through the WSGI app in a loop.

No web server, no wrk: what is left is the Python a worker runs per request (plus the database's
and Redis's answers), so a change to the hot path shows in a minute on a busy machine.

    .venv/bin/python bench/lookup/in_process.py lookup [--requests 5000] [--profile]
    .venv/bin/python bench/lookup/in_process.py decide
    .venv/bin/python bench/lookup/in_process.py ceiling   # ceiling.py's function

Uses the database bench/lookup/run loaded (--database, default callbridge_bench) and the same
Redis and settings as the benchmark's servers.
"""

import argparse
import cProfile
import io
import os
import pstats
import random
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parents[1]), str(HERE)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["lookup", "decide", "ceiling"])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--database", default="callbridge_bench")
    parser.add_argument("--profile", action="store_true", help="print cProfile's top functions")
    args = parser.parse_args()
    dsn = f"postgres://postgres@127.0.0.1:5432/{args.database}"
    os.environ.update(
        DATABASE_URL=dsn,
        BENCH_DSN=dsn,
        REDIS_URL=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6380/11"),
        CELERY_BROKER_URL=os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6380/12"),
        SECRET_KEY="bench-" + "x" * 60,
        FIELD_ENCRYPTION_KEY="YmVuY2gtb25seS1maWVsZC1rZXktMzItYnl0ZXMhISE=",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        API_KEY_RATE_LIMIT_PER_MINUTE="100000000",
        LOG_LEVEL="WARNING",
        DJANGO_SETTINGS_MODULE="config.settings",
    )
    if args.mode == "ceiling":
        import psycopg

        with psycopg.connect(dsn) as db:
            os.environ["BENCH_TENANT_ID"] = str(
                db.execute("SELECT id FROM tenants_tenant WHERE slug = 'bench'").fetchone()[0]
            )
        from ceiling import application
    else:
        from config.wsgi import application
    from load import SERVER_KEY

    rng = random.Random(1)

    def request() -> None:
        if rng.randrange(10) == 0:
            number = f"+1628{2000000 + rng.randrange(8000000):07d}"
        else:
            number = f"+1415{2000000 + rng.randrange(args.contacts):07d}"
        environ = {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": "/" if args.mode == "ceiling" else "/api/v1/lookup",
            "QUERY_STRING": "number=" + number.replace("+", "%2B"),
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8871",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_HOST": "127.0.0.1:8871",
            "HTTP_AUTHORIZATION": f"Bearer {SERVER_KEY}",
            "HTTP_X_FORWARDED_PROTO": "https",
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(b""),
            "wsgi.errors": sys.stderr,
        }
        if args.mode == "decide":
            body = f'{{"caller": "{number}"}}'.encode()
            environ.update(
                REQUEST_METHOD="POST",
                PATH_INFO="/api/v1/routing/decide",
                QUERY_STRING="",
                CONTENT_TYPE="application/json",
                CONTENT_LENGTH=str(len(body)),
            )
            environ["wsgi.input"] = io.BytesIO(body)
        statuses = []
        answer = application(environ, lambda status, headers, *_: statuses.append(status))
        b"".join(answer)
        getattr(answer, "close", lambda: None)()
        assert statuses[0].startswith("200"), (statuses, b"".join(answer))

    for _ in range(500):  # connections, caches, prepared statements
        request()
    # CPU time, not wall time: waiting for PostgreSQL is not the application's cost.
    profiler = cProfile.Profile(time.process_time) if args.profile else None
    started_cpu, started = time.process_time(), time.perf_counter()
    if profiler:
        profiler.enable()
    for _ in range(args.requests):
        request()
    if profiler:
        profiler.disable()
    cpu = time.process_time() - started_cpu
    elapsed = time.perf_counter() - started
    print(
        f"{args.mode}: {cpu / args.requests * 1000:.3f} ms CPU and "
        f"{elapsed / args.requests * 1000:.3f} ms per request ({args.requests:,} requests)"
    )
    if profiler:
        pstats.Stats(profiler).sort_stats(os.environ.get("SORT", "tottime")).print_stats(
            int(os.environ.get("TOP", 30))
        )


if __name__ == "__main__":
    main()
