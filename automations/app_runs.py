"""Writes for apps: the runs a call event sets off (outbox), running them in order, the call test.

Seeds 001 and 004: apps run in `order`; each one's result is `app_data.<slug>` for the apps
after it; a failing app never stops the ones after it.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from automations import conditions, kinds
from automations.context import app_context, event_context
from automations.kinds.base import Outcome
from automations.models import App, AppRun
from calls.models import Call, CallStatus
from contacts import selectors as contact_selectors
from contacts.selectors import CallerCard
from core import batch_cache, http, outbox
from tenants.models import Tenant

logger = logging.getLogger(__name__)

MISSED = {CallStatus.NO_ANSWER, CallStatus.CANCELED, CallStatus.BUSY}
# A run claimed this long ago and still pending was lost with its worker: run it again, except
# apps whose effect must never happen twice (email), which are failed instead (AppRun.interrupted).
STALE_RUN = timedelta(minutes=10)
# A real-time app is not started with less time than this left before the deadline.
MIN_APP_SECONDS = 0.02


def call_end_events(call: Call) -> list[str]:
    """The app events a call's end is: call.end, and call.missed when nobody answered."""
    return [App.Event.CALL_END, *([App.Event.CALL_MISSED] if call.status in MISSED else [])]


def app_runs_create(*, call: Call, event: str) -> list[AppRun]:
    """Write a run for each enabled post-call app of the event, in the event's transaction."""
    apps = batch_cache.cached(
        ("post-call apps", call.tenant_id),
        lambda: list(
            App.objects.filter(enabled=True, timing=App.Timing.POST_CALL).order_by("order", "id")
        ),
        kept=True,
    )
    runs = []
    for app in apps:
        if event not in app.events:
            continue
        run, _ = AppRun.objects.get_or_create(
            tenant_id=call.tenant_id,
            call=call,
            app=app,
            event=event,
            defaults={"order": app.order, "next_attempt_at": timezone.now()},
        )
        runs.append(run)
    if runs:
        _execute_after_commit(call.tenant_id, call.pk, event)
    return runs


def app_runs_execute(*, call_pk: int, event: str) -> list[AppRun]:
    """Run the call's pending runs of the event in order, chaining their results."""
    call = Call.objects.select_related("tenant", "agent").get(pk=call_pk)
    context = event_context(call, event)
    runs = list(
        AppRun.objects.filter(call=call, event=event)
        .select_related("app")
        .order_by("order", "app_id")
    )
    for index, run in enumerate(runs):
        if run.state == AppRun.State.PENDING:
            claimed = outbox.claim(APP_RUNS, run.pk, related=("app",))
            if claimed is not None:
                run = runs[index] = _run(claimed.row, context)
        if run.result is not None:
            context["app_data"][run.app.slug] = run.result
    return runs


def app_run_resend(*, run: AppRun) -> AppRun:
    """Run a failed run again with the results of the apps before it as they are now.

    outbox.NotFailed for a run in any other state.
    """
    outbox.rerun(AppRun, run, "app run", started_at=None, error="", finished_at=None)
    _execute_after_commit(run.tenant_id, run.call_id, run.event)
    return run


def app_runs_sweep() -> int:
    """Re-enqueue events whose runs were lost (broker restart, killed worker); beat."""
    pending = {(run.tenant_id, run.call_id, run.event) for run in outbox.sweep(APP_RUNS)}
    for tenant_id, call_pk, event in pending:
        _enqueue(tenant_id, call_pk, event)
    return len(pending)


def apps_test_call(
    *,
    tenant: Tenant,
    calling_number: str,
    called_number: str,
    event: str,
    event_data: dict[str, Any],
    send: bool,
) -> list[dict[str, Any]]:
    """Seed 004's call test: the tenant's apps for a made-up call, in order, with their results.

    Apps with side effects only render their request unless `send` is set. In a web request
    every app shares its outbound budget (core/http.py): an app the budget stopped, or left no
    time for, is "unfinished".
    """
    card = contact_selectors.caller_card(tenant=tenant, number=calling_number)
    fields = {"calling_number": calling_number, "status": CallStatus.ANSWER, **event_data}
    context = app_context(event, card, called_number=called_number, fields=fields)
    report = []
    apps = App.objects.filter(enabled=True).order_by("order", "id")
    for app in apps:
        if event not in app.events:
            continue
        if not conditions.matches(app.condition, context):
            report.append({"app": app.slug, "order": app.order, "state": "skipped"})
            continue
        if _out_of_time():
            report.append({"app": app.slug, "order": app.order, "state": "unfinished"})
            continue
        outcome = kinds.kind_for(app.kind).run(app, context, dry_run=app.side_effects and not send)
        context["app_data"][app.slug] = outcome.result
        state = "succeeded" if outcome.succeeded else "failed"
        report.append(
            {
                "app": app.slug,
                "order": app.order,
                "state": "unfinished" if _stopped_by_time(outcome) else state,
                "sent": outcome.sent,
                "request": outcome.request,
                "response": outcome.result,
                "attempts": outcome.attempts,
                "error": outcome.error,
                "app_data": dict(context["app_data"]),
            }
        )
    return report


def _out_of_time() -> bool:
    left = http.budget_left()
    return left is not None and left < MIN_APP_SECONDS


def _stopped_by_time(outcome: Outcome) -> bool:
    return not outcome.succeeded and (outcome.error in ("deadline", "timeout") or _out_of_time())


def realtime_apps_run(
    *,
    card: CallerCard,
    called_number: str,
    deadline_seconds: float,
    fields: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run the tenant's real-time call.start apps in order within one deadline (seed 004).

    Answers (app_data, a line per app). An app that fails, or that the deadline leaves no time
    for, adds nothing to app_data; the caller is answered on time either way.
    """
    started = time.monotonic()
    context = app_context(
        App.Event.CALL_START, card, called_number=called_number, fields=fields or {}
    )
    report = []
    apps = App.objects.filter(enabled=True, timing=App.Timing.REALTIME).order_by("order", "id")
    for app in apps:
        if App.Event.CALL_START not in app.events:
            continue
        left = deadline_seconds - (time.monotonic() - started)
        if left < MIN_APP_SECONDS:
            report.append({"app": app.slug, "state": "skipped", "reason": "deadline"})
            continue
        if not conditions.matches(app.condition, context):
            report.append({"app": app.slug, "state": "skipped", "reason": "condition"})
            continue
        outcome = kinds.kind_for(app.kind).run(app, context, dry_run=False, deadline_seconds=left)
        if outcome.succeeded:
            context["app_data"][app.slug] = outcome.result
        report.append(
            {
                "app": app.slug,
                "state": "succeeded" if outcome.succeeded else "failed",
                "error": outcome.error,
            }
        )
    return context["app_data"], report


def _run(run: AppRun, context: dict[str, Any]) -> AppRun:
    """Run the claimed run's app on the context; record its outcome (apps are not retried)."""
    app = run.app
    changes: dict[str, Any] = {"finished_at": timezone.now()}
    if not conditions.matches(app.condition, context):
        state = AppRun.State.SKIPPED
    else:
        outcome = kinds.kind_for(app.kind).run(app, context, dry_run=False)
        state = AppRun.State.SUCCEEDED if outcome.succeeded else AppRun.State.FAILED
        changes.update(
            request=outcome.request,
            result=outcome.result,
            attempts=outcome.attempts,
            error=outcome.error,
            finished_at=timezone.now(),
        )
        if not outcome.succeeded:
            logger.warning("App %s failed for call %s: %s", app.slug, run.call_id, outcome.error)
    outbox.record(APP_RUNS, run, state=state, changes=changes)
    return run


def _execute_after_commit(tenant_id: int, call_pk: int, event: str) -> None:
    transaction.on_commit(lambda: _enqueue(tenant_id, call_pk, event))


def _enqueue(tenant_id: int, call_pk: int, event: str) -> None:
    from automations.tasks import app_runs_execute as task

    try:
        task.apply_async((tenant_id, call_pk, event), queue="realtime")
    except Exception:  # broker down: the rows are committed, the sweeper will run them
        logger.exception("Could not enqueue apps for call %s; the sweeper will retry", call_pk)


APP_RUNS = outbox.Outbox(
    model=AppRun,
    lease=lambda: STALE_RUN,
    lost_after=lambda: timedelta(minutes=1),  # its event's task should have run it by then
    enqueue=lambda run, countdown: _enqueue(run.tenant_id, run.call_id, run.event),
)
