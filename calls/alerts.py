"""Telling a tenant's owners that its callback URL keeps failing (core/outages.py).

The owners get one email per outage; the dashboard's Callbacks page shows it while it lasts.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db.models import Q
from django.urls import reverse

from calls.models import Attempt, CallbackSettings
from core.outages import Outage, outage_of
from core.scoping import across_all_tenants, tenant_scope
from tenants.models import Tenant
from tenants.services import owners_tell

SUCCEEDED = Q(status_code__gte=200, status_code__lt=300)


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
    if outage is None or callback.alerted_for == outage.since:
        return 0
    page = f"{settings.PUBLIC_BASE_URL}{reverse('dashboard:callbacks')}"
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
