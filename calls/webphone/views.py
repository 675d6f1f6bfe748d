"""The browser softphone (seed 002): the launch URL and the agent's call page with its actions."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    JsonResponse,
    StreamingHttpResponse,
)
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST
from rest_framework import serializers

from calls import live, services
from calls.api.serializers import (
    CallRecordSerializer,
    DispositionInput,
    NotesInput,
    PartyInput,
    TransferInput,
)
from calls.gateways import GatewayNotSupported, GatewayUnavailable
from calls.models import Call, CallParty, CallState, CallStatus
from calls.webphone import access
from contacts.selectors import CallerCard, caller_card
from core.errors import error_body
from core.scoping import tenant_scope
from tenants.models import Agent, Tenant

# What the page says for each state and final status; the page's script uses the same words.
STATE_LABELS = {
    CallState.INITIATED: "Starting…",
    CallState.AGENT_RINGING: "Connecting your softphone…",
    CallState.CUSTOMER_RINGING: "Ringing the customer…",
    CallState.ANSWERED: "Connected",
}
STATUS_LABELS = {
    CallStatus.ANSWER: "Call ended",
    CallStatus.NO_ANSWER: "No answer",
    CallStatus.BUSY: "Busy",
    CallStatus.FAILED: "Call failed",
    CallStatus.CANCELED: "Canceled",
}
# The page's own assets only; the token in its URL must not leak through a Referer header.
CONTENT_POLICY = (
    "default-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; "
    "frame-ancestors {ancestors}"
)
PAGE_HEADERS = {"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}

ActionInput = type[serializers.Serializer] | None
ACTIONS: dict[str, tuple[ActionInput, Callable[..., Call]]] = {
    "hangup": (None, lambda call: services.call_hang_up(call=call)),
    "transfer": (
        TransferInput,
        lambda call, to_number: services.call_party_add(
            call=call, kind=CallParty.Kind.TRANSFER, number=to_number
        ),
    ),
    "add-party": (
        PartyInput,
        lambda call, number: services.call_party_add(
            call=call, kind=CallParty.Kind.THIRD_PARTY, number=number
        ),
    ),
    "disposition": (DispositionInput, services.call_disposition_set),
    "notes": (NotesInput, services.call_notes_add),
}


def _page(
    request: HttpRequest,
    template: str,
    context: dict,
    status: int = 200,
    tenant: Tenant | None = None,
) -> HttpResponse:
    """A webphone page: framed only by the CRM origins the tenant lists, else by nobody."""
    response = render(request, template, context, status=status)
    for header, value in PAGE_HEADERS.items():
        response[header] = value
    origins = tenant.webphone_settings.frame_origins if tenant else []
    response["Content-Security-Policy"] = CONTENT_POLICY.format(
        ancestors=" ".join(origins) or "'none'"
    )
    # X-Frame-Options cannot name origins; CSP frame-ancestors replaces it where it is listed.
    response.xframe_options_exempt = bool(origins)
    return response


@csrf_exempt  # only GET launches: any other method is a 405, not CSRF's 403 page
@require_GET
def launch(request: HttpRequest) -> HttpResponse:
    """Place a browser call from the launch URL and send the agent to its call page."""
    try:
        launch = access.launch_read(request.GET)
    except access.LaunchRefused as refused:
        return _refused(request, refused.status, refused.code, refused.message, refused.field)
    try:
        with tenant_scope(launch.tenant):
            # The same uuid again (a reload, a double click) finds its call: no second call.
            call, _ = services.call_place(
                tenant=launch.tenant,
                call_type=Call.CallType.BROWSER,
                from_number=launch.from_number,
                customer_number=launch.customer_number,
                agent=launch.agent,
                uuid=launch.uuid,
            )
    except services.CallConflict as error:
        return _refused(request, 409, error.code, str(error), "uuid")
    except GatewayNotSupported as error:
        return _refused(request, 501, "not_supported", str(error))
    except GatewayUnavailable as error:
        return _refused(request, 502, "gateway_unavailable", str(error))
    # 303: reloading the call page must never place the call again.
    response = HttpResponseRedirect(reverse("webphone-call", args=[access.page_token(call)]))
    response.status_code = 303
    return response


def with_call(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """Resolve the page token to its call, inside the call's tenant scope; else 404."""

    @wraps(view)
    def wrapped(request: HttpRequest, token: str, **kwargs: str) -> HttpResponseBase:
        claims = access.page_token_read(token)
        if claims is None:
            raise Http404("No call page here.")
        tenant_id, call_id = claims
        with tenant_scope(tenant_id):
            call = (
                Call.objects.select_related("tenant__webphone_settings", "agent")
                .filter(call_id=call_id)
                .first()
            )
            if call is None or not call.tenant.is_active:
                raise Http404("No call page here.")
            return view(request, call, token=token, **kwargs)

    return wrapped


@require_GET
@with_call
def call_page(request: HttpRequest, call: Call, token: str) -> HttpResponse:
    """The agent's call page: live status, caller card and call controls."""
    card = caller_card(tenant=call.tenant, number=call.customer_number)
    context = {
        "call": call,
        "card": card,
        "crm_link": _crm_link(card),
        "label": STATUS_LABELS.get(call.status) or STATE_LABELS[call.state],
        "labels": {"states": STATE_LABELS, "statuses": STATUS_LABELS},
        "token": token,
    }
    return _page(request, "webphone/call.html", context, tenant=call.tenant)


@require_GET
@with_call
def call_events(request: HttpRequest, call: Call, token: str) -> StreamingHttpResponse:
    """The call's server-sent events (its state changes) for the page's EventSource."""
    after = live.last_event_id(request.headers.get("Last-Event-ID"))
    return live.sse_response(live.stream(tenant=call.tenant, call=call, last_event_id=after))


# The unguessable token in the path is the credential: a cross-site page cannot know it, so
# there is nothing for a CSRF token to add (and a CRM may show the page in a frame, where the
# CSRF cookie would not be sent).
@csrf_exempt
@require_POST
@with_call
def call_action(request: HttpRequest, call: Call, token: str, action: str) -> HttpResponse:
    """Run one call control (hang up, transfer, add a party, disposition, notes)."""
    if action not in ACTIONS:
        raise Http404("No such call action.")
    input_class, act = ACTIONS[action]
    values = {}
    if input_class is not None:
        incoming = input_class(data=request.POST, context={"tenant": call.tenant})
        if not incoming.is_valid():
            field, messages = next(iter(incoming.errors.items()))
            return _refused(request, 400, "invalid", f"{field}: {messages[0]}", field)
        values = incoming.validated_data
    try:
        call = act(call=call, **values)
    except services.CallConflict as error:
        return _refused(request, 409, error.code, str(error))
    except GatewayNotSupported as error:
        return _refused(request, 501, "not_supported", str(error))
    except GatewayUnavailable as error:
        return _refused(request, 502, "gateway_unavailable", str(error))
    if _wants_json(request):
        return JsonResponse(CallRecordSerializer(call).data)
    response = HttpResponseRedirect(reverse("webphone-call", args=[token]))
    response.status_code = 303
    return response


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _refused(
    request: HttpRequest, status: int, code: str, message: str, field: str | None = None
) -> HttpResponse:
    """Say what went wrong: the API's error shape to the page's script, else a page."""
    body = error_body(code, message, field)
    if _wants_json(request):
        return JsonResponse(body, status=status)
    return _page(request, "webphone/refused.html", {**body, "status": status}, status)


def _crm_link(card: CallerCard) -> str:
    # Only web links: a synced record's URL is the CRM's data, not ours to trust.
    crm_url = card.contact.crm_url if card.contact else ""
    return crm_url if crm_url.startswith(("https://", "http://")) else ""


# ----- the agent console: inbound calls popping up for one agent


@csrf_exempt  # only GET opens it
@require_GET
def console_open(request: HttpRequest) -> HttpResponse:
    """Open an agent's console from its URL (crm_username, browser api_key), like the launch URL."""
    try:
        agent = access.console_agent(request.GET)
    except access.LaunchRefused as refused:
        return _refused(request, refused.status, refused.code, refused.message, refused.field)
    response = HttpResponseRedirect(reverse("webphone-console", args=[access.console_token(agent)]))
    response.status_code = 303  # the key leaves the address bar
    return response


def with_agent(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """Resolve the console token to its active agent, inside the tenant's scope; else 404."""

    @wraps(view)
    def wrapped(request: HttpRequest, token: str) -> HttpResponseBase:
        claims = access.console_token_read(token)
        if claims is None:
            raise Http404("No console at this address; open it again from your CRM.")
        tenant_id, agent_id = claims
        with tenant_scope(tenant_id):
            agent = (
                Agent.objects.select_related("tenant__webphone_settings")
                .filter(pk=agent_id, is_active=True, tenant__is_active=True)
                .first()
            )
            if agent is None:
                raise Http404("No console at this address; open it again from your CRM.")
            return view(request, agent, token)

    return wrapped


@require_GET
@with_agent
def console(request: HttpRequest, agent: Agent, token: str) -> HttpResponse:
    """The agent's console: inbound calls for them pop up with the caller card."""
    context = {
        "agent": agent,
        "token": token,
        "labels": {"states": STATE_LABELS, "statuses": STATUS_LABELS},
    }
    return _page(request, "webphone/console.html", context, tenant=agent.tenant)


@require_GET
@with_agent
def console_events(request: HttpRequest, agent: Agent, token: str) -> StreamingHttpResponse:
    """The tenant's live feed, kept to this agent's inbound calls, each with its card and page."""
    tenant = agent.tenant

    def for_agent(summary: dict) -> dict | None:
        mine = summary["crm_username"] == agent.crm_username
        if not mine or summary["direction"] != Call.Direction.INBOUND:
            return None
        card = caller_card(tenant=tenant, number=summary["customer_number"])
        card_html = render_to_string(
            "webphone/_card.html", {"card": card, "crm_link": _crm_link(card)}
        )
        page = reverse("webphone-call", args=[access.page_token_of(tenant.pk, summary["call_id"])])
        return {**summary, "card_html": card_html, "page": page}

    after = live.last_event_id(request.headers.get("Last-Event-ID"))
    return live.sse_response(live.stream(tenant=tenant, last_event_id=after, select=for_agent))
