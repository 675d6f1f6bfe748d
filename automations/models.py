import json
import uuid
from typing import Any

from django.db import models
from django.db.models import Q
from django.utils import timezone

from automations import kinds
from core.encryption import EncryptedTextField
from core.outbox import OutboxRow
from core.scoping import TenantOwnedModel


class CrmLog(OutboxRow):
    """One call logged into one CRM connection (the outbox row); at most one per pair."""

    class Kind(models.TextChoices):
        CALL = "call", "call object"
        TASK = "task", "missed-call task"

    class State(models.TextChoices):
        PENDING = "pending"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    call = models.ForeignKey("calls.Call", on_delete=models.CASCADE, related_name="crm_logs")
    connection = models.ForeignKey(
        "connectors.Connection", on_delete=models.CASCADE, related_name="crm_logs"
    )
    kind = models.CharField(max_length=8, choices=Kind.choices)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    remote_id = models.CharField(max_length=100, blank=True, help_text="The CRM's record id.")
    contact_external_id = models.CharField(max_length=100, blank=True)
    # The call changed (notes, recording, analytics) after it was logged: update the record.
    needs_update = models.BooleanField(default=False)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "CRM call log"
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "call", "connection"], name="crm_log_once_per_connection"
            )
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"], condition=Q(state="pending"), name="crm_log_due"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.remote_id or '-'} ({self.state})"

    def interrupted(self) -> list[str]:
        """The worker stopped mid-attempt: the next one looks for a record it may have made."""
        CrmLogAttempt.objects.create(
            tenant_id=self.tenant_id,
            crm_log=self,
            number=self.attempts.count() + 1,
            action=CrmLogAttempt.Action.UPDATE if self.remote_id else CrmLogAttempt.Action.CREATE,
            started_at=self.attempting_since or timezone.now(),
            error="interrupted: the worker stopped during this attempt",
        )
        return []


class CrmLogAttempt(TenantOwnedModel):
    class Action(models.TextChoices):
        CREATE = "create"
        UPDATE = "update"

    crm_log = models.ForeignKey(CrmLog, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveIntegerField()
    action = models.CharField(max_length=8, choices=Action.choices)
    started_at = models.DateTimeField()
    latency_ms = models.PositiveIntegerField(default=0)
    succeeded = models.BooleanField(default=False)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["number"]

    def __str__(self) -> str:
        return f"#{self.number} {self.action} {'ok' if self.succeeded else self.error[:40]}"


class App(TenantOwnedModel):
    """One automation a tenant runs on call events, in `order` (seed 004's apps)."""

    # From the kinds registry (the functional API, which the stubs do not know).
    Kind = models.TextChoices("Kind", [(name.upper(), name) for name in kinds.KINDS])  # type: ignore[call-overload]

    class Timing(models.TextChoices):
        REALTIME = "realtime", "real-time (during call setup)"
        POST_CALL = "post_call", "post-call"

    class Event(models.TextChoices):
        CALL_START = "call.start"
        CALL_END = "call.end"
        CALL_MISSED = "call.missed"
        ANALYTICS_COMPLETED = "analytics.completed"

    name = models.CharField(max_length=150)
    slug = models.SlugField(
        max_length=100, help_text="Its results are app_data.<slug> for the apps after it."
    )
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    timing = models.CharField(max_length=16, choices=Timing.choices, default=Timing.POST_CALL)
    events = models.JSONField(default=list, help_text='e.g. ["call.end"]')
    condition = models.TextField(blank=True, help_text="e.g. satisfaction <= 2")
    order = models.PositiveSmallIntegerField(default=50, help_text="10 to 100; lower runs first.")
    enabled = models.BooleanField(default=True)
    side_effects = models.BooleanField(
        default=True,
        help_text="It changes something (posts, sends): the call test only renders it unless "
        "asked to send. Off for lookups.",
    )
    # The outage (its first failed run) the owners were last emailed about.
    alerted_for = models.DateTimeField(null=True, blank=True, editable=False)
    config = models.JSONField(default=dict, blank=True)
    secrets_json = EncryptedTextField(default="{}")  # passwords, tokens: write-only
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "slug"], name="app_slug_unique"),
            models.CheckConstraint(
                condition=Q(order__gte=10) & Q(order__lte=100), name="app_order_10_to_100"
            ),
        ]
        indexes = [models.Index(fields=["tenant", "order"], name="app_tenant_order")]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"

    @property
    def secrets(self) -> dict[str, Any]:
        return json.loads(self.secrets_json or "{}")

    @secrets.setter
    def secrets(self, value: dict[str, Any]) -> None:
        self.secrets_json = json.dumps(value)


class AppRun(OutboxRow):
    """One app run for one call event (the outbox row); its result feeds the apps after it."""

    class State(models.TextChoices):
        PENDING = "pending"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        SKIPPED = "skipped", "skipped (condition false)"
        CANCELED = "canceled", "canceled (app disabled)"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    call = models.ForeignKey("calls.Call", on_delete=models.CASCADE, related_name="app_runs")
    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="runs")
    event = models.CharField(max_length=32, choices=App.Event.choices)
    order = models.PositiveSmallIntegerField()  # the app's order when the event happened
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    request = models.JSONField(null=True, blank=True, help_text="What was sent, secrets hidden.")
    result = models.JSONField(null=True, blank=True, help_text="app_data.<slug> for later apps.")
    attempts = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)  # when a worker took it up
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "call", "app", "event"], name="app_run_once_per_event"
            )
        ]
        indexes = [
            models.Index(
                fields=["created_at"], condition=Q(state="pending"), name="app_run_pending"
            )
        ]

    def __str__(self) -> str:
        return f"{self.app_id} on {self.event} ({self.state})"

    def claimed(self) -> list[str]:
        self.started_at = self.attempting_since
        return ["started_at"]

    def interrupted(self) -> list[str]:
        """Run it again, unless its effect must never happen twice (email): then it failed."""
        if not kinds.kind_for(self.app.kind).once_only:
            return []
        self.state, self.finished_at = self.State.FAILED, timezone.now()
        self.error = "The worker stopped while sending; not sent again in case it was sent."
        return ["state", "finished_at", "error"]
