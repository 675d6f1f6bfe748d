"""Calls reaching a tenant's number through its phone engine (Twilio's Voice URL): where to go.

The engine asks at /gateways/<engine>/<tenant id>/inbound; its gateway reads and checks the
request (signature), the call's start is stored as an event like any other, and the routing
decision (the tenant's rules, its deadline and fallback, routing/deadline.py) is answered in
the engine's own language (TwiML for Twilio).
"""

from __future__ import annotations

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from calls.events import telephony_event_accept
from calls.gateways import Callback, CallbackRefused, GatewayNotSupported, gateway_for
from calls.inbound import InvalidEvent
from core.scoping import tenant_scope
from routing import deadline, selectors
from tenants.models import Agent, Tenant


@csrf_exempt
@require_POST
def engine_inbound_call(request: HttpRequest, engine: str, tenant_id: int) -> HttpResponse:
    """Answer the engine's request for an inbound call with where it goes, within the deadline."""
    tenant = get_object_or_404(
        Tenant.objects.select_related("routing_settings"), pk=tenant_id, is_active=True
    )
    with tenant_scope(tenant):
        gateway = gateway_for(tenant)
        if gateway.engine != engine:
            raise Http404(f"This tenant's calls do not run on {engine}.")
        callback = Callback(
            url=f"{settings.PUBLIC_BASE_URL}{request.get_full_path()}",
            form=dict(request.POST.lists()),
            headers=request.headers,
        )
        try:
            inbound = gateway.read_inbound(callback)
        except CallbackRefused as error:
            return HttpResponse(str(error), status=403, content_type="text/plain")
        except (InvalidEvent, GatewayNotSupported) as error:
            return HttpResponse(str(error), status=400, content_type="text/plain")
        form = {name: values[-1] for name, values in callback.form.items()}
        telephony_event_accept(tenant=tenant, body=inbound.event, source=engine, raw=form)
    credential = deadline.credential_digest(f"inbound:{engine}:{tenant.pk}")
    deadline.profiles.remember(credential, tenant)

    def decide(body_problem: str) -> HttpResponse:
        with tenant_scope(tenant):
            decision = selectors.routing_decide(tenant=tenant, caller=inbound.caller)
            agent = (
                Agent.objects.filter(extension=decision.extension, is_active=True).first()
                if decision.extension
                else None
            )
            return gateway.route_answer(inbound, decision.extension, decision.reason, agent=agent)

    def fallback(profile: deadline.Profile | None, reason: str) -> HttpResponse:
        extension = profile.fallback_extension if profile else ""
        return gateway.route_answer(inbound, extension or None, f"fallback: {reason}", agent=None)

    return deadline.answer_within(request, credential, decide, fallback)
