from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from connectors import registry, services
from connectors.interface import ConfigError
from connectors.models import Connection, SyncRun
from tenants.admin import TenantOwnedAdmin


class EmptyUntilTypedJSONField(forms.JSONField):
    """A JSON box that starts empty (a plain JSONField shows `null`)."""

    def prepare_value(self, value: Any) -> Any:
        return "" if value is None else super().prepare_value(value)


class ConnectionForm(forms.ModelForm):
    new_credentials = EmptyUntilTypedJSONField(
        required=False,
        help_text='JSON, e.g. {"private_app_token": "pat-..."}; merged into the stored '
        'credentials, which are never shown ({"hub_id": null} removes one). Leave empty to keep '
        "them.",
    )

    class Meta:
        model = Connection
        fields = ["tenant", "provider", "name", "settings", "status"]

    def clean_new_credentials(self) -> dict[str, Any] | None:
        value = self.cleaned_data["new_credentials"]
        if value is not None and not isinstance(value, dict):
            raise forms.ValidationError("Give a JSON object.")
        return value

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if cleaned.get("provider"):
            stored = self.instance.credentials if self.instance.pk else {}
            try:
                registry.check_config(
                    cleaned["provider"],
                    credentials=_merged(stored, cleaned.get("new_credentials")),
                    settings=cleaned.get("settings") or {},
                )
            except ConfigError as error:
                raise forms.ValidationError(str(error)) from None
        return cleaned

    def save(self, commit: bool = True) -> Connection:
        connection = super().save(commit=False)
        if self.cleaned_data.get("new_credentials"):
            connection.credentials = _merged(
                connection.credentials, self.cleaned_data["new_credentials"]
            )
            connection.last_error = ""
        if commit:
            connection.save()
        return connection


def _merged(stored: dict[str, Any], new: dict[str, Any] | None) -> dict[str, Any]:
    """The stored credentials with the new ones over them; a null removes one."""
    merged = {**stored, **(new or {})}
    return {name: value for name, value in merged.items() if value is not None}


class SyncRunInline(admin.TabularInline):
    model = SyncRun
    fields = [
        "kind", "outcome", "started_at", "finished_at", "pages", "created", "updated",
        "unchanged", "deleted", "invalid_records", "invalid_numbers", "rate_limit_waits", "error",
    ]  # fmt: skip
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    ordering = ["-started_at"]


@admin.register(Connection)
class ConnectionAdmin(TenantOwnedAdmin):
    form = ConnectionForm
    list_display = [
        "name",
        "provider",
        "tenant",
        "status",
        "next_incremental_at",
        "last_full_diff_at",
    ]
    list_filter = ["tenant", "provider", "status"]
    readonly_fields = [
        "stored_credentials",
        "last_error",
        "sync_cursor",
        "next_incremental_at",
        "last_full_diff_at",
    ]
    inlines = [SyncRunInline]

    @admin.display(description="Stored credentials")
    def stored_credentials(self, connection: Connection) -> str:
        """Which credentials are stored, never their values."""
        names = sorted(connection.credentials)
        return f"{', '.join(names)} (values never shown)" if names else "none"

    actions = ["sync_now", "full_diff_now"]

    @admin.action(description="Sync now (changes since the cursor)")
    def sync_now(self, request: HttpRequest, queryset: QuerySet[Connection]) -> None:
        self._enqueue(request, queryset, SyncRun.Kind.INCREMENTAL)

    @admin.action(description="Full diff now (deletes what vanished, guarded)")
    def full_diff_now(self, request: HttpRequest, queryset: QuerySet[Connection]) -> None:
        self._enqueue(request, queryset, SyncRun.Kind.FULL)

    def _enqueue(self, request: HttpRequest, queryset: QuerySet[Connection], kind: str) -> None:
        for connection in queryset:
            services.sync_enqueue(connection=connection, kind=kind)
        self.message_user(request, f"Queued {queryset.count()} {kind} sync(s).", messages.SUCCESS)
