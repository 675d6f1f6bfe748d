"""REST endpoints: apps (secrets write-only), the call test, and what happened after a call."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from automations import app_runs, crm_logging, selectors, services
from automations.models import App, AppRun, CrmLog, CrmLogAttempt
from calls.api.views import Conflict
from calls.models import Call
from contacts.api.serializers import CallerCardSerializer, QueryNumberField
from contacts.selectors import caller_card
from core import outbox
from core.parsers import JSONParser
from core.serializers import StrictModelSerializer, StrictSerializer

EVENTS = App.Event.choices


class AppSerializer(StrictModelSerializer):
    config = serializers.JSONField(
        required=False,
        help_text="Per kind (README): secret values (passwords, tokens, the Slack URL) are "
        "write-only and kept when a PATCH leaves them out.",
    )
    events = serializers.ListField(child=serializers.ChoiceField(choices=EVENTS), min_length=1)
    # Declared so the schema says what is accepted (the model allows 0 to 32767).
    order = serializers.IntegerField(
        min_value=10,
        max_value=100,
        default=50,
        help_text="10 to 100; lower runs first.",
        error_messages=dict.fromkeys(
            ["min_value", "max_value"], "From 10 to 100 (lower runs first)."
        ),
    )

    class Meta:
        model = App
        fields = [
            "id",
            "name",
            "slug",
            "description",
            "kind",
            "timing",
            "events",
            "condition",
            "order",
            "enabled",
            "side_effects",
            "config",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]

    def validate_config(self, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise serializers.ValidationError("A JSON object.")
        return value

    def validate_slug(self, value: str) -> str:
        apps = App.objects.filter(slug=value)
        if self.instance is not None:
            apps = apps.exclude(pk=self.instance.pk)
        if apps.exists():
            raise serializers.ValidationError(f"An app named {value!r} exists already.")
        return value


class AppList(generics.ListCreateAPIView):
    """The tenant's apps, in the order they run."""

    api_scope = "apps"
    serializer_class = AppSerializer
    parser_classes = [JSONParser]

    def get_queryset(self) -> QuerySet[App]:
        return App.objects.order_by("order", "id")

    def perform_create(self, serializer: AppSerializer) -> None:
        data = dict(serializer.validated_data)
        config = data.pop("config", {})
        serializer.instance = _checked(
            lambda: services.app_create(tenant=self.request.user.tenant, config=config, **data)
        )


class AppDetail(generics.RetrieveUpdateDestroyAPIView):
    api_scope = "apps"
    serializer_class = AppSerializer
    parser_classes = [JSONParser]

    def get_queryset(self) -> QuerySet[App]:
        return App.objects.all()

    def perform_update(self, serializer: AppSerializer) -> None:
        data = dict(serializer.validated_data)
        config = data.pop("config", None)
        serializer.instance = _checked(
            lambda: services.app_update(app=serializer.instance, config=config, **data)
        )


def _checked(save: Any) -> App:
    try:
        return save()
    except DjangoValidationError as error:
        raise serializers.ValidationError(error.message_dict) from None


class TestCallInput(StrictSerializer):
    calling_number = serializers.CharField(max_length=64)
    called_number = serializers.CharField(max_length=64, required=False, default="")
    event = serializers.ChoiceField(choices=EVENTS, default=App.Event.CALL_END)
    event_data = serializers.DictField(
        required=False,
        default=dict,
        help_text='More event fields to test with, e.g. {"satisfaction": 1, "resolved": false}.',
    )
    send = serializers.BooleanField(
        default=False, help_text="Also send apps with side effects (else only rendered)."
    )


class AppsTestCall(APIView):
    """Seed 004's call test: the apps for a test call in order, each with its request, answer
    and app_data; apps with side effects are only rendered unless `send` is true."""

    api_scope = "apps"
    api_scope_access = "read"
    parser_classes = [JSONParser]

    @extend_schema(request=TestCallInput, responses={200: dict})
    def post(self, request: Request) -> Response:
        given = TestCallInput(data=request.data)
        given.is_valid(raise_exception=True)
        report = app_runs.apps_test_call(tenant=request.user.tenant, **given.validated_data)
        unfinished = [app["app"] for app in report if app["state"] == "unfinished"]
        return Response({"apps": report, "unfinished": unfinished})


class EnrichedLookupQuery(StrictSerializer):
    number = QueryNumberField(max_length=64)
    called = serializers.CharField(max_length=64, required=False, default="")
    # Seed 004's call event fields, as the phone system knows them (event.* in templates).
    calling_name = serializers.CharField(max_length=150, required=False)
    calling_devicename = serializers.CharField(max_length=64, required=False, default="")
    trigger_point_type = serializers.CharField(max_length=64, required=False, default="")


class EnrichedLookup(APIView):
    """The caller card plus what the tenant's real-time apps add, within the routing deadline.

    Seed 004's real-time apps (timing `realtime`, event `call.start`) run in order; the card is
    answered on time even when an app is slow or failing (it then adds nothing).
    """

    api_scope = "lookup"

    @extend_schema(parameters=[EnrichedLookupQuery], responses={200: dict})
    def get(self, request: Request) -> Response:
        query = EnrichedLookupQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        tenant = request.user.tenant
        number = query.validated_data["number"]
        card = caller_card(tenant=tenant, number=number)
        given = query.validated_data
        app_data, apps = app_runs.realtime_apps_run(
            card=card,
            called_number=given["called"],
            deadline_seconds=tenant.routing_settings.deadline_ms / 1000,
            fields={
                name: given[name]
                for name in ("calling_name", "calling_devicename", "trigger_point_type")
                if given.get(name)
            },
        )
        return Response(
            {"card": CallerCardSerializer(card).data, "app_data": app_data, "apps": apps}
        )


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


class AppRunSerializer(serializers.ModelSerializer):
    app = serializers.CharField(source="app.slug", read_only=True)

    class Meta:
        model = AppRun
        fields = [
            "id",
            "app",
            "event",
            "order",
            "state",
            "request",
            "result",
            "attempts",
            "error",
            "created_at",
            "started_at",
            "finished_at",
        ]


class CallActivitySerializer(serializers.Serializer):
    call_id = serializers.UUIDField()
    crm_logs = CrmLogSerializer(many=True)
    app_runs = AppRunSerializer(many=True)


@extend_schema_view(get=extend_schema(responses=CallActivitySerializer))
class CallActivity(APIView):
    """Everything the call set off: its CRM logs and app runs, each with every attempt."""

    api_scope = "calls"

    def get(self, request: Request, call_id: str) -> Response:
        call = get_object_or_404(Call.objects.all(), call_id=call_id)
        activity = {
            "call_id": call.call_id,
            "crm_logs": selectors.call_crm_logs(call=call),
            "app_runs": selectors.call_app_runs(call=call),
        }
        return Response(CallActivitySerializer(activity).data)


@extend_schema_view(post=extend_schema(request=None, responses={202: CrmLogSerializer}))
class CrmLogResend(APIView):
    """Run a failed CRM log again (same id; it updates the CRM record if one was created)."""

    api_scope = "calls"

    def post(self, request: Request, pk: str) -> Response:
        log = get_object_or_404(CrmLog.objects.select_related("connection"), pk=pk)
        try:
            log = crm_logging.crm_log_resend(crm_log=log)
        except outbox.NotFailed as error:
            raise Conflict(str(error), code="crm_log_not_failed") from error
        return Response(CrmLogSerializer(log).data, status=status.HTTP_202_ACCEPTED)


@extend_schema_view(post=extend_schema(request=None, responses={202: AppRunSerializer}))
class AppRunResend(APIView):
    """Run a failed app run again (the apps before it keep their results)."""

    api_scope = "apps"

    def post(self, request: Request, pk: str) -> Response:
        run = get_object_or_404(AppRun.objects.select_related("app"), pk=pk)
        try:
            run = app_runs.app_run_resend(run=run)
        except outbox.NotFailed as error:
            raise Conflict(str(error), code="app_run_not_failed") from error
        return Response(AppRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)
