"""Writes for tenants, memberships, API keys, agents and the audit log."""

import ipaddress
import secrets
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from core.hashing import PREFIX_LENGTH, hash_secret
from core.scoping import tenant_scope
from tenants import signals
from tenants.models import Agent, ApiKey, AuditEntry, Membership, Tenant, tenant_settings_models

KEY_TAGS: dict[str, str] = {ApiKey.Kind.SERVER: "cbs", ApiKey.Kind.BROWSER: "cbb"}
_PREFIX_ALPHABET = string.ascii_letters + string.digits


# What a server key can be limited to: "<resource>:read" or "<resource>:write" (write implies read).
# An endpoint names its resource (`api_scope` on the view); add new resources here.
API_SCOPE_RESOURCES = (
    "tenant",
    "agents",
    "numbers",
    "contacts",
    "lookup",
    "routing",
    "calls",
    "connections",
    "apps",
)
API_SCOPES = tuple(f"{r}:{a}" for r in API_SCOPE_RESOURCES for a in ("read", "write"))


def validate_scopes(scopes: Iterable[str]) -> list[str]:
    scopes = sorted(set(scopes))
    unknown = [s for s in scopes if s not in API_SCOPES]
    if unknown:
        raise ValueError(f"Unknown scope(s) {', '.join(unknown)}; known: {', '.join(API_SCOPES)}.")
    return scopes


def parse_cidrs(cidrs: Iterable[str]) -> list[str]:
    """Return the CIDRs in canonical form, or raise ValueError naming the bad one."""
    parsed = []
    for cidr in cidrs:
        try:
            parsed.append(str(ipaddress.ip_network(str(cidr).strip(), strict=False)))
        except ValueError as error:
            raise ValueError(
                f"'{cidr}' is not an IP address or CIDR range such as 203.0.113.0/24."
            ) from error
    return parsed


def api_key_create(
    *,
    tenant: Tenant,
    kind: str,
    name: str = "",
    scopes: Iterable[str] = (),
    allowed_cidrs: Iterable[str] = (),
    rate_limit_per_minute: int | None = None,
    plaintext: str | None = None,
) -> tuple[ApiKey, str]:
    """Create a key and return it with its plaintext, which is never available again.

    `plaintext` is for the demo seed only, so its printed demo keys stay the same across runs.
    """
    cidrs = parse_cidrs(allowed_cidrs)
    if cidrs and kind != ApiKey.Kind.SERVER:
        raise ValueError("Only server keys can be limited to IP addresses.")
    if plaintext is None:
        random_part = "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(8))
        plaintext = f"{KEY_TAGS[kind]}_{random_part}_{secrets.token_urlsafe(32)}"
    api_key = ApiKey(
        tenant=tenant,
        kind=kind,
        name=name,
        prefix=plaintext[:PREFIX_LENGTH],
        secret_hash=hash_secret(plaintext),
        scopes=validate_scopes(scopes),
        allowed_cidrs=cidrs,
        rate_limit_per_minute=rate_limit_per_minute,
    )
    api_key.save()
    return api_key, plaintext


def api_key_revoke(*, api_key: ApiKey) -> None:
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])


@transaction.atomic
def api_key_rotate(*, api_key: ApiKey) -> tuple[ApiKey, str]:
    """Revoke a key and issue a replacement with the same kind, scopes and limits."""
    api_key_revoke(api_key=api_key)
    return api_key_create(
        tenant=api_key.tenant,
        kind=api_key.kind,
        name=api_key.name,
        scopes=api_key.scopes,
        allowed_cidrs=api_key.allowed_cidrs,
        rate_limit_per_minute=api_key.rate_limit_per_minute,
    )


@dataclass(frozen=True)
class Onboarding:
    tenant: Tenant
    owner: AbstractUser
    owner_password: str
    server_key: str
    browser_key: str

    def as_dict(self) -> dict:
        return {
            "tenant": {"id": self.tenant.pk, "name": self.tenant.name, "slug": self.tenant.slug},
            "server_key": self.server_key,
            "browser_key": self.browser_key,
            "admin": {"username": self.owner.get_username(), "password": self.owner_password},
        }


@transaction.atomic
def tenant_onboard(
    *, name: str, slug: str = "", default_region: str = "US", timezone_name: str = "UTC"
) -> Onboarding:
    """Create a tenant with its owner user, one browser key and one server key."""
    slug = slug or slugify(name)[:64]
    if not slug:
        raise ValueError("The tenant name must contain at least one letter or digit.")
    if Tenant.objects.filter(slug=slug).exists():
        raise ValueError(f"A tenant with slug '{slug}' already exists.")
    tenant = Tenant(name=name, slug=slug, default_region=default_region, timezone=timezone_name)
    tenant.full_clean()
    tenant.save()
    username = f"{slug}-owner"
    if get_user_model().objects.filter(username=username).exists():
        raise ValueError(f"A user named '{username}' already exists.")
    password = secrets.token_urlsafe(12)
    owner = get_user_model().objects.create_user(username=username, password=password)
    with tenant_scope(tenant):
        Membership.objects.create(tenant=tenant, user=owner, role=Membership.Role.OWNER)
        _, server_key = api_key_create(tenant=tenant, kind=ApiKey.Kind.SERVER, name="server")
        _, browser_key = api_key_create(tenant=tenant, kind=ApiKey.Kind.BROWSER, name="browser")
    return Onboarding(tenant, owner, password, server_key, browser_key)


@transaction.atomic
def tenant_update(*, tenant: Tenant, **fields: Any) -> Tenant:
    """Change the tenant's own fields and its contexts' settings, all or nothing.

    A context's settings come as a dict under its row's name (as PATCH /api/v1/tenant
    validates them): tenant_update(tenant=t, timezone="Europe/London",
    routing_settings={"deadline_ms": 500}).
    """
    rows = {model.related_name() for model in tenant_settings_models()}
    for name, changes in fields.items():
        if name in rows:
            row = getattr(tenant, name)
            for field, value in changes.items():
                setattr(row, field, value)
            row.full_clean()
            row.save(update_fields=[*changes])
    own = {name: value for name, value in fields.items() if name not in rows}
    if own:
        for name, value in own.items():
            setattr(tenant, name, value)
        tenant.full_clean()
        tenant.save(update_fields=[*own])
    return tenant


class TeamError(ValueError):
    """A team change that is not allowed (the last owner, a member twice)."""


@transaction.atomic
def member_invite(*, tenant: Tenant, email: str, role: str) -> tuple[Membership, bool]:
    """Make the user with this email a member with `role`, creating the user if needed.

    Returns (membership, whether the user is new: it has no password yet). Runs inside
    tenant_scope(tenant), like the other team changes.
    """
    email = get_user_model().objects.normalize_email(email.strip())
    user = get_user_model().objects.filter(email__iexact=email).order_by("pk").first()
    created = user is None
    if created:
        if get_user_model().objects.filter(username__iexact=email).exists():
            raise TeamError(f"A user named {email} exists with another address.")
        user = get_user_model().objects.create_user(username=email, email=email)
    elif Membership.objects.filter(user=user).exists():
        raise TeamError(f"{email} is a member already; change their role instead.")
    membership = Membership(tenant=tenant, user=user, role=role)
    membership.full_clean(exclude=["user"])
    membership.save()
    return membership, created


@transaction.atomic
def membership_role_change(*, membership: Membership, role: str) -> Membership:
    if membership.role == Membership.Role.OWNER and role != Membership.Role.OWNER:
        _keep_an_owner(membership)
    membership.role = role
    membership.full_clean(exclude=["user"])
    membership.save(update_fields=["role"])
    return membership


@transaction.atomic
def membership_remove(*, membership: Membership) -> None:
    if membership.role == Membership.Role.OWNER:
        _keep_an_owner(membership)
    membership.delete()


def _keep_an_owner(membership: Membership) -> None:
    # Lock every owner row: two owners removing each other at once cannot both succeed.
    owners = Membership.objects.select_for_update().filter(role=Membership.Role.OWNER)
    if not [owner for owner in owners if owner.pk != membership.pk]:
        raise TeamError("A tenant keeps at least one owner: make someone else owner first.")


def agent_create(*, tenant: Tenant, **fields: object) -> Agent:
    agent = Agent(tenant=tenant, **fields)
    agent.full_clean()
    agent.save()
    return agent


def agent_update(*, agent: Agent, **fields: object) -> Agent:
    for name, value in fields.items():
        setattr(agent, name, value)
    agent.full_clean()
    agent.save()
    return agent


def agent_delete(*, agent: Agent) -> None:
    """Remove the agent; its calls, contacts and routing rules keep no link to it (SET_NULL)."""
    agent.delete()


# A change to a field whose name contains one of these is recorded as changed, never its value.
SECRET_FIELD_MARKERS = ("secret", "password", "token", "credential", "auth_value", "key")
REDACTED = "(changed)"


def audit_record(
    *,
    tenant: Tenant,
    actor: AbstractUser | None,
    action: str,
    target: str = "",
    changes: Mapping[str, object] | None = None,
    ip: str | None = None,
) -> AuditEntry:
    """Record one configuration change; values of secret-looking fields are never stored.

    `action` is "<resource>.<verb>" (agent.create, callback.update); `changes` maps a field to
    [before, after] (or to the new value for a create).
    """
    entry = AuditEntry(
        tenant=tenant,
        actor=actor,
        actor_name=actor.get_username() if actor else "",
        action=action,
        target=target[:300],
        changes=_redacted(changes or {}),
        ip=ip or None,
    )
    entry.save()
    return entry


def _redacted(changes: Mapping[str, object]) -> dict[str, object]:
    return {
        name: REDACTED
        if any(marker in name.lower() for marker in SECRET_FIELD_MARKERS)
        else (_redacted(value) if isinstance(value, dict) else value)
        for name, value in changes.items()
    }


def owners_tell(*, tenant: Tenant, subject: str, body: str) -> int:
    """Email the tenant's owners (dashboard members with an email), and announce it for the
    tenant's other channels (signals.owners_alerted); how many owners were written to."""
    owners = Membership.objects.filter(tenant=tenant, role=Membership.Role.OWNER)
    emails = sorted({m.user.email for m in owners.select_related("user") if m.user.email})
    if emails:
        send_mail(f"CallBridge: {subject}", body, None, emails)
    signals.owners_alerted.send(sender=Tenant, tenant=tenant, subject=subject, body=body)
    return len(emails)
