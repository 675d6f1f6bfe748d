"""Telling a tenant's owners that its callback URL keeps failing (core/outages.py).

The owners get one email per outage; the dashboard's Callbacks page shows it while it lasts.
After PAUSE_AFTER of it (Svix disables an endpoint after 5 days) the callbacks are paused with
the reason: new call results are held, not sent, until the tenant resumes them
(deliveries.callbacks_resume), and the owners are told that too. Nothing is lost.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from calls.models import Attempt, CallbackSettings
from core.outages import Outage, outage_of
from core.scoping import across_all_tenants, tenant_scope
from tenants.models import Tenant
from tenants.services import owners_tell

SUCCEEDED = Q(status_code__gte=200, status_code__lt=300)
PAUSE_AFTER = timedelta(days=5)


def callback_outage(*, now: datetime | None = None) -> Outage | None:
    """The current tenant's callback outage, if its attempts have failed for an hour."""
    return outage_of(Attempt.objects.all(), at="started_at", succeeded=SUCCEEDED, now=now)


def outage_answer(outage: Outage) -> str:
    """What the latest failed attempt got: an HTTP status, else why there was none."""
    attempt = outage.latest
    assert isinstance(attempt, Attempt)
    return f"HTTP {attempt.status_code}" if attempt.status_code else attempt.error_class


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
            tenant = Tenant.objects.select_related("callback_settings").get(pk=tenant_id)
            told += _alert(tenant, now)
    return told


def _alert(tenant: Tenant, now: datetime | None) -> int:
    outage = callback_outage(now=now)
    callback = tenant.callback_settings
    if outage is None or callback.paused_at is not None:
        return 0
    page = f"{settings.PUBLIC_BASE_URL}{reverse('dashboard:callbacks')}"
    since = max(outage.since, callback.resumed_at or outage.since)
    if (now or timezone.now()) - since >= PAUSE_AFTER:
        return _pause(tenant, outage, page)
    if callback.alerted_for == outage.since:
        return 0
    told = owners_tell(
        tenant=tenant,
        subject=f"call results are not reaching {callback.url}",
        body=f"Every attempt to deliver {tenant.name}'s call results to {callback.url} has "
        f"failed since {outage.since:%Y-%m-%d %H:%M} UTC (latest: "
        f"{outage_answer(outage)}). Nothing is lost: each call's result is kept and can "
        f"be sent again once the URL answers.\n\nSee the deliveries and send them again: {page}\n",
    )
    callback.alerted_for = outage.since
    callback.save(update_fields=["alerted_for"])
    return 1 if told else 0


def _pause(tenant: Tenant, outage: Outage, page: str) -> int:
    callback = tenant.callback_settings
    callback.paused_at = timezone.now()
    callback.paused_reason = (
        f"Every attempt since {outage.since:%Y-%m-%d %H:%M} UTC failed (latest: "
        f"{outage_answer(outage)})."
    )
    callback.alerted_for = outage.since
    callback.save(update_fields=["paused_at", "paused_reason", "alerted_for"])
    told = owners_tell(
        tenant=tenant,
        subject=f"call results to {callback.url} are paused",
        body=f"{callback.paused_reason} CallBridge has paused {tenant.name}'s call results to "
        f"{callback.url}: each call's result is kept, not sent, until you resume them, and "
        f"then they are all sent, oldest first.\n\nResume them once the URL answers: {page}\n",
    )
    return 1 if told else 0
