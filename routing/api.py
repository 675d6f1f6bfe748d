"""REST endpoints for smart-IVR routing: rules, decisions (Hipcall shape), dry runs, routing URL."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import exceptions, generics, serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core import hot_path, metrics
from core.hot_path import Answer
from core.negotiation import JsonFirstNegotiation, takes_plain_json
from core.parsers import JSONParser
from core.serializers import StrictModelSerializer, StrictSerializer
from core.url_tokens import HoldsUrlToken, UrlTokenHolder, UrlTokenView
from routing import deadline, rules, selectors, services
from routing.authentication import RoutingTokenAuthentication
from routing.conditions import InvalidConditions, conditions_as_json, parse_conditions
from routing.models import RoutingRule, RoutingToken
from tenants import authentication
from tenants.authentication import KeyHolder
from tenants.models import Agent, Tenant

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
RULES_DOCUMENTATION_PATH = "/api/docs/routing-rules"
RULES_DOCUMENTATION = Path(__file__).with_name("README.md")


def rules_documentation(request: HttpRequest) -> HttpResponse:
    """routing/README.md as plain text, where the API schema links it."""
    return HttpResponse(RULES_DOCUMENTATION.read_bytes(), content_type="text/plain; charset=utf-8")


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = f"The request body is over {MAX_BODY_BYTES // 1024} KB."
    default_code = "too_large"


class BoundedBodyMixin(APIView):
    """Refuse oversized bodies before parsing them."""

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > MAX_BODY_BYTES:
            raise RequestTooLarge()


class AgentField(serializers.PrimaryKeyRelatedField):
    def get_queryset(self) -> QuerySet[Agent]:
        return Agent.objects.all()  # the caller's tenant only (scoped manager)


class RoutingRuleSerializer(StrictModelSerializer):
    agent = AgentField(required=False, allow_null=True, help_text="For 'agent' actions.")
    conditions = serializers.JSONField(
        required=False,
        help_text='All must hold, e.g. {"known": true}. Every condition and action, with '
        f"examples and the dry run: [the routing rules documentation]({RULES_DOCUMENTATION_PATH}) "
        "(routing/README.md in the repository).",
    )

    class Meta:
        model = RoutingRule
        fields = [
            "id",
            "name",
            "position",
            "is_enabled",
            "conditions",
            "action",
            "extension",
            "queue",
            "agent",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]

    def validate_conditions(self, value: Any) -> dict:
        try:
            return conditions_as_json(parse_conditions(value))
        except InvalidConditions as error:
            detail = {error.field: [error.message]} if error.field else [error.message]
            raise serializers.ValidationError(detail) from error


class RuleList(BoundedBodyMixin, generics.ListCreateAPIView):
    """The tenant's routing rules in the order they are tried, or add one."""

    api_scope = "routing"
    serializer_class = RoutingRuleSerializer

    def get_queryset(self) -> QuerySet[RoutingRule]:
        return RoutingRule.objects.select_related("agent").order_by("position", "id")

    def perform_create(self, serializer: RoutingRuleSerializer) -> None:
        serializer.instance = services.routing_rule_create(
            tenant=self.request.user.tenant, **serializer.validated_data
        )


class RuleDetail(BoundedBodyMixin, generics.RetrieveUpdateDestroyAPIView):
    api_scope = "routing"
    serializer_class = RoutingRuleSerializer
    http_method_names = ["get", "patch", "delete", "options"]

    def get_queryset(self) -> QuerySet[RoutingRule]:
        return RoutingRule.objects.select_related("agent")

    def perform_update(self, serializer: RoutingRuleSerializer) -> None:
        serializer.instance = services.routing_rule_update(
            rule=serializer.instance, **serializer.validated_data
        )

    def perform_destroy(self, instance: RoutingRule) -> None:
        services.routing_rule_delete(rule=instance)


class DecideRequestSerializer(serializers.Serializer):
    caller = serializers.CharField(help_text="The calling number, e.g. +442045205757.")
    called = serializers.CharField(required=False, help_text="The number called (ignored).")


class RuleRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class DecisionSerializer(serializers.Serializer):
    extension = serializers.CharField(allow_null=True)
    queue = serializers.CharField(required=False, help_text="Only for queue actions.")
    rule = RuleRefSerializer(allow_null=True)
    reason = serializers.CharField()


def decision_body(decision: rules.Decision) -> dict:
    rule = decision.rule
    body: dict[str, Any] = {
        "extension": decision.extension,
        "rule": {"id": rule.id, "name": rule.name} if rule else None,
        "reason": decision.reason,
    }
    if decision.queue:
        body["queue"] = decision.queue
    return body


class DecideView(APIView):
    """Where to route a call: {"caller": "+442045205757"} -> {"extension": "1093", ...}.

    Never an error for a bad number or body, never later than the tenant's routing deadline:
    the tenant's fallback then, with the reason. Unknown fields (phone systems add their own) are
    ignored.
    """

    api_scope = "routing"
    api_scope_access = "read"
    parser_classes = [JSONParser, FormParser, MultiPartParser]
    content_negotiation_class = JsonFirstNegotiation
    body_problem = ""  # what is wrong with the request's body, read before dispatch

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        self.credential = deadline.credential_digest(self.credential_secret(request, kwargs))
        return deadline.answer_within(
            request,
            self.credential,
            lambda body_problem: self._dispatch(body_problem, request, *args, **kwargs),
        )

    def _dispatch(
        self, body_problem: str, request: HttpRequest, *args: Any, **kwargs: Any
    ) -> HttpResponse:
        self.body_problem = body_problem
        return cast(HttpResponse, super().dispatch(request, *args, **kwargs))  # a DRF Response

    @classmethod
    def credential_secret(cls, request: HttpRequest, kwargs: dict) -> str:
        return request.META.get("HTTP_AUTHORIZATION", "")

    @classmethod
    def holder(cls, request: HttpRequest, kwargs: dict) -> KeyHolder | UrlTokenHolder:
        """Who asks, checked as DRF checks this view's requests (for the hot path)."""
        return authentication.server_key_holder(request, cls)

    def throttled(self, request: Request, wait: float | None) -> None:
        deadline.profiles.remember(self.credential, request.user.tenant)  # its fallback
        super().throttled(request, wait)

    @extend_schema(request=DecideRequestSerializer, responses=DecisionSerializer)
    def post(self, request: Request, token: str = "") -> Response:
        problem = self.body_problem
        data: Any = {}
        if not problem:
            try:
                data = request.data
            except (exceptions.ParseError, exceptions.UnsupportedMediaType) as error:
                problem = f"unreadable request ({error.detail})"
        return Response(decide_body(request.user.tenant, self.credential, problem, data))

    @classmethod
    def hot_path(cls, request: HttpRequest, **kwargs: Any) -> Answer | HttpResponse | None:
        """Answer a plain JSON decision without DRF (core/hot_path.py), within the deadline."""
        if (
            request.method != "POST"
            or request.content_type != "application/json"
            or not takes_plain_json(request, hot_path.query_params(request))
        ):
            return None
        credential = deadline.credential_digest(cls.credential_secret(request, kwargs))
        return deadline.answer_within(
            request, credential, lambda problem: cls._decide(request, kwargs, credential, problem)
        )

    @classmethod
    def _decide(cls, request: HttpRequest, kwargs: dict, credential: str, problem: str) -> Answer:
        try:
            tenant = cls.holder(request, kwargs).tenant
            data: Any = {}
            if not problem:
                try:
                    data = hot_path.json_data(request)
                except exceptions.ParseError as error:
                    problem = f"unreadable request ({error.detail})"
            return hot_path.json_response(decide_body(tenant, credential, problem, data), cls)
        except Exception as error:
            if isinstance(error, exceptions.Throttled):  # its fallback, as DRF's throttled()
                deadline.profiles.remember(credential, request.user.tenant)
            return hot_path.error_response(error, cls, request)


def decide_body(tenant: Tenant, credential: str, problem: str, data: Any) -> dict:
    """The decision for a request's body (or the fallback saying what is wrong with it)."""
    started = time.perf_counter()
    deadline.profiles.remember(credential, tenant)
    if not problem and not isinstance(data, Mapping):
        problem = 'the body must be a JSON object such as {"caller": "+44..."}'
    if problem:
        decision = rules.fallback(tenant.routing_settings.fallback_extension, problem)
    else:
        try:
            decision = selectors.routing_decide(tenant=tenant, caller=data.get("caller"))
        except Exception as error:  # a broken database must still route the call
            logger.warning("Routing lookup failed for tenant %s: %r", tenant.pk, error)
            reason = f"lookup failed ({type(error).__name__})"
            decision = rules.fallback(tenant.routing_settings.fallback_extension, reason)
    latency_ms = (time.perf_counter() - started) * 1000
    metrics.record(tenant.pk, "decide", latency_ms, flagged=decision.rule is None)
    return decision_body(decision)


@extend_schema_view(
    post=extend_schema(
        operation_id="v1_routing_decide_by_token",
        auth=[],
        description="The same decision; the secret token in the URL is the credential.",
    )
)
class DecideByTokenView(DecideView):
    """The same decision for phone systems that can only be given a URL (the token is the key)."""

    authentication_classes = [RoutingTokenAuthentication]
    permission_classes = [HoldsUrlToken]
    throttle_classes: list = []

    @classmethod
    def credential_secret(cls, request: HttpRequest, kwargs: dict) -> str:
        return str(kwargs.get("token", ""))

    @classmethod
    def holder(cls, request: HttpRequest, kwargs: dict) -> KeyHolder | UrlTokenHolder:
        return RoutingTokenAuthentication.holder(cls.credential_secret(request, kwargs))


class DryRunRequestSerializer(StrictSerializer):
    caller = serializers.CharField(max_length=selectors.MAX_CALLER_LENGTH, trim_whitespace=True)
    at = serializers.DateTimeField(
        required=False, help_text="When the call would arrive; default now."
    )
    called = serializers.CharField(required=False, help_text="The number called (ignored).")

    def validate_caller(self, value: str) -> str:
        problem = selectors.caller_problem(self.context["request"].user.tenant, value)
        if problem:
            raise serializers.ValidationError(problem[0].upper() + problem[1:] + ".")
        return value


class ConditionResultSerializer(serializers.Serializer):
    condition = serializers.CharField()
    holds = serializers.BooleanField()
    observed = serializers.CharField()


class RuleResultSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="rule.id")
    name = serializers.CharField(source="rule.name")
    matched = serializers.BooleanField()
    conditions = ConditionResultSerializer(many=True)
    extension = serializers.CharField(allow_null=True)
    queue = serializers.CharField(allow_null=True)
    note = serializers.CharField()


class CallSerializer(serializers.Serializer):
    number = serializers.CharField(source="card.number")
    known = serializers.BooleanField(source="card.known")
    ambiguous = serializers.BooleanField(source="card.ambiguous")
    contact = serializers.SerializerMethodField()
    country = serializers.CharField(allow_null=True)
    now = serializers.SerializerMethodField(help_text="ISO 8601, in the tenant's time zone.")

    def get_now(self, call: rules.Call) -> str:
        return call.now.isoformat()

    def get_contact(self, call: rules.Call) -> dict | None:
        contact = call.card.contact
        return {"id": contact.id, "name": contact.name} if contact else None


class DryRunSerializer(serializers.Serializer):
    decision = DecisionSerializer()
    call = CallSerializer()
    rules = RuleResultSerializer(many=True)


class DryRunView(BoundedBodyMixin, APIView):
    """Which rule would route a call from this number now (or `at`), checking each in order."""

    api_scope = "routing"
    api_scope_access = "read"

    @extend_schema(request=DryRunRequestSerializer, responses=DryRunSerializer)
    def post(self, request: Request) -> Response:
        params = DryRunRequestSerializer(data=request.data, context={"request": request})
        params.is_valid(raise_exception=True)
        dry_run = selectors.routing_dry_run(
            tenant=request.user.tenant,
            caller=params.validated_data["caller"],
            at=params.validated_data.get("at"),
        )
        return Response(
            {
                "decision": decision_body(dry_run.decision),
                "call": CallSerializer(dry_run.call).data,
                "rules": RuleResultSerializer(dry_run.results, many=True).data,
            }
        )


class RoutingTokenView(UrlTokenView):
    """The tenant's routing URL: see it exists, (re)generate it (shown once), or turn it off."""

    api_scope = "routing"
    token_model = RoutingToken
    tag = services.TOKEN_TAG
    url_name = services.ROUTING_URL_NAME
    what = "routing URL"
