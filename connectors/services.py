"""Writes for connections: create, change, delete, and asking for a sync."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse

from connectors.interface import ConnectionConfig, Connector, ConnectorError
from connectors.models import Connection
from connectors.registry import connector_for
from contacts.models import Contact
from tenants.models import Tenant
from tenants.scoping import tenant_scope

OAUTH_STATE_SALT = "connectors.oauth-state"
OAUTH_STATE_SECONDS = 600


def connection_create(
    *, tenant: Tenant, credentials: Mapping[str, Any], **fields: Any
) -> Connection:
    connection = Connection(tenant=tenant, **fields)
    connection.credentials = dict(credentials)
    connection.full_clean()
    connection.save()
    return connection


def connection_update(
    *, connection: Connection, credentials: Mapping[str, Any] | None = None, **fields: Any
) -> Connection:
    """Change fields; `credentials`, when given, are merged into the stored ones."""
    for name, value in fields.items():
        setattr(connection, name, value)
    if credentials is not None:
        connection.credentials = {**connection.credentials, **credentials}
    if fields.get("status") == Connection.Status.ACTIVE or credentials is not None:
        connection.last_error = ""
        connection.status = fields.get("status", Connection.Status.ACTIVE)
    connection.full_clean()
    connection.save()
    return connection


@transaction.atomic
def connection_delete(*, connection: Connection) -> None:
    """Delete the connection and the contacts synced from it (copies of the CRM's records)."""
    Contact.objects.filter(source_connection_id=connection.pk).delete()
    connection.delete()


def sync_enqueue(*, connection: Connection, kind: str) -> None:
    """Queue a sync of this connection on the bulk queue once the current transaction commits."""
    from connectors.tasks import connection_sync

    args = [connection.tenant_id, connection.pk, kind]
    transaction.on_commit(lambda: connection_sync.apply_async(args=args, queue="bulk"))


def oauth_start(*, connection: Connection) -> str:
    """The CRM's consent URL, with a signed single-use `state` naming this connection."""
    nonce = secrets.token_urlsafe(16)
    state = signing.dumps(
        {"tenant": connection.tenant_id, "connection": connection.pk, "nonce": nonce},
        salt=OAUTH_STATE_SALT,
    )
    cache.set(f"oauth-state:{nonce}", connection.pk, timeout=OAUTH_STATE_SECONDS)
    try:
        return connector_for_connection(connection).authorization_url(
            state=state, redirect_uri=_redirect_uri()
        )
    except ConnectorError as error:
        raise ValidationError({"credentials": str(error)}) from None


def oauth_complete(*, state: str, code: str) -> Connection:
    """Check the callback's state (signed, fresh, unused), then trade the code for tokens."""
    try:
        claims = signing.loads(state, salt=OAUTH_STATE_SALT, max_age=OAUTH_STATE_SECONDS)
    except signing.BadSignature:
        raise ValidationError(
            {"state": "Unknown or expired state; start connecting again."}
        ) from None
    if not cache.delete(f"oauth-state:{claims['nonce']}"):
        raise ValidationError({"state": "This state was used already; start connecting again."})
    with tenant_scope(claims["tenant"]):
        connection = Connection.objects.get(pk=claims["connection"])
        try:
            connector_for_connection(connection).connect(code=code, redirect_uri=_redirect_uri())
        except ConnectorError as error:
            Connection.objects.filter(pk=connection.pk).update(
                status=Connection.Status.NEEDS_ATTENTION, last_error=str(error)
            )
            raise ValidationError({"code": str(error)}) from None
        return connection_update(
            connection=Connection.objects.get(pk=connection.pk), status="active"
        )


def connector_for_connection(connection: Connection) -> Connector:
    """The provider's connector for this connection; new tokens it gets are saved encrypted."""

    def save_credentials(credentials: dict[str, Any]) -> None:
        connection.credentials = credentials
        # update() encrypts through the field, like save().
        Connection.objects.filter(pk=connection.pk).update(
            credentials_json=connection.credentials_json
        )

    config = ConnectionConfig(connection.pk, connection.credentials, connection.settings)
    return connector_for(connection.provider, config, save_credentials)


def _redirect_uri() -> str:
    return settings.PUBLIC_BASE_URL + reverse("connection-oauth-callback")
