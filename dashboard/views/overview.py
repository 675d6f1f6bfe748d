"""Overview: live calls (over server-sent events), today's counts and the health tiles."""

from __future__ import annotations

from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone

from calls import live, selectors
from connectors.selectors import connection_health
from contacts.selectors import caller_card
from core import metrics
from dashboard.access import MemberRequest, member_required

LIVE_CALLS_SHOWN = 50


def _live_context(request: MemberRequest) -> dict[str, object]:
    tenant = request.tenant
    calls = list(selectors.active_calls().select_related("agent")[:LIVE_CALLS_SHOWN])
    return {
        "live_calls": [
            {"call": call, "card": caller_card(tenant=tenant, number=call.customer_number)}
            for call in calls
        ],
        "today": selectors.today_counts(tenant=tenant),
    }


def _health_context(request: MemberRequest) -> dict[str, object]:
    tenant_id = request.tenant.pk
    callbacks = metrics.summary(tenant_id, "callback")
    now = timezone.now()
    decide = metrics.summary(tenant_id, "decide")
    return {
        "lookup": metrics.summary(tenant_id, "lookup"),
        "decide": decide,
        "fallback_percent": _percent(decide.flagged_share) if decide else None,
        "callbacks": callbacks,
        "callback_percent": _percent(callbacks.succeeded_share) if callbacks else None,
        "callbacks_failing": bool(callbacks and callbacks.flagged),
        "connections": [
            # last_synced_at: annotated by connection_health
            {"connection": c, "lag": now - c.last_synced_at if c.last_synced_at else None}  # type: ignore[attr-defined]
            for c in connection_health()
        ],
    }


def _percent(share: float | None) -> str | None:
    return None if share is None else f"{share:.1%}"


@member_required
def overview(request: MemberRequest) -> HttpResponse:
    context = _live_context(request) | _health_context(request)
    return render(request, "dashboard/overview/index.html", context)


@member_required
def live_calls(request: MemberRequest) -> HttpResponse:
    """The live calls and today's counts, re-rendered when the stream says something changed."""
    return render(request, "dashboard/overview/_live.html", _live_context(request))


@member_required
def health(request: MemberRequest) -> HttpResponse:
    return render(request, "dashboard/overview/_health.html", _health_context(request))


@member_required
def stream(request: MemberRequest) -> StreamingHttpResponse:
    """The tenant's call events as server-sent events: the API's live feed, signed in by session."""
    after = live.last_event_id(request.headers.get("Last-Event-ID"))
    return live.sse_response(live.stream(tenant=request.tenant, last_event_id=after))
