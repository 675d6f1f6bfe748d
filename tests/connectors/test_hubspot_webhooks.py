"""HubSpot deletion webhooks: signed with the connection's client secret, deletions at once."""

import base64
import hashlib
import hmac
import json
import time

import pytest

from connectors.hubspot.webhooks import deleted_external_ids, signature_valid
from connectors.services import connection_create
from contacts.models import Contact
from contacts.services import PhoneInput, contact_create
from core.scoping import tenant_scope

pytestmark = pytest.mark.django_db

SECRET = "hubspot-client-secret"
# The shape HubSpot posts: a list of events (developers.hubspot.com/docs/api/webhooks).
DELETION = {
    "eventId": 100,
    "subscriptionId": 2001,
    "portalId": 4212,
    "appId": 3001,
    "occurredAt": 1700000000000,
    "subscriptionType": "contact.deletion",
    "attemptNumber": 0,
    "objectId": 501,
    "changeFlag": "DELETED",
    "changeSource": "CRM_UI",
}


def sign(secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    message = method.encode() + uri.encode() + body + timestamp.encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


@pytest.fixture
def connection(tenant):
    with tenant_scope(tenant):
        connection = connection_create(
            tenant=tenant,
            provider="hubspot",
            name="HubSpot",
            credentials={"private_app_token": "pat-x", "client_secret": SECRET},
        )
        for external_id in ("501", "502", "company:77"):
            contact_create(
                tenant=tenant,
                external_id=external_id,
                source_connection=connection,
                first_name=f"Record {external_id}",
                phones=[PhoneInput("+442045205757", "work")],
            )
    return connection


def post(client, connection, events, *, secret=SECRET, age_ms=0):
    path = f"/api/v1/connections/{connection.pk}/hubspot/webhook"
    body = json.dumps(events).encode()
    timestamp = str(int(time.time() * 1000) - age_ms)
    signature = sign(secret, "POST", f"http://testserver{path}", body, timestamp)
    return client.post(
        path,
        body,
        content_type="application/json",
        HTTP_X_HUBSPOT_SIGNATURE_V3=signature,
        HTTP_X_HUBSPOT_REQUEST_TIMESTAMP=timestamp,
    )


def live_ids(tenant) -> set[str]:
    with tenant_scope(tenant):
        return set(
            Contact.objects.filter(deleted_at__isnull=True).values_list("external_id", flat=True)
        )


def test_a_signed_deletion_soft_deletes_the_contact_and_lookups_stop_finding_it(
    client, api, tenant, connection
):
    company = {**DELETION, "subscriptionType": "company.deletion", "objectId": 77}
    response = post(client, connection, [DELETION, company])

    assert response.status_code == 204
    assert live_ids(tenant) == {"502"}
    card = api.get("/api/v1/lookup", {"number": "+442045205757"}).json()
    assert [m["name"] for m in card["matches"]] == ["Record 502"]


def test_it_ignores_events_that_are_not_deletions(client, tenant, connection):
    change = {**DELETION, "subscriptionType": "contact.propertyChange", "objectId": 502}

    assert post(client, connection, [change]).status_code == 204
    assert live_ids(tenant) == {"501", "502", "company:77"}


@pytest.mark.parametrize(
    "options",
    [{"secret": "another-apps-secret"}, {"age_ms": 6 * 60 * 1000}],
    ids=["wrong secret", "older than 5 minutes"],
)
def test_it_refuses_a_request_hubspot_did_not_sign_now(client, tenant, connection, options):
    response = post(client, connection, [DELETION], **options)

    assert response.status_code == 401
    assert "X-HubSpot-Signature-v3" in response.json()["error"]["message"]
    assert live_ids(tenant) == {"501", "502", "company:77"}


def test_another_tenants_connection_secret_cannot_delete_this_tenants_contacts(
    client, tenant, other_tenant, connection
):
    with tenant_scope(other_tenant):
        theirs = connection_create(
            tenant=other_tenant,
            provider="hubspot",
            name="Theirs",
            credentials={"private_app_token": "pat-y", "client_secret": "their-secret"},
        )
    # Their own connection with their own secret: accepted, but it only reaches their contacts.
    assert post(client, theirs, [DELETION], secret="their-secret").status_code == 204
    # Our connection's URL with their secret: refused.
    assert post(client, connection, [DELETION], secret="their-secret").status_code == 401
    assert live_ids(tenant) == {"501", "502", "company:77"}


def test_it_answers_400_for_a_body_that_is_not_a_list_of_events(client, connection):
    response = post(client, connection, {"objectId": 501})

    assert response.status_code == 400
    assert response.json()["error"]["field"] == "body"


def test_the_signature_check_decodes_the_uri_as_hubspot_signs_it():
    body, timestamp = b"[]", str(int(time.time() * 1000))
    signed_uri = "https://cb.example.com/hook?x=a:b"
    signature = sign(SECRET, "POST", signed_uri, body, timestamp)

    assert signature_valid(
        client_secret=SECRET,
        method="POST",
        uri="https://cb.example.com/hook?x=a%3Ab",
        body=body,
        timestamp=timestamp,
        signature=signature,
        now_ms=int(timestamp),
    )


def test_deleted_external_ids_prefixes_companies_and_skips_unreadable_ids():
    events = [
        DELETION,
        {**DELETION, "subscriptionType": "company.deletion", "objectId": "77"},
        {**DELETION, "objectId": "not-a-number"},
        {**DELETION, "subscriptionType": "contact.privacyDeletion", "objectId": 9},
    ]

    assert deleted_external_ids(events) == ["501", "company:77", "9"]
