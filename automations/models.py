import uuid

from django.db import models
from django.db.models import Q

from tenants.scoping import TenantOwnedModel


class CrmLog(TenantOwnedModel):
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
    attempt_count = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    # Set while an attempt runs: a second worker keeps off, the sweeper waits it out.
    attempting_since = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

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
