"""Whatever goes wrong under /api/, the answer is JSON in the one error shape, never a page."""

import pytest
from django.test import Client

from core import hot_path
from tenants import api as tenant_api

pytestmark = pytest.mark.django_db(transaction=True)

NUMBER = "+442045205757"


@pytest.fixture
def client_of(make_key, tenant):
    """A client that answers as production does (no exception raised into the test)."""
    client = Client(raise_request_exception=False)
    return client, {"HTTP_AUTHORIZATION": f"Bearer {make_key(tenant)}", "secure": True}


def assert_error_shape(response, status: int, code: str) -> None:
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == code


@pytest.mark.parametrize("path", ["/api/v1/tenant", f"/api/v1/lookup?number={NUMBER}"])
def test_a_host_we_do_not_serve_is_a_json_400(client_of, path):
    client, headers = client_of

    response = client.get(path, HTTP_HOST="evil.example.com", **headers)

    assert_error_shape(response, 400, "bad_request")
    assert "evil.example.com" not in response.content.decode()


def bug(*args, **kwargs):
    raise RuntimeError("a bug")


# An unexpected error is injected where a bug could be: in a DRF view, in the hot path's
# middleware outside its own handler, and in a view DRF does not run.
def test_a_bug_in_a_drf_view_is_a_json_500(client_of, monkeypatch):
    monkeypatch.setattr(tenant_api.TenantSerializer, "to_representation", bug)
    client, headers = client_of

    assert_error_shape(client.get("/api/v1/tenant", **headers), 500, "server_error")


def test_a_bug_in_the_hot_path_middleware_is_a_json_500(client_of, monkeypatch):
    monkeypatch.setattr(hot_path, "check_connection", bug)
    client, headers = client_of

    response = client.get(f"/api/v1/lookup?number={NUMBER}", **headers)

    assert_error_shape(response, 500, "server_error")


def test_a_bug_in_the_schema_view_is_a_json_500(monkeypatch):
    monkeypatch.setattr("drf_spectacular.generators.SchemaGenerator.get_schema", bug)

    response = Client(raise_request_exception=False).get("/api/schema/")

    assert_error_shape(response, 500, "server_error")
