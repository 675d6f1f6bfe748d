"""Reads for tenants, memberships and API keys."""

import hmac

from django.contrib.auth.models import AbstractBaseUser

from core.hashing import PREFIX_LENGTH, hash_secret
from core.scoping import across_all_tenants
from tenants import key_cache
from tenants.models import ApiKey, Membership, tenant_settings_paths


def api_key_find(plaintext: str, *, shared: bool = False) -> ApiKey | None:
    """Return the key (revoked or not) whose plaintext this is, with its tenant, or None.

    `shared`: the caller only reads them (key_cache.KeyCache.find).
    """
    return key_cache.keys.find(plaintext, _api_key_load, shared=shared)


def _api_key_load(plaintext: str) -> ApiKey | None:
    # A key arrives before we know its tenant: the lookup is by its globally unique prefix.
    with across_all_tenants():
        api_key = (
            ApiKey.objects.select_related("tenant", *tenant_settings_paths("tenant__"))
            .filter(prefix=plaintext[:PREFIX_LENGTH])
            .first()
        )
    if api_key is None or not hmac.compare_digest(api_key.secret_hash, hash_secret(plaintext)):
        return None
    return api_key


# Roles that may use the dashboard at /app/; agents use the softphone their CRM opens instead.
DASHBOARD_ROLES = (Membership.Role.OWNER, Membership.Role.ADMIN, Membership.Role.VIEWER)


def dashboard_memberships(user: AbstractBaseUser) -> list[Membership]:
    """The user's memberships that open the dashboard, oldest first, with their tenants."""
    # A signed-in user arrives before we know the tenant: this is an auth lookup.
    with across_all_tenants():
        return list(
            Membership.objects.select_related("tenant")
            .filter(user_id=user.pk, role__in=DASHBOARD_ROLES, tenant__is_active=True)
            .order_by("created_at", "pk")
        )
