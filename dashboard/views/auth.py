"""Signing in and out, password reset by email, and switching tenant."""

from __future__ import annotations

import hashlib
import logging
import time
from typing import Any, cast

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.models import AbstractBaseUser, User
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse_lazy
from django.views.decorators.http import require_POST

from core.shared_redis import count_hit
from dashboard.access import SESSION_TENANT
from tenants.authentication import client_ip
from tenants.selectors import dashboard_memberships

logger = logging.getLogger(__name__)


class LoginForm(AuthenticationForm):
    """Django's login form, rate limited per username and address, for dashboard members."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "rate_limited": "Too many sign-in attempts. Wait %(minutes)s minutes and try again.",
        "no_dashboard": "This account has no dashboard access. Ask your tenant's owner to add "
        "you as a viewer, admin or owner.",
    }

    def clean(self) -> dict[str, Any]:
        if self.data.get("username") and login_attempts_exceeded(
            self.data["username"], client_ip(self.request) if self.request else ""
        ):
            raise forms.ValidationError(
                self.error_messages["rate_limited"],
                code="rate_limited",
                params={"minutes": settings.LOGIN_ATTEMPT_WINDOW_SECONDS // 60},
            )
        return super().clean()

    def confirm_login_allowed(self, user: User) -> None:
        super().confirm_login_allowed(user)
        if not dashboard_memberships(user):
            raise forms.ValidationError(self.error_messages["no_dashboard"], code="no_dashboard")


def login_attempts_exceeded(username: str, ip: str) -> bool:
    """Count a sign-in attempt for this username and address; True past the limit.

    Fails open: with the counter store down, sign-in works unthrottled rather than not at all.
    """
    window = settings.LOGIN_ATTEMPT_WINDOW_SECONDS
    who = hashlib.sha256(f"{username.strip().lower()}|{ip}".encode()).hexdigest()[:24]
    try:
        count = count_hit(f"ratelimit:login:{who}:{int(time.time() // window)}", ttl=window + 60)
    except Exception:
        logger.warning("Login rate limit unavailable; allowing the attempt", exc_info=True)
        return False
    return count > int(settings.LOGIN_ATTEMPTS_PER_WINDOW)


class LoginView(auth_views.LoginView):
    template_name = "dashboard/auth/login.html"
    authentication_form = LoginForm
    redirect_authenticated_user = True


class LogoutView(auth_views.LogoutView):
    next_page = "dashboard:login"


class PasswordResetView(auth_views.PasswordResetView):
    template_name = "dashboard/auth/password_reset_form.html"
    email_template_name = "dashboard/auth/password_reset_email.txt"
    subject_template_name = "dashboard/auth/password_reset_subject.txt"
    success_url = reverse_lazy("dashboard:password-reset-sent")


class PasswordResetDoneView(auth_views.PasswordResetDoneView):
    template_name = "dashboard/auth/password_reset_sent.html"


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "dashboard/auth/password_reset_confirm.html"
    success_url = reverse_lazy("dashboard:password-reset-complete")


class PasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    template_name = "dashboard/auth/password_reset_complete.html"


@require_POST
@login_required(login_url="dashboard:login")
def tenant_switch(request: HttpRequest) -> HttpResponse:
    """Make another of the user's tenants the session's tenant."""
    chosen = request.POST.get("tenant", "")
    memberships = dashboard_memberships(cast(AbstractBaseUser, request.user))
    membership = next((m for m in memberships if str(m.tenant_id) == chosen), None)
    if membership is None:
        messages.error(request, "You are not a member of that tenant.")
    else:
        request.session[SESSION_TENANT] = membership.tenant_id
        messages.success(request, f"Now working in {membership.tenant.name}.")
    return redirect("dashboard:overview")
