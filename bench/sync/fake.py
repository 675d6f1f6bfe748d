"""Serve the fake HubSpot for the sync benchmark in its own process, driven by stdin.

`fake.py N` prints the URL once N contacts are generated, then answers commands, one a line:
`archive K` archives every K-th contact (as deleting them in HubSpot would), `cpu` prints
the CPU seconds this process used so far.
"""

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from fakes.hubspot import FakeHubSpot


def main() -> None:
    count = int(sys.argv[1])
    started = time.monotonic()
    # The engine's own request budget is what paces a real sync; here neither side throttles.
    fake = FakeHubSpot(contacts=count, companies=0, burst_limit=10**9)
    url = fake.start()
    print(f"{url} {time.monotonic() - started:.1f}", flush=True)
    for line in sys.stdin:
        command, *args = line.split()
        if command == "archive":
            ids = list(range(int(args[0]), count + 1, int(args[0])))
            fake.archive("contacts", ids)
            print(len(ids), flush=True)
        elif command == "cpu":
            times = os.times()
            print(f"{times.user + times.system:.2f}", flush=True)
    fake.stop()


if __name__ == "__main__":
    main()
