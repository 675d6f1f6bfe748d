"""Writes for logging calls into CRMs: the outbox row per (call, connection), each attempt, resend.

Seed 000: find the contact (the external id we synced, else the phonebook by the tenant's
shared-number policy, else a search in the CRM), find the agent's CRM user, create the CRM's own
call object (a task instead for a missed call), optionally after a delay so notes can be added,
and update the same record when notes, a recording or analytics arrive later.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from automations.models import CrmLog, CrmLogAttempt
from calls.models import Call, CallParty, CallStatus
from calls.recordings import call_recording_url
from connectors.interface import CallLogEntry, Connector, ConnectorError
from connectors.models import Connection
from connectors.services import connector_for_connection
from contacts.models import Contact, PhonebookSettings
from core import batch_cache, outbox

logger = logging.getLogger(__name__)

# After a failed attempt: wait this long before the next; then the log is failed (re-runnable).
# The first wait outlasts the CRMs' search lag (HubSpot ~10 s, Zoho about a minute): a retry
# after a lost answer searches for the record the CRM may have kept.
RETRY_DELAYS = (90, 120, 600, 1800)
MAX_ATTEMPTS = 1 + len(RETRY_DELAYS)
# A worker that died mid-attempt leaves attempting_since set: the sweeper takes over after this.
STALE_ATTEMPT = timedelta(minutes=10)
CRM_USER_CACHE_SECONDS = 3600

OUTCOMES = {
    CallStatus.ANSWER: "answered",
    CallStatus.NO_ANSWER: "missed",
    CallStatus.CANCELED: "missed",
    CallStatus.BUSY: "busy",
    CallStatus.FAILED: "failed",
}
_CONTACT_ORDER = {
    PhonebookSettings.SharedNumberPolicy.FIRST_MATCH: ("created_at", "id"),
    PhonebookSettings.SharedNumberPolicy.OWNER: (
        "owner_id",
        "-updated_at",
        "-id",
    ),  # nulls sort last
}


def call_logging_options(connection: Connection) -> dict[str, Any]:
    """The connection's call-logging settings with their defaults."""
    options = {
        "enabled": False,
        "delay_minutes": 0,
        "missed_call_task": True,
        "create_unknown_contacts": False,
        "contact_fields": {},
    }
    options.update(connection.settings.get("call_logging") or {})
    return options


def crm_logs_create(*, call: Call) -> list[CrmLog]:
    """Write one log per connection that logs calls, in the call's transaction (outbox)."""
    logs = []
    connections = batch_cache.cached(
        ("active connections", call.tenant_id),
        lambda: list(Connection.objects.filter(status=Connection.Status.ACTIVE)),
        kept=True,
    )
    for connection in connections:
        options = call_logging_options(connection)
        if not options["enabled"]:
            continue
        missed = OUTCOMES.get(call.status) == "missed"
        kind = CrmLog.Kind.TASK if missed and options["missed_call_task"] else CrmLog.Kind.CALL
        log, created = CrmLog.objects.get_or_create(
            tenant_id=call.tenant_id,
            call=call,
            connection=connection,
            defaults={
                "kind": kind,
                "next_attempt_at": timezone.now() + timedelta(minutes=options["delay_minutes"]),
            },
        )
        if created:
            _send_after_commit(log)
        logs.append(log)
    return logs


def crm_logs_mark_changed(*, call: Call) -> None:
    """The call changed after it ended: update each call object already logged for it.

    Logs not sent yet need nothing: they read the call when they are sent.
    """
    logs = CrmLog.objects.filter(call=call, kind=CrmLog.Kind.CALL).exclude(remote_id="")
    for log in logs:
        log.needs_update = True
        log.state = CrmLog.State.PENDING
        log.attempt_count = 0
        log.next_attempt_at = timezone.now()
        log.save(update_fields=["needs_update", "state", "attempt_count", "next_attempt_at"])
        _send_after_commit(log)


def crm_log_send(*, crm_log_id: str) -> CrmLogAttempt | None:
    """Make the log's next attempt if it is due and no other worker is making it."""
    related = ("call__agent", "call__tenant__phonebook_settings", "connection")
    claimed = outbox.claim(CRM_LOGS, crm_log_id, related=related)
    if claimed is None:
        return None
    log, interrupted = claimed.row, claimed.interrupted
    action = CrmLogAttempt.Action.UPDATE if log.remote_id else CrmLogAttempt.Action.CREATE
    started_at, clock = timezone.now(), time.monotonic()
    error: ConnectorError | None = None
    try:
        connector = connector_for_connection(log.connection)
        entry = _entry(log, connector)
        task = log.kind == CrmLog.Kind.TASK
        if not log.remote_id and (interrupted or log.attempts.exists()):
            # An earlier attempt may have been stored by the CRM without its id reaching us
            # (a 5xx or lost answer, a killed worker): look for it before creating another.
            log.remote_id = connector.find_logged(entry.call_id, task=task) or ""
        if not log.remote_id:
            log.remote_id = (connector.create_task if task else connector.log_call)(entry)
            _remember(log, remote_id=log.remote_id)
        elif not task:  # tasks are not updated: the follow-up stays as it was asked
            connector.update_call_log(log.remote_id, entry)
        log.contact_external_id = entry.contact_external_id or ""
        _contact_fields_write(log, connector, entry)
    except ConnectorError as failure:
        error = failure
    latency_ms = round((time.monotonic() - clock) * 1000)
    return _record(log, action, started_at, latency_ms, error)


def crm_log_resend(*, crm_log: CrmLog) -> CrmLog:
    """Run a failed log again, keeping its id and remote record; outbox.NotFailed otherwise."""
    outbox.rerun(CrmLog, crm_log, "CRM log")
    _send_after_commit(crm_log)
    return crm_log


def crm_logs_sweep() -> int:
    """Re-enqueue due logs whose task was lost (broker restart, killed worker); beat."""
    logs = outbox.sweep(CRM_LOGS)
    for log in logs:
        _enqueue(log, 0)
    return len(logs)


def _record(
    log: CrmLog,
    action: str,
    started_at: Any,
    latency_ms: int,
    error: ConnectorError | None,
) -> CrmLogAttempt:
    attempt = CrmLogAttempt(
        tenant_id=log.tenant_id,
        crm_log=log,
        number=log.attempts.count() + 1,
        action=action,
        started_at=started_at,
        latency_ms=latency_ms,
        succeeded=error is None,
        error=str(error or ""),
    )
    changes: dict[str, Any] = {
        "remote_id": log.remote_id,
        "contact_external_id": log.contact_external_id,
        "last_error": str(error or ""),
    }
    delay = None
    if error is None:
        state, changes["needs_update"] = CrmLog.State.SUCCEEDED, False
    elif error.permanent or log.attempt_count >= MAX_ATTEMPTS:
        state = CrmLog.State.FAILED
    else:
        state = CrmLog.State.PENDING
        delay = max(RETRY_DELAYS[log.attempt_count - 1], error.retry_after or 0)
    outbox.record(CRM_LOGS, log, state=state, retry_in=delay, attempt=attempt, changes=changes)
    if error is not None:
        logger.warning("CRM log %s attempt %s failed: %s", log.pk, attempt.number, error)
    return attempt


def _entry(log: CrmLog, connector: Connector) -> CallLogEntry:
    call, connection = log.call, log.connection
    customer, line = call.customer_number, call.from_number
    inbound = call.direction == Call.Direction.INBOUND
    outcome = OUTCOMES.get(call.status, "failed")
    if outcome == "answered" and call.parties.filter(kind=CallParty.Kind.TRANSFER).exists():
        outcome = "transferred"
    policy = call.tenant.phonebook_settings.shared_number_policy
    contact_id = log.contact_external_id or _contact_id(log, policy, customer, connector)
    return CallLogEntry(
        call_id=str(call.call_id),
        direction="inbound" if inbound else "outbound",
        outcome=outcome,
        started_at=call.start_time,
        duration_seconds=call.duration,
        from_number=customer if inbound else line,
        to_number=line if inbound else customer,
        contact_external_id=contact_id,
        owner_user_id=_crm_user_id(connection, call, connector),
        subject=f"{'Inbound' if inbound else 'Outbound'} call {outcome}",
        notes="\n\n".join(text for text in (call.notes, call.summary) if text),
        recording_url=call_recording_url(call),
    )


def _contact_fields_write(log: CrmLog, connector: Connector, entry: CallLogEntry) -> None:
    """Copy the call's stats onto the CRM contact (call_logging.contact_fields), every attempt:
    the same values again are harmless, and a failed write is retried with the log."""
    names = call_logging_options(log.connection)["contact_fields"]
    write = getattr(connector, "contact_fields_update", None)
    if not names or not entry.contact_external_id or write is None:
        return
    call = log.call
    values = {
        "last_call_at": call.start_time.strftime("%Y-%m-%dT%H:%M:%SZ") if call.start_time else "",
        "last_call_status": call.status,
    }
    ours = Contact.objects.filter(
        source_connection=log.connection, external_id=entry.contact_external_id
    ).first()
    if ours is not None and ours.call_count:  # counted only when the tenant keeps counts
        values["call_count"] = str(ours.call_count)
    write(entry.contact_external_id, {names[k]: v for k, v in values.items() if k in names and v})


def _contact_id(log: CrmLog, policy: str, e164: str, connector: Connector) -> str | None:
    """Our synced copy of the caller from this CRM, else the CRM's search, else a new contact."""
    connection = log.connection
    order = _CONTACT_ORDER.get(policy, ("-updated_at", "-id"))
    synced = (
        Contact.objects.filter(
            source_connection=connection,
            deleted_at__isnull=True,
            is_company=False,
            phones__e164=e164,
        )
        .order_by(*order)
        .values_list("external_id", flat=True)
        .first()
    )
    if synced:
        return synced
    found = [record for record in connector.find_by_phone(e164) if not record.is_company]
    if found:
        return found[0].external_id
    if call_logging_options(connection)["create_unknown_contacts"]:
        created = connector.create_contact(e164=e164).external_id
        _remember(log, contact_external_id=created)
        return created
    return None


def _remember(log: CrmLog, **created: str) -> None:
    """Save what the CRM just created at once, whatever fails next in this attempt.

    A retry must find it here: a CRM's search lags its writes (seconds at HubSpot, about a
    minute at Zoho), so searching for it again would create it twice.
    """
    for name, value in created.items():
        setattr(log, name, value)
    CrmLog.objects.filter(pk=log.pk).update(**created)


def _crm_user_id(connection: Connection, call: Call, connector: Connector) -> str | None:
    email = call.agent.email if call.agent else ""
    if not email:
        return None
    key = f"crm-user:{connection.pk}:{email.lower()}"
    cached = cache.get(key)
    if cached is not None:
        return cached or None
    user = connector.find_user(email)
    cache.set(key, user.external_id if user else "", CRM_USER_CACHE_SECONDS)
    return user.external_id if user else None


def _send_after_commit(log: CrmLog) -> None:
    countdown = max(0.0, (log.next_attempt_at - timezone.now()).total_seconds())
    transaction.on_commit(lambda: _enqueue(log, countdown))


def _enqueue(log: CrmLog, countdown: float) -> None:
    from automations.tasks import crm_log_send as task

    try:
        task.apply_async((log.tenant_id, str(log.pk)), countdown=countdown, queue="realtime")
    except Exception:  # broker down: the row is committed, the sweeper will send it
        logger.exception("Could not enqueue CRM log %s; the sweeper will retry", log.pk)


CRM_LOGS = outbox.Outbox(
    model=CrmLog,
    lease=lambda: STALE_ATTEMPT,
    lost_after=lambda: timedelta(0),  # any due log nobody holds: its task may be lost
    enqueue=_enqueue,
)
