"""Reads for the phonebook: caller lookup and contact search."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import connection
from django.db.models import Q, QuerySet

from contacts.models import Contact, ContactPhone, PhonebookSettings, contact_name
from core import hot_path, phone_numbers
from tenants.models import Agent, Tenant

# A switchboard number shared by thousands of contacts must not make the lookup slow.
MAX_MATCHES = 20

Policy = PhonebookSettings.SharedNumberPolicy
_PREFERENCE: dict[str, str] = {
    Policy.FIRST_MATCH: "c.created_at, c.id",
    Policy.MOST_RECENT: "c.updated_at DESC, c.id DESC",
    Policy.OWNER: "(c.owner_id IS NULL), c.updated_at DESC, c.id DESC",
    Policy.AMBIGUOUS: "c.updated_at DESC, c.id DESC",
}
# The hot path of lookup and routing, written out and read as plain rows: building it with the
# ORM, or model instances from it, cost several times the query itself (bench/README.md). Both
# tables are filtered by tenant explicitly.
_CALLER_SQL = f"""
SELECT c.id, c.first_name, c.last_name, c.company, c.is_company, c.crm_url, c.country,
       c.custom_fields, c.updated_at, c.owner_id, a.crm_username, a.display_name, a.extension
FROM {Contact._meta.db_table} c
LEFT JOIN {Agent._meta.db_table} a ON a.id = c.owner_id
WHERE c.tenant_id = %s AND c.deleted_at IS NULL AND c.id IN (
    SELECT p.contact_id FROM {ContactPhone._meta.db_table} p WHERE p.tenant_id = %s AND p.e164 = %s
)
ORDER BY {{order}} LIMIT {MAX_MATCHES}
"""  # noqa: S608 - only constants are formatted in
_CALLER_SQLS = {policy: _CALLER_SQL.format(order=order) for policy, order in _PREFERENCE.items()}
_CUSTOM_FIELDS = Contact._meta.get_field("custom_fields")


@dataclass(frozen=True)
class OwnerSummary:
    id: int
    crm_username: str
    display_name: str
    extension: str


@dataclass(frozen=True)
class ContactSummary:
    id: int
    first_name: str
    last_name: str
    name: str
    company: str
    is_company: bool
    crm_url: str
    country: str
    custom_fields: dict
    owner: OwnerSummary | None
    updated_at: datetime


@dataclass(frozen=True)
class CallerCard:
    number: str  # E.164 when readable, else the raw input
    known: bool
    ambiguous: bool
    contact: ContactSummary | None
    matches: tuple[ContactSummary, ...]
    readable: bool = True  # False when the number could not be read as a phone number


def caller_card(*, tenant: Tenant, number: str) -> CallerCard:
    """Who is calling from this number, by the tenant's shared-number policy; never raises.

    One indexed query on (tenant, e164) joined to the contact and its owner.
    """
    raw = number if isinstance(number, str) else ""
    e164 = phone_numbers.e164_of(raw, tenant.default_region)
    if e164 is None:
        return CallerCard(
            number=raw, known=False, ambiguous=False, contact=None, matches=(), readable=False
        )
    policy = tenant.phonebook_settings.shared_number_policy
    sql = _CALLER_SQLS.get(policy, _CALLER_SQLS[Policy.MOST_RECENT])
    matches = tuple(_summary(row) for row in hot_path.fetch_all(sql, [tenant.pk, tenant.pk, e164]))
    ambiguous = policy == Policy.AMBIGUOUS and len(matches) > 1
    return CallerCard(
        number=e164,
        known=bool(matches),
        ambiguous=ambiguous,
        contact=matches[0] if matches and not ambiguous else None,
        matches=matches,
    )


def contact_list(
    *, tenant: Tenant, search: str = "", external_id: str | None = None
) -> QuerySet[Contact]:
    """The tenant's contacts (not deleted), optionally matching every word of `search`.

    A word matches a first name, last name or company; a search that reads as a phone number in
    the tenant's region also matches contacts having that number, whatever format it was given in.
    """
    contacts = Contact.objects.filter(deleted_at__isnull=True)
    if external_id is not None:
        contacts = contacts.filter(external_id=external_id)
    search = search.strip()
    if search:
        by_name = Q()
        for word in search.split():
            by_name &= (
                Q(first_name__icontains=word)
                | Q(last_name__icontains=word)
                | Q(company__icontains=word)
            )
        condition = by_name
        # Fewer than three digits ("Ann 2") cannot be a phone number.
        e164 = None
        if sum(c.isdigit() for c in search) >= 3:
            e164 = phone_numbers.normalize(search, tenant.default_region).e164
        if e164:
            condition |= Q(pk__in=ContactPhone.objects.filter(e164=e164).values("contact_id"))
        contacts = contacts.filter(condition)
    return (
        contacts.select_related("owner")
        .prefetch_related("phones")
        .order_by("last_name", "first_name", "id")
    )


def _summary(row: tuple) -> ContactSummary:
    (pk, first_name, last_name, company, is_company, crm_url, country, custom_fields) = row[:8]
    updated_at, owner_id, owner_crm_username, owner_display_name, owner_extension = row[8:]
    owner = None
    if owner_id is not None:
        owner = OwnerSummary(owner_id, owner_crm_username, owner_display_name, owner_extension)
    return ContactSummary(
        id=pk,
        first_name=first_name,
        last_name=last_name,
        name=contact_name(first_name, last_name, company),
        company=company,
        is_company=is_company,
        crm_url=crm_url,
        country=country,
        # The expression is unused when reading a value (django-stubs asks for one).
        custom_fields=_CUSTOM_FIELDS.from_db_value(custom_fields, None, connection),  # type: ignore[arg-type]
        owner=owner,
        # SQLite hands raw rows' times back naive (in UTC): the card says so as PostgreSQL does.
        updated_at=updated_at if updated_at.tzinfo else updated_at.replace(tzinfo=UTC),
    )
