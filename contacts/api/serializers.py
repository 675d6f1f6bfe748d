"""Serializers of the phonebook and lookup endpoints: strict about fields, clear about errors."""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from rest_framework import serializers

from contacts import services
from contacts.models import Contact, ContactPhone
from core import phone_numbers
from core.pagination import MAX_OFFSET
from core.serializers import StrictModelSerializer, StrictSerializer
from tenants.models import Agent, validate_region

MAX_NUMBER_LENGTH = 64
MAX_PHONES_PER_CONTACT = 20
MAX_CUSTOM_FIELDS_BYTES = 16 * 1024


class PhoneSerializer(StrictModelSerializer):
    number = serializers.CharField(
        write_only=True,
        max_length=MAX_NUMBER_LENGTH,
        help_text="Any format. Without a country code it is read with the contact's country, "
        "else the tenant's default region. Unreadable numbers are kept with is_valid false.",
    )

    class Meta:
        model = ContactPhone
        fields = ["number", "kind", "e164", "raw", "extension", "is_valid"]
        read_only_fields = ["e164", "raw", "extension", "is_valid"]

    def validate(self, attrs: dict) -> dict:
        # A PATCH makes nested fields optional too, but `phones` replaces every number: each
        # one needs its number as on create.
        if "number" not in attrs:
            raise serializers.ValidationError({"number": ["This field is required."]})
        return attrs


class OwnerSerializer(serializers.ModelSerializer):
    class Meta:
        model = Agent
        fields = ["id", "crm_username", "display_name", "extension"]


class AgentByCrmUsername(serializers.SlugRelatedField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(slug_field="crm_username", **kwargs)

    def get_queryset(self) -> QuerySet[Agent]:
        return Agent.objects.all()


class ContactSerializer(StrictModelSerializer):
    name = serializers.CharField(read_only=True)
    owner = OwnerSerializer(read_only=True, allow_null=True)
    owner_crm_username = AgentByCrmUsername(
        source="owner",
        write_only=True,
        required=False,
        allow_null=True,
        help_text="The owner agent's crm_username; null removes the owner.",
    )
    country = serializers.CharField(
        max_length=2,
        required=False,
        allow_blank=True,
        help_text="ISO 3166 region (e.g. TR) reading this contact's numbers that lack a "
        "country code; empty: the tenant's default region.",
    )
    phones = PhoneSerializer(
        many=True, required=False, help_text="On update, replaces all the contact's numbers."
    )

    class Meta:
        model = Contact
        fields = [
            "id",
            "external_id",
            "first_name",
            "last_name",
            "name",
            "company",
            "is_company",
            "crm_url",
            "country",
            "owner",
            "owner_crm_username",
            "custom_fields",
            "phones",
            "last_call_at",
            "call_count",
            "last_call_status",
            "created_at",
            "updated_at",
        ]
        # The call fields are kept from ended calls (contacts_update_from_calls), never written.
        read_only_fields = [
            "id", "last_call_at", "call_count", "last_call_status", "created_at", "updated_at",
        ]  # fmt: skip

    def validate_external_id(self, value: str) -> str:
        if value and not self.context.get("upsert"):
            taken = Contact.objects.filter(source_connection_id__isnull=True, external_id=value)
            if self.instance is not None:
                taken = taken.exclude(pk=self.instance.pk)
            if taken.exists():
                raise serializers.ValidationError(
                    f"A contact with external_id '{value}' exists; "
                    "POST /api/v1/contacts/bulk upserts by external_id."
                )
        return value

    def validate_country(self, value: str) -> str:
        value = value.upper()
        try:
            if value:
                validate_region(value)
        except DjangoValidationError as error:
            raise serializers.ValidationError(error.messages) from error
        return value

    def validate_custom_fields(self, value: Any) -> dict:
        if not isinstance(value, dict):
            raise serializers.ValidationError('Send an object such as {"tier": "gold"}.')
        text = json.dumps(value)
        if "\\u0000" in text:
            raise serializers.ValidationError("Custom fields may not contain NUL characters.")
        if len(text.encode()) > MAX_CUSTOM_FIELDS_BYTES:
            raise serializers.ValidationError(
                f"Custom fields are limited to {MAX_CUSTOM_FIELDS_BYTES // 1024} KB of JSON."
            )
        return value

    def validate_phones(self, value: list[dict]) -> list[services.PhoneInput]:
        if len(value) > MAX_PHONES_PER_CONTACT:
            raise serializers.ValidationError(
                f"At most {MAX_PHONES_PER_CONTACT} numbers per contact."
            )
        return [
            services.PhoneInput(p["number"], p.get("kind", ContactPhone.Kind.OTHER)) for p in value
        ]


class ContactListQuerySerializer(StrictSerializer):
    search = serializers.CharField(
        required=False,
        max_length=200,
        help_text="Words matching first name, last name or company, or a number in any format.",
    )
    external_id = serializers.CharField(required=False, max_length=255)
    limit = serializers.IntegerField(required=False, min_value=1)
    offset = serializers.IntegerField(required=False, min_value=0, max_value=MAX_OFFSET)


class RecordResultSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="Position in the request (0-based).")
    row = serializers.IntegerField(required=False, help_text="CSV line number (header is 1).")
    status = serializers.ChoiceField(choices=["created", "updated", "error"])
    id = serializers.IntegerField(allow_null=True)
    error = serializers.DictField(allow_null=True, help_text="{code, message, field}")


class UpsertReportSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    errors = serializers.IntegerField()
    results = RecordResultSerializer(many=True)


class ImportSerializer(StrictSerializer):
    file = serializers.FileField(
        help_text="CSV, UTF-8, header row: external_id, first_name, last_name, company, "
        "is_company, crm_url, country, owner_crm_username, mobile, work, home, other (or phone), "
        "custom.<name>."
    )


class QueryNumberField(serializers.CharField):
    """A number in a query string, where a bare '+' arrives as a space: say to write %2B."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(trim_whitespace=False, **kwargs)

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        if value[:1] == " " and value.lstrip()[:1].isdigit():
            raise serializers.ValidationError(
                f"'{value}' starts with a space: a '+' in a URL's query reads as a space. "
                f"Write it %2B, e.g. number=%2B{value.strip()}."
            )
        return value.strip()


class LookupQuerySerializer(StrictSerializer):
    number = QueryNumberField(
        max_length=MAX_NUMBER_LENGTH,
        help_text="The caller's number in any format (a leading '+' written %2B in the URL); "
        "without a country code it is read with the tenant's default region.",
    )

    def validate_number(self, value: str) -> str:
        region = self.context["request"].user.tenant.default_region
        if phone_numbers.normalize(value, region).e164 is None:
            raise serializers.ValidationError(f"'{value}' cannot be read as a phone number.")
        return value


class OwnerSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    crm_username = serializers.CharField()
    display_name = serializers.CharField()
    extension = serializers.CharField()


class ContactSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    first_name = serializers.CharField()
    last_name = serializers.CharField()
    name = serializers.CharField()
    company = serializers.CharField()
    is_company = serializers.BooleanField()
    crm_url = serializers.CharField()
    country = serializers.CharField()
    custom_fields = serializers.DictField()
    owner = OwnerSummarySerializer(allow_null=True)
    updated_at = serializers.DateTimeField()


class CallerCardSerializer(serializers.Serializer):
    number = serializers.CharField(help_text="E.164")
    known = serializers.BooleanField()
    ambiguous = serializers.BooleanField(
        help_text="Several contacts share the number and the tenant's policy is 'ambiguous'."
    )
    contact = ContactSummarySerializer(
        allow_null=True, help_text="The caller, chosen by the tenant's shared-number policy."
    )
    matches = ContactSummarySerializer(many=True, help_text="Every contact with this number.")
