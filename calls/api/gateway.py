"""The tenant's telephony engine: which one runs its calls, its settings and credentials."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from calls import services
from calls.gateways import CHOICES, DEFAULT_ENGINE, GatewayConfigError, gateway_class
from calls.models import GatewayConfig
from core.parsers import JSONParser
from core.serializers import StrictSerializer


class GatewaySerializer(StrictSerializer):
    engine = serializers.ChoiceField(choices=CHOICES, help_text="Which engine places the calls.")
    settings = serializers.DictField(
        required=False,
        help_text="The engine's own (calls/README.md); Twilio: caller_id, agent_ring_seconds, "
        "record.",
    )
    credentials = serializers.DictField(
        required=False,
        write_only=True,
        help_text="Merged into the stored ones (an empty value removes one); never returned. "
        "Twilio: account_sid, auth_token.",
    )
    credentials_set = serializers.ListField(
        child=serializers.CharField(), read_only=True, help_text="Which credentials are stored."
    )
    updated_at = serializers.DateTimeField(read_only=True, allow_null=True)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        engine = gateway_class(attrs["engine"])
        for name, known in (
            ("credentials", engine.credential_keys),
            ("settings", engine.setting_keys),
        ):
            unknown = sorted(set(attrs.get(name) or {}) - known)
            if unknown:
                takes = ", ".join(sorted(known)) or "none"
                raise serializers.ValidationError(
                    {name: f"Unknown key {unknown[0]!r}; {attrs['engine']} takes {takes}."}
                )
        return attrs


def gateway_body(config: GatewayConfig | None) -> dict[str, Any]:
    if config is None:
        return {"engine": DEFAULT_ENGINE, "settings": {}, "credentials_set": [], "updated_at": None}
    return {
        "engine": config.engine,
        "settings": config.settings,
        "credentials_set": sorted(config.credentials),
        "updated_at": config.updated_at,
    }


class GatewayView(APIView):
    """Read or change the tenant's telephony engine (the simulator until one is set)."""

    api_scope = "tenant"
    parser_classes = [JSONParser]

    @extend_schema(responses=GatewaySerializer)
    def get(self, request: Request) -> Response:
        config = GatewayConfig.objects.filter(tenant=request.user.tenant).first()
        return Response(GatewaySerializer(gateway_body(config)).data)

    @extend_schema(request=GatewaySerializer, responses=GatewaySerializer)
    def patch(self, request: Request) -> Response:
        """Change the engine or its settings; `engine` defaults to the current one."""
        tenant = request.user.tenant
        current = GatewayConfig.objects.filter(tenant=tenant).first()
        data = request.data
        if isinstance(data, dict):
            data = {"engine": current.engine if current else DEFAULT_ENGINE, **data}
        incoming = GatewaySerializer(data=data)
        incoming.is_valid(raise_exception=True)
        try:
            config = services.gateway_config_update(tenant=tenant, **incoming.validated_data)
        except GatewayConfigError as error:
            raise serializers.ValidationError({error.field: [error.message]}) from error
        return Response(GatewaySerializer(gateway_body(config)).data)
