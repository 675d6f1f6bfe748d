"""Writes for the phonebook: create, update, soft delete and upsert contacts with their numbers."""

from __future__ import annotations

import functools
import json
import logging
import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, models, transaction
from django.db.models import F, Q
from django.utils import timezone

from contacts.models import Contact, ContactPhone
from core import phone_numbers
from tenants.models import Agent, Tenant

logger = logging.getLogger(__name__)

# Upper bound on records in one bulk request or CSV file: keeps a request well under a minute.
MAX_RECORDS_PER_REQUEST = 1_000
# Contacts soft-deleted per UPDATE: keeps the id list under every database's parameter limit.
DELETE_BATCH = 10_000
# The fields a CRM sync owns on its contacts (the rest, e.g. owner, are set elsewhere).
SYNCED_FIELDS = (
    "first_name", "last_name", "company", "is_company", "crm_url", "country", "custom_fields",
)  # fmt: skip


# A sync page's contacts and their numbers, one index probe per external id. With a plain
# `external_id IN (...)`, PostgreSQL scans every contact of the connection instead whenever its
# statistics call the tenant small (a new tenant's first sync, before ANALYZE catches up), and
# a million-contact sync turns quadratic (bench/README.md, "Sync"). LIMIT keeps the probe a
# separate, parameterized index scan: the planner cannot fold it into a join.
_STORED_COLUMNS = ("id", "external_id", *SYNCED_FIELDS, "owner_id", "deleted_at")
_STORED_SELECT = ", ".join(
    f"c.{name}::json" if name == "custom_fields" else f"c.{name}" for name in _STORED_COLUMNS
)  # jsonb comes back as text (Django's loader); json as the value
_STORED_SQL = f"""
SELECT {_STORED_SELECT}, (
    SELECT coalesce(json_agg(json_build_array(p.raw, p.kind) ORDER BY p.id), '[]')
    FROM {ContactPhone._meta.db_table} p WHERE p.tenant_id = c.tenant_id AND p.contact_id = c.id
)
FROM unnest(%s::text[]) AS page (external_id)
CROSS JOIN LATERAL (
    SELECT * FROM {Contact._meta.db_table} c
    WHERE c.tenant_id = %s AND c.source_connection_id = %s
        AND c.external_id = page.external_id AND NOT c.external_id = ''
    LIMIT 1
) c
"""  # noqa: S608 - only constants are formatted in
# Databases whose page reads and inserts take the PostgreSQL path (index probes, COPY); the
# rest take the ORM's. A list so tests can run both paths on PostgreSQL.
_POSTGRESQL_PATH_VENDORS = ("postgresql",)
# The checks of contact.full_clean() on what a sync writes (field by field, without a model).


def _contact_field(name: str) -> models.Field[Any, Any]:
    field = Contact._meta.get_field(name)
    assert isinstance(field, models.Field)  # a column of Contact's own, not a relation's reverse
    return field


_CHECKED_FIELDS = [_contact_field(name) for name in ("external_id", *SYNCED_FIELDS)]
_NEW_SYNCED = {
    **{name: _contact_field(name).get_default() for name in SYNCED_FIELDS},
    "owner_id": None,
}


@dataclass(frozen=True)
class PhoneInput:
    number: str
    kind: str = ContactPhone.Kind.OTHER


class WrittenNumber(Protocol):
    """A number as written in its source, and its kind: a PhoneInput, or a CRM's SourcePhone."""

    @property
    def number(self) -> str: ...

    @property
    def kind(self) -> str: ...


@dataclass(frozen=True)
class SyncedContact:
    """One record of a CRM page: its external id, SYNCED_FIELDS (and owner_id when the CRM names
    the owner) and numbers as written there."""

    external_id: str
    fields: Mapping[str, Any]
    phones: Sequence[WrittenNumber] = ()


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


def contacts_statistics_refresh() -> None:
    """Refresh PostgreSQL's row statistics of the phonebook tables (ANALYZE samples them).

    A bulk load into a small table leaves the planner thinking it is still small, and its plans
    for the sync's page reads then scan the whole source (measured: 12x the PostgreSQL CPU per
    contact in a 20,000-contact first sync, where autovacuum had not analyzed yet).
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {Contact._meta.db_table}, {ContactPhone._meta.db_table}")


def contacts_call_record(*, e164: str, at: datetime, status: str) -> list[int]:
    """An ended call with `e164`: its contacts' last call, count and outcome; their ids.

    A late report of an older call counts but does not move last_call_at back. Updating
    updated_at too would reorder "most recent" shared-number choices by calls: it stays.
    """
    ids = list(
        Contact.objects.filter(phones__e164=e164, deleted_at__isnull=True)
        .values_list("id", flat=True)
        .distinct()
    )
    if ids:
        Contact.objects.filter(pk__in=ids).update(call_count=F("call_count") + 1)
        Contact.objects.filter(pk__in=ids).filter(
            Q(last_call_at__isnull=True) | Q(last_call_at__lte=at)
        ).update(last_call_at=at, last_call_status=status)
    return ids


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
    foreign_owners = _foreign_owner_ids(latest.values())
    created, updated = [], []  # (the contact's columns, its numbers)
    for record in latest.values():
        stored = existing.get(record.external_id)
        if stored is not None and _synced_unchanged(stored, record):
            counts.unchanged += 1
            continue
        try:
            values = _synced_values(record, foreign_owners)
        except ValidationError as error:
            logger.info(
                "Record %s of connection %s: %s", record.external_id, source_connection_id, error
            )
            counts.invalid_records += 1
            continue
        if stored is None:
            created.append(({**_NEW_SYNCED, **values}, record.phones))
        else:
            updated.append(({**stored.values, **values, "id": stored.id}, record.phones))
    now = timezone.now()
    # No savepoint when the caller's transaction (a sync's page) is open: the page fails whole.
    with transaction.atomic(savepoint=False):
        if updated:
            Contact.objects.bulk_update(
                [Contact(**row, deleted_at=None, updated_at=now) for row, _ in updated],
                [*SYNCED_FIELDS, "owner", "deleted_at", "updated_at"],
            )
            ContactPhone.objects.filter(contact_id__in=[row["id"] for row, _ in updated]).delete()
        new_rows = [
            {
                **row,
                "tenant_id": tenant.pk,
                "source_connection_id": source_connection_id,
                "deleted_at": None,
                "created_at": now,
                "updated_at": now,
            }
            for row, _ in created
        ]
        for (row, _), pk in zip(created, _contacts_insert(new_rows), strict=True):
            row["id"] = pk
        phones = [
            _phone_row(tenant.pk, row["id"], phone, row["country"] or tenant.default_region)
            for row, numbers in (*created, *updated)
            for phone in numbers
        ]
        _insert(ContactPhone, phones)
    counts.created, counts.updated = len(created), len(updated)
    counts.invalid_numbers = sum(row["e164"] is None for row in phones)
    return counts


@dataclass(frozen=True, slots=True)
class _Stored:
    id: int
    values: dict[str, Any]  # external_id, SYNCED_FIELDS and owner_id as stored
    deleted_at: datetime | None
    phones: list[tuple[str, str]]  # (raw, kind) in order


def _stored_contacts(
    tenant: Tenant, source_connection_id: int, external_ids: list[str]
) -> dict[str, _Stored]:
    """The source's contacts with these external ids, with their numbers' (raw, kind) in order."""
    if connection.vendor in _POSTGRESQL_PATH_VENDORS:
        with connection.cursor() as cursor:
            cursor.execute(_STORED_SQL, [external_ids, tenant.pk, source_connection_id])
            rows = [(*row[:-1], [tuple(p) for p in row[-1]]) for row in cursor.fetchall()]
    else:
        contacts = list(
            Contact.objects.filter(
                source_connection_id=source_connection_id, external_id__in=external_ids
            )
            .exclude(external_id="")
            .values_list(*_STORED_COLUMNS)
        )
        numbers: dict[int, list[tuple[str, str]]] = {}
        if contacts:
            phones = ContactPhone.objects.filter(contact_id__in=[row[0] for row in contacts])
            for contact_id, raw, kind in phones.order_by("id").values_list(
                "contact_id", "raw", "kind"
            ):
                numbers.setdefault(contact_id, []).append((raw, kind))
        rows = [(*row, numbers.get(row[0], [])) for row in contacts]
    names = _STORED_COLUMNS[1:-1]
    return {
        row[1]: _Stored(row[0], dict(zip(names, row[1:-2], strict=True)), row[-2], row[-1])
        for row in rows
    }


def _synced_unchanged(stored: _Stored, record: SyncedContact) -> bool:
    if stored.deleted_at is not None:
        return False
    if any(stored.values.get(name) != value for name, value in record.fields.items()):
        return False
    return stored.phones == [(p.number, p.kind) for p in record.phones]


# Names, companies, countries and flags repeat from record to record; a check costs microseconds.
@functools.lru_cache(maxsize=65_536)
def _clean_cached(name: str, value: str | bool) -> Any:
    return _contact_field(name).clean(value, None)


_CUSTOM_FIELDS = _contact_field("custom_fields")
_JSON_SCALARS = (str, int, float, bool, type(None))


def _clean_custom_fields(value: Any) -> Any:
    """custom_fields as JSONField.clean() takes them: a dict of text (what every CRM mapping
    builds) is valid JSON as it is, so it skips the field's trial json.dumps (~20 µs)."""
    if type(value) is dict and all(
        type(k) is str and type(v) in _JSON_SCALARS for k, v in value.items()
    ):
        return value
    return _CUSTOM_FIELDS.clean(value, None)


_CRM_URL = _contact_field("crm_url")
_URL_PATH = re.compile(r"[/?#]")
_SPACE_OR_NUL = re.compile(r"[\s\x00]")


def _clean_crm_url(value: str) -> str:
    """crm_url as its URLField.clean() would take it, at a cached cost.

    Django's URLValidator spends ~25 µs on each link, nearly all of it on the scheme and host,
    which a CRM's links share; after the host its pattern only refuses whitespace. So the
    scheme and host are checked once (cached) and the rest for whitespace; a link the shortcut
    is not sure of (no path, too long, odd characters, a host it refuses) gets the whole check.
    """
    scheme_end = value.find("://")
    path = _URL_PATH.search(value, scheme_end + 3) if scheme_end > 0 else None
    if (
        path is not None
        and len(value) <= (_CRM_URL.max_length or 0)
        and not _SPACE_OR_NUL.search(value, path.start())
    ):
        try:
            _clean_cached("crm_url", value[: path.start()])
            return value
        except ValidationError:
            pass
    return _CRM_URL.clean(value, None)


def _cleaner(field: models.Field[Any, Any]) -> Callable[[Any], Any]:
    """The check contact.full_clean() runs on this field (an empty value where blank is allowed
    passes as it is), through the cheapest path that gives the same answer."""
    name, blank = field.name, field.blank

    def clean(value: Any) -> Any:
        if type(value) is str:
            if blank and not value:
                return value
            if field is _CRM_URL:
                return _clean_crm_url(value)
            if name != "external_id":  # one a record: caching it would only evict the rest
                return _clean_cached(name, value)
        elif type(value) is bool:
            return _clean_cached(name, value)
        elif field is _CUSTOM_FIELDS and value:
            return _clean_custom_fields(value)
        if blank and value in field.empty_values:
            return value
        return field.clean(value, None)

    return clean


_CLEANERS = [(field.name, _cleaner(field)) for field in _CHECKED_FIELDS]


def _foreign_owner_ids(records: Iterable[SyncedContact]) -> set[int]:
    """The owner ids these records name that are not agents of the current tenant."""
    named = {r.fields["owner_id"] for r in records if r.fields.get("owner_id") is not None}
    if not named:
        return set()
    return named - set(Agent.objects.filter(pk__in=named).values_list("pk", flat=True))


def _synced_values(record: SyncedContact, foreign_owners: set[int]) -> dict[str, Any]:
    """The record's external id and fields, cleaned as contact.full_clean() would clean them."""
    values = {"external_id": record.external_id, **record.fields}
    errors: dict[str, list[ValidationError]] = {}
    for name, clean in _CLEANERS:
        if name in values:
            try:
                values[name] = clean(values[name])
            except ValidationError as error:
                errors[name] = error.error_list
    if values.get("owner_id") in foreign_owners:
        errors["owner"] = [ValidationError("The owner must be an agent of the same tenant.")]
    if errors:
        raise ValidationError(errors)
    return values


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
    _insert(ContactPhone, [_phone_row(contact.tenant_id, contact.pk, p, region) for p in phones])


def _phone_row(
    tenant_id: int, contact_id: int, phone: WrittenNumber, region: str
) -> dict[str, Any]:
    number = phone_numbers.normalize(phone.number, region)
    return {
        "tenant_id": tenant_id,
        "contact_id": contact_id,
        "raw": phone.number,
        "e164": number.e164,
        "extension": number.extension,
        "kind": phone.kind,
        "is_valid": number.is_valid,
    }


def _contacts_insert(rows: list[dict[str, Any]]) -> list[int]:
    """Insert new contacts (dicts of column -> value, given their "id"); return the ids in order."""
    if not rows:
        return []
    if connection.vendor not in _POSTGRESQL_PATH_VENDORS:
        return [c.pk for c in Contact.objects.bulk_create([Contact(**row) for row in rows])]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [Contact._meta.db_table, len(rows)],
        )
        ids = [pk for (pk,) in cursor.fetchall()]
    for row, pk in zip(rows, ids, strict=True):
        row["id"] = pk
    _copy(Contact, rows)
    return ids


def _insert(model: type[models.Model], rows: list[dict[str, Any]]) -> None:
    """Insert rows (dicts of column -> value, the same columns in each)."""
    if connection.vendor in _POSTGRESQL_PATH_VENDORS:
        _copy(model, rows)
    else:
        model._default_manager.bulk_create([model(**row) for row in rows])


def _copy(model: type[models.Model], rows: list[dict[str, Any]]) -> None:
    """Insert with COPY: far less work a row than the ORM's INSERT (bench/README.md)."""
    if not rows:
        return
    columns = list(rows[0])
    json_fields = {
        f.attname for f in model._meta.concrete_fields if isinstance(f, models.JSONField)
    }
    as_json = [i for i, column in enumerate(columns) if column in json_fields]
    row_values = operator.itemgetter(*columns)
    sql = f"COPY {model._meta.db_table} ({', '.join(columns)}) FROM STDIN"
    with connection.cursor() as cursor, cursor.copy(sql) as copy:
        for row in rows:
            values = list(row_values(row)) if len(columns) > 1 else [row_values(row)]
            for i in as_json:
                values[i] = _json_text(values[i])
            copy.write_row(values)


def _json_text(value: Any) -> str:
    """JSON for a column. Custom fields repeat from record to record (a tier, a language):
    flat dicts of text are serialized once each (json.dumps is ~10 µs even for a small dict)."""
    if type(value) is dict and len(value) <= 8:
        items = tuple(value.items())
        if all(type(v) is str for _, v in items):
            return _flat_json_text(items)
    return json.dumps(value)


@functools.lru_cache(maxsize=16_384)
def _flat_json_text(items: tuple[tuple[str, str], ...]) -> str:
    return json.dumps(dict(items))
