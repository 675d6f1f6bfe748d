"""The URLs our Twilio gateway gives Twilio for a call: TwiML to run, and progress callbacks.

They carry no secret: each request must bear Twilio's signature with the tenant's auth token
(X-Twilio-Signature over our public URL and the form), else 403.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from calls.gateways import Callback, CallbackRefused, gateway_for
from calls.gateways.twilio import twiml
from calls.gateways.twilio.calls import inbound_progress, leg_progress
from calls.gateways.twilio.gateway import TwilioGateway
from calls.models import Call
from core.scoping import tenant_scope
from tenants.models import Tenant

TWIML = "application/xml"


GatewayView = Callable[..., HttpResponse]


def signed(view: GatewayView) -> Callable[..., HttpResponse]:
    """Load the tenant's Twilio gateway once Twilio's signature checks out, else 403."""

    @csrf_exempt
    @require_POST
    def checked(request: HttpRequest, tenant_id: int, **kwargs: Any) -> HttpResponse:
        tenant = get_object_or_404(Tenant.objects.filter(is_active=True), pk=tenant_id)
        with tenant_scope(tenant):
            gateway = gateway_for(tenant)
            if not isinstance(gateway, TwilioGateway):
                raise Http404("This tenant does not run on Twilio.")
            try:
                gateway.check_signature(callback_of(request))
            except CallbackRefused as error:
                return HttpResponse(str(error), status=403, content_type="text/plain")
            return view(request, gateway, **kwargs)

    return checked


def callback_of(request: HttpRequest) -> Callback:
    """The request as Twilio signed it: our public URL, every form value, the headers."""
    return Callback(
        url=f"{settings.PUBLIC_BASE_URL}{request.get_full_path()}",
        form=dict(request.POST.lists()),
        headers=request.headers,
    )


def _call(call_id: str) -> Call:
    return get_object_or_404(Call.objects.select_related("tenant", "agent"), call_id=call_id)


@signed
def connect(request: HttpRequest, gateway: TwilioGateway, call_id: str) -> HttpResponse:
    """The agent answered: the TwiML that dials the customer."""
    return HttpResponse(gateway.connect_twiml(_call(call_id)), content_type=TWIML)


@signed
def after_dial(request: HttpRequest, gateway: TwilioGateway, call_id: str) -> HttpResponse:
    """The customer's leg left the agent's bridge: the agent joins its conference, or is done."""
    return HttpResponse(gateway.after_dial_twiml(str(call_id)), content_type=TWIML)


@signed
def status(request: HttpRequest, gateway: TwilioGateway, call_id: str) -> HttpResponse:
    """A leg's progress or a recording: stored as our event, then applied by a worker."""
    leg_progress(call=_call(call_id), leg=request.GET.get("leg", ""), form=_form(request))
    return HttpResponse(status=204)


@signed
def inbound_leg(request: HttpRequest, gateway: TwilioGateway, call_sid: str) -> HttpResponse:
    """The agent's leg of an inbound call rings or answers."""
    inbound_progress(gateway.tenant, call_sid, _form(request))
    return HttpResponse(status=204)


@signed
def inbound_after_dial(request: HttpRequest, gateway: TwilioGateway, call_sid: str) -> HttpResponse:
    """The agent's leg of an inbound call is over (DialCallStatus): so is the call."""
    inbound_progress(gateway.tenant, call_sid, _form(request))
    return HttpResponse(twiml.hang_up(), content_type=TWIML)


def _form(request: HttpRequest) -> dict[str, str]:
    return {name: request.POST[name] for name in request.POST}
