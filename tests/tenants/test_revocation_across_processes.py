"""A change is seen by another web process on its very next request, though it checks keys
without asking Redis while its generation listener is healthy (core/shared_redis.py)."""

import time

import pytest
import redis
import requests

from core.shared_redis import redis_client_forget
from tenants.models import ApiKey
from tenants.services import api_key_create, api_key_revoke
from tests.calls.conftest import database_url  # noqa: F401 - the web process uses the test database
from tests.core.test_redis_outage import KNOWN, own_redis, routed, web  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def same_redis(settings, own_redis):  # noqa: F811
    """This process publishes changes on the web process's Redis."""
    settings.REDIS_URL = f"redis://127.0.0.1:{own_redis.port}/0"
    redis_client_forget()
    yield redis.Redis(port=own_redis.port)
    redis_client_forget()


def lookup(web: str, plaintext: str) -> int:  # noqa: F811
    response = requests.get(
        f"{web}/api/v1/lookup",
        params={"number": KNOWN},
        headers={"Authorization": f"Bearer {plaintext}"},
        timeout=5,
    )
    return response.status_code


def remembered(web: str, plaintext: str) -> None:  # noqa: F811
    """The web process has the key in memory and its listener is confirmed healthy."""
    assert [lookup(web, plaintext) for _ in range(3)] == [200, 200, 200]
    time.sleep(0.2)


def test_a_revoked_key_is_refused_by_the_web_process_on_its_next_request(
    web,  # noqa: F811
    routed,  # noqa: F811
    same_redis,
):
    for _ in range(20):
        api_key, plaintext = api_key_create(tenant=routed, kind=ApiKey.Kind.SERVER)
        assert [lookup(web, plaintext) for _ in range(3)] == [200, 200, 200]

        api_key_revoke(api_key=api_key)

        assert lookup(web, plaintext) == 401

    # The web process was listening, not asking Redis for the generation on every request.
    assert same_redis.pubsub_numsub("callbridge:generations:0") == [
        (b"callbridge:generations:0", 1)
    ]


def test_a_deactivated_tenant_is_refused_by_the_web_process_on_its_next_request(
    web,  # noqa: F811
    routed,  # noqa: F811
    same_redis,
):
    plaintext = api_key_create(tenant=routed, kind=ApiKey.Kind.SERVER)[1]
    remembered(web, plaintext)

    routed.is_active = False
    routed.save()

    assert lookup(web, plaintext) == 403


def test_a_listener_that_stopped_hearing_is_not_trusted_after_a_change(
    web,  # noqa: F811
    routed,  # noqa: F811
    same_redis,
):
    api_key, plaintext = api_key_create(tenant=routed, kind=ApiKey.Kind.SERVER)
    remembered(web, plaintext)

    # The web process's subscription is cut: it will not hear the revocation.
    same_redis.client_kill_filter(_type="pubsub")
    api_key_revoke(api_key=api_key)

    assert lookup(web, plaintext) == 401
