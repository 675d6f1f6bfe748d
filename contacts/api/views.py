"""REST endpoints: the phonebook (contacts, bulk upsert, CSV import) and caller lookup."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db.models import QuerySet
from django.http import HttpRequest
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, generics
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from contacts import selectors, services
from contacts.api.serializers import (
    MAX_NUMBER_LENGTH,
    CallerCardSerializer,
    ContactListQuerySerializer,
    ContactSerializer,
    ImportSerializer,
    LookupQuerySerializer,
    UpsertReportSerializer,
)
from contacts.csv_import import contact_records_from_csv
from contacts.models import Contact
from core import hot_path, metrics
from core.errors import api_exception_handler
from core.hot_path import Answer
from core.negotiation import JsonFirstNegotiation, takes_plain_json
from core.parsers import JSONParser
from tenants import authentication
from tenants.models import Tenant


class ContactList(generics.ListCreateAPIView):
    """List the phonebook (search by name, company or number) or add a contact."""

    api_scope = "contacts"
    serializer_class = ContactSerializer
    parser_classes = [JSONParser]

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "search", str, description=ContactListQuerySerializer().fields["search"].help_text
            ),
            OpenApiParameter("external_id", str, description="Exact external id."),
        ]
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self) -> QuerySet[Contact]:
        query = ContactListQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        return selectors.contact_list(
            tenant=self.request.user.tenant,
            search=query.validated_data.get("search", ""),
            external_id=query.validated_data.get("external_id"),
        )

    def perform_create(self, serializer: ContactSerializer) -> None:
        serializer.instance = services.contact_create(
            tenant=self.request.user.tenant, **serializer.validated_data
        )


class ContactDetail(generics.RetrieveUpdateDestroyAPIView):
    """Read, change or delete (softly: gone from lists and lookups) one contact."""

    api_scope = "contacts"
    serializer_class = ContactSerializer
    parser_classes = [JSONParser]
    http_method_names = ["get", "patch", "delete", "options"]

    def get_queryset(self) -> QuerySet[Contact]:
        return selectors.contact_list(tenant=self.request.user.tenant)

    def perform_update(self, serializer: ContactSerializer) -> None:
        serializer.instance = services.contact_update(
            contact=serializer.instance, **serializer.validated_data
        )

    def perform_destroy(self, instance: Contact) -> None:
        services.contact_delete(contact=instance)


def csv_import_report(*, tenant: Tenant, content: bytes) -> dict:
    """Import a phonebook CSV file (POST /contacts/import, the dashboard): a report per row.

    Raises ValueError for a file that cannot be read as one (encoding, header, too many rows).
    """
    records = contact_records_from_csv(content, max_rows=services.MAX_RECORDS_PER_REQUEST)
    return upsert_report(tenant=tenant, records=records, first_row=2)


def upsert_report(*, tenant: Tenant, records: list[Any], first_row: int | None = None) -> dict:
    """Validate each record, upsert the valid ones, and report on every record in order."""
    if len(records) > services.MAX_RECORDS_PER_REQUEST:
        raise exceptions.ValidationError(
            f"At most {services.MAX_RECORDS_PER_REQUEST} records per request; send several."
        )
    results: list[dict] = []
    valid: list[tuple[int, dict]] = []
    for index, record in enumerate(records):
        serializer = ContactSerializer(data=record, context={"upsert": True})
        if serializer.is_valid():
            valid.append((index, serializer.validated_data))
            results.append({})  # filled in from the upsert below
        else:
            results.append(_result(index, "error", error=serializer.errors))
    outcomes = services.contacts_upsert_many(tenant=tenant, records=[data for _, data in valid])
    for (index, _), outcome in zip(valid, outcomes, strict=True):
        results[index] = _result(
            index,
            outcome.status,
            contact_id=outcome.contact.pk if outcome.contact else None,
            error=outcome.error,
        )
    if first_row is not None:
        for result in results:
            result["row"] = first_row + result["index"]
    counts = {s: sum(r["status"] == s for r in results) for s in ("created", "updated", "error")}
    return {
        "created": counts["created"],
        "updated": counts["updated"],
        "errors": counts["error"],
        "results": results,
    }


def _result(index: int, status: str, contact_id: int | None = None, error: Any = None) -> dict:
    if isinstance(error, dict):
        error = exceptions.ValidationError(error)
    body = api_exception_handler(error, {}).data["error"] if error is not None else None
    return {"index": index, "status": status, "id": contact_id, "error": body}


class ContactBulk(APIView):
    """Upsert up to 1,000 contacts by external_id; one bad record never fails the others."""

    api_scope = "contacts"
    parser_classes = [JSONParser]

    @extend_schema(request=ContactSerializer(many=True), responses=UpsertReportSerializer)
    def post(self, request: Request) -> Response:
        if not isinstance(request.data, list):
            raise exceptions.ValidationError("Send a JSON list of contacts.")
        return Response(upsert_report(tenant=request.user.tenant, records=request.data))


class ContactImport(APIView):
    """Import a CSV file of contacts (upserted by external_id) and report on every row."""

    api_scope = "contacts"
    parser_classes = [MultiPartParser]

    @extend_schema(
        request={"multipart/form-data": ImportSerializer}, responses=UpsertReportSerializer
    )
    def post(self, request: Request) -> Response:
        upload = ImportSerializer(data=request.data)
        upload.is_valid(raise_exception=True)
        file = upload.validated_data["file"]
        if file.size > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
            raise RequestDataTooBig()
        try:
            report = csv_import_report(tenant=request.user.tenant, content=file.read())
        except ValueError as error:
            raise exceptions.ValidationError({"file": [str(error)]}) from error
        return Response(report)


class LookupView(APIView):
    """Who is calling: the caller card for a number, from the local phonebook only."""

    api_scope = "lookup"
    content_negotiation_class = JsonFirstNegotiation

    @extend_schema(
        parameters=[OpenApiParameter("number", str, required=True, description="Any format.")],
        responses=CallerCardSerializer,
    )
    def get(self, request: Request) -> Response:
        return Response(lookup_body(request, request.query_params))

    @staticmethod
    def hot_path(request: HttpRequest) -> Answer | None:
        """Answer a plain JSON lookup without DRF (core/hot_path.py)."""
        params = hot_path.query_params(request)
        if request.method != "GET" or not takes_plain_json(request, params):
            return None
        try:
            authentication.server_key_holder(request, LookupView)
            return hot_path.json_response(lookup_body(request, params), LookupView)
        except Exception as error:
            return hot_path.error_response(error, LookupView, request)


def lookup_body(request: HttpRequest | Request, params: Mapping[str, str]) -> dict:
    """The caller card for the lookup's query, or a ValidationError saying what is wrong."""
    tenant = request.user.tenant
    started = time.perf_counter()
    number = params.get("number", "")
    card = None
    if len(params) == 1 and 0 < len(number) <= MAX_NUMBER_LENGTH and number[0] != " ":
        card = selectors.caller_card(tenant=tenant, number=number)
    if card is None or not card.readable:
        # Not a lone, readable number: the serializer says what is wrong (400).
        query = LookupQuerySerializer(data=params, context={"request": request})
        query.is_valid(raise_exception=True)
        card = selectors.caller_card(tenant=tenant, number=query.validated_data["number"])
    metrics.record(tenant.pk, "lookup", (time.perf_counter() - started) * 1000)
    # Built by hand: DRF serializers cost more than the lookup itself (bench/README.md).
    return caller_card_body(card)


def caller_card_body(card: selectors.CallerCard) -> dict:
    """The caller card as CallerCardSerializer documents it."""
    matches = [_contact_summary_body(contact) for contact in card.matches]
    return {
        "number": card.number,
        "known": card.known,
        "ambiguous": card.ambiguous,
        "contact": matches[0] if card.contact is not None else None,
        "matches": matches,
    }


def _contact_summary_body(contact: selectors.ContactSummary) -> dict:
    owner = contact.owner
    return {
        "id": contact.id,
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "name": contact.name,
        "company": contact.company,
        "is_company": contact.is_company,
        "crm_url": contact.crm_url,
        "country": contact.country,
        "custom_fields": contact.custom_fields,
        "owner": None
        if owner is None
        else {
            "id": owner.id,
            "crm_username": owner.crm_username,
            "display_name": owner.display_name,
            "extension": owner.extension,
        },
        "updated_at": contact.updated_at,  # rendered as ISO 8601 like DRF's DateTimeField
    }
