"""Keys remembered per process (tenants/key_cache.py): fast, yet every change is seen at once."""

import pytest
from rest_framework.test import APIClient

from core.shared_redis import redis_client
from tenants import key_cache
from tenants.models import ApiKey
from tenants.selectors import _api_key_load
from tenants.services import api_key_create, api_key_revoke

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("generations")]


@pytest.fixture(autouse=True)
def _forget_keys():
    key_cache.keys.clear()
    yield
    key_cache.keys.clear()


@pytest.fixture
def server_key(tenant) -> tuple[ApiKey, str]:
    return api_key_create(tenant=tenant, kind=ApiKey.Kind.SERVER)


class CountingLoader:
    def __init__(self) -> None:
        self.loads = 0

    def __call__(self, plaintext: str) -> ApiKey | None:
        self.loads += 1
        return _api_key_load(plaintext)


def me(plaintext: str) -> int:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    return client.get("/api/v1/me").status_code


def test_it_reads_a_key_from_the_database_once_while_nothing_changes(server_key):
    load = CountingLoader()

    found = [key_cache.keys.find(server_key[1], load) for _ in range(3)]

    assert load.loads == 1
    assert {api_key.pk for api_key in found} == {server_key[0].pk}


def test_it_hands_each_caller_its_own_key_and_tenant(server_key):
    first = key_cache.keys.find(server_key[1], _api_key_load)
    first.tenant.default_region = "TR"  # a service that failed half way

    second = key_cache.keys.find(server_key[1], _api_key_load)

    assert second is not first and second.tenant is not first.tenant
    assert second.tenant.default_region == "GB"


def test_readers_that_only_read_share_the_remembered_key(server_key):
    key_cache.keys.find(server_key[1], _api_key_load)

    first = key_cache.keys.find(server_key[1], _api_key_load, shared=True)
    second = key_cache.keys.find(server_key[1], _api_key_load, shared=True)

    assert first is second and first.tenant is second.tenant
    assert key_cache.keys.find(server_key[1], _api_key_load) is not first


def test_it_never_remembers_a_wrong_secret(server_key):
    load = CountingLoader()
    wrong = server_key[1][:-4] + "xxxx"

    assert key_cache.keys.find(server_key[1], load) is not None
    assert key_cache.keys.find(wrong, load) is None
    assert key_cache.keys.find(wrong, load) is None
    assert load.loads == 3


def test_a_revoked_key_is_refused_on_the_next_request(server_key):
    assert me(server_key[1]) == 200

    api_key_revoke(api_key=server_key[0])

    assert me(server_key[1]) == 401


def test_a_deactivated_tenant_is_refused_on_the_next_request(tenant, server_key):
    assert me(server_key[1]) == 200

    tenant.is_active = False
    tenant.save()

    assert me(server_key[1]) == 403


def test_a_revocation_read_before_its_commit_is_forgotten_when_it_commits(
    server_key, django_capture_on_commit_callbacks
):
    api_key, plaintext = server_key
    old_row = _api_key_load(plaintext)
    with django_capture_on_commit_callbacks(execute=True):
        api_key_revoke(api_key=api_key)
        # Another process reads the key before the revocation commits: it sees the old row.
        key_cache.keys.find(plaintext, lambda _: old_row)

    assert me(plaintext) == 401


def test_a_flushed_redis_forgets_every_remembered_key(settings, server_key):
    settings.GENERATION_LISTENER = False  # a listener hears changes, not flushes
    load = CountingLoader()
    key_cache.keys.find(server_key[1], load)

    redis_client().flushdb()
    key_cache.keys.find(server_key[1], load)

    assert load.loads == 2


def test_it_remembers_nothing_without_redis(settings, server_key):
    settings.REDIS_URL = ""
    load = CountingLoader()

    for _ in range(2):
        key_cache.keys.find(server_key[1], load)

    assert load.loads == 2


def test_requests_to_unthrottled_endpoints_leave_the_rate_limit_alone(tenant):
    plaintext = api_key_create(tenant=tenant, kind=ApiKey.Kind.SERVER, rate_limit_per_minute=2)[1]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")

    for _ in range(3):  # telephony events are not rate limited
        assert client.post("/api/v1/telephony/events", {}, format="json").status_code != 429

    assert [client.get("/api/v1/me").status_code for _ in range(3)] == [200, 200, 429]
