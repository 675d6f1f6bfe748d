import hashlib
import time

import pytest
from django.db import connection
from rest_framework.test import APIClient

from core.scoping import tenant_scope
from tenants.models import ApiKey
from tenants.services import api_key_create, api_key_revoke, api_key_rotate

pytestmark = pytest.mark.django_db


def bearer(plaintext: str, **extra) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}", **extra)
    return client


def error_of(response) -> dict:
    return response.json()["error"]


def test_it_stores_only_a_hash_of_the_secret(tenant):
    api_key, plaintext = api_key_create(tenant=tenant, kind=ApiKey.Kind.SERVER)

    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM tenants_apikey WHERE id = %s", [api_key.pk])
        stored_row = " ".join(str(value) for value in cursor.fetchone())
    secret_part = plaintext.split("_", 2)[2]
    assert secret_part not in stored_row
    assert api_key.secret_hash == hashlib.sha256(plaintext.encode()).hexdigest()
    assert plaintext.startswith(api_key.prefix) and api_key.prefix.startswith("cbs_")


def test_it_never_returns_the_secret_after_creation(tenant):
    plaintext = api_key_create(tenant=tenant, kind=ApiKey.Kind.SERVER)[1]

    body = bearer(plaintext).get("/api/v1/me").content.decode()

    assert plaintext not in body
    assert plaintext[:12] in body


def test_it_authenticates_a_server_key(tenant):
    plaintext = api_key_create(tenant=tenant, kind=ApiKey.Kind.SERVER)[1]

    response = bearer(plaintext).get("/api/v1/me")

    assert response.status_code == 200
    assert response.json()["tenant"]["slug"] == "acme"
    assert response.json()["key"]["kind"] == "server"


def test_it_refuses_a_revoked_key_at_once(tenant):
    api_key, plaintext = api_key_create(tenant=tenant, kind=ApiKey.Kind.SERVER)
    client = bearer(plaintext)
    assert client.get("/api/v1/me").status_code == 200

    api_key_revoke(api_key=api_key)
    response = client.get("/api/v1/me")

    assert response.status_code == 401
    assert "revoked" in error_of(response)["message"]


def test_it_replaces_a_rotated_key(tenant):
    api_key, old = api_key_create(tenant=tenant, kind=ApiKey.Kind.SERVER, scopes=["agents:read"])

    new_key, new = api_key_rotate(api_key=api_key)

    assert bearer(old).get("/api/v1/agents").status_code == 401
    assert bearer(new).get("/api/v1/agents").status_code == 200
    assert new_key.scopes == ["agents:read"] and new_key.prefix != api_key.prefix


def test_it_refuses_a_browser_key_on_the_rest_api(tenant):
    plaintext = api_key_create(tenant=tenant, kind=ApiKey.Kind.BROWSER)[1]

    response = bearer(plaintext).get("/api/v1/me")

    assert response.status_code == 403
    assert error_of(response)["code"] == "wrong_key_kind"


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (None, "not_authenticated"),
        ("Bearer", "authentication_failed"),
        ("Token abc", "authentication_failed"),
        ("Bearer cbs_NoSuchKy_whatever", "authentication_failed"),
        ("Bearer " + "x" * 5000, "authentication_failed"),
    ],
)
def test_it_answers_401_for_missing_or_bad_keys(tenant, header, code):
    client = APIClient()
    if header:
        client.credentials(HTTP_AUTHORIZATION=header)

    response = client.get("/api/v1/me")

    assert response.status_code == 401
    assert response.json() == {"error": {"code": code, "message": ANY_TEXT, "field": None}}
    assert response["WWW-Authenticate"].startswith("Bearer")


class _AnyText:
    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and len(other) > 5


ANY_TEXT = _AnyText()


def test_it_refuses_keys_of_a_deactivated_tenant(tenant):
    plaintext = api_key_create(tenant=tenant, kind=ApiKey.Kind.SERVER)[1]
    tenant.is_active = False
    tenant.save()

    assert bearer(plaintext).get("/api/v1/me").status_code == 403


def test_it_allows_only_listed_addresses(tenant):
    plaintext = api_key_create(
        tenant=tenant, kind=ApiKey.Kind.SERVER, allowed_cidrs=["203.0.113.0/24", "2001:db8::/32"]
    )[1]

    inside = bearer(plaintext, REMOTE_ADDR="203.0.113.7").get("/api/v1/me")
    inside_v6 = bearer(plaintext, REMOTE_ADDR="2001:db8::1").get("/api/v1/me")
    outside = bearer(plaintext, REMOTE_ADDR="198.51.100.1").get("/api/v1/me")

    assert inside.status_code == 200, inside.json()
    assert inside_v6.status_code == 200
    assert outside.status_code == 403
    assert error_of(outside)["code"] == "ip_not_allowed"
    assert "198.51.100.1" in error_of(outside)["message"]


def test_it_ignores_a_forged_forwarded_for_without_trusted_proxies(tenant):
    plaintext = api_key_create(
        tenant=tenant, kind=ApiKey.Kind.SERVER, allowed_cidrs=["203.0.113.0/24"]
    )[1]
    client = bearer(plaintext, REMOTE_ADDR="198.51.100.1", HTTP_X_FORWARDED_FOR="203.0.113.7")

    assert client.get("/api/v1/me").status_code == 403


def test_it_reads_the_client_address_from_a_trusted_proxy(tenant, settings):
    settings.NUM_PROXIES = 1
    plaintext = api_key_create(
        tenant=tenant, kind=ApiKey.Kind.SERVER, allowed_cidrs=["203.0.113.0/24"]
    )[1]
    forwarded = "198.51.100.9, 203.0.113.7"  # first hop forged by the client, last by our proxy
    client = bearer(plaintext, REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=forwarded)

    assert client.get("/api/v1/me").status_code == 200


def test_it_rejects_bad_cidrs_and_allowlists_on_browser_keys(tenant):
    with pytest.raises(ValueError, match="not an IP address"):
        api_key_create(tenant=tenant, kind=ApiKey.Kind.SERVER, allowed_cidrs=["10.0.0.0/33"])
    with pytest.raises(ValueError, match="Only server keys"):
        api_key_create(tenant=tenant, kind=ApiKey.Kind.BROWSER, allowed_cidrs=["10.0.0.0/8"])
    with pytest.raises(ValueError, match="Unknown scope"):
        api_key_create(tenant=tenant, kind=ApiKey.Kind.SERVER, scopes=["everything"])


def test_it_limits_a_key_to_its_scopes(tenant):
    plaintext = api_key_create(tenant=tenant, kind=ApiKey.Kind.SERVER, scopes=["agents:read"])[1]
    client = bearer(plaintext)

    assert client.get("/api/v1/agents").status_code == 200
    denied_write = client.post("/api/v1/agents", {"crm_username": "a.1"}, format="json")
    denied_other = client.get("/api/v1/tenant")

    assert denied_write.status_code == 403
    assert error_of(denied_write)["code"] == "missing_scope"
    assert "agents:write" in error_of(denied_write)["message"]
    assert denied_other.status_code == 403


def test_it_lets_a_write_scope_read_too(tenant):
    plaintext = api_key_create(tenant=tenant, kind=ApiKey.Kind.SERVER, scopes=["agents:write"])[1]

    assert bearer(plaintext).get("/api/v1/agents").status_code == 200


def test_it_rate_limits_per_key(tenant):
    limited = api_key_create(tenant=tenant, kind=ApiKey.Kind.SERVER, rate_limit_per_minute=3)[1]
    unlimited = api_key_create(tenant=tenant, kind=ApiKey.Kind.SERVER)[1]
    client = bearer(limited)

    statuses = [client.get("/api/v1/me").status_code for _ in range(4)]
    refused = client.get("/api/v1/me")

    assert statuses == [200, 200, 200, 429]
    assert error_of(refused)["code"] == "rate_limited"
    assert 1 <= int(refused["Retry-After"]) <= 61
    assert bearer(unlimited).get("/api/v1/me").status_code == 200


def test_it_records_when_a_key_was_last_used(tenant):
    api_key, plaintext = api_key_create(tenant=tenant, kind=ApiKey.Kind.SERVER)
    assert api_key.last_used_at is None

    bearer(plaintext).get("/api/v1/me")

    with tenant_scope(tenant):
        api_key.refresh_from_db()
    assert api_key.last_used_at is not None


@pytest.mark.parametrize("on_redis", [True, False], ids=["redis", "local-memory cache"])
def test_the_rate_counter_counts_and_expires(settings, on_redis):
    from core.shared_redis import count_hit, redis_client

    if on_redis:
        redis_client().delete("callbridge:test-counter")
    else:
        settings.REDIS_URL = ""
        settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

    counts = [count_hit("test-counter", ttl=1) for _ in range(3)]
    time.sleep(1.2)

    assert counts == [1, 2, 3]
    assert count_hit("test-counter", ttl=1) == 1
