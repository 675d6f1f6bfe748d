"""CRM connections (credentials encrypted at rest, sync state) and the record of each sync run."""

from __future__ import annotations

import json
from typing import Any

from django.db import models
from django.db.models import Q

from connectors import registry
from core.encryption import EncryptedTextField
from core.scoping import TenantOwnedModel


class Connection(TenantOwnedModel):
    class Status(models.TextChoices):
        ACTIVE = "active"
        NEEDS_ATTENTION = "needs_attention"
        DISABLED = "disabled"

    provider = models.CharField(max_length=32, choices=registry.CHOICES)
    name = models.CharField(max_length=150)
    # JSON: access_token, refresh_token, expires_at (epoch s), client_id, client_secret,
    # private_app_token, base_url. Write-only: no API or admin page shows it.
    credentials_json = EncryptedTextField(default="{}")
    settings = models.JSONField(
        default=dict,
        blank=True,
        help_text='{"objects": ["contacts", "companies"], "custom_fields": ["lifecyclestage"], '
        '"incremental_minutes": 5, "max_delete_share": 0.1}',
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    last_error = models.TextField(blank=True)
    # The call-logging outage (its first failed attempt) the owners were last emailed about.
    alerted_for = models.DateTimeField(null=True, blank=True, editable=False)
    sync_cursor = models.JSONField(default=dict, blank=True)
    next_incremental_at = models.DateTimeField(null=True, blank=True)
    last_full_diff_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["next_incremental_at"],
                condition=Q(status="active"),
                name="connection_due",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_provider_display()})"

    @property
    def credentials(self) -> dict[str, Any]:
        return json.loads(self.credentials_json or "{}")

    @credentials.setter
    def credentials(self, value: dict[str, Any]) -> None:
        self.credentials_json = json.dumps(value)


class SyncRun(TenantOwnedModel):
    class Kind(models.TextChoices):
        INCREMENTAL = "incremental"
        FULL = "full"

    class Outcome(models.TextChoices):
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        GUARDED = "guarded", "guarded (nothing deleted)"

    connection = models.ForeignKey(
        Connection, on_delete=models.CASCADE, db_index=False, related_name="runs"
    )
    kind = models.CharField(max_length=12, choices=Kind.choices)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.RUNNING)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    pages = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    deleted = models.PositiveIntegerField(default=0)
    invalid_records = models.PositiveIntegerField(default=0)
    invalid_numbers = models.PositiveIntegerField(default=0)
    rate_limit_waits = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)

    more_pending = False  # not stored: an incremental run that stopped at its time budget

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["connection", "-started_at"], name="syncrun_by_connection")]

    def __str__(self) -> str:
        return f"{self.kind} sync of {self.connection_id} at {self.started_at:%Y-%m-%d %H:%M}"
