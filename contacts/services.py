"""Writes for the phonebook: create, update, soft delete and upsert contacts with their numbers."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from contacts import phone_numbers
from contacts.models import Contact, ContactPhone
from tenants.models import Tenant

# Upper bound on records in one bulk request or CSV file: keeps a request well under a minute.
MAX_RECORDS_PER_REQUEST = 1_000


@dataclass(frozen=True)
class PhoneInput:
    number: str
    kind: str = ContactPhone.Kind.OTHER


@dataclass(frozen=True)
class UpsertOutcome:
    index: int
    status: Literal["created", "updated", "error"]
    contact: Contact | None = None
    error: ValidationError | None = None


def contact_create(*, tenant: Tenant, phones: Iterable[PhoneInput] = (), **fields: Any) -> Contact:
    contact = Contact(tenant=tenant, **fields)
    contact.full_clean()
    contact.save()
    _phones_replace(contact=contact, phones=phones)
    return contact


def contact_update(
    *, contact: Contact, phones: Iterable[PhoneInput] | None = None, **fields: Any
) -> Contact:
    """Change fields; `phones`, when given, replaces every number of the contact."""
    for name, value in fields.items():
        setattr(contact, name, value)
    contact.full_clean()
    contact.save()
    if phones is None and "country" in fields:
        # The country reads numbers without a country code: read the stored ones again.
        phones = [PhoneInput(p.raw, p.kind) for p in contact.phones.order_by("id")]
    if phones is not None:
        _phones_replace(contact=contact, phones=phones)
    return contact


def contact_delete(*, contact: Contact) -> None:
    """Soft delete: the contact disappears from lists and lookups; an upsert brings it back."""
    if contact.deleted_at is None:
        contact.deleted_at = timezone.now()
        contact.save(update_fields=["deleted_at", "updated_at"])


def contact_upsert(
    *,
    tenant: Tenant,
    external_id: str,
    source_connection_id: int | None = None,
    existing: Contact | None = None,
    **fields: Any,
) -> tuple[Contact, bool]:
    """Update the contact with this external id (reviving it if deleted) or create it.

    Returns the contact and whether it was created. `existing` skips the look-up when the caller
    already fetched the contact.
    """
    if existing is None and external_id:
        existing = (
            Contact.objects.select_related("tenant")
            .filter(source_connection_id=source_connection_id, external_id=external_id)
            .first()
        )
    if existing is None:
        contact = contact_create(
            tenant=tenant,
            external_id=external_id,
            source_connection_id=source_connection_id,
            **fields,
        )
        return contact, True
    return contact_update(contact=existing, deleted_at=None, **fields), False


@transaction.atomic
def contacts_upsert_many(
    *, tenant: Tenant, records: Sequence[Mapping[str, Any]]
) -> list[UpsertOutcome]:
    """Upsert each record by external id in its own savepoint; one bad record fails alone."""
    if len(records) > MAX_RECORDS_PER_REQUEST:
        raise ValidationError(f"At most {MAX_RECORDS_PER_REQUEST} records per request.")
    external_ids = [r["external_id"] for r in records if r.get("external_id")]
    existing = {
        c.external_id: c
        for c in Contact.objects.select_related("tenant").filter(
            source_connection_id__isnull=True, external_id__in=external_ids
        )
    }
    return [_upsert_one(tenant, i, record, existing) for i, record in enumerate(records)]


def _upsert_one(
    tenant: Tenant, index: int, record: Mapping[str, Any], existing: dict[str, Contact]
) -> UpsertOutcome:
    fields = dict(record)
    external_id = fields.pop("external_id", "")
    try:
        with transaction.atomic():
            contact, created = contact_upsert(
                tenant=tenant,
                external_id=external_id,
                existing=existing.get(external_id) if external_id else None,
                **fields,
            )
    except ValidationError as error:
        return UpsertOutcome(index, "error", error=error)
    except IntegrityError:
        # A concurrent request wrote the same external id between our read and our write.
        return UpsertOutcome(
            index,
            "error",
            error=ValidationError(
                {"external_id": "Changed by another request at the same time; send it again."}
            ),
        )
    if external_id:
        existing[external_id] = contact  # the same id twice in one batch updates the first
    return UpsertOutcome(index, "created" if created else "updated", contact=contact)


def _phones_replace(*, contact: Contact, phones: Iterable[PhoneInput]) -> None:
    """Store the numbers, each read with the contact's country, else the tenant's region."""
    region = contact.country or contact.tenant.default_region
    contact.phones.all().delete()
    rows = []
    for phone in phones:
        number = phone_numbers.normalize(phone.number, region)
        rows.append(
            ContactPhone(
                tenant_id=contact.tenant_id,
                contact=contact,
                raw=phone.number,
                e164=number.e164,
                extension=number.extension,
                kind=phone.kind,
                is_valid=number.is_valid,
            )
        )
    ContactPhone.objects.bulk_create(rows)
