from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from automations import crm_logging
from automations.models import CrmLog, CrmLogAttempt
from core import outbox
from core.scoping import tenant_scope


class CrmLogAttemptInline(admin.TabularInline):
    model = CrmLogAttempt
    extra = 0
    can_delete = False
    exclude = ["tenant"]
    readonly_fields = ["number", "action", "started_at", "latency_ms", "succeeded", "error"]


@admin.register(CrmLog)
class CrmLogAdmin(admin.ModelAdmin):
    list_display = ["id", "tenant", "connection", "kind", "state", "remote_id", "attempt_count"]
    list_filter = ["tenant", "state", "kind"]
    list_select_related = ["tenant", "connection"]
    search_fields = ["remote_id", "call__call_id"]
    readonly_fields = [f.name for f in CrmLog._meta.fields]
    inlines = [CrmLogAttemptInline]
    actions = ["resend"]

    @admin.action(description="Run the selected CRM logs again")
    def resend(self, request: HttpRequest, queryset: QuerySet[CrmLog]) -> None:
        queued = 0
        for log in queryset:
            with tenant_scope(log.tenant_id):
                try:
                    crm_logging.crm_log_resend(crm_log=log)
                    queued += 1
                except outbox.NotFailed:
                    pass
        skipped = len(queryset) - queued
        note = f"; {skipped} not failed, left as they are" if skipped else ""
        self.message_user(request, f"Queued {queued} CRM logs{note}.", messages.INFO)
