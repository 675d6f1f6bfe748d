"""REST endpoints: connections (credentials write-only), sync now, and sync runs."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from connectors import registry, selectors, services
from connectors.interface import ConfigError, Connector
from connectors.models import Connection, SyncRun
from core import http
from core.parsers import JSONParser
from core.serializers import StrictModelSerializer, StrictSerializer


class ConnectionSerializer(StrictModelSerializer):
    credentials = serializers.DictField(
        write_only=True,
        required=False,
        help_text="Per provider (connectors/README.md): a private_app_token (HubSpot) or "
        "api_token (Pipedrive), or client_id + client_secret (then connect through oauth, or "
        "give access_token, refresh_token, expires_at); base URLs of the CRM. Never returned.",
    )
    status = serializers.ChoiceField(
        choices=[Connection.Status.ACTIVE, Connection.Status.DISABLED], required=False
    )

    class Meta:
        model = Connection
        fields = [
            "id",
            "provider",
            "name",
            "credentials",
            "settings",
            "status",
            "last_error",
            "next_incremental_at",
            "last_full_diff_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
            "last_error",
            "next_incremental_at",
            "last_full_diff_at",
            "created_at",
            "updated_at",
        ]

    def to_representation(self, instance: Connection) -> dict[str, Any]:
        data = super().to_representation(instance)
        data["status"] = instance.status  # needs_attention is shown though it cannot be set
        return data

    def validate_credentials(self, value: dict[str, Any]) -> dict[str, Any]:
        connector = self._connector_class()
        if connector is None:
            return value  # the provider field says what is wrong
        unknown = sorted(set(value) - connector.credential_keys)
        if unknown:
            known = ", ".join(sorted(connector.credential_keys))
            raise serializers.ValidationError(
                f"Unknown key {unknown[0]!r}; {self._provider()} takes {known}."
            )
        # Credentials that are URLs we will call: checked by the SSRF guard.
        for name in sorted(k for k in value if k.endswith("_url") or k == "api_domain"):
            if value.get(name):
                try:
                    http.check_url(str(value[name]))
                except http.HttpError as error:
                    raise serializers.ValidationError(f"{name}: {error}") from None
        return value

    def validate_settings(self, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise serializers.ValidationError("Settings are a JSON object.")
        connector = self._connector_class()
        if connector is not None and not connector.own_settings:  # else check_config does
            objects = value.get("objects", ["contacts"])
            if not isinstance(objects, list) or not objects:
                raise serializers.ValidationError("objects: a list of object types to sync.")
            names = value.get("custom_fields", [])
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise serializers.ValidationError("custom_fields: a list of CRM field names.")
        minutes = value.get("incremental_minutes", 5)
        if not isinstance(minutes, int) or not 1 <= minutes <= 1440:
            raise serializers.ValidationError("incremental_minutes: 1 to 1440.")
        share = value.get("max_delete_share", 0.1)
        if not isinstance(share, int | float) or not 0 <= share <= 1:
            raise serializers.ValidationError("max_delete_share: a fraction from 0 to 1.")
        _check_rate_limits(value.get("rate_limits", {}))
        _check_call_logging(value.get("call_logging", {}))
        writes_contacts = connector is None or hasattr(connector, "contact_fields_update")
        if (value.get("call_logging") or {}).get("contact_fields") and not writes_contacts:
            raise serializers.ValidationError(
                "call_logging.contact_fields: this CRM's connector cannot update contacts yet."
            )
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        provider, connector = self._provider(), self._connector_class()
        assert connector is not None  # the provider field was valid
        known = connector.syncable_objects
        objects = (attrs.get("settings") or {}).get("objects", [])
        if known and not set(objects) <= set(known):
            raise serializers.ValidationError(
                {"settings": f"objects: {provider} syncs {', '.join(sorted(known))}."}
            )
        if self.instance is None:
            given = {k for k, v in (attrs.get("credentials") or {}).items() if v}
            options = connector.required_credentials
            if options and not any(needed <= given for needed in options):
                wanted = " or ".join(" and ".join(sorted(needed)) for needed in options)
                raise serializers.ValidationError({"credentials": f"Give {wanted}."})
        stored = self.instance.credentials if self.instance else {}
        try:
            registry.check_config(
                provider,
                credentials={**stored, **(attrs.get("credentials") or {})},
                settings=attrs.get("settings", self.instance.settings if self.instance else {}),
            )
        except ConfigError as error:
            raise serializers.ValidationError({error.field: error.message}) from None
        return attrs

    def _provider(self) -> str:
        if "provider" in self.initial_data:
            return str(self.initial_data["provider"])
        return self.instance.provider if self.instance else ""

    def _connector_class(self) -> type[Connector] | None:
        provider = self._provider()
        return registry.connector_class(provider) if provider in registry.PROVIDERS else None


CALL_LOGGING_FLAGS = ("enabled", "missed_call_task", "create_unknown_contacts")
# What call_logging.contact_fields may copy onto the CRM contact after each logged call.
CONTACT_CALL_FIELDS = ("last_call_at", "call_count", "last_call_status")


def _check_rate_limits(limits: Any) -> None:
    """settings.rate_limits: the tenant's tier of its CRM's limits, {name: [requests, seconds]}."""
    message = 'rate_limits: {"requests": [190, 10], ...}: requests allowed in a window of seconds.'
    if not isinstance(limits, dict):
        raise serializers.ValidationError(message)
    for pair in limits.values():
        if not (
            isinstance(pair, list)
            and len(pair) == 2
            and isinstance(pair[0], int)
            and isinstance(pair[1], int | float)
            and pair[0] >= 1
            and 0 < pair[1] <= 86_400
        ):
            raise serializers.ValidationError(message)


def _check_call_logging(options: Any) -> None:
    """settings.call_logging: the flags are booleans, delay_minutes 0 to 1440 (automations)."""
    if not isinstance(options, dict):
        raise serializers.ValidationError('call_logging: an object such as {"enabled": true}.')
    unknown = sorted(set(options) - {*CALL_LOGGING_FLAGS, "delay_minutes", "contact_fields"})
    if unknown:
        raise serializers.ValidationError(f"call_logging: unknown option {unknown[0]!r}.")
    for flag in CALL_LOGGING_FLAGS:
        if not isinstance(options.get(flag, False), bool):
            raise serializers.ValidationError(f"call_logging.{flag}: true or false.")
    delay = options.get("delay_minutes", 0)
    if not isinstance(delay, int) or isinstance(delay, bool) or not 0 <= delay <= 1440:
        raise serializers.ValidationError("call_logging.delay_minutes: 0 to 1440.")
    fields = options.get("contact_fields", {})
    if (
        not isinstance(fields, dict)
        or not set(fields) <= set(CONTACT_CALL_FIELDS)
        or not all(isinstance(name, str) and name for name in fields.values())
    ):
        raise serializers.ValidationError(
            "call_logging.contact_fields: an object of "
            f"{', '.join(CONTACT_CALL_FIELDS)} -> the CRM contact field to write it to."
        )


class SyncRequestSerializer(StrictSerializer):
    kind = serializers.ChoiceField(choices=SyncRun.Kind.choices, default=SyncRun.Kind.INCREMENTAL)


class SyncRunSerializer(StrictModelSerializer):
    class Meta:
        model = SyncRun
        fields = [
            "id",
            "kind",
            "outcome",
            "started_at",
            "finished_at",
            "pages",
            "created",
            "updated",
            "unchanged",
            "deleted",
            "invalid_records",
            "invalid_numbers",
            "rate_limit_waits",
            "error",
        ]
        read_only_fields = fields


class ConnectionList(generics.ListCreateAPIView):
    """List the tenant's CRM connections or add one."""

    api_scope = "connections"
    serializer_class = ConnectionSerializer
    parser_classes = [JSONParser]

    def get_queryset(self) -> QuerySet[Connection]:
        return selectors.connection_list()

    def perform_create(self, serializer: ConnectionSerializer) -> None:
        serializer.instance = services.connection_create(
            tenant=self.request.user.tenant, **serializer.validated_data
        )


class ConnectionDetail(generics.RetrieveUpdateDestroyAPIView):
    """Read, change (credentials merged, never shown) or delete a connection and its contacts."""

    api_scope = "connections"
    serializer_class = ConnectionSerializer
    parser_classes = [JSONParser]
    http_method_names = ["get", "patch", "delete", "options"]

    def get_queryset(self) -> QuerySet[Connection]:
        return selectors.connection_list()

    def perform_update(self, serializer: ConnectionSerializer) -> None:
        serializer.instance = services.connection_update(
            connection=serializer.instance, **serializer.validated_data
        )

    def perform_destroy(self, instance: Connection) -> None:
        services.connection_delete(connection=instance)


class ConnectionSync(generics.GenericAPIView):
    """Queue a sync now: incremental (changes since the cursor) or full (diff and deletes)."""

    api_scope = "connections"
    serializer_class = SyncRequestSerializer
    parser_classes = [JSONParser]

    def post(self, request: Request, pk: int) -> Response:
        connection = get_object_or_404(selectors.connection_list(), pk=pk)
        body = SyncRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        services.sync_enqueue(connection=connection, kind=body.validated_data["kind"])
        return Response({"queued": body.validated_data["kind"]}, status=status.HTTP_202_ACCEPTED)


class SyncRunList(generics.ListAPIView):
    """The connection's sync runs, newest first, with their counts and errors."""

    api_scope = "connections"
    serializer_class = SyncRunSerializer

    def get_queryset(self) -> QuerySet[SyncRun]:
        connection = get_object_or_404(selectors.connection_list(), pk=self.kwargs["pk"])
        return selectors.sync_run_list(connection=connection)


class AuthorizeUrlSerializer(serializers.Serializer):
    authorize_url = serializers.URLField(read_only=True)


class ConnectionOAuthStart(generics.GenericAPIView):
    """Start OAuth: the URL to send the tenant's CRM admin to (HubSpot's consent page)."""

    api_scope = "connections"
    serializer_class = AuthorizeUrlSerializer

    @extend_schema(request=None, responses=AuthorizeUrlSerializer)
    def post(self, request: Request, pk: int) -> Response:
        connection = get_object_or_404(selectors.connection_list(), pk=pk)
        return Response({"authorize_url": services.oauth_start(connection=connection)})


class OAuthCallbackQuerySerializer(serializers.Serializer):
    state = serializers.CharField()
    code = serializers.CharField(required=False)
    error = serializers.CharField(required=False)


class ConnectionOAuthCallback(generics.GenericAPIView):
    """Where the CRM sends the browser back: checks `state`, stores the tokens encrypted."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    serializer_class = OAuthCallbackQuerySerializer

    def get(self, request: Request) -> Response:
        return self.complete(request.query_params)

    def post(self, request: Request) -> Response:
        """Copper sends the browser back with a form POST instead of a GET."""
        return self.complete(request.data)

    def complete(self, params: Any) -> Response:
        query = OAuthCallbackQuerySerializer(data=params)
        query.is_valid(raise_exception=True)
        if "code" not in query.validated_data:
            reason = query.validated_data.get("error", "no code")
            raise serializers.ValidationError({"code": f"The CRM did not grant access ({reason})."})
        connection = services.oauth_complete(
            state=query.validated_data["state"], code=query.validated_data["code"]
        )
        return Response({"connection": connection.pk, "status": connection.status})
