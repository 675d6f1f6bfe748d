"""Telephony events from phone systems (seed 001), the events URL, and call recordings."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_safe
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import exceptions, serializers, status
from rest_framework.parsers import FormParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from calls import events, gateways, recordings
from calls.api.views import Conflict
from calls.inbound import InvalidEvent
from calls.models import Call, Recording, TelephonyEvent, TelephonyEventsToken
from core import hot_path
from core.negotiation import takes_plain_json
from core.parsers import JSONParser
from core.url_tokens import HoldsUrlToken, UrlTokenAuthentication, UrlTokenHolder, UrlTokenView
from tenants import authentication
from tenants.authentication import KeyHolder
from tenants.models import Tenant

# Room for a long transcript; anything bigger is not an event.
MAX_EVENT_BYTES = 256 * 1024
JSON = "application/json"


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = f"An event is at most {MAX_EVENT_BYTES // 1024} KB."
    default_code = "too_large"


class EventAnswerSerializer(serializers.Serializer):
    id = serializers.CharField(allow_null=True, help_text="The event id (ours for Twilio).")
    status = serializers.ChoiceField(choices=["accepted", "duplicate", "ignored"])


class EventsView(APIView):
    """Accept one telephony event: validated and stored now (202), applied to its call just after.

    The same event again answers 200 `duplicate` and changes nothing; an id reused for a
    different event is 409.
    """

    api_scope = "calls"
    parser_classes = [JSONParser]
    throttle_classes: list = []  # a busy phone system posts several events per call

    @extend_schema(request=dict, responses={202: EventAnswerSerializer, 200: EventAnswerSerializer})
    def post(self, request: Request, token: str = "") -> Response:
        tenant = request.user.tenant
        media_type = _media_type(request, [p.media_type for p in self.parser_classes])
        if media_type == JSON:
            body, source, raw = request.data, TelephonyEvent.Source.JSON, None
        else:  # an engine's own callback (only the events URL takes them: no key)
            engine, body = self.callback(request, tenant, media_type)
            if body is None:
                return Response({"id": None, "status": "ignored"})
            source, raw = engine, request.POST.dict()
        answer, status_code = _accepted(tenant, body, source, raw)
        return Response(answer, status=status_code)

    @classmethod
    def hot_path(cls, request: HttpRequest, **kwargs: Any) -> hot_path.Answer | None:
        """Accept a plain JSON event without DRF (core/hot_path.py): a phone system's burst."""
        if request.method != "POST" or not takes_plain_json(
            request, hot_path.query_params(request)
        ):
            return None
        try:
            tenant = cls.holder(request, kwargs).tenant
            if _media_type(request, [p.media_type for p in cls.parser_classes]) != JSON:
                return None  # an engine's own callback: the view reads it
            body = hot_path.json_data(request)
            answer, status_code = _accepted(tenant, body, TelephonyEvent.Source.JSON, None)
            return hot_path.json_response(answer, cls, status_code)
        except Exception as error:
            return hot_path.error_response(error, cls, request)

    @classmethod
    def holder(cls, request: HttpRequest, kwargs: dict) -> KeyHolder | UrlTokenHolder:
        """Who posts, checked as DRF checks this view's requests (for the hot path)."""
        return authentication.server_key_holder(request, cls)

    def callback(
        self, request: Request, tenant: Tenant, media_type: str
    ) -> tuple[str, dict | None]:
        raise NotImplementedError


def _accepted(tenant: Tenant, body: Any, source: str, raw: dict | None) -> tuple[dict, int]:
    """The answer to an event, once it is stored (202) or found stored already (200)."""
    try:
        row, created = events.telephony_event_accept(
            tenant=tenant, body=body, source=source, raw=raw
        )
    except InvalidEvent as error:
        raise serializers.ValidationError(
            {error.field: [error.message]} if error.field else [error.message]
        ) from error
    except events.EventConflict as error:
        raise Conflict(str(error), code="event_id_conflict") from error
    if created:
        return {"id": row.event_id, "status": "accepted"}, status.HTTP_202_ACCEPTED
    return {"id": row.event_id, "status": "duplicate"}, status.HTTP_200_OK


def _media_type(request: Request, allowed: list[str]) -> str:
    """The request's media type, once its size is known to be acceptable."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    # Both: the header may understate (chunked bodies), and reading is bounded by Django.
    if declared > MAX_EVENT_BYTES or len(request.body) > MAX_EVENT_BYTES:
        raise RequestTooLarge()
    media_type = request.content_type.split(";")[0].strip().lower()
    if media_type not in allowed:
        raise exceptions.UnsupportedMediaType(
            media_type or "none", detail=f"Send the event as {' or '.join(allowed)}."
        )
    return media_type


class EventsTokenAuthentication(UrlTokenAuthentication):
    token_model = TelephonyEventsToken
    not_found_message = "No events URL like this; ask for the current one."


@extend_schema_view(
    post=extend_schema(
        operation_id="v1_telephony_events_by_token",
        auth=[],
        description="The same, for phone systems that can only be given a URL (the token in it "
        "is the credential); also takes Twilio status and recording callbacks (form-encoded).",
    )
)
class EventsByTokenView(EventsView):
    authentication_classes = [EventsTokenAuthentication]
    permission_classes = [HoldsUrlToken]
    parser_classes = [JSONParser, FormParser]

    @classmethod
    def holder(cls, request: HttpRequest, kwargs: dict) -> KeyHolder | UrlTokenHolder:
        return EventsTokenAuthentication.holder(str(kwargs.get("token", "")))

    def callback(
        self, request: Request, tenant: Tenant, media_type: str
    ) -> tuple[str, dict | None]:
        """The engine whose callback this is, and our event for it (None: nothing to record)."""
        gateway = gateways.callback_gateway(tenant, media_type)
        if gateway is None:
            raise exceptions.UnsupportedMediaType(media_type)
        callback = gateways.Callback(
            url=f"{settings.PUBLIC_BASE_URL}{request.get_full_path()}",
            form=dict(request.POST.lists()),
            headers=request.headers,
        )
        try:
            return gateway.engine, gateway.read_callback(callback)
        except gateways.CallbackRefused as error:
            raise exceptions.PermissionDenied(str(error), code="bad_signature") from error
        except InvalidEvent as error:
            raise serializers.ValidationError({error.field: [error.message]}) from error


class EventsTokenView(UrlTokenView):
    """The tenant's events URL: see it exists, (re)generate it (shown once), or turn it off."""

    api_scope = "calls"
    token_model = TelephonyEventsToken
    tag = events.TOKEN_TAG
    url_name = events.EVENTS_URL_NAME
    what = "events URL"


class RecordingSerializer(serializers.Serializer):
    url = serializers.CharField(allow_null=True, help_text="null once revoked or deleted.")
    ready = serializers.BooleanField(help_text="The URL serves the audio.")
    stored = serializers.BooleanField(help_text="The URL serves our copy (recordings_keep=copy).")
    size_bytes = serializers.IntegerField(allow_null=True, help_text="Our copy's size.")
    copy_error = serializers.CharField(
        help_text="Why the copy failed (then the URL serves the phone system's link)."
    )
    created_at = serializers.DateTimeField()
    revoked_at = serializers.DateTimeField(allow_null=True)
    deleted_at = serializers.DateTimeField(
        allow_null=True, help_text="Deleted under the retention rule."
    )


def recording_body(recording: Recording) -> dict:
    return {
        "url": recordings.recording_url(recording),
        "ready": recording.ready_at is not None and recording.purged_at is None,
        "stored": bool(recording.stored_name),
        "size_bytes": recording.size_bytes,
        "copy_error": recording.copy_error,
        "created_at": recording.created_at,
        "revoked_at": recording.revoked_at,
        "deleted_at": recording.purged_at,
    }


class CallRecordingView(APIView):
    """The call's recording URL, or revoke it (it answers 404 from then on, for good)."""

    api_scope = "calls"

    def recording(self, call_id: str) -> Recording:
        call = get_object_or_404(Call.objects.all(), call_id=call_id)
        return get_object_or_404(Recording.objects.all(), call=call)

    @extend_schema(responses=RecordingSerializer)
    def get(self, request: Request, call_id: str) -> Response:
        return Response(RecordingSerializer(recording_body(self.recording(call_id))).data)

    @extend_schema(request=None, responses=RecordingSerializer)
    def delete(self, request: Request, call_id: str) -> Response:
        recording = recordings.recording_revoke(recording=self.recording(call_id))
        return Response(RecordingSerializer(recording_body(recording)).data)


@require_safe
def recording_download(request: HttpRequest, token: str) -> HttpResponseBase:
    """GET /r/<token>: the recording's audio (the token is the credential)."""
    recording = recordings.recording_find(token)
    response: HttpResponseBase
    if recording is None:
        return HttpResponse("No recording here.", status=404, content_type="text/plain")
    if recording.purged_at:
        message = "This recording was deleted under the account's retention rule."
        response = HttpResponse(message, status=410, content_type="text/plain")
    elif not recording.ready_at:
        response = HttpResponse(
            "The recording is not ready yet.", status=503, content_type="text/plain"
        )
        response["Retry-After"] = "30"
    elif recording.stored_name:
        response = recordings.stored_response(recording)
    elif recording.location == recordings.SIMULATED_LOCATION:
        response = HttpResponse(recordings.silence_wav(), content_type="audio/wav")
    elif recordings.engine_held(recording):  # its copy failed; the engine's URL needs a login
        message = "The recording could not be copied from the phone system."
        response = HttpResponse(message, status=404, content_type="text/plain")
    else:
        response = HttpResponseRedirect(recording.location)
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"  # the token must not leak to the audio's host
    return response
