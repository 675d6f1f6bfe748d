"""Telling a tenant's owners that its callback URL keeps failing (seed 000: "alert if persistent").

A callback URL is failing when no attempt has succeeded since an attempt at least an hour ago
failed, and attempts are still failing. The owners get one email per outage (the first failure
it began with is remembered as `alerted_for`); a success ends the outage. The dashboard's
Callbacks page shows it while it lasts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db.models import Max, Min, Q
from django.urls import reverse
from django.utils import timezone

from calls.models import Attempt, CallbackSettings
from core.scoping import across_all_tenants, tenant_scope
from tenants.models import Membership, Tenant

FAILING_FOR = timedelta(hours=1)
SUCCEEDED = Q(status_code__gte=200, status_code__lt=300)


@dataclass(frozen=True)
class Outage:
    since: datetime  # the first failed attempt after the last success
    last_error: str  # what the latest attempt got


def callback_outage(*, now: datetime | None = None) -> Outage | None:
    """The current tenant's callback outage, if its attempts have failed for FAILING_FOR."""
    now = now or timezone.now()
    last_success = Attempt.objects.filter(SUCCEEDED).aggregate(at=Max("started_at"))["at"]
    failed = Attempt.objects.exclude(SUCCEEDED)
    if last_success is not None:
        failed = failed.filter(started_at__gt=last_success)
    window = failed.aggregate(first=Min("started_at"), last=Max("started_at"))
    if window["first"] is None or now - window["first"] < FAILING_FOR:
        return None
    latest = failed.order_by("-started_at").first()
    assert latest is not None
    answer = f"HTTP {latest.status_code}" if latest.status_code else latest.error_class
    return Outage(since=window["first"], last_error=answer or "no answer")


def callback_alerts_send(*, now: datetime | None = None) -> int:
    """Email each tenant's owners once about a callback outage (beat); how many were told."""
    with across_all_tenants():
        tenant_ids = list(
            CallbackSettings.objects.filter(tenant__is_active=True)
            .exclude(url="")
            .values_list("tenant_id", flat=True)
        )
    told = 0
    for tenant_id in tenant_ids:
        with tenant_scope(tenant_id):
            told += _alert(
                Tenant.objects.select_related("callback_settings").get(pk=tenant_id), now
            )
    return told


def _alert(tenant: Tenant, now: datetime | None) -> int:
    outage = callback_outage(now=now)
    callback = tenant.callback_settings
    if outage is None or callback.alerted_for == outage.since:
        return 0
    owners = Membership.objects.filter(role=Membership.Role.OWNER).select_related("user")
    emails = sorted({m.user.email for m in owners if m.user.email})
    if emails:
        page = f"{settings.PUBLIC_BASE_URL}{reverse('dashboard:callbacks')}"
        send_mail(
            f"CallBridge: call results are not reaching {callback.url}",
            f"Every attempt to deliver {tenant.name}'s call results to {callback.url} has failed "
            f"since {outage.since:%Y-%m-%d %H:%M} UTC (latest: {outage.last_error}). Nothing is "
            f"lost: each call's result is kept and can be sent again once the URL answers.\n\n"
            f"See the deliveries and send them again: {page}\n",
            None,
            emails,
        )
    callback.alerted_for = outage.since
    callback.save(update_fields=["alerted_for"])
    return 1 if emails else 0
