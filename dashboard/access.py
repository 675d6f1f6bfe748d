"""Who may see and change what in the dashboard: members, their role, the current tenant.

Every dashboard view is wrapped in `member_required` (reads; any write method still needs a
configuring role) or `requires_role("admin" | "owner")`. Either one:
- sends anonymous visitors to the login page;
- picks the tenant from `request.session["tenant_id"]`, checked against the user's memberships
  (the oldest membership when unset or no longer valid);
- sets `request.membership` and `request.tenant`, and runs the view inside `tenant_scope(tenant)`,
  the same scoping the API uses, so every tenant-owned query is the current tenant's, with the
  tenant's time zone active;
- answers 403 to a member whose role is too low, whatever the page showed them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import cast

from django.contrib.auth.models import AbstractBaseUser
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.utils import timezone

from core.scoping import tenant_scope
from dashboard.navigation import PAGES
from tenants.models import Membership, Tenant
from tenants.selectors import dashboard_memberships

SESSION_TENANT = "tenant_id"


class MemberRequest(HttpRequest):
    """What a view wrapped in member_required / requires_role receives (annotate it so)."""

    membership: Membership
    tenant: Tenant
    dashboard_memberships: list[Membership]


# What each role may do, by rank: a view needing "admin" admits admins and owners.
ROLE_RANK: dict[str, int] = {
    Membership.Role.VIEWER: 0,
    Membership.Role.ADMIN: 1,
    Membership.Role.OWNER: 2,
}
CONFIGURE_ROLE = Membership.Role.ADMIN
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}

View = Callable[..., HttpResponseBase]


def has_role(membership: Membership | None, role: str) -> bool:
    return membership is not None and ROLE_RANK.get(membership.role, -1) >= ROLE_RANK[role]


def can_configure(membership: Membership | None) -> bool:
    """Whether the member may change anything (owners and admins; viewers only read)."""
    return has_role(membership, CONFIGURE_ROLE)


def current_membership(request: MemberRequest) -> Membership | None:
    """The signed-in user's membership of the session's tenant (remembered in the session)."""
    memberships = dashboard_memberships(cast(AbstractBaseUser, request.user))
    chosen = request.session.get(SESSION_TENANT)
    membership = next((m for m in memberships if m.tenant_id == chosen), None)
    membership = membership or (memberships[0] if memberships else None)
    if membership is not None and membership.tenant_id != chosen:
        request.session[SESSION_TENANT] = membership.tenant_id
    request.dashboard_memberships = memberships
    return membership


def forbidden(request: HttpRequest, reason: str) -> HttpResponse:
    return render(request, "dashboard/forbidden.html", {"reason": reason}, status=403)


def _member_view(view: View, role: str, write_role: str) -> View:
    @functools.wraps(view)
    def wrapper(request: MemberRequest, *args: object, **kwargs: object) -> HttpResponseBase:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path(), "dashboard:login")
        membership = current_membership(request)
        if membership is None:
            return forbidden(
                request,
                "Your account is not a member of any tenant's dashboard. Ask your tenant's owner "
                "to add you (agents place calls from their CRM instead).",
            )
        needed = write_role if request.method in WRITE_METHODS else role
        if not has_role(membership, needed):
            return forbidden(
                request, f"This needs the {needed} role; you are {membership.role} here."
            )
        request.membership = membership
        request.tenant = membership.tenant
        # Times show in the tenant's zone (with UTC on hover: partials/time.html).
        with tenant_scope(membership.tenant), timezone.override(membership.tenant.timezone):
            return view(request, *args, **kwargs)

    return wrapper


def member_required(view: View) -> View:
    """Any member may read; writing (POST, ...) needs a configuring role (admin or owner)."""
    return _member_view(view, Membership.Role.VIEWER, CONFIGURE_ROLE)


def requires_role(role: str) -> Callable[[View], View]:
    """Only members with at least `role` ("admin" or "owner") may use the view at all."""
    write_role = max(role, CONFIGURE_ROLE, key=ROLE_RANK.__getitem__)
    return lambda view: _member_view(view, role, write_role)


def dashboard_context(request: HttpRequest) -> dict[str, object]:
    """Template context for every dashboard page: the member, their role and the menu."""
    membership = getattr(request, "membership", None)
    if membership is None:  # not a member page (signing in, forbidden)
        return {}
    url_name = request.resolver_match.url_name if request.resolver_match else None
    return {
        "membership": membership,
        "can_configure": can_configure(membership),
        "is_owner": has_role(membership, Membership.Role.OWNER),
        "tenant_choices": cast(MemberRequest, request).dashboard_memberships,
        "nav_pages": [(page, page.is_current(url_name)) for page in PAGES],
    }
