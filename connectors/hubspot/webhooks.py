"""HubSpot's webhook: check a request's v3 signature, soft-delete the records it deletes.

Signature v3: https://developers.hubspot.com/docs/api/webhooks/validating-requests
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from django.utils import timezone

from connectors.hubspot.mapping import COMPANY_ID_PREFIX
from connectors.models import Connection
from contacts.models import Contact
from core.scoping import across_all_tenants, tenant_scope

MAX_AGE_MS = 5 * 60 * 1000  # HubSpot: reject a request whose timestamp is older than 5 minutes
# subscriptionType -> how our sync prefixes that object's id (mapping.record_from_object)
DELETIONS = {
    "contact.deletion": "",
    "contact.privacyDeletion": "",
    "company.deletion": COMPANY_ID_PREFIX,
}


def signature_valid(
    *,
    client_secret: str,
    method: str,
    uri: str,
    body: bytes,
    timestamp: str,
    signature: str,
    now_ms: int,
) -> bool:
    """HMAC-SHA256 over method + URI + body + timestamp, base64; fresh within 5 minutes."""
    if not (client_secret and timestamp.isdigit() and signature):
        return False
    if abs(now_ms - int(timestamp)) > MAX_AGE_MS:
        return False
    # HubSpot signs the URI with these characters decoded (its validation guide lists them).
    for encoded in ("%3A", "%2F", "%3F", "%40", "%21", "%24", "%27", "%28", "%29", "%2A", "%2C"):
        uri = uri.replace(encoded, unquote(encoded)).replace(encoded.lower(), unquote(encoded))
    message = method.upper().encode() + uri.encode() + body + timestamp.encode()
    digest = hmac.new(client_secret.encode(), message, hashlib.sha256).digest()
    return hmac.compare_digest(base64.b64encode(digest).decode(), signature)


def deleted_external_ids(events: Any) -> list[str]:
    """Our external ids of the records the deletion events name; other events are ignored.

    ValueError if the body is not HubSpot's list of event objects.
    """
    if not isinstance(events, list) or not all(isinstance(e, Mapping) for e in events):
        raise ValueError("HubSpot sends a JSON list of event objects.")
    found = []
    for event in events:
        prefix = DELETIONS.get(str(event.get("subscriptionType")))
        object_id = event.get("objectId")
        if prefix is not None and isinstance(object_id, int | str) and str(object_id).isdigit():
            found.append(prefix + str(object_id))
    return found


class WebhookRefused(Exception):
    pass


def webhook_receive(
    *, connection_id: int, method: str, uri: str, body: bytes, headers: Mapping[str, str]
) -> int:
    """Check a HubSpot webhook request's signature and soft-delete the records it deletes.

    Answers how many contacts were deleted. WebhookRefused when the connection is unknown or the
    signature (made with the connection's client_secret) does not match; ValueError for a body
    that is not HubSpot's list of events.
    """
    with across_all_tenants():  # the request names a connection, not yet a tenant
        connection = Connection.objects.filter(pk=connection_id, provider="hubspot").first()
    if connection is None:
        raise WebhookRefused("unknown connection")
    valid = signature_valid(
        client_secret=str(connection.credentials.get("client_secret") or ""),
        method=method,
        uri=uri,
        body=body,
        timestamp=headers.get("X-HubSpot-Request-Timestamp", ""),
        signature=headers.get("X-HubSpot-Signature-v3", ""),
        now_ms=int(time.time() * 1000),
    )
    if not valid:
        raise WebhookRefused("bad signature")
    try:
        events = json.loads(body)
    except ValueError as error:
        raise ValueError("The body is not JSON.") from error
    external_ids = deleted_external_ids(events)
    with tenant_scope(connection.tenant_id):
        return Contact.objects.filter(
            source_connection=connection, external_id__in=external_ids, deleted_at__isnull=True
        ).update(deleted_at=timezone.now())
