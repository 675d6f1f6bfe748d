"""REST endpoints: what happened after a call (CRM logs with their attempts), and re-running."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from automations import crm_logging
from automations.models import CrmLog, CrmLogAttempt
from calls.api.views import Conflict
from calls.models import Call


class CrmLogAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = CrmLogAttempt
        fields = ["number", "action", "started_at", "latency_ms", "succeeded", "error"]


class CrmLogSerializer(serializers.ModelSerializer):
    attempts = CrmLogAttemptSerializer(many=True, read_only=True)
    provider = serializers.CharField(source="connection.provider", read_only=True)

    class Meta:
        model = CrmLog
        fields = [
            "id",
            "connection",
            "provider",
            "kind",
            "state",
            "remote_id",
            "contact_external_id",
            "needs_update",
            "attempt_count",
            "next_attempt_at",
            "last_error",
            "created_at",
            "updated_at",
            "attempts",
        ]


class CallActivitySerializer(serializers.Serializer):
    call_id = serializers.UUIDField()
    crm_logs = CrmLogSerializer(many=True)


@extend_schema_view(get=extend_schema(responses=CallActivitySerializer))
class CallActivity(APIView):
    """Everything the call set off after it ended: its CRM logs, each with every attempt."""

    api_scope = "calls"

    def get(self, request: Request, call_id: str) -> Response:
        call = get_object_or_404(Call.objects.all(), call_id=call_id)
        logs = (
            CrmLog.objects.filter(call=call)
            .select_related("connection")
            .prefetch_related("attempts")
            .order_by("created_at")
        )
        return Response(CallActivitySerializer({"call_id": call.call_id, "crm_logs": logs}).data)


@extend_schema_view(post=extend_schema(request=None, responses={202: CrmLogSerializer}))
class CrmLogResend(APIView):
    """Run a failed CRM log again (same id; it updates the CRM record if one was created)."""

    api_scope = "calls"

    def post(self, request: Request, pk: str) -> Response:
        log = get_object_or_404(CrmLog.objects.select_related("connection"), pk=pk)
        if log.state != CrmLog.State.FAILED:
            raise Conflict(
                f"CRM log {log.pk} is {log.state}; only a failed log can be run again.",
                code="crm_log_not_failed",
            )
        log = crm_logging.crm_log_resend(crm_log=log)
        return Response(CrmLogSerializer(log).data, status=status.HTTP_202_ACCEPTED)
