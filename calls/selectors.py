"""Reads for calls, deliveries and signing secrets."""

from __future__ import annotations

from datetime import datetime

from django.db.models import QuerySet
from django.utils import timezone

from calls.models import Call, Delivery
from tenants.models import Tenant


def call_list(
    *, status: str | None = None, crm_username: str | None = None, since: datetime | None = None
) -> QuerySet[Call]:
    calls = (
        Call.objects.select_related("recording").prefetch_related("parties").order_by("-start_time")
    )
    if status:
        calls = calls.filter(status=status)
    if crm_username:
        calls = calls.filter(crm_username=crm_username)
    if since:
        calls = calls.filter(start_time__gte=since)
    return calls


def delivery_list(*, state: str | None = None, call_id: str | None = None) -> QuerySet[Delivery]:
    deliveries = Delivery.objects.select_related("call").order_by("-created_at")
    if state:
        deliveries = deliveries.filter(state=state)
    if call_id:
        deliveries = deliveries.filter(call__call_id=call_id)
    return deliveries


def live_signing_secrets(tenant: Tenant) -> list[str]:
    """The secrets that sign right now: the current one and a rotated-out one in its grace."""
    secrets = [tenant.signing_secret] if tenant.signing_secret else []
    expires = tenant.previous_signing_secret_expires_at
    if tenant.previous_signing_secret and expires and expires > timezone.now():
        secrets.append(tenant.previous_signing_secret)
    return secrets
