"""Routing: the ordered smart-IVR rules, fallback and deadline, dry run, routing URL."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Max
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from core.url_tokens import url_token_delete
from dashboard.access import member_required
from dashboard.audit import audit
from dashboard.confirm import confirm_page
from dashboard.form_errors import add_errors
from dashboard.forms import SubmitOnceForm, form_changes
from dashboard.htmx import is_htmx, render_page
from dashboard.views.settings import save_tenant_settings
from routing import selectors, services
from routing.conditions import (
    DAYS,
    MAX_ITEMS,
    InvalidConditions,
    conditions_as_json,
    parse_conditions,
)
from routing.models import RoutingRule, RoutingToken
from routing.rules import condition_texts
from tenants.models import Agent

ANY, YES, NO = "", "yes", "no"
FIELD_ROWS = 3  # empty contact-field rows offered (one more than the rule has, at least this)


def _tristate(label: str, yes: str, no: str) -> forms.ChoiceField:
    return forms.ChoiceField(
        label=label, required=False, choices=[(ANY, "Any caller"), (YES, yes), (NO, no)]
    )


class RuleForm(SubmitOnceForm):
    """A rule as the condition builder shows it; routing.conditions checks its conditions."""

    name = forms.CharField(max_length=100)
    is_enabled = forms.BooleanField(label="Enabled", required=False, initial=True)
    known = _tristate("Caller in the phonebook", "Known callers", "Unknown callers")
    has_owner = _tristate("Owner agent", "Callers with an owner agent", "Callers without one")
    number_prefixes = forms.CharField(
        label="Number starts with",
        required=False,
        help_text="Any of these prefixes, comma separated, e.g. +44, +9021.",
    )
    countries = forms.CharField(
        label="Calling number's country",
        required=False,
        help_text="Any of these ISO 3166 codes, comma separated, e.g. GB, IE.",
    )
    days = forms.MultipleChoiceField(
        label="Business hours: days",
        required=False,
        choices=[(day, day.title()) for day in DAYS],
        widget=forms.CheckboxSelectMultiple,
    )
    start = forms.CharField(
        label="From", required=False, widget=forms.TimeInput(attrs={"type": "time"})
    )
    end = forms.CharField(
        label="Until",
        required=False,
        widget=forms.TimeInput(attrs={"type": "time"}),
        help_text="In the tenant's time zone; an end before the start spans midnight.",
    )
    action = forms.ChoiceField(label="Then route to", choices=RoutingRule.Action.choices)
    extension = forms.CharField(
        max_length=32, required=False, help_text="For an extension; a queue's own extension."
    )
    queue = forms.CharField(max_length=100, required=False, help_text="For a queue.")
    agent = forms.ModelChoiceField(
        queryset=None,  # the tenant's agents, set per request (scoped)
        required=False,
        help_text="For a given agent: routes to their extension.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["agent"].queryset = Agent.objects.order_by("crm_username")
        source = self.data if self.is_bound else self.initial
        used = [i for i in range(1, MAX_ITEMS + 1) if source.get(f"field_{i}")]
        rows = max(FIELD_ROWS, max(used, default=0) + 1)
        self.field_rows = []
        for i in range(1, rows + 1):
            self.fields[f"field_{i}"] = forms.CharField(
                label="Contact field", required=False, max_length=100
            )
            self.fields[f"op_{i}"] = forms.ChoiceField(
                label="Test", choices=[("equals", "equals"), ("in", "is one of")], required=False
            )
            self.fields[f"value_{i}"] = forms.CharField(
                label="Value", required=False, max_length=2000
            )
            self.field_rows.append((self[f"field_{i}"], self[f"op_{i}"], self[f"value_{i}"]))

    def conditions_json(self) -> dict:
        """The conditions as routing/conditions.py stores them (InvalidConditions if bad)."""
        data = self.cleaned_data
        conditions: dict[str, Any] = {}
        for key in ("known", "has_owner"):
            if data.get(key):
                conditions[key] = data[key] == YES
        fields = []
        for i, _ in enumerate(self.field_rows, start=1):
            name, value = data.get(f"field_{i}", ""), data.get(f"value_{i}", "")
            if not name and not value:
                continue
            op = data.get(f"op_{i}") or "equals"
            values = [v.strip() for v in value.split(",") if v.strip()]
            fields.append({"field": name, "op": op, "value": values if op == "in" else value})
        if fields:
            conditions["fields"] = fields
        for key in ("number_prefixes", "countries"):
            items = [item.strip() for item in data.get(key, "").split(",") if item.strip()]
            if items:
                conditions[key] = items
        if data.get("days") or data.get("start") or data.get("end"):
            window: dict[str, Any] = {"start": data.get("start"), "end": data.get("end")}
            if data.get("days"):
                window["days"] = data["days"]
            conditions["time_window"] = window
        return conditions_as_json(parse_conditions(conditions))

    def clean(self) -> dict:
        cleaned = super().clean()
        try:
            cleaned["conditions"] = self.conditions_json()
        except InvalidConditions as error:
            self.add_error(_condition_field(error.field), error.message)
        return cleaned

    def rule_fields(self) -> dict[str, Any]:
        data = self.cleaned_data
        names = ("name", "is_enabled", "conditions", "action", "extension", "queue", "agent")
        return {name: data[name] for name in names}


def _condition_field(key: str) -> str | None:
    """The builder's field for a part of the conditions ("fields[1].value" -> "value_2")."""
    if key.startswith("fields["):
        index, _, part = key[len("fields[") :].partition("]")
        column = "op" if part.startswith(".op") else "field" if part == ".field" else "value"
        return f"{column}_{int(index) + 1}"
    if key.startswith("time_window"):
        return {"time_window.days": "days", "time_window.end": "end"}.get(key, "start")
    base = key.split("[")[0]
    return base if base in ("known", "has_owner", "number_prefixes", "countries") else None


def rule_initial(rule: RoutingRule) -> dict[str, Any]:
    """The builder's fields for a stored rule."""
    conditions = rule.conditions or {}
    initial: dict[str, Any] = {
        "name": rule.name,
        "is_enabled": rule.is_enabled,
        "action": rule.action,
        "extension": rule.extension,
        "queue": rule.queue,
        "agent": rule.agent_id,
        "number_prefixes": ", ".join(conditions.get("number_prefixes", [])),
        "countries": ", ".join(conditions.get("countries", [])),
    }
    for key in ("known", "has_owner"):
        if conditions.get(key) is not None:
            initial[key] = YES if conditions[key] else NO
    for i, field in enumerate(conditions.get("fields", []), start=1):
        value = field["value"]
        initial[f"field_{i}"] = field["field"]
        initial[f"op_{i}"] = field["op"]
        initial[f"value_{i}"] = ", ".join(value) if isinstance(value, list) else value
    window = conditions.get("time_window")
    if window:
        initial.update(days=window["days"], start=window["start"], end=window["end"])
    return initial


class RoutingSettingsForm(SubmitOnceForm):
    routing_fallback_extension = forms.CharField(
        label="Fallback extension",
        max_length=32,
        required=False,
        help_text="Answered when no rule matches, or when routing is slow or broken.",
    )
    routing_deadline_ms = forms.IntegerField(
        label="Deadline (ms)",
        help_text="A decision later than this answers the fallback instead (20 to 10,000).",
    )


class DryRunForm(forms.Form):
    caller = forms.CharField(
        label="Calling number", max_length=selectors.MAX_CALLER_LENGTH, help_text="Any format."
    )
    at = forms.DateTimeField(
        label="At",
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
        help_text="In the tenant's time zone; empty: now.",
    )

    def __init__(self, *args: Any, tenant: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tenant = tenant

    def clean_caller(self) -> str:
        # The API's own check (DryRunRequestSerializer.validate_caller).
        problem = selectors.caller_problem(self.tenant, self.cleaned_data["caller"])
        if problem:
            raise ValidationError(problem[0].upper() + problem[1:] + ".")
        return self.cleaned_data["caller"]


def _rules_with_texts() -> list[tuple[RoutingRule, list[str]]]:
    rules = RoutingRule.objects.select_related("agent").order_by("position", "id")
    return [(rule, condition_texts(parse_conditions(rule.conditions))) for rule in rules]


def _page(request: HttpRequest, **context: Any) -> HttpResponse:
    tenant = request.tenant
    settings_initial = {
        "routing_fallback_extension": tenant.routing_settings.fallback_extension,
        "routing_deadline_ms": tenant.routing_settings.deadline_ms,
    }
    context.setdefault("settings_form", RoutingSettingsForm(initial=settings_initial))
    context.setdefault("dry_run_form", DryRunForm(tenant=tenant))
    context.setdefault("token", RoutingToken.objects.first())
    response = render(
        request, "dashboard/routing/index.html", {"rules": _rules_with_texts(), **context}
    )
    if "routing_url" in context:
        response["Cache-Control"] = "no-store"
    return response


@member_required
def routing(request: HttpRequest) -> HttpResponse:
    return _page(request)


@member_required
def routing_settings(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return redirect("dashboard:routing")
    form = RoutingSettingsForm(request.POST)
    if form.is_valid() and save_tenant_settings(request, form, "routing.settings"):
        messages.success(request, "Fallback and deadline saved.")
        return redirect("dashboard:routing")
    return _page(request, settings_form=form)


@member_required
def routing_dry_run(request: HttpRequest) -> HttpResponse:
    """Which rule would route a call (a read, as in the API: viewers may run it too)."""
    if not request.GET:
        return redirect("dashboard:routing")
    form = DryRunForm(request.GET, tenant=request.tenant)
    dry_run = None
    if form.is_valid():
        dry_run = selectors.routing_dry_run(
            tenant=request.tenant, caller=form.cleaned_data["caller"], at=form.cleaned_data["at"]
        )
    context = {"dry_run_form": form, "dry_run": dry_run}
    if is_htmx(request):
        fragment = "dashboard/routing/_dry_run.html"
        return render_page(request, "dashboard/routing/index.html", fragment, context)
    return _page(request, **context)


def _rule_form_page(request: HttpRequest, form: RuleForm, rule: RoutingRule | None) -> HttpResponse:
    return render(request, "dashboard/routing/rule_form.html", {"form": form, "rule": rule})


@member_required
def routing_new(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return _rule_form_page(request, RuleForm(initial={"action": "extension"}), None)
    form = RuleForm(request.POST)
    if form.is_valid():
        last = RoutingRule.objects.aggregate(last=Max("position"))["last"] or 0
        try:
            rule = services.routing_rule_create(
                tenant=request.tenant, position=last + 10, **form.rule_fields()
            )
        except ValidationError as error:
            add_errors(form, error)
        else:
            audit(request, "routing_rule.create", rule, {"conditions": rule.conditions})
            messages.success(request, f"Rule “{rule.name}” added; it is tried last.")
            return redirect("dashboard:routing")
    return _rule_form_page(request, form, None)


@member_required
def routing_edit(request: HttpRequest, pk: int) -> HttpResponse:
    rule = get_object_or_404(RoutingRule, pk=pk)
    initial = rule_initial(rule)
    if request.method != "POST":
        return _rule_form_page(request, RuleForm(initial=initial), rule)
    form = RuleForm(request.POST, initial=initial)
    if form.is_valid():
        before = rule.conditions
        try:
            services.routing_rule_update(rule=rule, **form.rule_fields())
        except ValidationError as error:
            add_errors(form, error)
        else:
            changes = {k: v for k, v in form_changes(form).items() if k in RuleForm.base_fields}
            if before != rule.conditions:
                changes["conditions"] = [before, rule.conditions]
            audit(request, "routing_rule.update", rule, changes)
            messages.success(request, f"Rule “{rule.name}” saved.")
            return redirect("dashboard:routing")
    return _rule_form_page(request, form, rule)


@member_required
def routing_delete(request: HttpRequest, pk: int) -> HttpResponse:
    rule = get_object_or_404(RoutingRule, pk=pk)
    if request.method != "POST":
        return confirm_page(
            request,
            title=f"Delete the rule “{rule.name}”?",
            text="Calls it routed go to the next matching rule, or the fallback.",
            button="Delete rule",
            cancel_url="dashboard:routing",
        )
    services.routing_rule_delete(rule=rule)
    audit(request, "routing_rule.delete", rule)
    messages.success(request, f"Rule “{rule.name}” deleted.")
    return redirect("dashboard:routing")


@require_POST
@member_required
def routing_move(request: HttpRequest, pk: int) -> HttpResponse:
    rule = get_object_or_404(RoutingRule, pk=pk)
    offset = -1 if request.POST.get("direction") == "up" else 1
    services.routing_rule_move(rule=rule, offset=offset)
    audit(request, "routing_rule.move", rule, {"direction": "up" if offset < 0 else "down"})
    return redirect("dashboard:routing")


@require_POST
@member_required
def routing_token(request: HttpRequest) -> HttpResponse:
    """Generate (or replace) the routing URL: shown once, in this response only."""
    token, plaintext = services.routing_token_regenerate(tenant=request.tenant)
    audit(request, "routing_token.regenerate", f"routing URL {token.prefix}…")
    messages.success(request, "A new routing URL was generated; the old one stopped working.")
    return _page(request, routing_url=services.routing_url(plaintext), token=token)


@require_POST
@member_required
def routing_token_delete(request: HttpRequest) -> HttpResponse:
    url_token_delete(RoutingToken, tenant=request.tenant)
    audit(request, "routing_token.delete", "routing URL")
    messages.success(request, "The routing URL is turned off; it answers 404 from now on.")
    return redirect("dashboard:routing")
