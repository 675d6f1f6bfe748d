"""Telephony: which engine places the tenant's calls (with its credentials), and which CRM pages
may show the agent's call page in a frame."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from calls.gateways import CHOICES, DEFAULT_ENGINE, GatewayConfigError
from calls.models import GatewayConfig
from calls.services import gateway_config_update
from dashboard.access import MemberRequest, member_required
from dashboard.audit import audit
from dashboard.form_errors import add_errors
from dashboard.forms import SubmitOnceForm
from tenants import services as tenant_services
from tenants.api import TenantSerializer
from tenants.models import Tenant

# Each real engine's own fields on the form: (credentials, settings).
ENGINE_FIELDS = {
    "twilio": (("account_sid", "auth_token"), ()),
    "asterisk": (
        ("username", "password"),
        ("ari_url", "app", "agent_endpoint", "customer_endpoint"),
    ),
}
SHARED_SETTINGS = ("caller_id", "record")  # and agent_ring_seconds: every real engine's
WRITE_ONLY = forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"})


class EngineForm(SubmitOnceForm):
    engine = forms.ChoiceField(
        choices=CHOICES,
        help_text="The simulator plays realistic calls without a phone network; Twilio and "
        "Asterisk place real ones.",
    )
    caller_id = forms.CharField(
        required=False,
        max_length=20,
        label="Caller ID",
        help_text="E.164 number customers see; empty: the call's from_number.",
    )
    agent_ring_seconds = forms.IntegerField(
        min_value=5, max_value=600, initial=20, label="Ring the agent for (seconds)"
    )
    record = forms.BooleanField(required=False, label="Record answered calls")
    account_sid = forms.CharField(
        required=False,
        max_length=34,
        label="Twilio account SID",
        help_text="AC followed by 32 hex digits.",
    )
    auth_token = forms.CharField(
        required=False,
        max_length=200,
        label="Twilio auth token",
        widget=WRITE_ONLY,
        help_text="Write-only. Leave empty to keep the token saved now.",
    )
    ari_url = forms.CharField(
        required=False,
        max_length=200,
        label="Asterisk ARI address",
        help_text="Where ARI is served, e.g. https://pbx.example.com:8089.",
    )
    username = forms.CharField(required=False, max_length=100, label="ARI user")
    password = forms.CharField(
        required=False,
        max_length=200,
        label="ARI password",
        widget=WRITE_ONLY,
        help_text="Write-only. Leave empty to keep the password saved now.",
    )
    app = forms.CharField(
        required=False, max_length=64, initial="callbridge", label="Stasis application"
    )
    agent_endpoint = forms.CharField(
        required=False,
        max_length=100,
        initial="PJSIP/{extension}",
        label="Agent endpoint",
        help_text="{extension} is the agent's extension (else their CRM username).",
    )
    customer_endpoint = forms.CharField(
        required=False,
        max_length=100,
        initial="PJSIP/{number}@trunk",
        label="Customer endpoint",
        help_text="{number} is the customer's E.164 number.",
    )

    def engine_groups(self) -> list[tuple[str, str, list[forms.BoundField]]]:
        """(engine, label, its own fields) for the template's fieldsets."""
        labels = dict(CHOICES)
        return [
            (engine, labels[engine], [self[name] for name in (*credentials, *settings_)])
            for engine, (credentials, settings_) in ENGINE_FIELDS.items()
        ]

    def shared_fields(self) -> list[forms.BoundField]:
        own = {name for names in ENGINE_FIELDS.values() for group in names for name in group}
        return [field for field in self.visible_fields() if field.name not in own]

    def settings_and_credentials(self) -> tuple[dict[str, Any], dict[str, Any]]:
        data = self.cleaned_data
        if data["engine"] not in ENGINE_FIELDS:
            return {}, {}
        credential_names, setting_names = ENGINE_FIELDS[data["engine"]]
        settings_: dict[str, Any] = {"agent_ring_seconds": data["agent_ring_seconds"]}
        for name in (*SHARED_SETTINGS, *setting_names):
            value = data[name].strip() if isinstance(data[name], str) else data[name]
            if value not in ("", None):
                settings_[name] = value
        credentials = {name: data[name].strip() for name in credential_names if data[name]}
        return settings_, credentials


class FrameOriginsForm(SubmitOnceForm):
    origins = forms.CharField(
        required=False,
        label="CRM origins",
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "https://acme.my.salesforce.com"}),
        help_text="One https origin per line (https://*.hubspot.com for its subdomains). Empty: "
        "no site may frame the call page.",
    )

    def origin_list(self) -> list[str]:
        return [line.strip() for line in self.cleaned_data["origins"].splitlines() if line.strip()]


def _engine_initial(config: GatewayConfig | None) -> dict[str, Any]:
    if config is None:
        return {"engine": DEFAULT_ENGINE, "agent_ring_seconds": 20}
    shown = {"engine": config.engine, "agent_ring_seconds": 20, **config.settings}
    for name in ("account_sid", "username"):  # not secret: shown so the admin sees which account
        shown[name] = config.credentials.get(name, "")
    return shown


def _page(
    request: MemberRequest,
    engine_form: EngineForm | None = None,
    frames_form: FrameOriginsForm | None = None,
    status: int = 200,
) -> HttpResponse:
    tenant: Tenant = request.tenant
    config = GatewayConfig.objects.filter(tenant=tenant).first()
    origins = tenant.webphone_settings.frame_origins
    context = {
        "engine_form": engine_form or EngineForm(initial=_engine_initial(config)),
        "frames_form": frames_form or FrameOriginsForm(initial={"origins": "\n".join(origins)}),
        "config": config,
        "engine_label": dict(CHOICES)[config.engine if config else DEFAULT_ENGINE],
        "has_secret": bool(
            config and (config.credentials.get("auth_token") or config.credentials.get("password"))
        ),
        "origins": origins,
        "callback_base": f"{settings.PUBLIC_BASE_URL}/gateways/twilio/{tenant.pk}/",
    }
    return render(request, "dashboard/telephony/index.html", context, status=status)


@member_required
def telephony(request: MemberRequest) -> HttpResponse:
    return _page(request)


@require_POST
@member_required
def telephony_engine(request: MemberRequest) -> HttpResponse:
    form = EngineForm(request.POST)
    if not form.is_valid():
        return _page(request, engine_form=form, status=400)
    engine_settings, credentials = form.settings_and_credentials()
    try:
        config = gateway_config_update(
            tenant=request.tenant,
            engine=form.cleaned_data["engine"],
            settings=engine_settings,
            credentials=credentials,
        )
    except GatewayConfigError as error:
        key, _, message = error.message.partition(": ")
        if key in form.fields:
            form.add_error(key, message)
        else:
            form.add_error(None, error.message)
        return _page(request, engine_form=form, status=400)
    changed = {"engine": config.engine, "settings": config.settings}
    if credentials:
        changed["credentials"] = "(changed)"
    audit(request, "gateway.update", "Telephony engine", changed)
    messages.success(request, f"Calls now go through {dict(CHOICES)[config.engine]}.")
    return redirect("dashboard:telephony")


@require_POST
@member_required
def telephony_frames(request: MemberRequest) -> HttpResponse:
    form = FrameOriginsForm(request.POST)
    if not form.is_valid():
        return _page(request, frames_form=form, status=400)
    origins = form.origin_list()
    checked = TenantSerializer(
        request.tenant, data={"webphone_frame_origins": origins}, partial=True
    )
    if not checked.is_valid():
        add_errors(form, checked.errors, lambda key: "origins")
        return _page(request, frames_form=form, status=400)
    before = request.tenant.webphone_settings.frame_origins
    tenant_services.tenant_update(tenant=request.tenant, **checked.validated_data)
    audit(request, "webphone.frames", "Call page frames", {"frame_origins": [before, origins]})
    messages.success(request, "Saved: the call page may be framed by these origins.")
    return redirect("dashboard:telephony")
