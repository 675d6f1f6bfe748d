"""Sync speed and memory against the ceiling, in one run.

1. Serves the CRM's fake (`--provider`, HubSpot by default; providers.py) with N generated
   contacts in its own process (fake.py), over HTTP.
2. Creates a fresh PostgreSQL database, migrates it, and runs the full initial sync through
   connectors.sync.connection_sync in its own process (sync.py): contacts/s and peak RSS.
3. Pages through the fake with the connector alone (no database): what the source allows.
4. Archives 1 % of the contacts in the fake, runs the 24 h full diff: its time, and checks that
   exactly that 1 % was soft-deleted.
5. The ceiling (ceiling.py): a plain psycopg COPY + INSERT ... ON CONFLICT of the same rows.

With --rate-limited the fake keeps the published limits of a customer's tier (providers.py) and
the connection names them in its settings, as that tenant would: steps 2 and 4 only, each
against the minimum time the CRM's limits allow for the requests it made.

Run with bench/sync/run (see bench/README.md).
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from providers import FAKES  # noqa: E402

DELETED_EVERY = 100  # the full diff finds 1 % gone


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--provider", choices=sorted(FAKES), default="hubspot")
    parser.add_argument("--database", default="callbridge_bench_sync")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/5")
    parser.add_argument(
        "--reuse", action="store_true", help="keep the synced database: skip the initial sync"
    )
    parser.add_argument("--profile", help="write a cProfile of the initial sync to this file")
    parser.add_argument(
        "--rate-limited",
        action="store_true",
        help="the CRM's published limits for a customer's tier, kept by the fake and the budget",
    )
    args = parser.parse_args()
    customer = FAKES[args.provider].customer
    if args.rate_limited and customer is None:
        sys.exit(f"--rate-limited: no customer tier for {args.provider} in providers.py")

    dsn = f"postgres://postgres@127.0.0.1:5432/{args.database}"
    env = {
        **os.environ,
        "DATABASE_URL": dsn,
        "REDIS_URL": args.redis_url,
        "CELERY_BROKER_URL": args.redis_url,
        "CACHE_KEY_PREFIX": f"bench-sync-{os.getpid()}",
        "SECRET_KEY": "bench-" + "x" * 60,
        "FIELD_ENCRYPTION_KEY": "YmVuY2gtb25seS1maWVsZC1rZXktMzItYnl0ZXMhISE=",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "ALLOW_PRIVATE_URLS": "1",  # the fake listens on 127.0.0.1
        "LOG_LEVEL": "WARNING",
        "DEBUG": "0",
        "BENCH_SYNC_PROVIDER": args.provider,
    }
    if args.rate_limited:
        env["BENCH_SYNC_RATE_LIMITS"] = json.dumps(customer.rate_limits)
    else:
        # Lift the connection's request budget: this measures the engine, not the CRM's limits.
        env["CONNECTOR_REQUESTS_PER_10_SECONDS"] = str(10**9)
        env["BENCH_SYNC_RATE_LIMITS"] = json.dumps({"requests": [10**9, 10], "search": [10**9, 10]})
    limited = ["--rate-limited"] if args.rate_limited else []
    fake = subprocess.Popen(
        [sys.executable, str(HERE / "fake.py"), args.provider, str(args.contacts), *limited],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url, generated, credentials = ask(fake, None).split(" ", 2)
        print(
            f"fake {args.provider} at {url}: {args.contacts:,} contacts generated in {generated} s"
        )
        results = measure(args, dsn, env, fake, credentials)
    finally:
        fake.stdin.close()
        fake.wait(timeout=30)
    if args.rate_limited:
        report_rate_limited(args, results)
    else:
        report(args, results)


def measure(
    args: argparse.Namespace, dsn: str, env: dict, fake: subprocess.Popen, credentials: str
):
    if not args.reuse:
        recreate_database(args.database)
        run([sys.executable, "manage.py", "migrate", "-v", "0"], env)
    connection_id = json.loads(run_script(["setup", credentials], env))["connection_id"]
    results = {}
    if args.reuse:
        with psycopg.connect(dsn) as db:  # bring back what the last run's diff deleted
            revived = db.execute(
                "UPDATE contacts_contact SET deleted_at = NULL WHERE source_connection_id = %s",
                [connection_id],
            ).rowcount
        if revived != args.contacts:
            sys.exit(f"--reuse needs a synced database of {args.contacts:,}; it has {revived:,}.")
    else:
        profile = ["--profile", args.profile] if args.profile else []
        results["sync"] = timed_with_fake(fake, lambda: run_script(["incremental", *profile], env))
        synced = results["sync"]
        print("initial sync:", json.dumps(synced))
        assert synced["outcome"] == "succeeded", synced
        assert synced["created"] + synced["invalid_records"] == args.contacts, synced
    if not args.rate_limited:
        results["fetch"] = timed_with_fake(fake, lambda: run_script(["fetch"], env))
        print("fetch only:", json.dumps(results["fetch"]))

    archived = int(ask(fake, f"archive {DELETED_EVERY}"))
    results["diff"] = timed_with_fake(fake, lambda: run_script(["full"], env))
    print("full diff:", json.dumps(results["diff"]))
    with psycopg.connect(dsn) as db:
        (soft_deleted,) = db.execute(
            "SELECT count(*) FROM contacts_contact "
            "WHERE source_connection_id = %s AND deleted_at IS NOT NULL",
            [connection_id],
        ).fetchone()
    results["diff"].update(archived=archived, soft_deleted=soft_deleted)
    assert results["diff"]["outcome"] == "succeeded", results["diff"]
    if args.rate_limited:
        return results

    page_size = str(FAKES[args.provider].page_size)
    output = run(
        [sys.executable, str(HERE / "ceiling.py"), dsn, str(connection_id), page_size], env
    )
    results["ceiling"] = json.loads(output.stdout)
    print("ceiling:", json.dumps(results["ceiling"]))
    return results


def timed_with_fake(fake: subprocess.Popen, step) -> dict:
    """Run step (a script printing JSON) and add the fake's CPU seconds spent meanwhile, and
    with --rate-limited the requests it answered meanwhile (by limit) and refused."""
    limited = "--rate-limited" in fake.args
    before = float(ask(fake, "cpu"))
    requests_before = json.loads(ask(fake, "requests")) if limited else None
    result = json.loads(step())
    result["fake_cpu_seconds"] = float(ask(fake, "cpu")) - before
    if requests_before:
        after = json.loads(ask(fake, "requests"))
        result["requests"] = {
            name: count - requests_before["by_limit"].get(name, 0)
            for name, count in after["by_limit"].items()
        }
        result["refused"] = after["refused"] - requests_before["refused"]
        result["daily"] = (after["daily_used"], after["daily_allowed"], after["daily_unit"])
    return result


def ask(fake: subprocess.Popen, command: str | None) -> str:
    if command:
        fake.stdin.write(command + "\n")
        fake.stdin.flush()
    line = fake.stdout.readline()
    if not line:
        sys.exit("the fake CRM died")
    return line.strip()


def recreate_database(name: str) -> None:
    with psycopg.connect("postgres://postgres@127.0.0.1:5432/postgres", autocommit=True) as db:
        db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        db.execute(f'CREATE DATABASE "{name}"')


def run_script(arguments: list[str], env: dict[str, str]) -> str:
    return (
        run([sys.executable, str(HERE / "sync.py"), *arguments], env)
        .stdout.strip()
        .splitlines()[-1]
    )


def run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if result.returncode:
        sys.exit(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def report(args: argparse.Namespace, results: dict) -> None:
    n = args.contacts
    ceiling = results["ceiling"]
    ceiling_rate = ceiling["contacts"] / ceiling["seconds"]
    diff = results["diff"]
    print(
        f"\n{args.provider}: {n:,} contacts, {os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d')}\n"
    )
    print(
        "| step | seconds | contacts/s | × ceiling | peak RSS MB "
        "| CPU µs/contact: engine + fake + PostgreSQL |"
    )
    print("|---|---:|---:|---:|---:|---|")
    steps = [
        ("initial sync (connection_sync)", results.get("sync")),
        ("fetch only (connector, no database)", results["fetch"]),
        (f"full diff ({diff['deleted']:,} deleted)", diff),
    ]
    for name, r in steps:
        if r is None:
            continue
        rate = n / r["seconds"]
        cpu = [r["cpu_seconds"], r["fake_cpu_seconds"], r["postgres_cpu_seconds"]]
        print(
            f"| {name} | {r['seconds']:.1f} | {rate:,.0f} | {rate / ceiling_rate:.2f} "
            f"| {r['peak_rss_mb']:.0f} | {microseconds(cpu, n)} |"
        )
    print(
        f"| ceiling (psycopg COPY + ON CONFLICT, {FAKES[args.provider].page_size} a page) "
        f"| {ceiling['seconds']:.1f} "
        f"| {ceiling_rate:,.0f} | 1.00 | | PostgreSQL "
        f"{ceiling['postgres_cpu_seconds'] / n * 1e6:.0f} |"
    )
    exact = diff["deleted"] == diff["archived"] == diff["soft_deleted"]
    print(
        f"\nfull diff: {diff['archived']:,} archived in the fake, {diff['deleted']:,} deleted by "
        f"the run, {diff['soft_deleted']:,} soft-deleted in the database: "
        + ("exact" if exact else "MISMATCH")
    )
    if "sync" in results:
        sync = results["sync"]
        rate = n / sync["seconds"]
        print(
            f"targets: {rate:,.0f} contacts/s (>= 10,000: {verdict(rate >= 10_000)}), "
            f"peak RSS {sync['peak_rss_mb']:.0f} MB (< 400: {verdict(sync['peak_rss_mb'] < 400)}), "
            f"full diff {diff['seconds']:.1f} s (< 60: {verdict(diff['seconds'] < 60)})"
        )
    if not exact:
        sys.exit(1)


def report_rate_limited(args: argparse.Namespace, results: dict) -> None:
    n = args.contacts
    customer = FAKES[args.provider].customer
    print(
        f"\n{args.provider} ({customer.tier}): {n:,} contacts, {os.cpu_count()} CPUs, "
        f"{time.strftime('%Y-%m-%d')}\n"
    )
    print(
        "| step | seconds | contacts/s | minimum s | × minimum | requests (limit: made) | 429 "
        "| peak RSS MB | CPU µs/contact: engine + fake + PostgreSQL |"
    )
    print("|---|---:|---:|---:|---:|---|---:|---:|---|")
    diff = results["diff"]
    for name, r in [("initial sync", results.get("sync")), ("full diff", diff)]:
        if r is None:
            continue
        least = minimum_seconds(r["requests"], customer.rate_limits)
        if least:
            ratio = f"{r['seconds'] / least:.2f}"
        else:
            ratio = "within one window" if customer.rate_limits else "no speed limit"
        made = ", ".join(f"{limit}: {count:,}" for limit, count in sorted(r["requests"].items()))
        cpu = [r["cpu_seconds"], r["fake_cpu_seconds"], r["postgres_cpu_seconds"]]
        print(
            f"| {name} | {r['seconds']:.1f} | {n / r['seconds']:,.0f} | {least:.1f} | {ratio} "
            f"| {made} | {r['refused']} "
            f"| {r['peak_rss_mb']:.0f} | {microseconds(cpu, n)} |"
        )
    used, allowed, unit = diff["daily"]
    print(f"\nthe day's allocation: {used:,} of {allowed:,} {unit} used by both steps")
    exact = diff["deleted"] == diff["archived"] == diff["soft_deleted"]
    print(
        f"full diff: {diff['archived']:,} archived in the fake, {diff['deleted']:,} deleted by "
        f"the run, {diff['soft_deleted']:,} soft-deleted in the database: "
        + ("exact" if exact else "MISMATCH")
    )
    if not exact:
        sys.exit(1)


def minimum_seconds(requests: dict[str, int], limits: dict[str, tuple[int, float]]) -> float:
    """The least time these requests take under the CRM's limits: N in any S seconds lets the
    first N go at once and the k-th (from 0) no sooner than S after the (k - N)-th, so at best
    at (k // N) x S; the last one's answer time is not counted."""
    least = 0.0
    for name, count in requests.items():
        if name in limits and count:
            allowed, seconds = limits[name]
            least = max(least, (count - 1) // allowed * seconds)
    return least


def microseconds(cpu_seconds: list[float], count: int) -> str:
    parts = [seconds / count * 1e6 for seconds in cpu_seconds]
    return " + ".join(f"{p:.0f}" for p in parts) + f" = {sum(parts):.0f}"


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


if __name__ == "__main__":
    main()
