"""Agents and numbers: agents CRUD, each agent's click-to-call launch URL and Dial link, and the
caller-ID numbers assigned to the tenant (read only: staff assign them in /admin/).

Forms are checked by the API's AgentSerializer and saved by tenants.services, as
/api/v1/agents does.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse

from dashboard.access import member_required, requires_role
from dashboard.audit import audit
from dashboard.forms import SubmitOnceForm, form_changes
from tenants import services
from tenants.api import AgentSerializer
from tenants.models import Agent, CallerIdNumber, Tenant

# What the CRM fills in on each click (seed 002): the customer's number.
CUSTOMER_NUMBER_PLACEHOLDER = "{customer_number}"
BROWSER_KEY_PLACEHOLDER = "YOUR_BROWSER_KEY"


class AgentForm(SubmitOnceForm, forms.ModelForm):
    phone_number = forms.CharField(
        required=False,
        max_length=40,
        label="Phone",
        help_text="Any format; stored as E.164. The agent's real phone, for server-to-server "
        "calls.",
    )

    class Meta:
        model = Agent
        fields = ["crm_username", "display_name", "extension", "email", "phone_number", "is_active"]
        labels = {"crm_username": "CRM username", "is_active": "Active (can place calls)"}
        help_texts = {"crm_username": "The agent's ID as your CRM sends it; must be unique."}

    def __init__(self, *args: Any, tenant: Tenant, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tenant = tenant
        self.validated: dict[str, Any] = {}

    def _post_clean(self) -> None:
        """The API's rules (AgentSerializer), instead of the ModelForm's own model checks."""
        if self.errors:
            return
        serializer = AgentSerializer(
            self.instance if self.instance.pk else None,
            data={name: self.cleaned_data[name] for name in self._meta.fields},
            partial=self.instance.pk is not None,
            context={"tenant": self.tenant},
        )
        if serializer.is_valid():
            self.validated = dict(serializer.validated_data)
            return
        for field, found in serializer.errors.items():
            name = field if field in self.fields else None
            for message in found:
                self.add_error(name, str(message))


def launch_url(agent: Agent, from_number: str) -> str:
    """Seed 002's launch URL for this agent; the CRM fills in the customer's number."""
    base = settings.PUBLIC_BASE_URL + reverse("webphone-launch")
    return (
        f"{base}?crm_username={quote(agent.crm_username, safe='')}"
        f"&api_key={BROWSER_KEY_PLACEHOLDER}&to_number={CUSTOMER_NUMBER_PLACEHOLDER}"
        f"&from_number={quote(from_number, safe='{}_')}"
    )


@member_required
def agents(request: HttpRequest) -> HttpResponse:
    numbers = list(CallerIdNumber.objects.order_by("number"))
    from_number = numbers[0].number if numbers else "{caller_id}"
    rows = list(Agent.objects.order_by("crm_username"))
    for agent in rows:
        agent.launch_url = launch_url(agent, from_number)
    context = {
        "agents": rows,
        "numbers": numbers,
        "from_number": from_number,
        "placeholders": (CUSTOMER_NUMBER_PLACEHOLDER, BROWSER_KEY_PLACEHOLDER),
    }
    return render(request, "dashboard/agents/index.html", context)


@requires_role("admin")
def agent_new(request: HttpRequest) -> HttpResponse:
    return _agent_form(request, None)


@requires_role("admin")
def agent_edit(request: HttpRequest, pk: int) -> HttpResponse:
    return _agent_form(request, get_object_or_404(Agent, pk=pk))


def _agent_form(request: HttpRequest, agent: Agent | None) -> HttpResponse:
    form = AgentForm(request.POST or None, instance=agent, tenant=request.tenant)
    if request.method == "POST" and form.is_valid():
        if agent is None:
            agent = services.agent_create(tenant=request.tenant, **form.validated)
            action = "agent.create"
        else:
            services.agent_update(agent=agent, **form.validated)
            action = "agent.update"
        audit(request, action, agent, form_changes(form))
        messages.success(request, f"Saved {agent}.")
        return redirect("dashboard:agents")
    return render(request, "dashboard/agents/form.html", {"form": form, "agent": agent})


@requires_role("admin")
def agent_delete(request: HttpRequest, pk: int) -> HttpResponse:
    agent = get_object_or_404(Agent, pk=pk)
    if request.method == "POST":
        name = str(agent)
        services.agent_delete(agent=agent)
        audit(request, "agent.delete", name)
        messages.success(request, f"Removed {name}.")
        return redirect("dashboard:agents")
    return render(request, "dashboard/agents/delete.html", {"agent": agent})
