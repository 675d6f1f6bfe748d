"""/api/v1/routing/token: the routing URL for phone systems that can only be given a URL."""

import hashlib

import pytest
from django.db import connection
from rest_framework.test import APIClient

from core.scoping import tenant_scope
from routing.models import RoutingToken

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("unhurried")]


def test_it_generates_a_routing_url_shown_once_and_stored_hashed(api, tenant):
    created = api.post("/api/v1/routing/token")

    assert created.status_code == 201
    url = created.json()["url"]
    token = url.rsplit("/", 1)[1]
    assert url.startswith("http") and "/api/v1/routing/decide/cbr_" in url
    with tenant_scope(tenant):
        stored = RoutingToken.objects.get()
    assert stored.secret_hash == hashlib.sha256(token.encode()).hexdigest()
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM routing_routingtoken")
        assert token[12:] not in " ".join(str(value) for value in cursor.fetchone())
    shown = api.get("/api/v1/routing/token").json()
    assert shown["prefix"] == token[:12] and "url" not in shown


def test_it_replaces_the_url_when_regenerated(api, tenant):
    old = api.post("/api/v1/routing/token").json()["url"].rsplit("/", 1)[1]
    new = api.post("/api/v1/routing/token").json()["url"].rsplit("/", 1)[1]
    phone_system = APIClient()

    answer = phone_system.post(f"/api/v1/routing/decide/{new}", {"caller": "+44"}, format="json")
    refused = phone_system.post(f"/api/v1/routing/decide/{old}", {"caller": "+44"}, format="json")

    assert answer.status_code == 200
    assert refused.status_code == 404


def test_it_turns_the_url_off(api, tenant, make_token):
    token = make_token(tenant)

    assert api.delete("/api/v1/routing/token").status_code == 204

    refused = APIClient().post(f"/api/v1/routing/decide/{token}", {}, format="json")
    assert refused.status_code == 404
    assert api.get("/api/v1/routing/token").status_code == 404


def test_a_routing_url_opens_nothing_but_decisions(tenant, make_token):
    token = make_token(tenant)
    phone_system = APIClient()
    phone_system.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")

    assert phone_system.get("/api/v1/routing/rules").status_code == 401
    assert phone_system.post("/api/v1/routing/decide", {}, format="json").status_code == 401


def test_staff_generate_a_routing_url_in_the_admin(admin_client, tenant):
    response = admin_client.post(
        "/admin/routing/routingtoken/add/", {"tenant": tenant.pk}, follow=True
    )

    assert response.status_code == 200
    shown = [str(m) for m in response.context["messages"]]
    assert any("/api/v1/routing/decide/cbr_" in message for message in shown)
    with tenant_scope(tenant):
        assert RoutingToken.objects.count() == 1
