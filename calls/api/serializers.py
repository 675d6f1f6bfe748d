"""Serializers for the calls API: the seed 002 call body, call records, deliveries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from calls.models import Attempt, Call, CallParty, Delivery
from calls.recordings import call_recording_url
from core import phone_numbers
from tenants.models import Agent, CallerIdNumber


def e164(value: str, region: str) -> str:
    """The number in E.164 (read with the tenant's region), or a validation error."""
    try:
        return phone_numbers.to_e164(value, region)
    except ValueError as error:
        raise serializers.ValidationError(str(error)) from error


class CallPartySerializer(serializers.ModelSerializer):
    class Meta:
        model = CallParty
        fields = ["kind", "number", "added_at"]


class CallRecordSerializer(serializers.ModelSerializer):
    uuid = serializers.SerializerMethodField()
    recording_url = serializers.SerializerMethodField()
    parties = CallPartySerializer(many=True, read_only=True)

    class Meta:
        model = Call
        fields = [
            "call_id",
            "uuid",
            "state",
            "status",
            "duration",
            "customer_number",
            "from_number",
            "agent_number",
            "crm_username",
            "call_type",
            "disposition",
            "direction",
            "start_time",
            "answer_time",
            "end_time",
            "notes",
            "parties",
            "recording_url",
        ]

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_uuid(self, call: Call) -> str | None:
        """The caller's own id, null when none was given (as in the callback)."""
        return call.uuid or None

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_recording_url(self, call: Call) -> str | None:
        return call_recording_url(call)


class CallCreateSerializer(serializers.Serializer):
    """The seed 002 body: from_number, to_number, agent_number or crm_username, uuid."""

    from_number = serializers.CharField(max_length=40)
    to_number = serializers.CharField(max_length=40)
    agent_number = serializers.CharField(max_length=40, required=False)
    crm_username = serializers.CharField(max_length=150, required=False)
    uuid = serializers.CharField(max_length=255, required=False)

    def validate(self, data: dict) -> dict:
        region = self.context["tenant"].default_region
        from_number = self._e164("from_number", data["from_number"], region)
        if not CallerIdNumber.objects.filter(number=from_number).exists():
            raise serializers.ValidationError(
                {
                    "from_number": f"{from_number} is not one of your caller-ID numbers "
                    "(GET /api/v1/numbers lists them)."
                }
            )
        return {
            "from_number": from_number,
            "customer_number": self._e164("to_number", data["to_number"], region),
            "agent": self._agent(data, region),
            "uuid": data.get("uuid", ""),
        }

    @staticmethod
    def _e164(field: str, value: str, region: str) -> str:
        try:
            return e164(value, region)
        except serializers.ValidationError as error:
            raise serializers.ValidationError({field: error.detail}) from error

    def _agent(self, data: dict, region: str) -> Agent:
        given = [name for name in ("agent_number", "crm_username") if name in data]
        if len(given) != 1:
            raise serializers.ValidationError(
                {"agent_number": "Send either agent_number or crm_username (exactly one)."}
            )
        if given == ["crm_username"]:
            agent = Agent.objects.filter(crm_username=data["crm_username"]).first()
            field, name = "crm_username", f"crm_username '{data['crm_username']}'"
        else:
            number = self._e164("agent_number", data["agent_number"], region)
            agent = Agent.objects.filter(phone_number=number).order_by("pk").first()
            field, name = "agent_number", f"phone number {number}"
        if agent is None:
            raise serializers.ValidationError({field: f"No agent is registered with {name}."})
        if not agent.is_active:
            raise serializers.ValidationError({field: f"The agent with {name} is deactivated."})
        return agent


class DispositionInput(serializers.Serializer):
    disposition = serializers.CharField(max_length=64)


class NotesInput(serializers.Serializer):
    notes = serializers.CharField(max_length=10_000)


class TransferInput(serializers.Serializer):
    to_number = serializers.CharField(max_length=40)

    def validate_to_number(self, value: str) -> str:
        return e164(value, self.context["tenant"].default_region)


class PartyInput(serializers.Serializer):
    number = serializers.CharField(max_length=40)

    def validate_number(self, value: str) -> str:
        return e164(value, self.context["tenant"].default_region)


class AttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = Attempt
        fields = [
            "number",
            "trigger",
            "started_at",
            "status_code",
            "error_class",
            "latency_ms",
            "response_excerpt",
        ]


class DeliverySerializer(serializers.ModelSerializer):
    call_id = serializers.UUIDField(source="call.call_id", read_only=True)
    attempts = AttemptSerializer(many=True, read_only=True)

    class Meta:
        model = Delivery
        fields = [
            "id",
            "call_id",
            "url",
            "state",
            "attempt_count",
            "next_attempt_at",
            "created_at",
            "payload",
            "attempts",
        ]


class SigningSecretSerializer(serializers.Serializer):
    signing_secret = serializers.CharField(help_text="whsec_...; shown only in this answer.")
    previous_secret_expires_at = serializers.CharField(allow_null=True)


class ZonedDateTimeField(serializers.CharField):
    def to_internal_value(self, data: Any) -> datetime:
        try:
            moment = parse_datetime(super().to_internal_value(data))
        except ValueError:  # shaped like a time but none (month 13)
            moment = None
        if moment is None or moment.tzinfo is None:
            raise serializers.ValidationError(
                "Use an ISO 8601 time with a zone, e.g. 2026-07-03T10:00:00Z."
            )
        return moment
