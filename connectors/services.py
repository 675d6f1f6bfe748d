"""Writes for connections: create, change, delete, and asking for a sync."""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse

from connectors.interface import ConnectionConfig, Connector, ConnectorError, Cursor
from connectors.models import Connection
from connectors.registry import connector_for
from contacts.models import Contact
from core import http
from core.scoping import tenant_scope
from tenants.models import Tenant

OAUTH_STATE_SALT = "connectors.oauth-state"
OAUTH_STATE_SECONDS = 600
TEST_SECONDS = 5.0  # a connection test's whole budget
TEST_NUMBER = "+14155550100"  # a fictional number, for CRMs tested by a phone search


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


def oauth_start(*, connection: Connection, redirect_uri: str = "") -> str:
    """The CRM's consent URL, with a signed single-use `state` naming this connection.

    `redirect_uri`: where the CRM sends the browser back (the API's callback unless given,
    e.g. the dashboard's); it travels in the signed state, as the code grant needs it again.
    """
    redirect_uri = redirect_uri or _redirect_uri()
    nonce = secrets.token_urlsafe(16)
    state = signing.dumps(
        {
            "tenant": connection.tenant_id,
            "connection": connection.pk,
            "nonce": nonce,
            "redirect_uri": redirect_uri,
        },
        salt=OAUTH_STATE_SALT,
    )
    cache.set(f"oauth-state:{nonce}", connection.pk, timeout=OAUTH_STATE_SECONDS)
    try:
        return connector_for_connection(connection).authorization_url(
            state=state, redirect_uri=redirect_uri
        )
    except ConnectorError as error:
        raise ValidationError({"credentials": str(error)}) from None


def oauth_complete(*, state: str, code: str, tenant: Tenant | None = None) -> Connection:
    """Check the callback's state (signed, fresh, unused, of `tenant` when given), then trade
    the code for tokens."""
    try:
        claims = signing.loads(state, salt=OAUTH_STATE_SALT, max_age=OAUTH_STATE_SECONDS)
    except signing.BadSignature:
        raise ValidationError(
            {"state": "Unknown or expired state; start connecting again."}
        ) from None
    if tenant is not None and claims["tenant"] != tenant.pk:
        raise ValidationError({"state": "This state belongs to another tenant."})
    if not cache.delete(f"oauth-state:{claims['nonce']}"):
        raise ValidationError({"state": "This state was used already; start connecting again."})
    redirect_uri = claims.get("redirect_uri") or _redirect_uri()
    with tenant_scope(claims["tenant"]):
        connection = Connection.objects.get(pk=claims["connection"])
        try:
            connector_for_connection(connection).connect(code=code, redirect_uri=redirect_uri)
        except ConnectorError as error:
            Connection.objects.filter(pk=connection.pk).update(
                status=Connection.Status.NEEDS_ATTENTION, last_error=str(error)
            )
            raise ValidationError({"code": str(error)}) from None
        return connection_update(
            connection=Connection.objects.get(pk=connection.pk), status="active"
        )


def connection_test(*, connection: Connection) -> str:
    """Reach the CRM once with the stored credentials, within TEST_SECONDS; say what answered.

    Asks for records changed from now on (an empty page) or, for a CRM that syncs nothing, a
    phone search. Raises ConnectorError with the CRM's refusal or the network error.
    """
    connector = connector_for_connection(connection)
    # One attempt, no waiting out rate limits: a person is looking at the page.
    connector.client.deadline_seconds = TEST_SECONDS
    connector.client.max_attempts = 1
    started = time.monotonic()
    with http.deadline(TEST_SECONDS):
        object_types = connector.object_types()
        if object_types:
            now_ms = int(time.time() * 1000)
            connector.changed_since(object_types[0], Cursor(since_ms=now_ms))
            checked = f"read its {object_types[0]}"
        else:
            connector.find_by_phone(TEST_NUMBER)
            checked = "searched it by phone"
    seconds = time.monotonic() - started
    return f"{connection.get_provider_display()} answered: {checked} in {seconds:.1f} s."


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
