"""Reads for calls, deliveries and signing secrets."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.db.models import Avg, Count, Q, QuerySet
from django.utils import timezone

from calls.models import Call, CallEvent, CallState, CallStatus, Delivery
from tenants.models import Tenant

# A call still not ended this long after it started was lost by its switch: not "active".
ACTIVE_CALL_HORIZON = timedelta(hours=12)


def call_list(
    *,
    status: str | None = None,
    crm_username: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    number: str | None = None,
) -> QuerySet[Call]:
    """Calls, newest first; `number` is an E.164 number or a run of its digits."""
    calls = (
        Call.objects.select_related("recording").prefetch_related("parties").order_by("-start_time")
    )
    if status:
        calls = calls.filter(status=status)
    if crm_username:
        calls = calls.filter(crm_username=crm_username)
    if since:
        calls = calls.filter(start_time__gte=since)
    if until:
        calls = calls.filter(start_time__lt=until)
    if number:
        calls = calls.filter(Q(customer_number__contains=number) | Q(from_number__contains=number))
    return calls


def calls_changed(
    *,
    after: tuple[datetime, int] | None,
    upto: tuple[datetime, int],
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[Call]:
    """Calls whose (updated_at, id) is in (after, upto] and that started in [since, until),
    in (updated_at, id) order (the call_tenant_updated index)."""
    calls = Call.objects.filter(updated_at__lte=upto[0]).exclude(updated_at=upto[0], pk__gt=upto[1])
    if after:
        # The >= (implied by the exclude) lets PostgreSQL start the index scan at the position.
        calls = calls.filter(updated_at__gte=after[0])
        calls = calls.exclude(updated_at=after[0], pk__lte=after[1])
    if since:
        calls = calls.filter(start_time__gte=since)
    if until:
        calls = calls.filter(start_time__lt=until)
    return calls.order_by("updated_at", "pk")


def delivery_list(
    *, state: str | None = None, call_id: str | None = None, number: str | None = None
) -> QuerySet[Delivery]:
    """Deliveries, newest first; `number` is the call's customer number or a run of its digits."""
    deliveries = Delivery.objects.select_related("call").order_by("-created_at")
    if state:
        deliveries = deliveries.filter(state=state)
    if call_id:
        deliveries = deliveries.filter(call__call_id=call_id)
    if number:
        deliveries = deliveries.filter(call__customer_number__contains=number)
    return deliveries


def live_signing_secrets(tenant: Tenant) -> list[str]:
    """The secrets that sign right now: the current one and a rotated-out one in its grace."""
    callback = tenant.callback_settings
    secrets = [callback.signing_secret] if callback.signing_secret else []
    expires = callback.previous_signing_secret_expires_at
    if callback.previous_signing_secret and expires and expires > timezone.now():
        secrets.append(callback.previous_signing_secret)
    return secrets


def active_calls() -> QuerySet[Call]:
    """Calls in progress (started within the horizon, not ended), newest first."""
    since = timezone.now() - ACTIVE_CALL_HORIZON
    return (
        Call.objects.filter(start_time__gte=since)
        .exclude(state=CallState.ENDED)
        .order_by("-start_time")
    )


def _ended_today(tenant: Tenant) -> QuerySet[Call]:
    """Calls that ended since midnight in the tenant's time zone."""
    midnight = timezone.localtime(timezone=ZoneInfo(tenant.timezone)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    return Call.objects.filter(
        start_time__gte=midnight - ACTIVE_CALL_HORIZON,  # keeps to the (tenant, start) index
        state=CallState.ENDED,
        end_time__gte=midnight,
    )


def live_counts(*, tenant: Tenant) -> dict[str, int]:
    """The live dashboard's counters: calls in progress, calls ended today (tenant's day)."""
    return {"active": active_calls().count(), "completed": _ended_today(tenant).count()}


def today_counts(*, tenant: Tenant) -> dict[str, int | float | None]:
    """Today's ended calls (tenant's day): answered, missed (ended unanswered), the average
    talk time of answered calls, the average satisfaction where analytics gave one, and the
    share of calls resolved among those analytics said something of."""
    answered = Q(status=CallStatus.ANSWER)
    return _ended_today(tenant).aggregate(
        answered=Count("pk", filter=answered),
        missed=Count("pk", filter=~answered),
        average_duration=Avg("duration", filter=answered),
        average_satisfaction=Avg("satisfaction"),
        rated=Count("satisfaction"),
        resolved_calls=Count("pk", filter=Q(resolved=True)),
        judged=Count("resolved"),
    )


def call_events_after(
    *, after_id: int, call: Call | None = None, since: datetime | None = None, limit: int = 200
) -> list[CallEvent]:
    """Events recorded after event `after_id` (of one call, if given), oldest first."""
    events = CallEvent.objects.filter(pk__gt=after_id).select_related("call")
    if call is not None:
        events = events.filter(call=call)
    if since is not None:
        events = events.filter(recorded_at__gte=since)
    return list(events.order_by("pk")[:limit])


def latest_event_id(*, call: Call | None = None) -> int:
    events = CallEvent.objects.all() if call is None else CallEvent.objects.filter(call=call)
    return events.order_by("-pk").values_list("pk", flat=True).first() or 0
