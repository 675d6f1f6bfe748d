from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from calls import deliveries
from calls.gateways import GatewayConfigError, gateway_class
from calls.models import (
    Attempt,
    Call,
    CallbackSettings,
    CallEvent,
    CallParty,
    Delivery,
    GatewayConfig,
    TelephonySettings,
    WebphoneSettings,
    validate_header_value,
)
from calls.services import signing_secret_rotate
from core.scoping import tenant_scope
from tenants import admin as tenants_admin
from tenants.admin import (
    TenantOwnedAdmin,
    WriteOnlySecretsForm,
    secret_input,
    tenant_settings_inline,
)
from tenants.models import Tenant

# The signing secret is the call-result push's: its rotation joins the tenant's admin from here
# (tenants cannot import calls).
admin.site.unregister(Tenant)


@admin.register(Tenant)
class TenantAdmin(tenants_admin.TenantAdmin):
    actions = ["rotate_signing_secret"]

    @admin.action(description="Rotate the signing secret (the new one is shown once)")
    def rotate_signing_secret(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        for tenant in queryset:
            secret = signing_secret_rotate(tenant=tenant)
            messages.warning(
                request,
                f"New signing secret for {tenant}: {secret} — copy it now, it will not be shown "
                "again. The previous one keeps signing for 24 hours.",
            )


class CallbackSettingsForm(WriteOnlySecretsForm):
    """The call-result push; its auth value is set, replaced or cleared here, never shown."""

    new_auth_value = secret_input("New auth header value")
    clear_auth_value = forms.BooleanField(required=False)
    clear_signing_secret = forms.BooleanField(
        required=False,
        help_text="Stop signing callbacks (the previous secret stops too). To issue a new "
        "secret, use the tenant list's action 'Rotate the signing secret'.",
    )

    WRITE_ONLY = ("auth_value",)

    class Meta:
        model = CallbackSettings
        fields = ["url", "auth_header", "on_update", "default_disposition"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        state = "set" if self.instance.signing_secret else "not set"
        self.fields[
            "clear_signing_secret"
        ].help_text = f"Now {state}; never shown. {self.fields['clear_signing_secret'].help_text}"

    def clean_new_auth_value(self) -> str:
        value: str = self.cleaned_data["new_auth_value"]
        validate_header_value(value)
        return value

    def save(self, commit: bool = True) -> CallbackSettings:
        callback: CallbackSettings = super().save(commit=False)
        if self.cleaned_data.get("clear_signing_secret"):
            callback.signing_secret = callback.previous_signing_secret = ""
            callback.previous_signing_secret_expires_at = None
        if commit:
            callback.save()
        return callback


class CallbackSettingsInline(admin.StackedInline):
    model = CallbackSettings
    form = CallbackSettingsForm
    can_delete = False
    verbose_name_plural = "Call-result callback (secrets are never shown)"


tenant_settings_inline(CallbackSettingsInline)


class TelephonySettingsForm(WriteOnlySecretsForm):
    """The simulator's behaviour and Twilio's token, set, replaced or cleared, never shown."""

    new_twilio_auth_token = secret_input("New Twilio auth token")
    clear_twilio_auth_token = forms.BooleanField(required=False)

    WRITE_ONLY = ("twilio_auth_token",)

    class Meta:
        model = TelephonySettings
        fields = [
            "simulator_outcomes",
            "simulator_ring_seconds",
            "simulator_talk_seconds",
            "simulator_recording",
        ]


class TelephonySettingsInline(admin.StackedInline):
    model = TelephonySettings
    form = TelephonySettingsForm
    can_delete = False
    verbose_name_plural = "Telephony: the simulator, and Twilio's token (never shown)"


tenant_settings_inline(TelephonySettingsInline)


class WebphoneSettingsInline(admin.StackedInline):
    model = WebphoneSettings
    can_delete = False
    verbose_name_plural = "Webphone: CRM origins that may frame the call page"


tenant_settings_inline(WebphoneSettingsInline)


class CallEventInline(admin.TabularInline):
    model = CallEvent
    extra = 0
    can_delete = False
    readonly_fields = ["kind", "status", "occurred_at", "recorded_at"]
    exclude = ["tenant"]


class CallPartyInline(admin.TabularInline):
    model = CallParty
    extra = 0
    can_delete = False
    readonly_fields = ["kind", "number", "added_at"]
    exclude = ["tenant"]


@admin.register(Call)
class CallAdmin(admin.ModelAdmin):
    list_display = ["call_id", "tenant", "crm_username", "customer_number", "state", "status"]
    list_filter = ["tenant", "state", "status", "call_type"]
    list_select_related = ["tenant"]
    search_fields = ["call_id", "uuid", "customer_number", "crm_username"]
    readonly_fields = [f.name for f in Call._meta.fields]
    inlines = [CallEventInline, CallPartyInline]


class AttemptInline(admin.TabularInline):
    model = Attempt
    extra = 0
    can_delete = False
    exclude = ["tenant"]
    readonly_fields = [
        "number",
        "trigger",
        "started_at",
        "status_code",
        "error_class",
        "latency_ms",
        "response_excerpt",
    ]


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ["id", "tenant", "state", "attempt_count", "next_attempt_at", "created_at"]
    list_filter = ["tenant", "state"]
    list_select_related = ["tenant"]
    readonly_fields = [f.name for f in Delivery._meta.fields]
    inlines = [AttemptInline]
    actions = ["resend"]

    @admin.action(description="Resend the selected deliveries (same id)")
    def resend(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> None:
        sent, skipped = 0, 0
        for delivery in queryset:
            with tenant_scope(delivery.tenant_id):
                try:
                    deliveries.delivery_resend(delivery=delivery)
                    sent += 1
                except deliveries.DeliveryInProgress:
                    skipped += 1
        self.message_user(request, f"Resent {sent}; {skipped} still pending.", messages.INFO)


class GatewayConfigForm(forms.ModelForm):
    new_credentials = forms.JSONField(
        required=False,
        help_text='JSON, e.g. {"auth_token": "..."}; merged into the stored credentials, which '
        "are never shown again. Leave empty to keep them.",
    )

    class Meta:
        model = GatewayConfig
        fields = ["tenant", "engine", "settings"]

    def clean_new_credentials(self) -> dict[str, Any] | None:
        value = self.cleaned_data["new_credentials"]
        if value is not None and not isinstance(value, dict):
            raise forms.ValidationError("Give a JSON object.")
        return value

    def clean(self) -> dict[str, Any]:
        """The engine's own checks, as the API makes them (calls/gateways)."""
        cleaned = super().clean() or {}
        engine = cleaned.get("engine")
        if engine and not self.errors:
            same = self.instance.pk is not None and self.instance.engine == engine
            stored = self.instance.credentials if same else {}
            credentials = {**stored, **(cleaned.get("new_credentials") or {})}
            try:
                gateway_class(engine).check_config(credentials, cleaned.get("settings") or {})
            except GatewayConfigError as error:
                self.add_error(
                    "new_credentials" if error.field == "credentials" else "settings",
                    error.message,
                )
        return cleaned

    def save(self, commit: bool = True) -> GatewayConfig:
        config = super().save(commit=False)
        if self.cleaned_data.get("new_credentials"):
            config.credentials = {**config.credentials, **self.cleaned_data["new_credentials"]}
        if commit:
            config.save()
        return config


@admin.register(GatewayConfig)
class GatewayConfigAdmin(TenantOwnedAdmin):
    form = GatewayConfigForm
    list_display = ["tenant", "engine", "updated_at"]
    list_filter = ["engine"]
