"""The audit call every dashboard write makes (after its service succeeded)."""

from collections.abc import Mapping
from typing import cast

from django.contrib.auth.models import AbstractUser

from dashboard.access import MemberRequest
from tenants.authentication import client_ip
from tenants.models import AuditEntry
from tenants.services import audit_record


def audit(
    request: MemberRequest,
    action: str,
    target: object = "",
    changes: Mapping[str, object] | None = None,
) -> AuditEntry:
    """Record `action` ("<resource>.<verb>") on `target` by the signed-in member."""
    return audit_record(
        tenant=request.tenant,
        actor=cast(AbstractUser, request.user),
        action=action,
        target=str(target),
        changes=changes,
        ip=client_ip(request),
    )
