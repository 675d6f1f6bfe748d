"""REST endpoints: server-to-server calls (seed 002), call actions, deliveries, signing secret."""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_view, inline_serializer
from rest_framework import exceptions, generics, serializers, status
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from calls import deliveries, live, selectors, services
from calls.api.serializers import (
    CallCreateSerializer,
    CallRecordSerializer,
    DeliverySerializer,
    DispositionInput,
    NotesInput,
    PartyInput,
    SigningSecretSerializer,
    TransferInput,
    ZonedDateTimeField,
)
from calls.gateways import GatewayNotSupported, GatewayUnavailable
from calls.lifecycle import iso_z
from calls.models import Call, CallbackSettings, CallParty, CallStatus, Delivery
from core.parsers import JSONParser
from core.renderers import JSONRenderer


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


class NotSupported(exceptions.APIException):
    status_code = status.HTTP_501_NOT_IMPLEMENTED
    default_code = "not_supported"


class GatewayDown(exceptions.APIException):
    status_code = status.HTTP_502_BAD_GATEWAY
    default_code = "gateway_unavailable"


@extend_schema_view(
    post=extend_schema(
        request=CallCreateSerializer,
        responses={200: CallRecordSerializer, 201: CallRecordSerializer},
    )
)
class CallList(generics.ListCreateAPIView):
    """Start a call server-to-server (seed 002) or list calls (filters: status, agent, since)."""

    api_scope = "calls"
    serializer_class = CallRecordSerializer
    parser_classes = [JSONParser]

    def get_queryset(self) -> QuerySet[Call]:
        params = self.request.query_params
        call_status = params.get("status")
        if call_status and call_status not in CallStatus.values:
            raise serializers.ValidationError(
                {"status": f"Use one of {', '.join(CallStatus.values)}."}
            )
        since = None
        if params.get("since"):
            try:
                since = ZonedDateTimeField().to_internal_value(params["since"])
            except serializers.ValidationError as error:
                raise serializers.ValidationError({"since": error.detail}) from None
        return selectors.call_list(
            status=call_status, crm_username=params.get("agent"), since=since
        )

    def create(self, request: Request, *args: object, **kwargs: object) -> Response:
        tenant = request.user.tenant
        incoming = CallCreateSerializer(data=request.data, context={"tenant": tenant})
        incoming.is_valid(raise_exception=True)
        try:
            call, created = services.call_place(
                tenant=tenant, call_type=Call.CallType.SERVER, **incoming.validated_data
            )
        except services.CallConflict as error:
            raise Conflict(str(error), code=error.code) from error
        except GatewayNotSupported as error:
            raise NotSupported(str(error)) from error
        except GatewayUnavailable as error:
            raise GatewayDown(str(error)) from error
        return Response(
            CallRecordSerializer(call).data, status=status.HTTP_201_CREATED if created else 200
        )


class CallDetail(generics.RetrieveAPIView):
    api_scope = "calls"
    serializer_class = CallRecordSerializer
    lookup_field = "call_id"

    def get_queryset(self) -> QuerySet[Call]:
        return Call.objects.select_related("recording").prefetch_related("parties")


class CallAction(APIView):
    """Base of POST /calls/{call_id}/<action>: parse, call one service, answer the call."""

    api_scope = "calls"
    parser_classes = [JSONParser]
    input_class: type[serializers.Serializer] | None = None

    def post(self, request: Request, call_id: str) -> Response:
        call = get_object_or_404(Call.objects.select_related("tenant"), call_id=call_id)
        values = {}
        if self.input_class is not None:
            incoming = self.input_class(data=request.data, context={"tenant": call.tenant})
            incoming.is_valid(raise_exception=True)
            values = incoming.validated_data
        try:
            call = self.act(call, **values)
        except services.CallConflict as error:
            raise Conflict(str(error), code=error.code) from error
        except GatewayNotSupported as error:
            raise NotSupported(str(error)) from error
        except GatewayUnavailable as error:
            raise GatewayDown(str(error)) from error
        return Response(CallRecordSerializer(call).data)

    def act(self, call: Call, **values: str) -> Call:
        raise NotImplementedError


@extend_schema_view(post=extend_schema(request=None, responses=CallRecordSerializer))
class CallHangUp(CallAction):
    """End the call now (CANCELED if not answered yet)."""

    def act(self, call: Call, **values: str) -> Call:
        return services.call_hang_up(call=call)


@extend_schema_view(post=extend_schema(request=DispositionInput, responses=CallRecordSerializer))
class CallDisposition(CallAction):
    """Set the call's disposition (the tenant's default applies until then)."""

    input_class = DispositionInput

    def act(self, call: Call, **values: str) -> Call:
        return services.call_disposition_set(call=call, **values)


@extend_schema_view(post=extend_schema(request=NotesInput, responses=CallRecordSerializer))
class CallNotes(CallAction):
    """Add notes to the call (appended to any already there)."""

    input_class = NotesInput

    def act(self, call: Call, **values: str) -> Call:
        return services.call_notes_add(call=call, **values)


@extend_schema_view(post=extend_schema(request=TransferInput, responses=CallRecordSerializer))
class CallTransfer(CallAction):
    """Transfer the answered call to another number."""

    input_class = TransferInput

    def act(self, call: Call, **values: str) -> Call:
        return services.call_party_add(
            call=call, kind=CallParty.Kind.TRANSFER, number=values["to_number"]
        )


@extend_schema_view(post=extend_schema(request=PartyInput, responses=CallRecordSerializer))
class CallAddParty(CallAction):
    """Bring a third party into the answered call (three-way)."""

    input_class = PartyInput

    def act(self, call: Call, **values: str) -> Call:
        return services.call_party_add(
            call=call, kind=CallParty.Kind.THIRD_PARTY, number=values["number"]
        )


class DeliveryList(generics.ListAPIView):
    """Call-result pushes with their attempts (filters: state, call_id)."""

    api_scope = "calls"
    serializer_class = DeliverySerializer

    def get_queryset(self) -> QuerySet[Delivery]:
        params = self.request.query_params
        state = params.get("state")
        if state and state not in Delivery.State.values:
            raise serializers.ValidationError(
                {"state": f"Use one of {', '.join(Delivery.State.values)}."}
            )
        call_id = params.get("call_id")
        if call_id:
            try:
                call_id = str(uuid.UUID(call_id))
            except ValueError as error:
                raise serializers.ValidationError({"call_id": "Use a call's call_id."}) from error
        return selectors.delivery_list(state=state, call_id=call_id).prefetch_related("attempts")


class DeliveryDetail(generics.RetrieveAPIView):
    api_scope = "calls"
    serializer_class = DeliverySerializer

    def get_queryset(self) -> QuerySet[Delivery]:
        return Delivery.objects.select_related("call").prefetch_related("attempts")


@extend_schema_view(post=extend_schema(request=None, responses={202: DeliverySerializer}))
class DeliveryResend(APIView):
    """Send a delivery again with the same id (and webhook-id)."""

    api_scope = "calls"

    def post(self, request: Request, pk: str) -> Response:
        delivery = get_object_or_404(Delivery.objects.all(), pk=pk)
        try:
            delivery = deliveries.delivery_resend(delivery=delivery)
        except deliveries.DeliveryInProgress as error:
            raise Conflict(str(error), code="delivery_pending") from error
        return Response(DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


class CallbackPauseSerializer(serializers.Serializer):
    paused = serializers.BooleanField()
    paused_at = serializers.DateTimeField(allow_null=True)
    reason = serializers.CharField(help_text="Why the callbacks were paused.")
    held = serializers.IntegerField(help_text="Call results kept to send on resume.")
    released = serializers.IntegerField(required=False, help_text="Sent on this resume.")


def _pause_body(tenant_settings: CallbackSettings) -> dict[str, Any]:
    return {
        "paused": tenant_settings.paused_at is not None,
        "paused_at": tenant_settings.paused_at,
        "reason": tenant_settings.paused_reason,
        "held": Delivery.objects.filter(state=Delivery.State.HELD).count(),
    }


@extend_schema_view(
    get=extend_schema(responses=CallbackPauseSerializer),
    delete=extend_schema(responses=CallbackPauseSerializer),
)
class CallbackPauseView(APIView):
    """Whether the call-result push is paused (after days of failures), and resume it.

    DELETE resumes: the held results are sent, oldest first (409 when not paused).
    """

    api_scope = "calls"

    def get(self, request: Request) -> Response:
        return Response(_pause_body(request.user.tenant.callback_settings))

    def delete(self, request: Request) -> Response:
        tenant = request.user.tenant
        if tenant.callback_settings.paused_at is None:
            raise Conflict("Call results are not paused.", code="not_paused")
        released = deliveries.callbacks_resume(tenant=tenant)
        tenant.callback_settings.refresh_from_db()
        return Response({**_pause_body(tenant.callback_settings), "released": released})


@extend_schema_view(post=extend_schema(request=None, responses={201: SigningSecretSerializer}))
class SigningSecretView(APIView):
    """Issue a new callback signing secret, shown only in this answer.

    The previous secret keeps signing beside it for 24 hours.
    """

    api_scope = "tenant"

    def post(self, request: Request) -> Response:
        secret = services.signing_secret_rotate(tenant=request.user.tenant)
        tenant = request.user.tenant
        return Response(
            {
                "signing_secret": secret,
                "previous_secret_expires_at": iso_z(
                    tenant.callback_settings.previous_signing_secret_expires_at
                ),
            },
            status=status.HTTP_201_CREATED,
        )


class AnswerJson(BaseContentNegotiation):
    """Errors go out as JSON whatever the client accepts (EventSource accepts only the stream)."""

    def select_renderer(
        self, request: Request, renderers: list, format_suffix: str | None = None
    ) -> tuple:
        return JSONRenderer(), JSONRenderer.media_type

    def select_parser(self, request: Request, parsers: list) -> None:
        return None


# One server-sent event of the live feed: `data` is JSON text (calls/README.md).
LIVE_EVENT = inline_serializer(
    "LiveEvent",
    fields={
        "event": serializers.ChoiceField(choices=["snapshot", "call"], required=False),
        "data": serializers.CharField(),
        "id": serializers.CharField(required=False),
        "retry": serializers.IntegerField(required=False),
    },
)


class LiveFeed(APIView):
    """Stream the tenant's call events as server-sent events, with active and completed counts.

    Starts with a `snapshot` event (counts and calls in progress), then one `call` event per
    state change; ends after a while, and EventSource reconnects (send `Last-Event-ID` to resume).
    """

    api_scope = "calls"
    content_negotiation_class = AnswerJson

    @extend_schema(responses={(200, "text/event-stream"): LIVE_EVENT})
    def get(self, request: Request) -> StreamingHttpResponse:
        after = live.last_event_id(request.headers.get("Last-Event-ID"))
        return live.sse_response(live.stream(tenant=request.user.tenant, last_event_id=after))
