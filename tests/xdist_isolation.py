"""Each pytest-xdist worker gets Redis databases of its own (bin/test runs the suite on 2 workers).

Loaded with `-p tests.xdist_isolation` (bin/test's command line): it runs when pytest reads its
command line, before pytest-django sets Django up, so the settings, and every process a test
starts (Celery workers, granian, manage.py), see this worker's URLs. The test database needs
nothing here: pytest-django names each worker's after it (test_<name>_gw0, test_<name>_gw1).

Worker gw0 keeps REDIS_URL's and CELERY_BROKER_URL's databases (bin/test: 13 and 14); worker gwN
moves both down by 2N (gw1: 11 and 12), so no worker flushes, purges or consumes another's keys,
queues or tasks. Pub/sub channels are server-wide, but the app names its channels after the
database (core/shared_redis.py, calls/live.py), and so does kombu its fanout ones.
"""

import os
import re
from collections.abc import MutableMapping

DATABASES = 16  # a Redis server's default


def _moved(url: str, by: int, name: str) -> str:
    match = re.fullmatch(r"(redis://[^/]+)(?:/(\d+))?", url)
    if not match:
        raise RuntimeError(f"{name}={url!r}: a redis://host:port/db URL is needed under xdist")
    db = int(match.group(2) or 0) - by
    if db < 0:
        raise RuntimeError(
            f"{name}={url!r}: too many xdist workers for {DATABASES} Redis databases; "
            "use fewer (-n) or higher database numbers"
        )
    return f"{match.group(1)}/{db}"


def isolate(environ: MutableMapping[str, str]) -> None:
    worker = environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw"):
        return  # not under xdist, or its controller (which runs no tests)
    by = 2 * int(worker.removeprefix("gw"))
    for name in ("REDIS_URL", "CELERY_BROKER_URL"):
        if environ.get(name, "").startswith("redis://"):
            environ[name] = _moved(environ[name], by, name)


isolate(os.environ)
