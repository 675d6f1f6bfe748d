"""API keys: create server and browser keys (the secret shown once), scopes, limits, revoke."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from dashboard.access import member_required
from dashboard.audit import audit
from dashboard.confirm import confirm_page
from dashboard.forms import SubmitOnceForm
from tenants.models import ApiKey
from tenants.services import API_SCOPES, api_key_create, api_key_revoke

MAX_RATE_LIMIT = 100_000


class ApiKeyForm(SubmitOnceForm):
    name = forms.CharField(max_length=100, help_text="What uses it, e.g. “CRM backend”.")
    kind = forms.ChoiceField(
        choices=ApiKey.Kind.choices,
        initial=ApiKey.Kind.SERVER,
        widget=forms.RadioSelect,
        help_text="Server keys call the REST API; browser keys only open the click-to-call URL.",
    )
    scopes = forms.MultipleChoiceField(
        required=False,
        choices=[(scope, scope) for scope in API_SCOPES],
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: every scope. Write implies read.",
    )
    allowed_cidrs = forms.CharField(
        label="IP allowlist",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Server keys only: addresses or ranges (203.0.113.0/24), one a line. "
        "Empty: any address.",
    )
    rate_limit_per_minute = forms.IntegerField(
        label="Rate limit (requests a minute)",
        required=False,
        min_value=1,
        max_value=MAX_RATE_LIMIT,
        help_text="Empty: the platform default.",
    )

    def key_options(self) -> dict:
        data = self.cleaned_data
        return {
            "kind": data["kind"],
            "name": data["name"],
            "scopes": data["scopes"],
            "allowed_cidrs": [line for line in data["allowed_cidrs"].split() if line],
            "rate_limit_per_minute": data["rate_limit_per_minute"],
        }


def _page(request: HttpRequest, form: ApiKeyForm, **context: object) -> HttpResponse:
    keys = ApiKey.objects.order_by("revoked_at", "-created_at")
    return render(request, "dashboard/api_keys/index.html", {"keys": keys, "form": form, **context})


@member_required
def api_keys(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return _page(request, ApiKeyForm())
    form = ApiKeyForm(request.POST)
    if form.is_valid():
        options = form.key_options()
        try:
            api_key, plaintext = api_key_create(tenant=request.tenant, **options)
        except ValueError as error:
            form.add_error("allowed_cidrs", str(error))  # scopes and kind are choices
        else:
            audit(request, "api_key.create", api_key, options)
            messages.success(request, f"Key “{api_key.name}” created.")
            response = _page(request, ApiKeyForm(), new_key=api_key, secret=plaintext)
            response["Cache-Control"] = "no-store"
            return response
    return _page(request, form)


@member_required
def api_key_revoke_view(request: HttpRequest, pk: int) -> HttpResponse:
    api_key = get_object_or_404(ApiKey, pk=pk)
    if request.method != "POST":
        return confirm_page(
            request,
            title=f"Revoke the key “{api_key.name or api_key.prefix}”?",
            text=f"{api_key.prefix}… stops working on its next request. This cannot be "
            "undone; create a new key to replace it.",
            button="Revoke key",
            cancel_url="dashboard:api-keys",
        )
    api_key_revoke(api_key=api_key)
    audit(request, "api_key.revoke", api_key)
    messages.success(request, f"Key {api_key.prefix}… revoked.")
    return redirect("dashboard:api-keys")
