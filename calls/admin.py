from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from calls import deliveries
from calls.models import Attempt, Call, CallEvent, CallParty, Delivery
from calls.services import signing_secret_rotate
from core.scoping import tenant_scope
from tenants import admin as tenants_admin
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
