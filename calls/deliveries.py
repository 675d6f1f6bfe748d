"""Writes for the call-result push: the outbox row, each attempt, resends and the sweeper.

Seed 002: POST the call's record as JSON, 10 s timeout, a non-2xx or timeout is retried after
1 s, 2 s and 4 s, the same uuid (and here the same webhook-id) every time, any 2xx acknowledges.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from calls.lifecycle import callback_payload, callback_update_payload
from calls.models import Attempt, Call, CallbackSettings, CallStatus, Delivery
from calls.recordings import call_recording_url
from calls.selectors import live_signing_secrets
from calls.signing import signature_header
from core import http, inserts, metrics, outbox
from tenants.models import Tenant

logger = logging.getLogger(__name__)

DEADLINE_SECONDS = 10.0
# A test callback is sent while a person waits for the page: a tenant's slow server gets less.
TEST_DEADLINE_SECONDS = 3.0
RETRY_DELAYS = (1.0, 2.0, 4.0)  # after the 1st, 2nd and 3rd failed attempt
MAX_ATTEMPTS = 1 + len(RETRY_DELAYS)
# A task may run a moment before its countdown ends (timer granularity): wait that moment out.
EARLY_TOLERANCE_SECONDS = 0.5


class DeliveryInProgress(Exception):
    pass


def delivery_create(*, call: Call, update: bool = False) -> Delivery | None:
    """Write the call's callback in the caller's transaction; send it once that commits.

    `update`: the second, "call.updated" callback for a change after the end.
    """
    tenant = call.tenant
    if not tenant.callback_settings.url:
        return None
    payload = callback_update_payload if update else callback_payload
    paused = tenant.callback_settings.paused_at is not None
    first_attempts = None if paused else _first_attempts.get()
    delivery = Delivery(
        tenant=tenant,
        call=call,
        url=tenant.callback_settings.url,
        payload=payload(call, call_recording_url(call)),
        max_attempts=MAX_ATTEMPTS,
        next_attempt_at=timezone.now(),
        state=Delivery.State.HELD if paused else Delivery.State.PENDING,
    )
    if first_attempts is not None:  # claimed as written: sent after commit with no claim
        delivery.attempt_count, delivery.attempting_since = 1, first_attempts.claimed_at
        delivery.claimed_trigger = delivery.next_trigger
    inserts.insert(delivery)
    if first_attempts is not None:
        transaction.on_commit(lambda: first_attempts.due.append(delivery))
    elif not paused:
        _send_after_commit(delivery)
    return delivery


def callbacks_resume(*, tenant: Tenant) -> int:
    """Turn the paused callbacks back on and send what was held, oldest first; how many."""
    with transaction.atomic():
        callback = CallbackSettings.objects.select_for_update().get(tenant=tenant)
        callback.paused_at, callback.paused_reason = None, ""
        callback.resumed_at = timezone.now()
        callback.save(update_fields=["paused_at", "paused_reason", "resumed_at"])
        held = list(Delivery.objects.filter(state=Delivery.State.HELD).order_by("created_at"))
        Delivery.objects.filter(pk__in=[d.pk for d in held]).update(
            state=Delivery.State.PENDING, next_attempt_at=timezone.now()
        )
        transaction.on_commit(lambda: _enqueue_all(held))
    return len(held)


def _enqueue_all(held: list[Delivery]) -> None:
    for delivery in held:
        _enqueue(delivery, 0)


@dataclass
class FirstAttempts:
    """Deliveries written claimed at `claimed_at` in a `first_attempts_here` block."""

    claimed_at: datetime
    due: list[Delivery] = field(default_factory=list)  # committed: to send


_first_attempts: ContextVar[FirstAttempts | None] = ContextVar("first_attempts", default=None)


@contextmanager
def first_attempts_here() -> Iterator[None]:
    """Make the first attempt of the deliveries committed in the block here, once it is done.

    For tasks: the callbacks go out without another task hop, claimed as they are written (no
    claim of their own), and their outcomes are recorded together. Each row is committed before
    it is sent, so a worker killed meanwhile loses nothing (the sweeper takes it over).
    """
    first_attempts = FirstAttempts(claimed_at=timezone.now())
    token = _first_attempts.set(first_attempts)
    try:
        yield
    finally:
        _first_attempts.reset(token)
    if first_attempts.due:
        _first_attempts_make(first_attempts)


class _KeptAlive(threading.local):
    """A worker thread's session for first attempts: its connections (and TLS sessions) to
    tenants' callback servers last from one batch to the next."""

    def __init__(self) -> None:
        self._session: http.Session | None = None

    def session(self) -> http.Session:
        if self._session is None:
            self._session = http.new_session()
        return self._session


_kept_alive = _KeptAlive()


def _first_attempts_make(first_attempts: FirstAttempts) -> None:
    """Send them one after the other. After a failure, or DEADLINE_SECONDS, the rest go back
    to the queue (claims released): a failing receiver is retried on the usual schedule, and
    no send outlives its claim's lease.
    """
    started, unsent = time.monotonic(), list(first_attempts.due)
    acknowledged: list[tuple[Delivery, Attempt]] = []
    while unsent and time.monotonic() - started < DEADLINE_SECONDS:
        delivery = unsent.pop(0)
        started_at = timezone.now()
        outcome = _post(delivery, delivery.tenant, session=_kept_alive.session())
        attempt = _attempt(delivery, started_at, outcome)
        if not attempt.succeeded:
            _record(delivery, attempt)
            break
        acknowledged.append((delivery, attempt))
    if acknowledged:
        delivered = [delivery for delivery, _ in acknowledged]
        outbox.record_all(
            DELIVERIES,
            delivered,
            state=Delivery.State.SUCCEEDED,
            attempts=[a for _, a in acknowledged],
        )
        for delivery, attempt in acknowledged:
            metrics.record(delivery.tenant_id, "callback", attempt.latency_ms)
    if unsent:
        outbox.release(DELIVERIES, unsent)
        _enqueue_all(unsent)


def _send_after_commit(delivery: Delivery, countdown: float = 0) -> None:
    transaction.on_commit(lambda: _enqueue(delivery, countdown))


def _enqueue(delivery: Delivery, countdown: float) -> None:
    from calls.tasks import delivery_send

    try:
        delivery_send.apply_async((delivery.tenant_id, str(delivery.pk)), countdown=countdown)
    except Exception:  # broker down: the row is committed, the sweeper will send it
        logger.exception("Could not enqueue delivery %s; the sweeper will retry", delivery.pk)


DELIVERIES = outbox.Outbox(
    model=Delivery,
    lease=lambda: timedelta(seconds=DEADLINE_SECONDS + settings.DELIVERY_STALE_SECONDS),
    lost_after=lambda: timedelta(seconds=settings.DELIVERY_STALE_SECONDS),
    enqueue=_enqueue,
    early_tolerance_seconds=EARLY_TOLERANCE_SECONDS,
)


def delivery_attempt(*, delivery_id: str) -> Attempt | None:
    """Make the delivery's next attempt if it is due and nobody else is making it."""
    claimed = outbox.claim(DELIVERIES, delivery_id, related=("tenant__callback_settings",))
    if claimed is None:
        return None
    time.sleep(claimed.wait_seconds)
    started_at = timezone.now()
    outcome = _post(claimed.row, claimed.row.tenant)
    return _record(claimed.row, _attempt(claimed.row, started_at, outcome))


def callback_test_send(*, tenant: Tenant) -> http.HttpResponse | http.HttpError:
    """POST an example call result to the tenant's callback URL, signed and authenticated as
    real ones are, within TEST_DEADLINE_SECONDS; nothing is stored or retried."""
    end = timezone.now()
    example = Call(
        tenant=tenant,
        uuid="callbridge-test-callback",
        direction=Call.Direction.OUTBOUND,
        call_type=Call.CallType.SERVER,
        crm_username="test.agent",
        customer_number="+14155550123",
        from_number="+14155550100",
        status=CallStatus.ANSWER,
        disposition=tenant.callback_settings.default_disposition,
        start_time=end - timedelta(seconds=62),
        end_time=end,
        duration=42,
    )
    test = Delivery(
        tenant=tenant, url=tenant.callback_settings.url, payload=callback_payload(example)
    )
    return _post(test, tenant, deadline_seconds=TEST_DEADLINE_SECONDS)


def _post(
    delivery: Delivery,
    tenant: Tenant,
    deadline_seconds: float = DEADLINE_SECONDS,
    session: http.Session | None = None,
) -> http.HttpResponse | http.HttpError:
    # Sorted: the same bytes from the row as written and as read back (jsonb reorders keys).
    body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode()
    msg_id, timestamp = str(delivery.pk), int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "CallBridge-Webhooks/1",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
    }
    secrets = live_signing_secrets(tenant)
    if secrets:
        headers["webhook-signature"] = signature_header(secrets, msg_id, timestamp, body)
    secret_headers: tuple[str, ...] = ()
    callback = tenant.callback_settings
    if callback.auth_header and callback.auth_value:
        headers[callback.auth_header] = callback.auth_value
        secret_headers = (callback.auth_header,)
    try:
        return http.post(
            delivery.url,
            deadline_seconds=deadline_seconds,
            headers=headers,
            body=body,
            secret_headers=secret_headers,
            session=session,
        )
    except http.HttpError as error:
        return error


def _attempt(delivery: Delivery, started_at: datetime, outcome: object) -> Attempt:
    """The attempt made under the claim `delivery` holds, with its outcome (not saved)."""
    attempt = Attempt(
        tenant_id=delivery.tenant_id,
        delivery=delivery,
        number=delivery.attempt_count,
        trigger=delivery.claimed_trigger,
        started_at=started_at,
    )
    if isinstance(outcome, http.HttpResponse):
        attempt.status_code = outcome.status_code
        attempt.latency_ms = outcome.latency_ms
        attempt.response_excerpt = outcome.excerpt
    else:
        attempt.error_class = outcome.error_class
        attempt.response_excerpt = str(outcome)
        attempt.latency_ms = int((timezone.now() - started_at).total_seconds() * 1000)
    return attempt


def _record(delivery: Delivery, attempt: Attempt) -> Attempt:
    """Record the attempt made under the claim `delivery` holds, and what comes next."""
    delay = None
    if attempt.succeeded:
        state = Delivery.State.SUCCEEDED
    elif delivery.attempt_count >= delivery.max_attempts:
        state = Delivery.State.FAILED
    else:
        state = Delivery.State.PENDING
        delay = RETRY_DELAYS[min(delivery.attempt_count, len(RETRY_DELAYS)) - 1]
    recorded = outbox.record(DELIVERIES, delivery, state=state, retry_in=delay, attempt=attempt)
    if recorded and state != Delivery.State.PENDING:  # finished: the dashboard's success rate
        failed = state == Delivery.State.FAILED
        metrics.record(delivery.tenant_id, "callback", attempt.latency_ms, flagged=failed)
    return attempt


def delivery_resend(*, delivery: Delivery) -> Delivery:
    """Send a finished delivery once more, keeping its id; a failure is not retried."""
    with transaction.atomic():
        delivery = Delivery.objects.select_for_update(of=("self",), no_key=True).get(pk=delivery.pk)
        if delivery.state == Delivery.State.PENDING:
            raise DeliveryInProgress(f"Delivery {delivery.pk} is still being delivered.")
        delivery.state = Delivery.State.PENDING
        delivery.max_attempts = delivery.attempt_count + 1
        delivery.next_attempt_at = timezone.now()
        delivery.next_trigger = Attempt.Trigger.MANUAL
        delivery.save()
        _send_after_commit(delivery)
    return delivery


def deliveries_sweep(*, limit: int = 500) -> int:
    """Re-send pending deliveries whose send was lost (killed worker, lost broker message)."""
    swept = outbox.sweep(DELIVERIES, limit=limit)
    for delivery in swept:
        _enqueue(delivery, 0)
    return len(swept)
