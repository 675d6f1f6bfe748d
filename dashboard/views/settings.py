"""Settings and team: region, time zone, shared-number policy; members and roles; audit log."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.forms import PasswordResetForm
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from calls.models import RecordingSettings
from contacts.models import PhonebookSettings
from dashboard.access import member_required, requires_role
from dashboard.audit import audit
from dashboard.confirm import confirm_page
from dashboard.form_errors import add_errors
from dashboard.forms import SubmitOnceForm, form_changes
from tenants.api import TenantSerializer
from tenants.models import AuditEntry, Membership, Tenant
from tenants.selectors import DASHBOARD_ROLES
from tenants.services import (
    TeamError,
    member_invite,
    membership_remove,
    membership_role_change,
    tenant_update,
)

AUDIT_PAGE_SIZE = 50
ROLE_CHOICES = [(role.value, role.label) for role in DASHBOARD_ROLES]
ROLE_HELP = "Owners manage the team; admins configure; viewers only read."


class TenantSettingsForm(SubmitOnceForm):
    default_region = forms.CharField(
        max_length=2,
        help_text="ISO 3166 code (GB, US, TR): reads numbers written without a country code.",
    )
    timezone = forms.CharField(
        max_length=64, help_text="IANA zone such as Europe/London: business-hours rules use it."
    )
    shared_number_policy = forms.ChoiceField(
        label="When several contacts share a number",
        choices=PhonebookSettings.SharedNumberPolicy.choices,
        help_text="Which contact is “the” caller for lookups, routing and call logging.",
    )
    contacts_update_from_calls = forms.BooleanField(
        label="Update contacts from calls",
        required=False,
        help_text="Each ended call sets its caller's last call time, outcome and call count.",
    )
    recordings_keep = forms.ChoiceField(
        label="Call recordings",
        choices=RecordingSettings.Keep.choices,
        help_text="A copy in our storage keeps working when the phone system's link expires.",
    )
    recordings_retention_days = forms.IntegerField(
        label="Delete recordings after (days)",
        required=False,
        min_value=1,
        max_value=3650,
        help_text="Empty: keep them. Deleted recordings' links answer that they were deleted.",
    )


class InviteForm(SubmitOnceForm):
    email = forms.EmailField(max_length=150)  # it becomes a new user's username
    role = forms.ChoiceField(choices=ROLE_CHOICES, initial="viewer", help_text=ROLE_HELP)


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=ROLE_CHOICES)


def send_invite_email(request: HttpRequest, user: AbstractBaseUser, new_user: bool) -> None:
    """Mail the user a one-time link to set their password (Django's password-reset tokens)."""
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    path = reverse(
        "dashboard:password-reset-confirm",
        kwargs={"uidb64": uid, "token": default_token_generator.make_token(user)},
    )
    context = {
        "tenant": request.tenant,
        "inviter": request.user,
        "username": user.get_username(),
        "url": f"{settings.PUBLIC_BASE_URL}{path}",
        "login_url": f"{settings.PUBLIC_BASE_URL}{reverse('dashboard:login')}",
        "new_user": new_user,
    }
    PasswordResetForm().send_mail(
        "dashboard/settings/invite_subject.txt",
        "dashboard/settings/invite_email.txt",
        context,
        None,
        user.email,
    )


def save_tenant_settings(request: HttpRequest, form: forms.Form, action: str) -> bool:
    """Validate the form's tenant settings as PATCH /api/v1/tenant does, save and audit them."""
    data = {k: v for k, v in form.cleaned_data.items() if k != "submit_token"}
    serializer = TenantSerializer(request.tenant, data=data, partial=True)
    if not serializer.is_valid():
        add_errors(form, serializer.errors)
        return False
    try:
        tenant_update(tenant=request.tenant, **serializer.validated_data)
    except ValidationError as error:
        add_errors(form, error)
        return False
    audit(request, action, request.tenant, form_changes(form))
    return True


def _settings_initial(tenant: Tenant) -> dict:
    return {
        "default_region": tenant.default_region,
        "timezone": tenant.timezone,
        "shared_number_policy": tenant.phonebook_settings.shared_number_policy,
        "contacts_update_from_calls": tenant.phonebook_settings.update_from_calls,
        "recordings_keep": tenant.recording_settings.keep,
        "recordings_retention_days": tenant.recording_settings.retention_days,
    }


def _page(request: HttpRequest, **context: object) -> HttpResponse:
    context.setdefault(
        "settings_form", TenantSettingsForm(initial=_settings_initial(request.tenant))
    )
    context.setdefault("invite_form", InviteForm())
    members = Membership.objects.select_related("user").order_by("created_at", "pk")
    return render(
        request,
        "dashboard/settings/index.html",
        {"members": members, "role_choices": ROLE_CHOICES, **context},
    )


@member_required
def settings_page(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return _page(request)
    form = TenantSettingsForm(request.POST, initial=_settings_initial(request.tenant))
    if form.is_valid() and save_tenant_settings(request, form, "tenant.update"):
        messages.success(request, "Settings saved.")
        return redirect("dashboard:settings")
    return _page(request, settings_form=form)


@requires_role("owner")
def settings_invite(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return redirect("dashboard:settings")
    form = InviteForm(request.POST)
    if form.is_valid():
        try:
            membership, created = member_invite(
                tenant=request.tenant,
                email=form.cleaned_data["email"],
                role=form.cleaned_data["role"],
            )
        except TeamError as error:
            form.add_error("email", str(error))
        else:
            send_invite_email(request, membership.user, created)
            audit(request, "member.invite", membership.user.email, {"role": membership.role})
            new = "an invitation to set a password" if created else "a link to sign in"
            messages.success(
                request, f"{membership.user.email} added as {membership.role}; {new} was emailed."
            )
            return redirect("dashboard:settings")
    return _page(request, invite_form=form)


@requires_role("owner")
def settings_member_role(request: HttpRequest, pk: int) -> HttpResponse:
    membership = get_object_or_404(Membership.objects.select_related("user"), pk=pk)
    form = RoleForm(request.POST or None)
    if request.method != "POST" or not form.is_valid():
        messages.error(request, "Choose owner, admin or viewer.")
        return redirect("dashboard:settings")
    before = membership.role
    try:
        membership_role_change(membership=membership, role=form.cleaned_data["role"])
    except TeamError as error:
        messages.error(request, str(error))
    else:
        audit(request, "member.role", membership.user, {"role": [before, membership.role]})
        messages.success(request, f"{membership.user} is now {membership.role}.")
    return redirect("dashboard:settings")


@requires_role("owner")
def settings_member_remove(request: HttpRequest, pk: int) -> HttpResponse:
    membership = get_object_or_404(Membership.objects.select_related("user"), pk=pk)
    if request.method != "POST":
        return confirm_page(
            request,
            title=f"Remove {membership.user} from {request.tenant.name}?",
            text="They can no longer sign in to this tenant's dashboard. Their user "
            "account stays (it may belong to other tenants).",
            button="Remove member",
            cancel_url="dashboard:settings",
        )
    try:
        membership_remove(membership=membership)
    except TeamError as error:
        messages.error(request, str(error))
    else:
        audit(request, "member.remove", membership.user, {"role": membership.role})
        messages.success(request, f"{membership.user} removed.")
    return redirect("dashboard:settings")


@requires_role("owner")
def settings_audit(request: HttpRequest) -> HttpResponse:
    """Every configuration change, newest first, filterable by action (owners only)."""
    entries = AuditEntry.objects.order_by("-created_at", "-pk")
    actions = sorted(set(AuditEntry.objects.values_list("action", flat=True).distinct()))
    action = request.GET.get("action", "")
    if action:
        entries = entries.filter(action=action)
    page = Paginator(entries, AUDIT_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "dashboard/settings/audit.html",
        {"page": page, "actions": actions, "action": action},
    )
