"""Writes for the phonebook: create, update, soft delete and upsert contacts with their numbers."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from contacts import phone_numbers
from contacts.models import Contact, ContactPhone
from tenants.models import Tenant

logger = logging.getLogger(__name__)

# Upper bound on records in one bulk request or CSV file: keeps a request well under a minute.
MAX_RECORDS_PER_REQUEST = 1_000
# Contacts soft-deleted per UPDATE: keeps the id list under every database's parameter limit.
DELETE_BATCH = 10_000
# The fields a CRM sync owns on its contacts (the rest, e.g. owner, are set elsewhere).
SYNCED_FIELDS = (
    "first_name", "last_name", "company", "is_company", "crm_url", "country", "custom_fields",
)  # fmt: skip
_NOT_SYNCED = [
    f.name for f in Contact._meta.fields if f.name not in (*SYNCED_FIELDS, "external_id")
]


# A sync page's contacts and their numbers, one index probe per external id. With a plain
# `external_id IN (...)`, PostgreSQL scans every contact of the connection instead whenever its
# statistics call the tenant small (a new tenant's first sync, before ANALYZE catches up), and
# a million-contact sync turns quadratic (bench/README.md, "Sync"). LIMIT keeps the probe a
# separate, parameterized index scan: the planner cannot fold it into a join.
_PROBE_PER_ID_VENDORS = ("postgresql",)
_STORED_SQL = f"""
SELECT c.*, (
    SELECT coalesce(json_agg(json_build_array(p.raw, p.kind) ORDER BY p.id), '[]')
    FROM {ContactPhone._meta.db_table} p WHERE p.tenant_id = c.tenant_id AND p.contact_id = c.id
) AS stored_phones
FROM unnest(%s::text[]) AS page (external_id)
CROSS JOIN LATERAL (
    SELECT * FROM {Contact._meta.db_table} c
    WHERE c.tenant_id = %s AND c.source_connection_id = %s
        AND c.external_id = page.external_id AND NOT c.external_id = ''
    LIMIT 1
) c
"""  # noqa: S608 - only constants are formatted in


@dataclass(frozen=True)
class PhoneInput:
    number: str
    kind: str = ContactPhone.Kind.OTHER


@dataclass(frozen=True)
class SyncedContact:
    """One record of a CRM page: its external id, SYNCED_FIELDS (and owner_id when the CRM names
    the owner) and numbers as written there."""

    external_id: str
    fields: Mapping[str, Any]
    phones: tuple[PhoneInput, ...] = ()


@dataclass
class SyncCounts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    invalid_records: int = 0
    invalid_numbers: int = 0


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


@transaction.atomic
def contacts_delete(*, contact_ids: Sequence[int]) -> int:
    """Soft delete these contacts in a few queries, as contact_delete does one; return how many."""
    now, deleted = timezone.now(), 0
    for start in range(0, len(contact_ids), DELETE_BATCH):
        batch = contact_ids[start : start + DELETE_BATCH]
        deleted += Contact.objects.filter(pk__in=batch, deleted_at__isnull=True).update(
            deleted_at=now, updated_at=now
        )
    return deleted


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


def contacts_upsert_synced(
    *, tenant: Tenant, source_connection_id: int, records: Sequence[SyncedContact]
) -> SyncCounts:
    """Upsert one page of a CRM's records by external id in a handful of queries.

    The same as contact_upsert per record (validation, revival, numbers replaced and read with
    the contact's country, else the tenant's region), but unchanged records are skipped without
    a write, and the page's contacts and numbers are read and written in bulk. A record that
    fails validation is counted and skipped; the rest of the page is stored.
    """
    counts = SyncCounts()
    latest = {r.external_id: r for r in records}  # the same record twice in a page: last wins
    existing = _stored_contacts(tenant, source_connection_id, list(latest))
    created, updated = [], []
    for record in latest.values():
        current, stored_phones = existing.get(record.external_id, (None, []))
        if current is not None and _synced_unchanged(current, record, stored_phones):
            counts.unchanged += 1
            continue
        contact = current or Contact(
            tenant=tenant, source_connection_id=source_connection_id, external_id=record.external_id
        )
        for name, value in record.fields.items():
            setattr(contact, name, value)
        contact.deleted_at = None
        try:
            # The tenant and connection exist, and the external id was looked up above (one sync
            # per connection at a time): only the synced fields are left to check.
            contact.full_clean(
                exclude=_NOT_SYNCED, validate_unique=False, validate_constraints=False
            )
        except ValidationError as error:
            logger.info(
                "Record %s of connection %s: %s", record.external_id, source_connection_id, error
            )
            counts.invalid_records += 1
            continue
        (created if current is None else updated).append((contact, record.phones))
    with transaction.atomic():
        if updated:
            now = timezone.now()
            for contact, _ in updated:
                contact.updated_at = now  # bulk_update skips auto_now
            Contact.objects.bulk_update(
                [c for c, _ in updated], [*SYNCED_FIELDS, "owner", "deleted_at", "updated_at"]
            )
            ContactPhone.objects.filter(contact_id__in=[c.pk for c, _ in updated]).delete()
        Contact.objects.bulk_create([c for c, _ in created])  # sets their ids
        rows = [
            _phone_row(contact, phone, contact.country or tenant.default_region)
            for contact, phones in (*created, *updated)
            for phone in phones
        ]
        ContactPhone.objects.bulk_create(rows)
    counts.created, counts.updated = len(created), len(updated)
    counts.invalid_numbers = sum(row.e164 is None for row in rows)
    return counts


def _stored_contacts(
    tenant: Tenant, source_connection_id: int, external_ids: list[str]
) -> dict[str, tuple[Contact, list[tuple[str, str]]]]:
    """The source's contacts with these external ids, with their numbers' (raw, kind) in order."""
    if connection.vendor in _PROBE_PER_ID_VENDORS:
        rows = Contact.objects.raw(_STORED_SQL, [external_ids, tenant.pk, source_connection_id])
        return {c.external_id: (c, [tuple(p) for p in c.stored_phones]) for c in rows}
    contacts = Contact.objects.filter(
        source_connection_id=source_connection_id, external_id__in=external_ids
    ).prefetch_related("phones")
    return {c.external_id: (c, [(p.raw, p.kind) for p in c.phones.all()]) for c in contacts}


def _synced_unchanged(
    contact: Contact, record: SyncedContact, stored_phones: list[tuple[str, str]]
) -> bool:
    if contact.deleted_at is not None:
        return False
    if any(getattr(contact, name) != value for name, value in record.fields.items()):
        return False
    return stored_phones == [(p.number, p.kind) for p in record.phones]


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
        for c in Contact.objects.select_related("tenant")
        .filter(source_connection_id__isnull=True, external_id__in=external_ids)
        .exclude(external_id="")  # lets PostgreSQL use the unique index (IN > 100 items)
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
    ContactPhone.objects.bulk_create([_phone_row(contact, phone, region) for phone in phones])


def _phone_row(contact: Contact, phone: PhoneInput, region: str) -> ContactPhone:
    number = phone_numbers.normalize(phone.number, region)
    return ContactPhone(
        tenant_id=contact.tenant_id,
        contact=contact,
        raw=phone.number,
        e164=number.e164,
        extension=number.extension,
        kind=phone.kind,
        is_valid=number.is_valid,
    )
