from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from routing import services
from routing.models import RoutingRule, RoutingSettings, RoutingToken
from tenants.admin import TenantOwnedAdmin, tenant_settings_inline
from tenants.models import Tenant


class RoutingSettingsInline(admin.StackedInline):
    model = RoutingSettings
    can_delete = False


tenant_settings_inline(RoutingSettingsInline)


@admin.register(RoutingRule)
class RoutingRuleAdmin(TenantOwnedAdmin):
    list_display = ["name", "tenant", "position", "is_enabled", "action", "extension", "queue"]
    list_filter = ["tenant", "is_enabled", "action"]
    search_fields = ["name", "extension", "queue", "tenant__name"]
    list_select_related = ["tenant", "agent"]
    raw_id_fields = ["agent"]
    ordering = ["tenant", "position", "id"]


@admin.register(RoutingToken)
class RoutingTokenAdmin(TenantOwnedAdmin):
    """Add one to generate a tenant's routing URL (shown once); the action replaces it."""

    list_display = ["prefix", "tenant", "created_at"]
    search_fields = ["prefix", "tenant__name", "tenant__slug"]
    readonly_fields = ["prefix", "created_at"]
    fields = ["tenant", *readonly_fields]
    actions = ["regenerate"]

    def has_change_permission(self, request: HttpRequest, obj: RoutingToken | None = None) -> bool:
        return obj is None and super().has_change_permission(request)

    def save_model(
        self, request: HttpRequest, obj: RoutingToken, form: object, change: bool
    ) -> None:
        token = self._regenerate(request, obj.tenant)
        obj.pk = token.pk

    @admin.action(description="Regenerate: new URL (shown once), the old one stops working")
    def regenerate(self, request: HttpRequest, queryset: QuerySet[RoutingToken]) -> None:
        for token in queryset.select_related("tenant"):
            self._regenerate(request, token.tenant)

    @staticmethod
    def _regenerate(request: HttpRequest, tenant: Tenant) -> RoutingToken:
        token, plaintext = services.routing_token_regenerate(tenant=tenant)
        messages.warning(
            request,
            f"Routing URL for {tenant}: {services.routing_url(plaintext)} — copy it now, "
            "it will not be shown again.",
        )
        return token
