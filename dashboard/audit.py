"""The audit call every dashboard write makes (after its service succeeded)."""

from django.http import HttpRequest

from tenants.authentication import client_ip
from tenants.models import AuditEntry
from tenants.services import audit_record


def audit(
    request: HttpRequest, action: str, target: object = "", changes: dict | None = None
) -> AuditEntry:
    """Record `action` ("<resource>.<verb>") on `target` by the signed-in member."""
    return audit_record(
        tenant=request.tenant,
        actor=request.user,
        action=action,
        target=str(target),
        changes=changes,
        ip=client_ip(request),
    )
