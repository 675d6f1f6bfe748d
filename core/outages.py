"""Outages: attempts at something (callbacks, CRM logging, an app) all failing for a while.

A thing is out when no attempt has succeeded since one at least FAILING_FOR ago failed. Its
first failed attempt names the outage, so each is told once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Max, Min, Model, Q, QuerySet
from django.utils import timezone

FAILING_FOR = timedelta(hours=1)


@dataclass(frozen=True)
class Outage:
    since: datetime  # the first failed attempt after the last success
    latest: Model  # the latest failed attempt (what it got says what is wrong)


def outage_of(
    attempts: QuerySet[Any], *, at: str, succeeded: Q, now: datetime | None = None
) -> Outage | None:
    """The outage these attempts show (`at`: their time field), if failing for FAILING_FOR."""
    now = now or timezone.now()
    last_success = attempts.filter(succeeded).aggregate(at=Max(at))["at"]
    failed = attempts.exclude(succeeded)
    if last_success is not None:
        failed = failed.filter(**{f"{at}__gt": last_success})
    first = failed.aggregate(at=Min(at))["at"]
    if first is None or now - first < FAILING_FOR:
        return None
    latest = failed.order_by(f"-{at}").first()
    assert latest is not None
    return Outage(since=first, latest=latest)
