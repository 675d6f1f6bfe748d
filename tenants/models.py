import functools
import zoneinfo
from typing import ClassVar

import phonenumbers
from django.apps import apps
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from core import phone_numbers
from core.scoping import TenantOwnedModel


def validate_region(value: str) -> None:
    if value not in phonenumbers.SUPPORTED_REGIONS:
        raise ValidationError(f"'{value}' is not an ISO 3166 region code such as US, GB or TR.")


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"'{value}' is not an IANA time zone such as Europe/London.")


def validate_e164(value: str) -> None:
    try:
        is_e164 = phone_numbers.to_e164(value, None) == value
    except ValueError:
        is_e164 = False
    if not is_e164:
        raise ValidationError(f"'{value}' is not a valid number in E.164 form, e.g. +14155550123.")


class Tenant(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=64, unique=True)
    default_region = models.CharField(
        max_length=2,
        default="US",
        validators=[validate_region],
        help_text="Region used to read numbers written without a country code (ISO 3166, e.g. GB).",
    )
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class TenantSettings(models.Model):
    """One context's settings for one tenant, in the app that owns them (routing, callbacks...).

    Every concrete subclass (`tenant_settings_models()`): a row of each is created with its
    tenant, loaded with the tenant on the API's hot path, and its fields appear in
    `/api/v1/tenant` under the names of `API_FIELDS` (API name -> model field).
    """

    tenant = models.OneToOneField(Tenant, on_delete=models.CASCADE, primary_key=True)

    API_FIELDS: ClassVar[dict[str, str]] = {}
    WRITE_ONLY: ClassVar[tuple[str, ...]] = ()  # API names of secrets: accepted, never shown

    class Meta:
        abstract = True

    @classmethod
    def related_name(cls) -> str:
        """The attribute of Tenant that holds this row (tenant.routing_settings)."""
        field = cls._meta.get_field("tenant")
        assert isinstance(field, models.OneToOneField)
        return str(field.remote_field.get_accessor_name())


@functools.cache
def tenant_settings_models() -> tuple[type[TenantSettings], ...]:
    """Every context's settings model (every concrete TenantSettings of the installed apps)."""
    return tuple(model for model in apps.get_models() if issubclass(model, TenantSettings))


def tenant_settings_paths(prefix: str = "") -> list[str]:
    """select_related() paths that load every settings row with a tenant ("tenant__" from a key)."""
    return [f"{prefix}{model.related_name()}" for model in tenant_settings_models()]


def tenant_settings_create(tenant: Tenant) -> None:
    """Give a new tenant a row of each context's settings, with their defaults."""
    for model in tenant_settings_models():
        model._default_manager.get_or_create(tenant=tenant)


class Membership(TenantOwnedModel):
    class Role(models.TextChoices):
        OWNER = "owner"
        ADMIN = "admin"
        AGENT = "agent"
        VIEWER = "viewer"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "user"], name="membership_unique_per_tenant")
        ]

    def __str__(self) -> str:
        return f"{self.user} ({self.role})"


class ApiKey(TenantOwnedModel):
    class Kind(models.TextChoices):
        BROWSER = "browser", "browser (launch URL only)"
        SERVER = "server", "server (REST API)"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    name = models.CharField(max_length=100, blank=True)
    # The visible part of the key ("cbs_3kTq9ZpA"): lets people and logs tell keys apart.
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    secret_hash = models.CharField(max_length=64, editable=False)
    scopes = models.JSONField(
        default=list, blank=True, help_text="Empty: every scope. Otherwise e.g. agents:read."
    )
    allowed_cidrs = models.JSONField(
        default=list,
        blank=True,
        help_text="Server keys only. Empty: any address. Otherwise e.g. 203.0.113.0/24.",
    )
    rate_limit_per_minute = models.PositiveIntegerField(
        null=True, blank=True, help_text="Empty: the platform default."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.kind})"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None


class Agent(TenantOwnedModel):
    crm_username = models.CharField(
        max_length=150, help_text="The agent's stable ID as the CRM sends it (seed 002)."
    )
    display_name = models.CharField(max_length=200, blank=True)
    email = models.EmailField(blank=True)
    phone_number = models.CharField(
        max_length=20,
        blank=True,
        validators=[validate_e164],
        help_text="E.164; the agent's real phone for the server-to-server flow.",
    )
    extension = models.CharField(max_length=20, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "crm_username"], name="agent_crm_username_unique_per_tenant"
            )
        ]

    def __str__(self) -> str:
        return self.display_name or self.crm_username


class CallerIdNumber(TenantOwnedModel):
    number = models.CharField(max_length=20, validators=[validate_e164], help_text="E.164")
    label = models.CharField(max_length=100, blank=True, help_text="Campaign or team.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "caller-ID number"
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "number"], name="caller_id_number_unique_per_tenant"
            )
        ]

    def __str__(self) -> str:
        return self.number


class AuditEntry(TenantOwnedModel):
    """One configuration change made in the dashboard: who, when, what (never a secret)."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_name = models.CharField(max_length=150, help_text="The username when it happened.")
    action = models.CharField(max_length=64, help_text="<resource>.<verb>, e.g. agent.create")
    target = models.CharField(max_length=300, blank=True)
    changes = models.JSONField(default=dict, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        verbose_name_plural = "audit entries"
        indexes = [models.Index(fields=["tenant", "-created_at"], name="audit_tenant_recent")]

    def __str__(self) -> str:
        return f"{self.actor_name} {self.action} {self.target}"
