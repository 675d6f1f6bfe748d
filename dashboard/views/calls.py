"""Calls: the searchable list, and a call's page (timeline, deliveries, CRM logs, app runs)."""

from __future__ import annotations

import uuid
from datetime import datetime, time, timedelta
from typing import Any, cast

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme

from automations import app_runs, crm_logging
from automations import selectors as automation_selectors
from automations.models import AppRun, CrmLog
from calls import deliveries, recordings, selectors, services
from calls.models import Call, CallStatus, Delivery
from contacts.selectors import caller_card
from core import outbox, phone_numbers
from dashboard.access import MemberRequest, member_required
from dashboard.audit import audit
from dashboard.forms import SubmitOnceForm
from dashboard.htmx import render_page
from tenants.models import Agent

CALLS_PER_PAGE = 25


class CallFilters(forms.Form):
    number = forms.CharField(required=False, max_length=40, label="Number")
    agent = forms.ChoiceField(required=False, label="Agent")
    status = forms.ChoiceField(
        required=False, choices=[("", "Any status"), *CallStatus.choices], label="Status"
    )
    since = forms.DateField(
        required=False, label="From", widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        required=False, label="To", widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, data: QueryDict | None) -> None:
        super().__init__(data)
        agents = Agent.objects.order_by("crm_username").values_list("crm_username", "display_name")
        agent_field = cast(forms.ChoiceField, self.fields["agent"])
        agent_field.choices = [("", "Any agent")] + [
            (username, f"{name} ({username})" if name else username) for username, name in agents
        ]

    def clean(self) -> dict[str, Any]:
        data = self.cleaned_data
        if data.get("since") and data.get("until") and data["since"] > data["until"]:
            self.add_error("until", "The end date is before the start date.")
        return data

    def selection(self, region: str) -> dict[str, Any]:
        """The filters as call_list's arguments (dates are whole days in the tenant's zone)."""
        data = self.cleaned_data
        return {
            "number": number_filter(data.get("number") or "", region),
            "crm_username": data.get("agent") or None,
            "status": data.get("status") or None,
            "since": _day_start(data.get("since")),
            "until": _day_start(data["until"] + timedelta(days=1)) if data.get("until") else None,
        }


def number_filter(text: str, region: str) -> str | None:
    """What a typed number filters by: a whole number's E.164 form, else its digits (a part)."""
    number = phone_numbers.normalize(text.strip(), region)
    if number.is_valid:
        return number.e164
    return "".join(filter(str.isdigit, text)) or None


def _day_start(day: datetime | None) -> datetime | None:
    return timezone.make_aware(datetime.combine(day, time.min)) if day else None


@member_required
def call_list(request: MemberRequest) -> HttpResponse:
    filters = CallFilters(request.GET or None)
    selection = filters.selection(request.tenant.default_region) if filters.is_valid() else {}
    page = Paginator(selectors.call_list(**selection), CALLS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    context = {"filters": filters, "page": page, "is_filtered": bool(request.GET)}
    return render_page(
        request, "dashboard/calls/index.html", "dashboard/calls/_results.html", context
    )


class NotesForm(SubmitOnceForm):
    notes = forms.CharField(max_length=10_000, widget=forms.Textarea(attrs={"rows": 3}))


class DispositionForm(SubmitOnceForm):
    disposition = forms.CharField(max_length=64)


@member_required
def call_detail(request: MemberRequest, call_id: uuid.UUID) -> HttpResponse:
    call = get_object_or_404(Call.objects.select_related("agent"), call_id=call_id)
    notes_form = NotesForm(prefix="notes")
    disposition_form = DispositionForm(
        prefix="disposition", initial={"disposition": call.disposition}
    )
    if request.method == "POST" and "notes-notes" in request.POST:
        notes_form = NotesForm(request.POST, prefix="notes")
        if notes_form.is_valid():
            services.call_notes_add(call=call, notes=notes_form.cleaned_data["notes"])
            audit(request, "call.notes", call.call_id)
            messages.success(request, "Notes added.")
            return redirect("dashboard:calls-detail", call_id=call.call_id)
    elif request.method == "POST":
        disposition_form = DispositionForm(request.POST, prefix="disposition")
        if disposition_form.is_valid():
            new = disposition_form.cleaned_data["disposition"]
            changes = {"disposition": [call.disposition, new]}
            services.call_disposition_set(call=call, disposition=new)
            audit(request, "call.disposition", call.call_id, changes)
            messages.success(request, "Disposition saved.")
            return redirect("dashboard:calls-detail", call_id=call.call_id)
    context = {
        "call": call,
        "card": caller_card(tenant=request.tenant, number=call.customer_number),
        "events": call.events.order_by("occurred_at", "pk"),
        "parties": call.parties.order_by("added_at"),
        "deliveries": call.deliveries.prefetch_related("attempts").order_by("created_at"),
        "crm_logs": automation_selectors.call_crm_logs(call=call),
        "app_runs": automation_selectors.call_app_runs(call=call),
        "recording_url": recordings.call_recording_url(call),
        "notes_form": notes_form,
        "disposition_form": disposition_form,
    }
    return render(request, "dashboard/calls/detail.html", context)


@member_required
def delivery_resend(request: MemberRequest, delivery_id: uuid.UUID) -> HttpResponse:
    """Send a finished delivery again; back to where the button was."""
    delivery = get_object_or_404(Delivery.objects.select_related("call"), pk=delivery_id)
    try:
        deliveries.delivery_resend(delivery=delivery)
    except deliveries.DeliveryInProgress:
        messages.info(request, "This callback is being delivered right now; nothing to resend.")
    else:
        audit(request, "delivery.resend", delivery.pk)
        messages.success(request, "Callback queued to be sent again.")
    return _back(request, delivery.call)


@member_required
def crm_log_resend(request: MemberRequest, crm_log_id: uuid.UUID) -> HttpResponse:
    crm_log = get_object_or_404(CrmLog.objects.select_related("call"), pk=crm_log_id)
    try:
        crm_logging.crm_log_resend(crm_log=crm_log)
    except outbox.NotFailed as error:
        messages.info(request, str(error))
    else:
        audit(request, "crm_log.resend", crm_log.pk)
        messages.success(request, "CRM log queued to run again.")
    return _back(request, crm_log.call)


@member_required
def app_run_resend(request: MemberRequest, app_run_id: uuid.UUID) -> HttpResponse:
    run = get_object_or_404(AppRun.objects.select_related("call", "app"), pk=app_run_id)
    try:
        app_runs.app_run_resend(run=run)
    except outbox.NotFailed as error:
        messages.info(request, str(error))
    else:
        audit(request, "app_run.resend", f"{run.app.name} for call {run.call.call_id}")
        messages.success(request, f"{run.app.name} queued to run again.")
    return _back(request, run.call)


def _back(request: MemberRequest, call: Call) -> HttpResponse:
    """Back to the page the button was on (a local URL), else the call's page."""
    target = request.POST.get("next", "")
    if target.startswith("/app/") and url_has_allowed_host_and_scheme(target, allowed_hosts=None):
        return redirect(target)
    return redirect("dashboard:calls-detail", call_id=call.call_id)
