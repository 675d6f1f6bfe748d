"""Settings and team: tenant settings, invitations by email, roles, removal, the audit log."""

import re
import secrets

import pytest
from django.contrib.auth import get_user_model
from django.core import mail

from core.scoping import tenant_scope
from tenants.models import AuditEntry, Membership
from tenants.services import audit_record

pytestmark = pytest.mark.django_db

ISOLATED_ROUTES = {
    "settings/",
    "settings/invite",
    "settings/members/<int:pk>/role",
    "settings/members/<int:pk>/remove",
    "settings/audit",
}


def token() -> str:
    return secrets.token_urlsafe(16)


@pytest.fixture
def owner_client(member_client, tenant):
    return member_client(tenant, "owner")


def membership_of(tenant, username: str) -> Membership:
    with tenant_scope(tenant):
        return Membership.objects.get(user__username=username)


def test_settings_are_saved_with_the_apis_validation_and_audited(admin_client, tenant):
    response = admin_client.post(
        "/app/settings/",
        {
            "submit_token": token(),
            "default_region": "tr",
            "timezone": "Europe/Istanbul",
            "shared_number_policy": "owner",
            "recordings_keep": "copy",
            "recordings_retention_days": "90",
        },
    )

    assert response.status_code == 302
    tenant.refresh_from_db()
    assert (tenant.default_region, tenant.timezone) == ("TR", "Europe/Istanbul")
    assert tenant.phonebook_settings.shared_number_policy == "owner"
    assert (tenant.recording_settings.keep, tenant.recording_settings.retention_days) == (
        "copy",
        90,
    )
    with tenant_scope(tenant):
        entry = AuditEntry.objects.get()
    assert entry.action == "tenant.update"
    assert entry.changes["timezone"] == ["Europe/London", "Europe/Istanbul"]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("default_region", "XX", "is not an ISO 3166 region code"),
        ("timezone", "Mars/Olympus", "is not an IANA time zone"),
        ("shared_number_policy", "random", "Select a valid choice"),
        ("recordings_retention_days", "0", "greater than or equal to 1"),
    ],
)
def test_bad_settings_are_errors_beside_their_field(admin_client, tenant, field, value, message):
    form = {"default_region": "GB", "timezone": "UTC", "shared_number_policy": "first_match",
            "recordings_keep": "link"}  # fmt: skip
    response = admin_client.post("/app/settings/", {**form, field: value, "submit_token": token()})

    assert response.status_code == 200
    assert message in " ".join(response.context["settings_form"].errors[field])
    tenant.refresh_from_db()
    assert tenant.timezone == "Europe/London"


def test_an_owner_invites_a_new_user_who_sets_a_password_from_the_email(
    owner_client, client, tenant
):
    response = owner_client.post(
        "/app/settings/invite",
        {"submit_token": token(), "email": "Grace@Acme.example", "role": "admin"},
    )

    assert response.status_code == 302
    user = get_user_model().objects.get(email="Grace@acme.example")
    assert not user.has_usable_password()
    assert membership_of(tenant, user.username).role == "admin"
    (email,) = mail.outbox
    assert email.to == ["Grace@acme.example"] and "Acme" in email.subject
    link = re.search(r"https?://\S+/app/password-reset/\S+", email.body).group(0)
    path = link.split("://", 1)[1].split("/", 1)[1]
    form = client.get(f"/{path}", follow=True)
    set_password = client.post(
        form.redirect_chain[-1][0],
        {"new_password1": "a-long-new-passphrase-9", "new_password2": "a-long-new-passphrase-9"},
    )
    assert set_password.status_code == 302
    assert client.login(username=user.username, password="a-long-new-passphrase-9")


def test_an_existing_user_is_added_without_a_new_account(
    owner_client, tenant, other_tenant, make_member
):
    make_member(other_tenant, "viewer", username="linus", email="linus@globex.example")

    owner_client.post(
        "/app/settings/invite",
        {"submit_token": token(), "email": "linus@globex.example", "role": "viewer"},
    )
    again = owner_client.post(
        "/app/settings/invite",
        {"submit_token": token(), "email": "linus@globex.example", "role": "admin"},
    )

    assert get_user_model().objects.filter(email="linus@globex.example").count() == 1
    assert membership_of(tenant, "linus").role == "viewer"
    assert "is a member already" in " ".join(again.context["invite_form"].errors["email"])


def test_a_double_submitted_invitation_adds_one_member(owner_client, tenant):
    form = {"submit_token": token(), "email": "ada@acme.example", "role": "viewer"}

    owner_client.post("/app/settings/invite", form)
    second = owner_client.post("/app/settings/invite", form)

    assert "already submitted" in second.text
    with tenant_scope(tenant):
        assert Membership.objects.filter(user__email="ada@acme.example").count() == 1
    assert len(mail.outbox) == 1


def test_an_owner_changes_roles_but_never_leaves_the_tenant_without_an_owner(
    owner_client, tenant, make_member
):
    make_member(tenant, "viewer", username="ada")
    ada = membership_of(tenant, "ada")
    me = membership_of(tenant, "owner-acme")

    owner_client.post(f"/app/settings/members/{ada.pk}/role", {"role": "admin"})
    demote_last = owner_client.post(
        f"/app/settings/members/{me.pk}/role", {"role": "viewer"}, follow=True
    )
    remove_last = owner_client.post(f"/app/settings/members/{me.pk}/remove", follow=True)
    bad_role = owner_client.post(f"/app/settings/members/{ada.pk}/role", {"role": "agent"})

    assert membership_of(tenant, "ada").role == "admin"
    assert (
        "keeps at least one owner" in demote_last.text
        and "keeps at least one owner" in remove_last.text
    )
    assert membership_of(tenant, "owner-acme").role == "owner"
    assert bad_role.status_code == 302 and membership_of(tenant, "ada").role == "admin"


def test_an_owner_removes_a_member_after_confirming(owner_client, tenant, make_member):
    make_member(tenant, "admin", username="ada")
    ada = membership_of(tenant, "ada")

    confirm = owner_client.get(f"/app/settings/members/{ada.pk}/remove")
    owner_client.post(f"/app/settings/members/{ada.pk}/remove")

    assert "Remove ada from Acme?" in confirm.text
    with tenant_scope(tenant):
        assert not Membership.objects.filter(user__username="ada").exists()
        assert AuditEntry.objects.filter(action="member.remove", target="ada").exists()
    assert get_user_model().objects.filter(username="ada").exists()


def test_only_owners_manage_the_team_and_see_the_audit_log(admin_client, viewer_client, tenant):
    admin = membership_of(tenant, "admin-acme")
    page = admin_client.get("/app/settings/")
    refused = [
        admin_client.post(
            "/app/settings/invite",
            {"submit_token": token(), "email": "x@acme.example", "role": "owner"},
        ),
        admin_client.post(f"/app/settings/members/{admin.pk}/role", {"role": "owner"}),
        admin_client.post(f"/app/settings/members/{admin.pk}/remove"),
        admin_client.get("/app/settings/audit"),
        viewer_client.post("/app/settings/", {"submit_token": token(), "timezone": "UTC"}),
    ]

    assert "Only owners manage the team." in page.text and "Send invitation" not in page.text
    assert [r.status_code for r in refused] == [403] * len(refused)
    assert membership_of(tenant, "admin-acme").role == "admin"


def test_a_viewer_sees_the_settings_without_a_form(viewer_client):
    page = viewer_client.get("/app/settings/")

    assert "Europe/London" in page.text and "Save settings" not in page.text


def test_the_audit_log_pages_and_filters_by_action(owner_client, tenant):
    with tenant_scope(tenant):
        for i in range(60):
            audit_record(tenant=tenant, actor=None, action="agent.create", target=f"agent {i}")
        audit_record(tenant=tenant, actor=None, action="api_key.revoke", target="cbs_12345678")

    first = owner_client.get("/app/settings/audit")
    second = owner_client.get("/app/settings/audit", {"page": 2})
    revokes = owner_client.get("/app/settings/audit", {"action": "api_key.revoke"})
    none = owner_client.get("/app/settings/audit", {"action": "nothing.like.this"})

    assert first.context["actions"] == ["agent.create", "api_key.revoke"]
    assert len(first.context["page"].object_list) == 50 and "cbs_12345678" in first.text
    assert len(second.context["page"].object_list) == 11 and "Page 2 of 2" in second.text
    assert [e.target for e in revokes.context["page"]] == ["cbs_12345678"]
    assert "No changes with this action" in none.text


def test_another_tenants_member_sees_and_changes_none_of_the_team(
    member_client, other_tenant, tenant, make_member
):
    other_owner = member_client(other_tenant, "owner")
    make_member(tenant, "admin", username="ada-of-acme")
    ada = membership_of(tenant, "ada-of-acme")
    with tenant_scope(tenant):
        audit_record(tenant=tenant, actor=None, action="acme.secret", target="acme thing")

    page = other_owner.get("/app/settings/")
    audit_page = other_owner.get("/app/settings/audit")
    responses = [
        other_owner.post(f"/app/settings/members/{ada.pk}/role", {"role": "viewer"}),
        other_owner.get(f"/app/settings/members/{ada.pk}/remove"),
        other_owner.post(f"/app/settings/members/{ada.pk}/remove"),
    ]
    other_owner.post(
        "/app/settings/invite",
        {"submit_token": token(), "email": "eve@globex.example", "role": "owner"},
    )

    assert "ada-of-acme" not in page.text and 'value="Europe/London"' not in page.text
    assert "acme.secret" not in audit_page.text
    assert [r.status_code for r in responses] == [404] * len(responses)
    assert membership_of(tenant, "ada-of-acme").role == "admin"
    with tenant_scope(tenant):
        assert not Membership.objects.filter(user__email="eve@globex.example").exists()
