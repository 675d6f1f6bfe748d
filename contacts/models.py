from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from core.scoping import TenantOwnedModel
from tenants.models import Tenant, TenantSettings, validate_region


class PhonebookSettings(TenantSettings):
    tenant = models.OneToOneField(
        Tenant, on_delete=models.CASCADE, primary_key=True, related_name="phonebook_settings"
    )

    class SharedNumberPolicy(models.TextChoices):
        FIRST_MATCH = "first_match", "first match (oldest contact)"
        MOST_RECENT = "most_recent", "most recently updated contact"
        OWNER = "owner", "the contact that has an owner agent"
        AMBIGUOUS = "ambiguous", "return all, flagged ambiguous"

    # Which contact is "the" caller when several share a number (lookup, routing, call logging).
    shared_number_policy = models.CharField(
        max_length=16, choices=SharedNumberPolicy.choices, default=SharedNumberPolicy.MOST_RECENT
    )

    # Seed 001 "Create/update contact record": each ended call updates the caller's contacts'
    # last_call_at, call_count and last_call_status.
    update_from_calls = models.BooleanField(default=False)

    API_FIELDS = {
        "shared_number_policy": "shared_number_policy",
        "contacts_update_from_calls": "update_from_calls",
    }

    class Meta:
        verbose_name_plural = "phonebook settings"

    def __str__(self) -> str:
        return f"Phonebook settings of {self.tenant}"


class Contact(TenantOwnedModel):
    # The CRM connection this contact is synced from; empty for contacts entered through the API
    # or a CSV file. PROTECT, not SET_NULL: a synced copy turned into a hand-entered contact would
    # never be updated or deleted again (and could clash with a manual external id), so deleting
    # a connection deletes its contacts first (connectors.services.connection_delete).
    source_connection = models.ForeignKey(
        "connectors.Connection",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        db_index=False,  # the unique constraint below starts with the tenant, then this column
        related_name="+",
    )
    external_id = models.CharField(
        max_length=255, blank=True, help_text="The record's id in its source (CRM), if any."
    )
    first_name = models.CharField(max_length=150, blank=True)
    last_name = models.CharField(max_length=150, blank=True)
    company = models.CharField(max_length=255, blank=True)
    is_company = models.BooleanField(
        default=False, help_text="A company record with numbers of its own, not a person."
    )
    crm_url = models.URLField(
        "CRM URL", max_length=2000, blank=True, help_text="Deep link to the record in its CRM."
    )
    owner = models.ForeignKey(
        "tenants.Agent",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        db_index=False,  # indexed with the tenant first, below
        related_name="owned_contacts",
        help_text="The agent who owns this contact in the CRM.",
    )
    country = models.CharField(
        max_length=2,
        blank=True,
        validators=[validate_region],
        help_text="ISO 3166 region reading this contact's numbers without a country code; "
        "empty: the tenant's default region.",
    )
    custom_fields = models.JSONField(default=dict, blank=True)
    # Kept from calls when the tenant asks (PhonebookSettings.update_from_calls); a sync never
    # writes them. Database defaults: the sync's COPY of new contacts leaves them out.
    last_call_at = models.DateTimeField(null=True, blank=True)
    call_count = models.PositiveIntegerField(default=0, db_default=0)
    last_call_status = models.CharField(max_length=16, blank=True, default="", db_default="")
    deleted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "source_connection_id", "external_id"],
                condition=Q(source_connection_id__isnull=False) & ~Q(external_id=""),
                name="contact_external_id_unique_per_source",
                violation_error_message="A contact with this external_id exists for this source.",
            ),
            # NULLs are distinct in a unique index: manual/CSV contacts need their own constraint.
            models.UniqueConstraint(
                fields=["tenant", "external_id"],
                condition=Q(source_connection_id__isnull=True) & ~Q(external_id=""),
                name="contact_external_id_unique_without_source",
                violation_error_message="A contact with this external_id exists.",
            ),
        ]
        indexes = [
            models.Index(
                fields=["tenant", "last_name", "first_name"],
                condition=Q(deleted_at__isnull=True),
                name="contact_list_by_name",
            ),
            models.Index(fields=["tenant", "owner"], name="contact_by_owner"),
        ]

    def __str__(self) -> str:
        return self.name or f"contact {self.pk}"

    def clean(self) -> None:
        if self.owner is not None and self.owner.tenant_id != self.tenant_id:
            raise ValidationError({"owner": "The owner must be an agent of the same tenant."})

    @property
    def name(self) -> str:
        return contact_name(self.first_name, self.last_name, self.company)


def contact_name(first_name: str, last_name: str, company: str) -> str:
    """The name to show for a contact: the person's, else the company's."""
    return " ".join(part for part in (first_name, last_name) if part) or company


class ContactPhone(TenantOwnedModel):
    class Kind(models.TextChoices):
        MOBILE = "mobile"
        WORK = "work"
        HOME = "home"
        OTHER = "other"

    contact = models.ForeignKey(
        Contact, on_delete=models.CASCADE, db_index=False, related_name="phones"
    )
    # NULL, not "": an unreadable number has no E.164 form and must never match a lookup.
    e164 = models.CharField(  # noqa: DJ001
        "E.164",
        max_length=20,
        null=True,
        blank=True,
        help_text="Empty when the raw number could not be read.",
    )
    raw = models.CharField(max_length=64, help_text="The number as it was given.")
    extension = models.CharField(max_length=20, blank=True)
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.OTHER)
    is_valid = models.BooleanField(
        default=False, help_text="A number that exists in its country's numbering plan."
    )

    class Meta:
        verbose_name = "contact phone number"
        ordering = ["id"]
        indexes = [
            models.Index(fields=["tenant", "e164"], name="contactphone_lookup"),
            models.Index(fields=["tenant", "contact"], name="contactphone_by_contact"),
        ]

    def __str__(self) -> str:
        return self.e164 or self.raw
