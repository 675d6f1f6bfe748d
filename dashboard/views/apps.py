"""Apps: the tenant's ordered after-call apps (each kind's settings, secrets write-only), the
call test. Settings are checked by the API's AppSerializer and the kinds' own validation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from automations import alerts, app_runs, services
from automations.api import AppSerializer, TestCallInput
from automations.kinds.slack import SLACK_PRESETS
from automations.models import App
from automations.tickets import HELPDESKS
from automations.webhooks.config import AUTH_FIELDS, AUTH_KINDS, METHODS
from connectors.models import Connection
from dashboard.access import member_required
from dashboard.audit import audit
from dashboard.confirm import confirm_page
from dashboard.form_errors import add_errors
from dashboard.forms import SubmitOnceForm, form_changes

KEEP = "Write-only: leave blank to keep the stored value."
KIND_SUMMARIES = {
    App.Kind.WEBHOOK: "Call any REST API with the call's data (seed 004): lookups, notifications.",
    App.Kind.SLACK: "Post to a Slack channel when a condition holds (transfer, unhappy, VIP).",
    App.Kind.EMAIL: "Email the caller after the call, the template chosen by its outcome.",
    App.Kind.TICKET: "Open a helpdesk ticket when a call ends unresolved.",
    App.Kind.WAREHOUSE: "Upsert one row per call into your own PostgreSQL table.",
}


class JsonText(forms.JSONField):
    """JSON typed into a textarea; nothing typed is nothing shown (not "null")."""

    def prepare_value(self, value: Any) -> Any:
        return "" if value is None or value == "" else super().prepare_value(value)


def _secret(label: str, **options: Any) -> forms.CharField:
    return forms.CharField(
        label=label, required=False, widget=forms.PasswordInput(render_value=False), **options
    )


def _text(label: str, help_text: str = "", **options: Any) -> forms.CharField:
    return forms.CharField(label=label, required=False, help_text=help_text, **options)


def _lines(label: str, help_text: str) -> forms.CharField:
    return _text(label, help_text, widget=forms.Textarea(attrs={"rows": 3}))


# ---- Each kind: its form fields, its config from them, their initial values from a config ----


def _webhook_fields() -> dict[str, forms.Field]:
    auth_labels = {
        "none": "None",
        "basic": "Basic",
        "bearer": "Bearer token",
        "oauth2_client_credentials": "OAuth 2.0 client credentials",
    }
    return {
        "url": forms.CharField(
            label="URL",
            max_length=2048,
            help_text="Templates allowed after the host: https://api.example.com/contacts/"
            "{{ event.calling_number }}",
        ),
        "method": forms.ChoiceField(choices=[(m, m) for m in METHODS], initial="POST"),
        "auth_kind": forms.ChoiceField(
            label="Authentication", choices=[(k, auth_labels[k]) for k in AUTH_KINDS]
        ),
        "auth_username": _text("Username"),
        "auth_password": _secret("Password", help_text=KEEP),
        "auth_token": _secret("Token", help_text=KEEP),
        "auth_token_url": _text("Token URL", "The token endpoint."),
        "auth_client_id": _text("Client ID"),
        "auth_client_secret": _secret("Client secret", help_text=KEEP),
        "auth_scope": _text("Scope", "If the API wants one."),
        "auth_client_auth": forms.ChoiceField(
            label="Send client credentials",
            choices=[("basic", "in a Basic header"), ("body", "in the request body")],
            required=False,
        ),
        "headers": _lines(
            "Headers",
            "One a line: <code>Name: value</code> (templates allowed). Values of headers named "
            "like a secret (X-Api-Key, …) are write-only: leave the value blank to keep it.",
        ),
        "query_params": _lines(
            "Query parameters", "One a line: <code>name=value</code> (templates allowed)."
        ),
        "body": JsonText(
            label="JSON body",
            required=False,
            help_text='POST only. Strings are templates: {"phone": "{{ event.calling_number }}"}.',
            widget=forms.Textarea(attrs={"rows": 6}),
        ),
        "timeout": forms.FloatField(
            label="Timeout (s)", required=False, help_text="Default 30 (5 for real-time apps)."
        ),
        "retry_count": forms.IntegerField(
            label="Retries", required=False, help_text="On 5xx and network errors; default 3."
        ),
        "retry_delay": forms.FloatField(
            label="Retry delay (s)", required=False, help_text="Doubles each retry; default 1."
        ),
    }


def _pairs(text: str, separator: str) -> list[dict[str, str]]:
    pairs = []
    for line in text.splitlines():
        if line.strip():
            key, _, value = line.partition(separator)
            pairs.append({"key": key.strip(), "value": value.strip()})
    return pairs


def _webhook_config(data: dict[str, Any]) -> dict[str, Any]:
    kind = data["auth_kind"]
    config: dict[str, Any] = {
        "url": data["url"],
        "method": data["method"],
        "auth": {"kind": kind, **{name: data[f"auth_{name}"] for name in AUTH_FIELDS[kind]}},
        "headers": _pairs(data["headers"], ":"),
        "query_params": _pairs(data["query_params"], "="),
    }
    if data["body"] is not None:
        config["body"] = data["body"]
    for name in ("timeout", "retry_count", "retry_delay"):
        if data[name] is not None:
            config[name] = data[name]
    return config


def _lines_of(pairs: list[dict[str, str]] | None, separator: str) -> str:
    """Pairs as the form shows them, one a line (a secret's value is not stored here)."""
    return "\n".join(f"{p['key']}{separator}{p.get('value', '')}" for p in pairs or [])


def _webhook_initial(config: dict[str, Any]) -> dict[str, Any]:
    auth = config.get("auth") or {}
    initial = {
        "url": config.get("url", ""),
        "method": config.get("method", "POST"),
        "auth_kind": auth.get("kind", "none"),
        **{f"auth_{k}": v for k, v in auth.items() if k != "kind"},
        "headers": "\n".join(
            f"{p['key']}: {p.get('value', '')}" for p in config.get("headers", [])
        ),
        "query_params": "\n".join(
            f"{p['key']}={p.get('value', '')}" for p in config.get("query_params", [])
        ),
        "body": config.get("body"),
    }
    initial.update({k: config[k] for k in ("timeout", "retry_count", "retry_delay") if k in config})
    return initial


def _slack_fields() -> dict[str, forms.Field]:
    presets = [("", "No preset: my own condition and message")]
    presets += [(name, name.replace("_", " ")) for name in SLACK_PRESETS]
    return {
        "webhook_url": _secret(
            "Slack incoming-webhook URL", help_text=f"https://hooks.slack.com/services/… {KEEP}"
        ),
        "preset": forms.ChoiceField(
            choices=presets,
            required=False,
            help_text="Seed 001's triggers: each brings its condition and message.",
        ),
        "message": _text(
            "Message",
            "A template, e.g. Unhappy customer: {{ event.summary }}. Empty: the preset's.",
            widget=forms.Textarea(attrs={"rows": 2}),
        ),
    }


def _slack_config(data: dict[str, Any]) -> dict[str, Any]:
    names = ("preset", "message", "webhook_url")
    return {name: data[name] for name in names if data[name]}


def _email_fields() -> dict[str, forms.Field]:
    return {
        "to": _text("To", "An address or a template; default {{ contact.custom.email }}."),
        "from_email": forms.EmailField(label="From", required=False),
        "escalation_email": forms.EmailField(
            label="Escalation copy to", required=False, help_text="Copied on apology emails."
        ),
    }


def _email_config(data: dict[str, Any]) -> dict[str, Any]:
    return {name: data[name] for name in ("to", "from_email", "escalation_email") if data[name]}


def _ticket_fields() -> dict[str, forms.Field]:
    return {
        "connection": forms.TypedChoiceField(
            label="Helpdesk connection",
            coerce=int,
            choices=[],
            help_text="A Zendesk connection (CRM connections page).",
        ),
        "group_id": forms.IntegerField(
            label="Group id", required=False, min_value=1, help_text="The queue to assign to."
        ),
        "tags": _text("Tags", "Separated by spaces."),
        "subject": _text("Subject", "Default {{ event.issue_type }}."),
        "description": _text(
            "Description",
            "Default {{ event.summary }}.",
            widget=forms.Textarea(attrs={"rows": 2}),
        ),
        "public_comment": forms.BooleanField(
            label="The description is a public comment", required=False
        ),
    }


def _ticket_config(data: dict[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = {"connection": data["connection"]}
    if data["group_id"]:
        config["group_id"] = data["group_id"]
    if data["tags"].split():
        config["tags"] = data["tags"].split()
    for name in ("subject", "description", "public_comment"):
        if data[name]:
            config[name] = data[name]
    return config


def _warehouse_fields() -> dict[str, forms.Field]:
    return {
        "dsn": _secret(
            "Database URL", help_text=f"postgresql://user:password@host:5432/dbname. {KEEP}"
        ),
        "table": forms.CharField(help_text="call_exports, or schema.table."),
        "timeout": forms.FloatField(
            label="Timeout (s)", required=False, help_text="2 to 60; default 10."
        ),
        "columns": JsonText(
            required=False,
            help_text='Our field → your column, with "call_id"; empty: same names.',
            widget=forms.Textarea(attrs={"rows": 3}),
        ),
    }


def _warehouse_config(data: dict[str, Any]) -> dict[str, Any]:
    names = ("dsn", "table", "timeout", "columns")
    return {name: data[name] for name in names if data[name] not in (None, "")}


def _plain_initial(config: dict[str, Any]) -> dict[str, Any]:
    initial = dict(config)
    if isinstance(initial.get("tags"), list):
        initial["tags"] = " ".join(initial["tags"])
    return initial


KINDS: dict[str, tuple[Callable, Callable, Callable]] = {
    App.Kind.WEBHOOK: (_webhook_fields, _webhook_config, _webhook_initial),
    App.Kind.SLACK: (_slack_fields, _slack_config, _plain_initial),
    App.Kind.EMAIL: (_email_fields, _email_config, _plain_initial),
    App.Kind.TICKET: (_ticket_fields, _ticket_config, _plain_initial),
    App.Kind.WAREHOUSE: (_warehouse_fields, _warehouse_config, _plain_initial),
}
# How each kind's fields are laid out: (legend, rows of field names).
KIND_LAYOUTS: dict[str, list[tuple[str, list[list[str]]]]] = {
    App.Kind.WEBHOOK: [
        ("Request", [["url"], ["method", "auth_kind"]]),
        ("Basic auth", [["auth_username", "auth_password"]]),
        ("Bearer token", [["auth_token"]]),
        (
            "OAuth 2.0 client credentials",
            [
                ["auth_token_url"],
                ["auth_client_id", "auth_client_secret"],
                ["auth_scope", "auth_client_auth"],
            ],
        ),
        ("Headers, query and body", [["headers", "query_params"], ["body"]]),
        ("Timeout and retries", [["timeout", "retry_count", "retry_delay"]]),
    ],
    App.Kind.SLACK: [("", [["webhook_url"], ["preset"], ["message"]])],
    App.Kind.EMAIL: [("", [["to"], ["from_email", "escalation_email"]])],
    App.Kind.TICKET: [
        ("", [["connection", "group_id"], ["subject", "tags"], ["description"], ["public_comment"]])
    ],
    App.Kind.WAREHOUSE: [("", [["dsn"], ["table", "timeout"], ["columns"]])],
}
COMMON_FIELDS = ("name", "slug", "description", "timing", "events", "condition", "order")
COMMON_FIELDS += ("enabled", "side_effects")


class AppForm(SubmitOnceForm):
    name = forms.CharField(max_length=150)
    slug = forms.SlugField(
        max_length=100, help_text="Later apps read its results as app_data.&lt;slug&gt;."
    )
    description = _text("Description", widget=forms.Textarea(attrs={"rows": 2}))
    timing = forms.ChoiceField(
        choices=App.Timing.choices,
        initial=App.Timing.POST_CALL,
        help_text="Real-time apps run while the call is set up and must answer fast.",
    )
    events = forms.MultipleChoiceField(
        choices=App.Event.choices, widget=forms.CheckboxSelectMultiple, initial=["call.end"]
    )
    condition = _text("Condition", "Run only when it holds, e.g. satisfaction <= 2.")
    order = forms.IntegerField(initial=50, help_text="10 to 100: lower runs first.")
    enabled = forms.BooleanField(required=False, initial=True)
    side_effects = forms.BooleanField(
        label="Changes something (posts, sends)",
        required=False,
        initial=True,
        help_text="The call test only renders such apps unless you choose to send.",
    )

    def __init__(
        self, *args: Any, kind: str, stored_config: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.kind = kind
        self.stored_config = stored_config or {}
        self.fields.update(KINDS[kind][0]())
        if kind == App.Kind.TICKET:
            helpdesks = Connection.objects.filter(provider__in=HELPDESKS).order_by("pk")
            self.fields["connection"].choices = [(c.pk, str(c)) for c in helpdesks]

    def kind_layout(self) -> list[tuple[str, list[list[forms.BoundField]]]]:
        """The kind's fields in groups of rows, for the template."""
        return [
            (legend, [[self[name] for name in row] for row in rows])
            for legend, rows in KIND_LAYOUTS[self.kind]
        ]

    def app_data(self) -> dict[str, Any]:
        data = {name: self.cleaned_data[name] for name in COMMON_FIELDS}
        config = KINDS[self.kind][1](self.cleaned_data)
        _keep_secret_flags(config, self.stored_config)
        return {**data, "kind": self.kind, "config": config}


def _keep_secret_flags(config: dict[str, Any], stored: dict[str, Any]) -> None:
    """A header or parameter the API flagged secret stays secret (the form has no flag)."""
    for group in ("headers", "query_params"):
        flagged = {p.get("key") for p in stored.get(group) or [] if p.get("secret")}
        for pair in config.get(group) or []:
            if pair["key"] in flagged:
                pair["secret"] = True


def app_initial(app: App) -> dict[str, Any]:
    return {
        **{name: getattr(app, name) for name in COMMON_FIELDS},
        **KINDS[app.kind][2](app.config),
    }


def _save(request: HttpRequest, form: AppForm, app: App | None) -> App | None:
    """Check the form's app as the API does (AppSerializer, then the kind's rules) and save it."""
    serializer = AppSerializer(app, data=form.app_data())
    if not serializer.is_valid():
        add_errors(form, serializer.errors)
        return None
    data = dict(serializer.validated_data)
    config = data.pop("config", {})
    try:
        if app is None:
            return services.app_create(tenant=request.tenant, config=config, **data)
        return services.app_update(app=app, config=config, **data)
    except ValidationError as error:
        add_errors(form, error)
        return None


class TestCallForm(forms.Form):
    calling_number = forms.CharField(max_length=64, help_text="The caller, any format.")
    called_number = _text("Called number", max_length=64)
    event = forms.ChoiceField(choices=App.Event.choices, initial=App.Event.CALL_END, required=False)
    event_data = JsonText(
        label="More event fields",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text='JSON, e.g. {"satisfaction": 1, "resolved": false}.',
    )
    send = forms.BooleanField(
        label="Really send apps with side effects (post, email, write)",
        required=False,
        help_text="Unticked, those apps only show the request they would send.",
    )


def _page(request: HttpRequest, **context: Any) -> HttpResponse:
    context.setdefault("test_form", TestCallForm())
    apps = list(App.objects.order_by("order", "id"))
    for app in apps:
        app.outage = alerts.app_outage(app) if app.enabled else None  # type: ignore[attr-defined]
    kinds = [(kind, KIND_SUMMARIES[kind]) for kind in KINDS]
    return render(request, "dashboard/apps/index.html", {"apps": apps, "kinds": kinds, **context})


@member_required
def apps(request: HttpRequest) -> HttpResponse:
    return _page(request)


@member_required
def apps_test_call(request: HttpRequest) -> HttpResponse:
    """Seed 004's call test, as POST /api/v1/apps/test-call (a POST: it may send)."""
    if request.method != "POST":
        return redirect("dashboard:apps")
    form = TestCallForm(request.POST)
    report = None
    if form.is_valid():
        given = {k: v for k, v in form.cleaned_data.items() if v not in (None, "")}
        serializer = TestCallInput(data=given)
        if serializer.is_valid():
            report = app_runs.apps_test_call(tenant=request.tenant, **serializer.validated_data)
            if serializer.validated_data["send"]:
                audit(request, "app.test_call_sent", given["calling_number"])
        else:
            add_errors(form, serializer.errors)
    return _page(request, test_form=form, report=report)


def _kind_or_404(kind: str) -> str:
    if kind not in KINDS:
        raise Http404("No such kind of app.")
    return kind


@member_required
def apps_new(request: HttpRequest, kind: str) -> HttpResponse:
    kind = _kind_or_404(kind)
    form = AppForm(request.POST or None, kind=kind)
    if kind == App.Kind.EMAIL and not form.is_bound:
        form.initial["events"] = [App.Event.ANALYTICS_COMPLETED]
    if form.is_bound and form.is_valid():
        app = _save(request, form, None)
        if app is not None:
            audit(request, "app.create", app, {"kind": app.kind, "config": app.config})
            messages.success(request, f"App “{app.name}” created.")
            return redirect("dashboard:apps")
    return _form_page(request, form, None)


@member_required
def apps_edit(request: HttpRequest, pk: int) -> HttpResponse:
    app = get_object_or_404(App, pk=pk)
    initial = app_initial(app)
    form = AppForm(request.POST or None, initial=initial, kind=app.kind, stored_config=app.config)
    if form.is_bound and form.is_valid():
        before = app.config
        if _save(request, form, app) is not None:
            changes = {k: v for k, v in form_changes(form).items() if k in COMMON_FIELDS}
            if before != app.config:
                changes["config"] = [before, app.config]
            audit(request, "app.update", app, changes)
            messages.success(request, f"App “{app.name}” saved.")
            return redirect("dashboard:apps")
    return _form_page(request, form, app)


def _form_page(request: HttpRequest, form: AppForm, app: App | None) -> HttpResponse:
    context = {"form": form, "app": app, "kind_summary": KIND_SUMMARIES[form.kind]}
    return render(request, "dashboard/apps/form.html", context)


@member_required
def apps_toggle(request: HttpRequest, pk: int) -> HttpResponse:
    if request.method != "POST":
        return redirect("dashboard:apps")
    app = get_object_or_404(App, pk=pk)
    try:
        services.app_update(app=app, enabled=not app.enabled)
    except ValidationError as error:
        messages.error(request, f"“{app.name}” has invalid settings: {error.messages[0]}")
        return redirect("dashboard:apps")
    audit(request, "app.enable" if app.enabled else "app.disable", app)
    messages.success(request, f"“{app.name}” {'enabled' if app.enabled else 'disabled'}.")
    return redirect("dashboard:apps")


@member_required
def apps_delete(request: HttpRequest, pk: int) -> HttpResponse:
    app = get_object_or_404(App, pk=pk)
    if request.method != "POST":
        return confirm_page(
            request,
            title=f"Delete the app “{app.name}”?",
            text="It stops running on calls; its past runs are deleted with it.",
            button="Delete app",
            cancel_url="dashboard:apps",
        )
    services.app_delete(app=app)
    audit(request, "app.delete", app)
    messages.success(request, f"App “{app.name}” deleted.")
    return redirect("dashboard:apps")
