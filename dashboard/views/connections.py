"""CRM connections: connect (OAuth or credentials), test, sync, call-logging settings, disconnect.

Every check is the API's: forms hand their data to connectors.api.ConnectionSerializer and save
through connectors.services. Which credentials a CRM takes comes from the connector registry.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.conf import settings as django_settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from automations import alerts
from connectors import registry, selectors, services
from connectors.api import ConnectionSerializer
from connectors.interface import ConnectorError
from connectors.models import Connection, SyncRun
from dashboard.access import member_required, requires_role
from dashboard.audit import audit
from dashboard.forms import SUBMIT_TOKEN_FIELD, SubmitOnceForm, form_changes
from tenants.services import SECRET_FIELD_MARKERS

# Credentials the flows write themselves (OAuth tokens, cached client-credentials tokens).
FLOW_WRITTEN = frozenset({"access_token", "refresh_token", "expires_at"})
OAUTH_APP_KEYS = ("client_id", "client_secret")
MODES = ("oauth", "key")
RUNS_PER_PAGE = 20


def oauth_marks(provider: str) -> dict[str, str]:
    """The credentials that mark an OAuth connection of a CRM whose OAuth app also signs in
    another way (Dynamics 365: client credentials); empty when the app's id says it already."""
    return dict(getattr(registry.connector_class(provider), "oauth_credentials", None) or {})


def credential_fields(provider: str, mode: str) -> tuple[list[str], list[str]]:
    """(keys a person types for this way of connecting, the optional ones among them).

    OAuth: the app's id and secret, the other keys its required alternative names (Dynamics'
    org and tenant), plus endpoint URLs (empty: the CRM's own). Credentials: each alternative
    the connector requires that is not the OAuth app, then its other keys.
    """
    connector = registry.connector_class(provider)
    keys = connector.credential_keys - set(oauth_marks(provider))
    if mode == "oauth":
        app = next((a for a in connector.required_credentials if "client_id" in a), frozenset())
        needed = sorted(app - set(OAUTH_APP_KEYS))
        urls = sorted(k for k in keys if k.endswith("_url") and k not in needed)
        return [*OAUTH_APP_KEYS, *needed, *urls], urls
    oauth = registry.uses_oauth(provider) and not oauth_marks(provider)
    alternatives = [s for s in connector.required_credentials if not (oauth and "client_id" in s)]
    named = list(dict.fromkeys(k for alternative in alternatives for k in sorted(alternative)))
    left_out = FLOW_WRITTEN | (set(OAUTH_APP_KEYS) if oauth else set())
    others = sorted(keys - left_out - set(named))
    return [*named, *others], others


def modes_of(provider: str) -> list[str]:
    """The ways this CRM can be connected: OAuth, credentials typed in, or both."""
    connector = registry.connector_class(provider)
    oauth = registry.uses_oauth(provider)
    modes = ["oauth"] if oauth else []
    both = oauth_marks(provider) or any(
        "client_id" not in s for s in connector.required_credentials
    )
    if not oauth or both:
        modes.append("key")
    return modes


def mode_of(connection: Connection) -> str:
    oauth = registry.uses_oauth(connection.provider)
    stored = connection.credentials
    marked = all(stored.get(k) == v for k, v in oauth_marks(connection.provider).items())
    return "oauth" if oauth and "client_id" in stored and marked else "key"


def awaits_authorization(connection: Connection) -> bool:
    """An OAuth connection whose CRM admin has not granted access yet (no tokens; Copper's and
    Zendesk's tokens come without a refresh token)."""
    stored = connection.credentials
    granted = stored.get("refresh_token") or stored.get("access_token")
    return mode_of(connection) == "oauth" and not granted


def alternatives_text(provider: str) -> str:
    connector = registry.connector_class(provider)
    oauth = registry.uses_oauth(provider) and not oauth_marks(provider)
    alternatives = [s for s in connector.required_credentials if not (oauth and "client_id" in s)]
    return " or ".join(
        " + ".join(label_of(k, start=False) for k in sorted(a)) for a in alternatives
    )


def label_of(key: str, start: bool = True) -> str:
    """A credential's name in words: "client_id" -> "Client ID" ("client ID" mid-sentence)."""
    words = {"id": "ID", "url": "URL", "api": "API", "oauth": "OAuth"}
    text = " ".join(words.get(w, w) for w in key.split("_"))
    return text[0].upper() + text[1:] if start else text


def is_secret(key: str) -> bool:
    return any(marker in key for marker in SECRET_FIELD_MARKERS)


def apply_api_errors(form: forms.Form, errors: dict[str, Any]) -> None:
    """Put the serializer's errors beside the form's fields.

    A message naming a field ("base_url: ...", "call_logging.delay_minutes: ...") goes on that
    field; else the error's key ("settings", "credentials.subdomain") says where, if it can.
    """
    for key, found in errors.items():
        for item in found if isinstance(found, list) else [found]:
            message = str(item)
            named, _, text = message.partition(": ")
            named = named.rsplit(".", 1)[-1]
            places = [p for p in (key.rsplit(".", 1)[-1], key.split(".")[0]) if p in form.fields]
            if text and named in form.fields and named != SUBMIT_TOKEN_FIELD:
                form.add_error(named, text)
            elif places and places[0] != SUBMIT_TOKEN_FIELD:
                form.add_error(places[0], message)
            else:
                form.add_error(None, message if key == "non_field_errors" else f"{key}: {message}")


class CredentialsForm(SubmitOnceForm):
    """The credentials of one way of connecting a CRM (write-only: inputs start empty)."""

    def __init__(self, *args: Any, provider: str, mode: str, keep: bool = False, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.provider, self.mode, self.keep = provider, mode, keep
        keys, optional = credential_fields(provider, mode)
        for key in keys:
            widget = forms.PasswordInput(render_value=False) if is_secret(key) else None
            help_text = ""
            if keep:
                help_text = "Leave blank to keep the stored value."
            elif mode == "oauth" and key in optional:
                help_text = "Leave blank for the CRM's own address."
            self.fields[key] = forms.CharField(
                label=label_of(key),
                required=mode == "oauth" and key not in optional and not keep,
                max_length=4000,
                widget=widget,
                help_text=help_text,
                strip=True,
            )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.keep and not self.errors and not self.credentials():
            raise forms.ValidationError("Type at least one new value; blank inputs keep theirs.")
        return cleaned

    def credentials(self) -> dict[str, str]:
        return {
            key: value
            for key, value in self.cleaned_data.items()
            if key in self.fields and key not in ("name", "settings", SUBMIT_TOKEN_FIELD) and value
        }


class ConnectionCreateForm(CredentialsForm):
    name = forms.CharField(max_length=150, help_text="How this connection is listed.")
    settings = forms.CharField(
        label="Settings (JSON)", required=False, widget=forms.Textarea(attrs={"rows": 4})
    )

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        connector = registry.connector_class(self.provider)
        self.order_fields(["name", *credential_fields(self.provider, self.mode)[0], "settings"])
        if connector.own_settings:
            self.fields["settings"].required = True
            self.fields["settings"].widget.attrs["rows"] = 14
            self.fields[
                "settings"
            ].help_text = "The API's description: auth, list, fields (see connectors/README.md)."
        else:
            objects = ", ".join(connector.syncable_objects) or "nothing"
            self.fields["settings"].help_text = (
                f'Optional, e.g. {{"objects": ["contacts"], "custom_fields": []}}. '
                f"Syncs: {objects}."
            )
        self.validated: dict[str, Any] = {}

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.errors:
            return cleaned
        try:
            settings = json.loads(cleaned.get("settings") or "{}")
        except ValueError as error:
            self.add_error("settings", f"Not valid JSON: {error}.")
            return cleaned
        marks = oauth_marks(self.provider) if self.mode == "oauth" else {}
        payload = {
            "provider": self.provider,
            "name": cleaned["name"],
            "credentials": {**self.credentials(), **marks},
            "settings": settings,
        }
        serializer = ConnectionSerializer(data=payload)
        if serializer.is_valid():
            self.validated = dict(serializer.validated_data)
        else:
            apply_api_errors(self, serializer.errors)
        return cleaned


class CallLoggingForm(SubmitOnceForm):
    """settings.call_logging, checked by the API's serializer (PATCH /connections/{id})."""

    enabled = forms.BooleanField(required=False, label="Log this connection's calls in the CRM")
    delay_minutes = forms.IntegerField(
        min_value=0,
        max_value=1440,
        initial=0,
        label="Delay (minutes)",
        help_text="Wait this long after a call, so notes typed just after it make the first "
        "write (0 to 1440).",
    )
    missed_call_task = forms.BooleanField(
        required=False, initial=True, label="A missed call becomes a follow-up task"
    )
    create_unknown_contacts = forms.BooleanField(
        required=False, label="Create a CRM contact for an unknown caller"
    )

    def __init__(self, *args: Any, connection: Connection, **kwargs: Any):
        stored = connection.settings.get("call_logging") or {}
        initial = {name: stored[name] for name in self.base_fields if name in stored}
        super().__init__(*args, initial=initial, **kwargs)
        self.connection = connection
        self.validated: dict[str, Any] = {}

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.errors:
            return cleaned
        options = {name: cleaned[name] for name in self.base_fields}
        data = {"settings": {**self.connection.settings, "call_logging": options}}
        serializer = ConnectionSerializer(self.connection, data=data, partial=True)
        if serializer.is_valid():
            self.validated = dict(serializer.validated_data)
        else:
            apply_api_errors(self, serializer.errors)
        return cleaned


def dashboard_redirect_uri() -> str:
    """Where the CRM's consent page sends the browser back: this dashboard."""
    return django_settings.PUBLIC_BASE_URL + reverse("dashboard:connections-oauth-callback")


def _provider_choices() -> list[dict[str, Any]]:
    return [
        {"name": name, "label": label, "modes": modes_of(name), "hint": alternatives_text(name)}
        for name, label in registry.CHOICES
    ]


@member_required
def connections(request: HttpRequest) -> HttpResponse:
    rows = list(selectors.connection_list_with_last_run())
    for connection in rows:
        connection.awaits_authorization = awaits_authorization(connection)
        connection.outage = alerts.connection_outage(connection)
    return render(
        request,
        "dashboard/connections/index.html",
        {"connections": rows, "providers": _provider_choices()},
    )


@requires_role("admin")
def connection_new(request: HttpRequest, provider: str, mode: str) -> HttpResponse:
    if provider not in registry.PROVIDERS or mode not in modes_of(provider):
        raise Http404("No such CRM or way to connect it.")
    form = ConnectionCreateForm(request.POST or None, provider=provider, mode=mode)
    if request.method == "POST" and form.is_valid():
        try:
            connection = services.connection_create(tenant=request.tenant, **form.validated)
        except ValidationError as error:
            apply_api_errors(form, error.message_dict)
        else:
            changes = {"provider": [None, provider], "name": [None, connection.name]}
            audit(request, "connection.create", connection, changes)
            if mode == "oauth":
                return _send_to_consent(request, connection)
            messages.success(request, f"Connected {connection}. Test it, then sync it.")
            return redirect("dashboard:connections-detail", pk=connection.pk)
    context = {
        "form": form,
        "provider_label": registry.PROVIDERS[provider][0],
        "mode": mode,
        "hint": alternatives_text(provider),
        "redirect_uri": dashboard_redirect_uri(),
    }
    return render(request, "dashboard/connections/new.html", context)


def _send_to_consent(request: HttpRequest, connection: Connection) -> HttpResponse:
    """Off to the CRM's consent page; it sends the browser back to the OAuth callback."""
    try:
        url = services.oauth_start(connection=connection, redirect_uri=dashboard_redirect_uri())
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("dashboard:connections-detail", pk=connection.pk)
    return redirect(url)


@csrf_exempt
def connection_oauth_callback(request: HttpRequest) -> HttpResponse:
    """Where the CRM sends the browser back after its consent page (signed, single-use state).

    A CRM that comes back with a form POST (Copper) is sent on as a GET with the same fields:
    a cross-site POST carries no session cookie (SameSite=Lax), a top-level GET does. The signed
    state, not a CSRF token, is what proves the request is the one we started.
    """
    if request.method == "POST":
        fields = {name: request.POST.get(name, "") for name in ("state", "code", "error")}
        query = urlencode({name: value for name, value in fields.items() if value})
        return HttpResponseRedirect(f"{request.path}?{query}", status=303)
    return _oauth_callback(request)


@requires_role("admin")
def _oauth_callback(request: HttpRequest) -> HttpResponse:
    state, code = request.GET.get("state", ""), request.GET.get("code", "")
    if not code:
        reason = request.GET.get("error") or "no code"
        messages.error(request, f"The CRM did not grant access ({reason}). Connect it again.")
        return redirect("dashboard:connections")
    try:
        connection = services.oauth_complete(state=state, code=code, tenant=request.tenant)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("dashboard:connections")
    audit(request, "connection.authorize", connection)
    messages.success(request, f"{connection} is connected. Run a sync to fill the phonebook.")
    return redirect("dashboard:connections-detail", pk=connection.pk)


def _detail(
    request: HttpRequest,
    connection: Connection,
    *,
    call_logging: CallLoggingForm | None = None,
    credentials: CredentialsForm | None = None,
) -> HttpResponse:
    runs = Paginator(selectors.sync_run_list(connection=connection), RUNS_PER_PAGE)
    context = {
        "connection": connection,
        "awaits_authorization": awaits_authorization(connection),
        "mode": mode_of(connection),
        "runs": runs.get_page(request.GET.get("page")),
        "call_logging_form": call_logging or CallLoggingForm(connection=connection),
        "credentials_form": credentials
        or CredentialsForm(provider=connection.provider, mode=mode_of(connection), keep=True),
        "sync_kinds": SyncRun.Kind.choices,
    }
    return render(request, "dashboard/connections/detail.html", context)


@member_required
def connection_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _detail(request, get_object_or_404(Connection, pk=pk))


@require_POST
@member_required
def connection_call_logging(request: HttpRequest, pk: int) -> HttpResponse:
    connection = get_object_or_404(Connection, pk=pk)
    form = CallLoggingForm(request.POST, connection=connection)
    if not form.is_valid():
        return _detail(request, connection, call_logging=form)
    services.connection_update(connection=connection, **form.validated)
    audit(request, "connection.call_logging", connection, form_changes(form))
    messages.success(request, "Call-logging settings saved.")
    return redirect("dashboard:connections-detail", pk=connection.pk)


@require_POST
@member_required
def connection_credentials(request: HttpRequest, pk: int) -> HttpResponse:
    """Replace some credentials (merged into the stored ones; blank inputs keep theirs)."""
    connection = get_object_or_404(Connection, pk=pk)
    mode = mode_of(connection)
    form = CredentialsForm(request.POST, provider=connection.provider, mode=mode, keep=True)
    if form.is_valid():
        given = form.credentials()
        serializer = ConnectionSerializer(connection, data={"credentials": given}, partial=True)
        if serializer.is_valid():
            services.connection_update(connection=connection, **serializer.validated_data)
            audit(request, "connection.credentials", connection, {"fields": [None, sorted(given)]})
            messages.success(request, f"Saved new {', '.join(map(label_of, given))}.")
            return redirect("dashboard:connections-detail", pk=connection.pk)
        apply_api_errors(form, serializer.errors)
    return _detail(request, connection, credentials=form)


@require_POST
@member_required
def connection_authorize(request: HttpRequest, pk: int) -> HttpResponse:
    """(Re)connect an OAuth connection: off to the CRM's consent page again."""
    connection = get_object_or_404(Connection, pk=pk)
    if mode_of(connection) != "oauth":
        raise Http404("This connection does not use OAuth.")
    return _send_to_consent(request, connection)


@require_POST
@member_required
def connection_test(request: HttpRequest, pk: int) -> HttpResponse:
    connection = get_object_or_404(Connection, pk=pk)
    try:
        answer = services.connection_test(connection=connection)
    except ConnectorError as error:
        messages.error(request, f"The test failed: {error}")
    else:
        messages.success(request, answer)
    return redirect("dashboard:connections-detail", pk=connection.pk)


@require_POST
@member_required
def connection_sync(request: HttpRequest, pk: int) -> HttpResponse:
    connection = get_object_or_404(Connection, pk=pk)
    kind = request.POST.get("kind", SyncRun.Kind.INCREMENTAL)
    if kind not in SyncRun.Kind.values:
        messages.error(request, f"Unknown sync kind {kind!r}.")
    else:
        services.sync_enqueue(connection=connection, kind=kind)
        audit(request, "connection.sync", connection, {"kind": [None, kind]})
        label = "A full diff" if kind == SyncRun.Kind.FULL else "A sync"
        messages.success(request, f"{label} is queued; its run appears below once it starts.")
    return redirect("dashboard:connections-detail", pk=connection.pk)


@member_required
def connection_delete(request: HttpRequest, pk: int) -> HttpResponse:
    connection = get_object_or_404(Connection, pk=pk)
    if request.method == "POST":
        name = str(connection)
        services.connection_delete(connection=connection)
        audit(request, "connection.delete", name)
        messages.success(request, f"Disconnected {name} and removed the contacts synced from it.")
        return redirect("dashboard:connections")
    synced = selectors.synced_contact_count(connection=connection)
    return render(
        request, "dashboard/connections/delete.html", {"connection": connection, "synced": synced}
    )
