"""REST endpoints: who am I, the tenant's settings, agents and caller-ID numbers."""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from rest_framework import generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core import phone_numbers
from tenants import services
from tenants.models import (
    Agent,
    ApiKey,
    CallerIdNumber,
    Tenant,
    tenant_settings_models,
    validate_region,
)


class TenantSerializer(serializers.ModelSerializer):
    default_region = serializers.CharField(
        max_length=2, required=False, help_text="ISO 3166 region, e.g. GB: reads numbers without +"
    )

    class Meta:
        model = Tenant
        fields = [
            "id",
            "name",
            "slug",
            "default_region",
            "timezone",
            "is_active",
        ]
        read_only_fields = ["id", "slug", "is_active"]

    def get_fields(self) -> dict[str, serializers.Field]:
        return {**super().get_fields(), **_settings_fields()}

    def validate_default_region(self, value: str) -> str:
        try:
            validate_region(value.upper())
        except DjangoValidationError as error:
            raise serializers.ValidationError(error.messages) from error
        return value.upper()


def _settings_fields() -> dict[str, serializers.Field]:
    """Each context's settings (TenantSettings) under their API names, with their models' rules.

    A field reads and writes `<settings row>.<model field>`, so validated data arrives nested:
    {"routing_settings": {"deadline_ms": 500}}, which `tenant_update` takes as it is.
    """
    fields: dict[str, serializers.Field] = {}
    for model in tenant_settings_models():
        meta = type("Meta", (), {"model": model, "fields": [*model.API_FIELDS.values()]})
        built = type("Builder", (serializers.ModelSerializer,), {"Meta": meta})().get_fields()
        for api_name, field_name in model.API_FIELDS.items():
            field = built[field_name]
            field.source = f"{model.related_name()}.{field_name}"
            field.write_only = api_name in model.WRITE_ONLY
            fields[api_name] = field
    return fields


class ApiKeySerializer(serializers.ModelSerializer):
    class Meta:
        model = ApiKey
        fields = ["prefix", "kind", "name", "scopes", "allowed_cidrs", "created_at", "last_used_at"]


class MeSerializer(serializers.Serializer):
    tenant = TenantSerializer()
    key = ApiKeySerializer()


class MeView(APIView):
    """The tenant and key this request is authenticated as."""

    serializer_class = MeSerializer

    def get(self, request: Request) -> Response:
        holder = request.user
        return Response(MeSerializer({"tenant": holder.tenant, "key": holder.api_key}).data)


class TenantView(generics.RetrieveUpdateAPIView):
    """Read and change the tenant's settings."""

    api_scope = "tenant"
    serializer_class = TenantSerializer
    http_method_names = ["get", "patch", "options"]

    def get_object(self) -> Tenant:
        return self.request.user.tenant

    def perform_update(self, serializer: TenantSerializer) -> None:
        serializer.instance = services.tenant_update(
            tenant=serializer.instance, **serializer.validated_data
        )


class AgentSerializer(serializers.ModelSerializer):
    phone_number = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=40,
        help_text="Any format; stored as E.164 (numbers without a country code use the "
        "tenant's default region).",
    )

    class Meta:
        model = Agent
        fields = [
            "id",
            "crm_username",
            "display_name",
            "email",
            "phone_number",
            "extension",
            "is_active",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]

    def validate_crm_username(self, value: str) -> str:
        taken = Agent.objects.filter(crm_username=value)
        if self.instance is not None:
            taken = taken.exclude(pk=self.instance.pk)
        if taken.exists():
            raise serializers.ValidationError(f"An agent with crm_username '{value}' exists.")
        return value

    def _tenant(self) -> Tenant:
        """The tenant being written: the context's (the dashboard), else the API key's."""
        return self.context.get("tenant") or self.context["request"].user.tenant

    def validate_phone_number(self, value: str) -> str:
        if not value:
            return ""
        try:
            return phone_numbers.to_e164(value, self._tenant().default_region)
        except ValueError as error:
            raise serializers.ValidationError(str(error)) from error


class AgentList(generics.ListCreateAPIView):
    """List the tenant's agents or register one (external management)."""

    api_scope = "agents"
    serializer_class = AgentSerializer

    def get_queryset(self) -> QuerySet[Agent]:
        agents = Agent.objects.order_by("crm_username")
        if "is_active" in self.request.query_params:
            agents = agents.filter(is_active=self.request.query_params["is_active"] == "true")
        return agents

    def perform_create(self, serializer: AgentSerializer) -> None:
        serializer.instance = services.agent_create(
            tenant=self.request.user.tenant, **serializer.validated_data
        )


class AgentDetail(generics.RetrieveUpdateDestroyAPIView):
    api_scope = "agents"
    serializer_class = AgentSerializer
    http_method_names = ["get", "patch", "delete", "options"]

    def get_queryset(self) -> QuerySet[Agent]:
        return Agent.objects.all()

    def perform_update(self, serializer: AgentSerializer) -> None:
        serializer.instance = services.agent_update(
            agent=serializer.instance, **serializer.validated_data
        )

    def perform_destroy(self, instance: Agent) -> None:
        services.agent_delete(agent=instance)


class CallerIdNumberSerializer(serializers.ModelSerializer):
    class Meta:
        model = CallerIdNumber
        fields = ["id", "number", "label", "created_at"]


class CallerIdNumberList(generics.ListAPIView):
    """The caller-ID numbers assigned to the tenant (usable as from_number)."""

    api_scope = "numbers"
    serializer_class = CallerIdNumberSerializer

    def get_queryset(self) -> QuerySet[CallerIdNumber]:
        return CallerIdNumber.objects.order_by("number")
