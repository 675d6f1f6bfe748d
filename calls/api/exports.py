"""GET /api/v1/exports/calls: every call with its analytics, for BI jobs (calls/exports.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.views import APIView

from calls import exports
from calls.api.serializers import ZonedDateTimeField
from calls.api.views import AnswerJson
from core.serializers import StrictSerializer

# At ~5,000 rows/s (2 busy cores), 50,000 rows take ~10 s: one answer holds a web thread no longer.
DEFAULT_LIMIT, MAX_LIMIT = 50_000, 200_000


class CursorField(serializers.CharField):
    def to_internal_value(self, data: Any) -> exports.Position:
        try:
            return exports.cursor_decode(super().to_internal_value(data))
        except ValueError as error:
            raise serializers.ValidationError(str(error)) from None


class ExportParams(StrictSerializer):
    since = ZonedDateTimeField(required=False, help_text="Calls that started at or after this.")
    until = ZonedDateTimeField(required=False, help_text="Calls that started before this.")
    format = serializers.ChoiceField(choices=list(exports.FORMATS), default="csv")
    cursor = CursorField(
        required=False, help_text="X-Next-Cursor of the last export: only what changed since."
    )
    limit = serializers.IntegerField(
        min_value=1, max_value=MAX_LIMIT, default=DEFAULT_LIMIT, help_text="Rows in this response."
    )

    def validate(self, data: dict) -> dict:
        if "since" in data and "until" in data and data["until"] <= data["since"]:
            raise serializers.ValidationError({"until": "Must be after since."})
        return data


class CallExport(APIView):
    """Stream the tenant's calls with their analytics as CSV or NDJSON, in the order they changed.

    X-Next-Cursor is where the next export starts (also the NDJSON's last line); X-More-Rows says
    whether calls are still waiting after this one's `limit`.
    """

    api_scope = "calls"
    content_negotiation_class = AnswerJson  # `format` is ours, not DRF's renderer switch

    @extend_schema(
        parameters=[ExportParams],
        responses={
            (200, "text/csv"): OpenApiTypes.STR,
            (200, "application/x-ndjson"): OpenApiTypes.STR,
        },
    )
    def get(self, request: Request) -> StreamingHttpResponse:
        params = ExportParams(data=request.query_params)
        params.is_valid(raise_exception=True)
        given = params.validated_data
        return exports.export_response(
            tenant=request.user.tenant,
            fmt=given["format"],
            start=given.get("cursor"),
            limit=given["limit"],
            settle=timedelta(seconds=settings.CALL_EXPORT_SETTLE_SECONDS),
            since=given.get("since"),
            until=given.get("until"),
        )
