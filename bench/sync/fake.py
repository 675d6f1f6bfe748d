"""Serve one CRM's fake for the sync benchmark in its own process, driven by stdin.

`fake.py PROVIDER N [--rate-limited]` prints the URL, the seconds it took to generate N
contacts and the connection's credentials (JSON) on one line, then answers commands, one a line:
`archive K` deletes every K-th contact (as deleting them in the CRM would), `cpu` prints the CPU
seconds this process used so far, `requests` (with --rate-limited: the customer's fake) prints
as JSON the requests answered so far by the limit they spend, those refused over a limit, and
the day's allocation used.
"""

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # fakes/
sys.path.insert(0, str(Path(__file__).resolve().parent))  # providers.py

from providers import FAKES, every, requests_made


def main() -> None:
    provider, count = sys.argv[1], int(sys.argv[2])
    started = time.monotonic()
    bench = FAKES[provider]
    customer = bench.customer if "--rate-limited" in sys.argv[3:] else None
    fake = customer.make(count) if customer else bench.make(count)
    url = fake.start()
    credentials = json.dumps(bench.credentials(fake), separators=(",", ":"))
    print(f"{url} {time.monotonic() - started:.1f} {credentials}", flush=True)
    for line in sys.stdin:
        command, *args = line.split()
        if command == "archive":
            ids = every(int(args[0]), bench.contact_ids(fake))
            bench.delete(fake, ids)
            print(len(ids), flush=True)
        elif command == "cpu":
            times = os.times()
            print(f"{times.user + times.system:.2f}", flush=True)
        elif command == "requests" and customer:
            by_limit: dict[str, int] = {}
            for method, path in requests_made(fake):
                name = customer.limit_of(method, path)
                by_limit[name] = by_limit.get(name, 0) + 1
            used, allowed, unit = customer.daily(fake)
            answer = {
                "by_limit": by_limit,
                "refused": customer.refused(fake),
                "daily_used": used,
                "daily_allowed": allowed,
                "daily_unit": unit,
            }
            print(json.dumps(answer), flush=True)
    fake.stop()


if __name__ == "__main__":
    main()
