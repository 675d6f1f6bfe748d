"""Dashboard test helpers: members with a role, signed-in clients, a signed-in browser."""

from collections.abc import Callable

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser
from django.test import Client

from calls import deliveries
from calls.models import Call, Delivery
from calls.services import call_hang_up
from core.scoping import tenant_scope
from tenants.models import Membership, Tenant
from tests.calls.conftest import (  # noqa: F401 - calls, a callback receiver and Celery workers
    agent,
    call_body,
    caller_id,
    database_url,
    place_call,
    private_urls,
    processes,
    receiver,
)

PASSWORD = "correct-horse-battery-staple"


@pytest.fixture
def make_member(db) -> Callable[..., AbstractUser]:
    """A user who is a member of `tenant` with `role` (password: PASSWORD)."""

    def make(tenant: Tenant, role: str = "admin", username: str = "", **fields) -> AbstractUser:
        username = username or f"{role}-{tenant.slug}"
        user_model = get_user_model()
        user = user_model.objects.filter(username=username).first()
        if user is None:
            user = user_model.objects.create_user(username=username, password=PASSWORD, **fields)
        with tenant_scope(tenant):
            Membership.objects.create(tenant=tenant, user=user, role=role)
        return user

    return make


@pytest.fixture
def member_client(make_member) -> Callable[..., Client]:
    """A Django test client signed in as a new member of `tenant` with `role`."""

    def make(tenant: Tenant, role: str = "admin", **member_fields) -> Client:
        client = Client()
        client.force_login(make_member(tenant, role, **member_fields))
        return client

    return make


@pytest.fixture
def admin_client(member_client, tenant) -> Client:
    return member_client(tenant, "admin")


@pytest.fixture
def viewer_client(member_client, tenant) -> Client:
    return member_client(tenant, "viewer")


@pytest.fixture
def other_client(member_client, other_tenant) -> Client:
    """An admin of another tenant: must never see or touch `tenant`'s data."""
    return member_client(other_tenant, "admin")


@pytest.fixture
def signed_in_page(chromium, live_server, make_member):
    """A browser page signed in at /app/login as a new member of `tenant` with `role`.

    Fails the test on any browser console error or page error.
    """
    pages = []

    def sign_in(tenant: Tenant, role: str = "admin"):
        user = make_member(tenant, role)
        page = chromium.new_page()
        page.problems = []
        page.on("console", lambda m: page.problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda error: page.problems.append(str(error)))
        page.goto(f"{live_server.url}/app/login")
        page.get_by_label("Username").fill(user.username)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{live_server.url}/app/")
        pages.append(page)
        return page

    yield sign_in
    for page in pages:
        assert page.problems == [], page.problems


@pytest.fixture
def hubspot(settings):
    """A fake HubSpot (250 contacts, 20 companies) on 127.0.0.1, stopped after the test."""
    from fakes.hubspot import FakeHubSpot

    settings.ALLOW_PRIVATE_URLS = True
    fake = FakeHubSpot(contacts=250, companies=20)
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def ended_call(tenant, receiver, place_call, private_urls) -> Call:  # noqa: F811
    """A call of `tenant` that ended, whose callback to `receiver` was attempted once."""
    tenant.callback_settings.url = f"{receiver.url}/callbacks"
    tenant.callback_settings.save()
    with tenant_scope(tenant):
        call = call_hang_up(call=place_call())
        delivery = Delivery.objects.get(call=call)
        deliveries.delivery_attempt(delivery_id=str(delivery.pk))
    return call
