"""Callbacks: where call results are pushed, the signing secret, a test send, the deliveries."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpResponse, QueryDict
from django.shortcuts import redirect
from django.utils import timezone
from django.views.decorators.http import require_POST

from calls import alerts, deliveries, selectors, services
from calls.models import CallbackSettings, Delivery
from core import http
from dashboard.access import MemberRequest, member_required
from dashboard.audit import audit
from dashboard.forms import SubmitOnceForm
from dashboard.htmx import render_page
from dashboard.views.calls import number_filter
from tenants import services as tenant_services
from tenants.api import TenantSerializer
from tenants.models import Tenant

DELIVERIES_PER_PAGE = 20


class CallbackSettingsForm(SubmitOnceForm):
    callback_url = forms.CharField(
        required=False,
        max_length=500,
        label="Callback URL",
        help_text="Each ended call's result is POSTed here as JSON (seed 002). Empty: none.",
        widget=forms.URLInput(attrs={"placeholder": "https://crm.example.com/callbridge/calls"}),
    )
    callback_auth_header = forms.CharField(
        required=False,
        max_length=100,
        label="Auth header",
        help_text="Sent on every callback, e.g. Authorization or X-Api-Key.",
    )
    callback_auth_value = forms.CharField(
        required=False,
        max_length=2000,
        label="Auth header value",
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Write-only. Leave empty to keep the value saved now.",
    )
    clear_auth_value = forms.BooleanField(required=False, label="Remove the saved value")

    def __init__(self, data: QueryDict | None = None, *, tenant: Tenant) -> None:
        initial = {
            "callback_url": tenant.callback_settings.url,
            "callback_auth_header": tenant.callback_settings.auth_header,
        }
        super().__init__(data, initial=initial)
        self.tenant = tenant
        self.changes: dict[str, Any] = {}  # the checked changes, once valid

    def clean(self) -> dict[str, Any]:
        """Check with the API's own rules (PATCH /api/v1/tenant), SSRF guard included."""
        data = self.cleaned_data
        if self.errors:
            return data
        changes = {
            "callback_url": data["callback_url"],
            "callback_auth_header": data["callback_auth_header"],
        }
        if data["clear_auth_value"]:
            changes["callback_auth_value"] = ""
        elif data["callback_auth_value"]:
            changes["callback_auth_value"] = data["callback_auth_value"]
        checked = TenantSerializer(self.tenant, data=changes, partial=True)
        if not checked.is_valid():
            for field, problems in checked.errors.items():
                self.add_error(field if field in self.fields else None, problems)
        if not self.errors:
            self.changes = dict(checked.validated_data)
        return data


class DeliveryFilters(forms.Form):
    state = forms.ChoiceField(
        required=False, choices=[("", "Any state"), *Delivery.State.choices], label="State"
    )
    number = forms.CharField(required=False, max_length=40, label="Customer number")


def _page(request: MemberRequest, form: CallbackSettingsForm, **extra: object) -> HttpResponse:
    tenant = request.tenant
    filters = DeliveryFilters(request.GET or None)
    selection = {}
    if filters.is_valid():
        selection = {
            "state": filters.cleaned_data["state"] or None,
            "number": number_filter(filters.cleaned_data["number"], tenant.default_region),
        }
    page = Paginator(
        selectors.delivery_list(**selection).prefetch_related("attempts"), DELIVERIES_PER_PAGE
    ).get_page(request.GET.get("page"))
    grace_ends = tenant.callback_settings.previous_signing_secret_expires_at
    outage = alerts.callback_outage() if tenant.callback_settings.url else None
    context = {
        "settings_form": form,
        "filters": filters,
        "page": page,
        "is_filtered": bool(request.GET),
        "has_auth_value": bool(tenant.callback_settings.auth_value),
        "has_signing_secret": bool(tenant.callback_settings.signing_secret),
        "previous_secret_until": grace_ends if grace_ends and grace_ends > timezone.now() else None,
        "grace_hours": int(services.SIGNING_SECRET_GRACE.total_seconds() // 3600),
        "outage": outage if tenant.callback_settings.paused_at is None else None,
        "paused": tenant.callback_settings,
        "held": Delivery.objects.filter(state=Delivery.State.HELD).count(),
        "outage_answer": alerts.outage_answer(outage) if outage else "",
        "outage_alerted": outage is not None
        and outage.since == tenant.callback_settings.alerted_for,
        **extra,
    }
    response = render_page(
        request,
        "dashboard/callbacks/index.html",
        "dashboard/callbacks/_deliveries.html",
        context,
    )
    if "new_secret" in extra:
        response["Cache-Control"] = "no-store"  # the secret is shown in this answer only
    return response


@member_required
def callbacks(request: MemberRequest) -> HttpResponse:
    return _page(request, CallbackSettingsForm(tenant=request.tenant))


@require_POST
@member_required
def settings_save(request: MemberRequest) -> HttpResponse:
    tenant = request.tenant
    form = CallbackSettingsForm(request.POST, tenant=tenant)
    if not form.is_valid():
        return _page(request, form)
    changes = form.changes["callback_settings"]
    before = {name: getattr(tenant.callback_settings, name) for name in changes}
    tenant_services.tenant_update(tenant=tenant, callback_settings=changes)
    api_names = {field: name for name, field in CallbackSettings.API_FIELDS.items()}
    changed = {api_names[n]: [before[n], v] for n, v in changes.items() if before[n] != v}
    if changed:
        audit(request, "callback.update", "Callback settings", changed)
    messages.success(request, "Callback settings saved." if changed else "Nothing changed.")
    return redirect("dashboard:callbacks")


@require_POST
@member_required
def resume(request: MemberRequest) -> HttpResponse:
    """Turn paused call results back on: the held ones are sent, oldest first."""
    if request.tenant.callback_settings.paused_at is None:
        messages.info(request, "Call results are not paused.")
        return redirect("dashboard:callbacks")
    released = deliveries.callbacks_resume(tenant=request.tenant)
    audit(request, "callback.resume", "Callbacks", {"released": released})
    messages.success(request, f"Call results resumed: {released} held result(s) are being sent.")
    return redirect("dashboard:callbacks")


@require_POST
@member_required
def signing_secret_rotate(request: MemberRequest) -> HttpResponse:
    had_secret = bool(request.tenant.callback_settings.signing_secret)
    secret = services.signing_secret_rotate(tenant=request.tenant)
    audit(request, "signing_secret.rotate" if had_secret else "signing_secret.create", "Callbacks")
    return _page(request, CallbackSettingsForm(tenant=request.tenant), new_secret=secret)


@require_POST
@member_required
def test_send(request: MemberRequest) -> HttpResponse:
    """Send an example callback now and show what the receiver answered."""
    if not request.tenant.callback_settings.url:
        messages.error(request, "Set a callback URL first.")
        return redirect("dashboard:callbacks")
    outcome = deliveries.callback_test_send(tenant=request.tenant)
    audit(request, "callback.test", request.tenant.callback_settings.url)
    test: dict[str, object] = {"url": request.tenant.callback_settings.url}
    if isinstance(outcome, http.HttpResponse):
        test |= {
            "ok": 200 <= outcome.status_code < 300,
            "answer": f"HTTP {outcome.status_code}",
            "latency_ms": outcome.latency_ms,
            "excerpt": outcome.excerpt,
        }
    else:
        test |= {"ok": False, "answer": outcome.error_class, "excerpt": str(outcome)}
    return _page(request, CallbackSettingsForm(tenant=request.tenant), test=test)
