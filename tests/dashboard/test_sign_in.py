"""Signing in at /app/login: members only, rate limited, password reset by email, tenant switch."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client

from core.scoping import tenant_scope
from core.shared_redis import redis_client_forget
from tenants.models import Membership
from tests.dashboard.conftest import PASSWORD

pytestmark = pytest.mark.django_db

# No tenant data behind these (tests/test_architecture.py).
PUBLIC_ROUTES = {
    "login",
    "logout",
    "password-reset",
    "password-reset/sent",
    "password-reset/<uidb64>/<token>",
    "password-reset/done",
    "switch-tenant",
}


def sign_in(client: Client, username: str, password: str = PASSWORD, **extra):
    return client.post("/app/login", {"username": username, "password": password}, **extra)


def test_the_site_root_and_app_send_anonymous_visitors_to_sign_in(client):
    assert client.get("/").headers["Location"] == "/app/"
    response = client.get("/app/calls/?status=ANSWER")

    assert response.status_code == 302
    assert response.headers["Location"] == "/app/login?next=/app/calls/%3Fstatus%3DANSWER"


def test_a_member_signs_in_and_sees_the_overview(client, tenant, make_member):
    make_member(tenant, "owner", username="ada")

    response = sign_in(client, "ada")
    overview = client.get("/app/")

    assert response.status_code == 302 and response.headers["Location"] == "/app/"
    assert overview.status_code == 200
    assert "<h1>Overview</h1>" in overview.text and "Acme" in overview.text
    assert client.session["tenant_id"] == tenant.pk


def test_a_wrong_password_is_refused_with_a_form_error(client, tenant, make_member):
    make_member(tenant, "owner", username="ada")

    response = sign_in(client, "ada", "wrong")

    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.text
    assert "_auth_user_id" not in client.session


def test_an_agent_or_a_user_without_membership_cannot_sign_in(client, tenant, make_member):
    make_member(tenant, "agent", username="priya")
    get_user_model().objects.create_user(username="nobody", password=PASSWORD)

    for username in ("priya", "nobody"):
        response = sign_in(client, username)
        assert response.status_code == 200
        assert "no dashboard access" in response.text
        assert "_auth_user_id" not in client.session


def test_sign_in_attempts_are_rate_limited_per_username_and_address(
    client, tenant, make_member, settings
):
    settings.LOGIN_ATTEMPTS_PER_WINDOW = 3
    make_member(tenant, "owner", username="ada")
    for _ in range(3):
        sign_in(client, "ada", "guess")

    blocked = sign_in(client, "ada")  # even the right password, until the window passes
    other_address = sign_in(Client(), "ada", REMOTE_ADDR="203.0.113.9")

    assert "Too many sign-in attempts" in blocked.text
    assert "_auth_user_id" not in client.session
    assert other_address.status_code == 302


@pytest.fixture
def counters_down(settings):
    """The rate counters' Redis is unreachable (nothing listens on port 1)."""
    redis_client_forget()
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    yield
    redis_client_forget()


def test_sign_in_still_works_when_the_rate_limit_store_is_down(
    client, tenant, make_member, counters_down
):
    make_member(tenant, "owner", username="ada")

    assert sign_in(client, "ada").status_code == 302


def test_a_member_resets_a_forgotten_password_by_email(client, tenant, make_member):
    make_member(tenant, "admin", username="ada", email="ada@acme.example")

    sent = client.post("/app/password-reset", {"email": "ada@acme.example"})
    [message] = mail.outbox
    link = re.search(r"http://testserver(/app/password-reset/\S+)", message.body).group(1)
    form = client.get(link, follow=True)
    done = client.post(
        form.redirect_chain[-1][0],
        {"new_password1": "a-new-long-passphrase", "new_password2": "a-new-long-passphrase"},
    )

    assert sent.headers["Location"] == "/app/password-reset/sent"
    assert message.to == ["ada@acme.example"]
    assert "Choose a new password" in form.text
    assert done.headers["Location"] == "/app/password-reset/done"
    assert sign_in(Client(), "ada", "a-new-long-passphrase").status_code == 302


def test_a_member_of_two_tenants_switches_tenant(client, tenant, other_tenant, make_member):
    user = make_member(tenant, "viewer", username="ada")
    make_member(other_tenant, "owner", username="ada")
    client.force_login(user)

    first = client.get("/app/")
    switched = client.post("/app/switch-tenant", {"tenant": other_tenant.pk}, follow=True)

    assert first.context["membership"].tenant == tenant
    assert 'name="tenant"' in first.text and "Globex (owner)" in first.text
    assert switched.context["membership"].tenant == other_tenant
    assert switched.context["can_configure"] is True
    assert "Now working in Globex." in switched.text


def test_a_member_cannot_switch_to_a_tenant_they_do_not_belong_to(
    client, tenant, other_tenant, make_member
):
    client.force_login(make_member(tenant, "admin", username="ada"))

    response = client.post("/app/switch-tenant", {"tenant": other_tenant.pk}, follow=True)

    assert response.context["membership"].tenant == tenant
    assert "You are not a member of that tenant." in response.text


def test_a_removed_membership_no_longer_opens_its_tenant(client, tenant, other_tenant, make_member):
    user = make_member(tenant, "admin", username="ada")
    make_member(other_tenant, "admin", username="ada")
    client.force_login(user)
    client.post("/app/switch-tenant", {"tenant": other_tenant.pk})
    with tenant_scope(other_tenant):
        Membership.objects.filter(user=user).delete()

    response = client.get("/app/")

    assert response.context["membership"].tenant == tenant


def test_signing_out_ends_the_session(admin_client):
    admin_client.post("/app/logout")

    assert admin_client.get("/app/").status_code == 302
