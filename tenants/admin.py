from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from tenants import services
from tenants.models import Agent, ApiKey, AuditEntry, CallerIdNumber, Membership, Tenant


def secret_input(label: str) -> forms.CharField:
    """A box to type a write-only secret into: never filled in, never autofilled."""
    return forms.CharField(
        label=label,
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )


class WriteOnlySecretsForm(forms.ModelForm):
    """A settings row's form whose WRITE_ONLY secrets are set, replaced or cleared, never shown.

    Each secret `x` needs its two boxes declared: `new_x = secret_input(...)` and `clear_x`.
    """

    WRITE_ONLY: tuple[str, ...] = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in self.WRITE_ONLY:  # whether it is set now, never its value
            state = "set" if getattr(self.instance, name) else "not set"
            self.fields[f"clear_{name}"].label = f"Clear {name.replace('_', ' ')}"
            self.fields[
                f"new_{name}"
            ].help_text = (
                f"Now {state}; never shown. Type a value to replace it, or leave empty to keep it."
            )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        for name in self.WRITE_ONLY:
            if cleaned.get(f"new_{name}") and cleaned.get(f"clear_{name}"):
                self.add_error(f"clear_{name}", "Either type a new value or clear it, not both.")
        return cleaned

    def save(self, commit: bool = True) -> Any:
        instance = super().save(commit=False)
        for name in self.WRITE_ONLY:
            if self.cleaned_data.get(f"clear_{name}"):
                setattr(instance, name, "")
            elif self.cleaned_data.get(f"new_{name}"):
                setattr(instance, name, self.cleaned_data[f"new_{name}"])
        if commit:
            instance.save()
        return instance


def tenant_settings_inline(inline: type[admin.StackedInline]) -> None:
    """Show a context's settings row on the tenant's admin page (its app calls this)."""
    TenantAdmin.inlines = [*TenantAdmin.inlines, inline]


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "default_region", "timezone", "is_active", "created_at"]
    list_filter = ["is_active", "default_region"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    fields = ["name", "slug", "default_region", "timezone", "is_active"]


class TenantOwnedAdmin(admin.ModelAdmin):
    list_filter = ["tenant"]
    list_select_related = ["tenant"]


@admin.register(Membership)
class MembershipAdmin(TenantOwnedAdmin):
    list_display = ["user", "tenant", "role", "created_at"]
    list_filter = ["tenant", "role"]
    search_fields = ["user__username", "user__email", "tenant__name"]
    autocomplete_fields = ["user", "tenant"]


@admin.register(Agent)
class AgentAdmin(TenantOwnedAdmin):
    list_display = [
        "crm_username",
        "display_name",
        "tenant",
        "extension",
        "phone_number",
        "is_active",
    ]
    list_filter = ["tenant", "is_active"]
    search_fields = ["crm_username", "display_name", "email", "phone_number", "extension"]


@admin.register(CallerIdNumber)
class CallerIdNumberAdmin(TenantOwnedAdmin):
    list_display = ["number", "label", "tenant", "created_at"]
    search_fields = ["number", "label", "tenant__name"]


@admin.register(ApiKey)
class ApiKeyAdmin(TenantOwnedAdmin):
    list_display = ["prefix", "kind", "name", "tenant", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["tenant", "kind", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["prefix", "name", "tenant__name"]
    readonly_fields = ["prefix", "created_at", "last_used_at", "revoked_at"]
    fields = [
        "tenant",
        "kind",
        "name",
        "scopes",
        "allowed_cidrs",
        "rate_limit_per_minute",
        *readonly_fields,
    ]
    actions = ["rotate_keys", "revoke_keys"]

    def get_readonly_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> list[str]:
        # The kind and owner of an existing key never change: rotate it instead.
        return [*self.readonly_fields, "tenant", "kind"] if obj else self.readonly_fields

    def save_model(self, request: HttpRequest, obj: ApiKey, form: object, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        try:
            api_key, plaintext = services.api_key_create(
                tenant=obj.tenant,
                kind=obj.kind,
                name=obj.name,
                scopes=obj.scopes,
                allowed_cidrs=obj.allowed_cidrs,
                rate_limit_per_minute=obj.rate_limit_per_minute,
            )
        except ValueError as error:
            messages.error(request, str(error))
            return
        obj.pk, obj.prefix = api_key.pk, api_key.prefix  # "The API key “cbs_…” was added"
        self._show_once(request, api_key, plaintext)

    @admin.action(description="Rotate: revoke and issue a replacement (shown once)")
    def rotate_keys(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        for api_key in queryset.filter(revoked_at__isnull=True):
            new_key, plaintext = services.api_key_rotate(api_key=api_key)
            self._show_once(request, new_key, plaintext)

    @admin.action(description="Revoke now")
    def revoke_keys(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        for api_key in queryset:
            services.api_key_revoke(api_key=api_key)
        messages.success(request, f"Revoked {queryset.count()} key(s).")

    @staticmethod
    def _show_once(request: HttpRequest, api_key: ApiKey, plaintext: str) -> None:
        messages.warning(
            request,
            f"New {api_key.kind} key for {api_key.tenant}: {plaintext} — copy it now, "
            "it will not be shown again.",
        )


@admin.register(AuditEntry)
class AuditEntryAdmin(TenantOwnedAdmin):
    list_display = ["created_at", "tenant", "actor_name", "action", "target"]
    search_fields = ["action", "target", "actor_name"]
    readonly_fields = ["tenant", "actor", "actor_name", "action", "target", "changes", "ip"]
