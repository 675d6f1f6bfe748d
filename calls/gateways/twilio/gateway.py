"""Twilio Programmable Voice: click-to-call through Twilio's REST API, and its callbacks.

A call rings the agent first (`POST /Calls.json`); when the agent answers, Twilio asks our
`connect` URL for TwiML, which dials the customer and bridges them (twiml.py). Each leg reports
its progress to our `status` URL (views.py), signed with the account's auth token, and becomes
our events about the call (calls/inbound.py), which take the one ingest path (calls/events.py).
Phone systems posting Twilio callbacks to the tenant's events URL are read by `read_callback`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.http import HttpResponse
from django.urls import reverse

from calls.gateways.base import (
    Callback,
    CallbackRefused,
    GatewayConfigError,
    GatewayNotSupported,
    GatewayUnavailable,
    InboundCall,
    TelephonyGateway,
)
from calls.gateways.twilio import rest, twiml
from calls.gateways.twilio.callbacks import (
    END_STATUSES,
    party_number,
    twilio_event,
    twilio_signature_valid,
)
from calls.inbound import InvalidEvent
from calls.models import Call, CallState
from core import http
from tenants.models import Agent

AGENT_RING_SECONDS = 20
CONFERENCE_NOTE_SECONDS = 12 * 3600  # longer than any call
ACCOUNT_SID = re.compile(r"AC[0-9a-fA-F]{32}")
E164 = re.compile(r"\+[1-9][0-9]{6,14}")


class TwilioGateway(TelephonyGateway):
    callback_media_types = ("application/x-www-form-urlencoded",)
    credential_keys = frozenset({"account_sid", "auth_token"})
    setting_keys = frozenset({"caller_id", "agent_ring_seconds", "record", "api_base_url"})

    @classmethod
    def check_config(cls, credentials: Mapping[str, Any], settings: Mapping[str, Any]) -> None:
        if not ACCOUNT_SID.fullmatch(str(credentials.get("account_sid", ""))):
            raise GatewayConfigError(
                "credentials", "account_sid: Twilio's account SID, AC and 32 hex digits."
            )
        if not credentials.get("auth_token"):
            raise GatewayConfigError("credentials", "auth_token: the account's auth token.")
        caller_id = settings.get("caller_id", "")
        if caller_id and not E164.fullmatch(str(caller_id)):
            raise GatewayConfigError("settings", "caller_id: an E.164 number, e.g. +14155550123.")
        seconds = settings.get("agent_ring_seconds", AGENT_RING_SECONDS)
        if not isinstance(seconds, int) or isinstance(seconds, bool) or not 5 <= seconds <= 600:
            raise GatewayConfigError("settings", "agent_ring_seconds: whole seconds, 5 to 600.")
        if not isinstance(settings.get("record", False), bool):
            raise GatewayConfigError("settings", "record: true or false.")
        if settings.get("api_base_url"):
            try:
                http.check_url(str(settings["api_base_url"]))
            except http.HttpError as error:
                raise GatewayConfigError("settings", f"api_base_url: {error}") from None

    @property
    def auth_token(self) -> str:
        # The tenant setting (PATCH /api/v1/tenant twilio_auth_token) until a configured one.
        configured = self.credentials.get("auth_token")
        return str(configured or self.tenant.telephony_settings.twilio_auth_token or "")

    @property
    def account(self) -> rest.TwilioAccount:
        return rest.TwilioAccount(
            account_sid=str(self.credentials.get("account_sid", "")),
            auth_token=self.auth_token,
            base_url=str(self.settings.get("api_base_url") or rest.API_BASE_URL).rstrip("/"),
        )

    def originate(self, call: Call) -> None:
        """Ring the agent from a worker once the call is committed (tasks.twilio_originate)."""
        from calls.gateways.twilio.tasks import twilio_originate

        if not self.credentials.get("account_sid") or not self.auth_token:
            raise GatewayNotSupported(
                "The tenant's Twilio gateway has no account_sid and auth_token: set them first."
            )
        call.external_id = str(call.call_id)  # our events about it name it so (views.py)
        call.save(update_fields=["external_id", "updated_at"])
        transaction.on_commit(lambda: twilio_originate.delay(call.tenant_id, str(call.call_id)))

    def agent_leg_fields(self, call: Call) -> list[tuple[str, str]]:
        """The REST request that rings the agent: their phone, else their browser client."""
        agent = call.agent.phone_number if call.agent and call.agent.phone_number else ""
        to = agent or f"client:{call.crm_username}"
        return [
            ("To", to),
            ("From", self.caller_id(call)),
            ("Url", self.url(call, "connect")),
            ("Method", "POST"),
            ("StatusCallback", self.url(call, "status", leg="agent")),
            ("StatusCallbackMethod", "POST"),
            *[("StatusCallbackEvent", event) for event in twiml.LEG_EVENTS.split()],
            ("Timeout", str(self.settings.get("agent_ring_seconds", AGENT_RING_SECONDS))),
        ]

    def connect_twiml(self, call: Call) -> str:
        """The agent answered: dial the customer, bridged, recorded if the tenant asks."""
        record = bool(self.settings.get("record"))
        return twiml.connect_customer(
            customer=call.customer_number,
            caller_id=self.caller_id(call),
            status_url=self.url(call, "status", leg="customer"),
            after_url=self.url(call, "after-dial"),
            record_url=self.url(call, "status", leg="recording") if record else "",
        )

    def hang_up(self, call: Call) -> None:
        legs = call.engine_legs
        if legs.get("transferred") or legs.get("conference"):  # the customer's leg is the call
            rest.call_update(self.account, legs["customer"], [("Status", "completed")])
            return
        if not legs.get("agent"):
            return  # not placed yet: the originate task finds the call ended and stops
        # `completed` ends a leg in progress (and its bridge); `canceled` one still ringing.
        answered = call.state in (CallState.CUSTOMER_RINGING, CallState.ANSWERED)
        rest.call_update(
            self.account, legs["agent"], [("Status", "completed" if answered else "canceled")]
        )

    def transfer(self, call: Call, to_number: str) -> None:
        """Move the customer's leg to `to_number` (the agent's leg is hung up by after-dial)."""
        customer_leg = call.engine_legs.get("customer")
        if not customer_leg:
            raise GatewayNotSupported("Twilio has not reported the customer's leg yet.")
        redirect = twiml.transfer_to(
            number=to_number,
            caller_id=self.caller_id(call),
            status_url=self.url(call, "status", leg="party"),
        )
        rest.call_update(self.account, customer_leg, [("Twiml", redirect)])
        call.engine_legs = {**call.engine_legs, "transferred": to_number}
        call.save(update_fields=["engine_legs", "updated_at"])

    def add_party(self, call: Call, number: str) -> None:
        """Move the call into a conference room and ring `number` into it (a three-way call).

        The customer's leg goes first; its leaving the bridge makes Twilio ask the agent's
        after-dial URL, which must find the room already: it is noted in the shared cache
        (immediately, not with this transaction) before Twilio is asked anything.
        """
        legs = call.engine_legs
        if not legs.get("customer") or legs.get("transferred"):
            raise GatewayNotSupported("Only a call still bridged to its customer takes a party.")
        room = legs.get("conference") or f"cb-{call.call_id}"
        try:
            cache.set(conference_key(str(call.call_id)), room, CONFERENCE_NOTE_SECONDS)
        except Exception as error:  # the cache's backend down: the agent would be cut off
            raise GatewayUnavailable(f"Could not note the conference: {error}") from error
        if not legs.get("conference"):
            redirect = twiml.conference(room, ends_it=True)
            rest.call_update(self.account, legs["customer"], [("Twiml", redirect)])
        party = rest.call_create(
            self.account,
            [
                ("To", number),
                ("From", self.caller_id(call)),
                ("Twiml", twiml.conference(room)),
                ("StatusCallback", self.url(call, "status", leg="party")),
                ("StatusCallbackMethod", "POST"),
                *[("StatusCallbackEvent", event) for event in twiml.LEG_EVENTS.split()],
            ],
        )
        call.engine_legs = {**legs, "conference": room, "party": party}
        call.save(update_fields=["engine_legs", "updated_at"])

    def after_dial_twiml(self, call_id: str) -> str:
        """The agent's leg left its bridge: into the conference if there is one, else done."""
        room = cache.get(conference_key(call_id))
        return twiml.conference(room) if room else twiml.hang_up()

    def caller_id(self, call: Call) -> str:
        return str(self.settings.get("caller_id") or call.from_number)

    def url(self, call: Call, action: str, **query: str) -> str:
        path = reverse(
            f"gateway-twilio-{action}",
            kwargs={"tenant_id": self.tenant.pk, "call_id": call.call_id},
        )
        suffix = "".join(f"?{name}={value}" for name, value in query.items())
        return f"{settings.PUBLIC_BASE_URL}{path}{suffix}"

    def check_signature(self, callback: Callback) -> None:
        """Refuse a request Twilio did not sign with this account's auth token."""
        signature = callback.headers.get("X-Twilio-Signature", "")
        if not self.auth_token or not twilio_signature_valid(
            self.auth_token, callback.url, callback.form, signature
        ):
            raise CallbackRefused(
                "X-Twilio-Signature does not match this URL and body for the tenant's "
                "Twilio auth token."
            )

    def read_inbound(self, callback: Callback) -> InboundCall:
        """A call to one of the tenant's Twilio numbers (the number's Voice URL is ours)."""
        self.check_signature(callback)
        form = {name: values[-1] for name, values in callback.form.items()}
        call_sid = form.get("CallSid", "")
        if not call_sid:
            raise InvalidEvent("CallSid", "Twilio's voice request needs CallSid.")
        caller, called = party_number(form.get("From", "")), party_number(form.get("To", ""))
        event = {
            "id": f"twilio:{call_sid}:inbound",
            "type": "call.start",
            "call_id": call_sid,
            "direction": "inbound",
            "from": caller,
            "to": called,
        }
        return InboundCall(caller=caller, called=called, engine_call_id=call_sid, event=event)

    def route_answer(
        self, inbound: InboundCall, extension: str | None, reason: str, *, agent: Agent | None
    ) -> HttpResponse:
        """TwiML that rings the extension's agent (their phone, else their browser)."""
        if not extension:
            document = twiml.nobody_answers()
        else:
            path = {"tenant_id": self.tenant.pk, "call_sid": inbound.engine_call_id}
            base = settings.PUBLIC_BASE_URL
            document = twiml.route_inbound(
                number=agent.phone_number if agent and agent.phone_number else "",
                client=agent.crm_username if agent else extension,
                caller_id=inbound.caller or inbound.called,
                status_url=base + reverse("gateway-twilio-inbound-leg", kwargs=path),
                after_url=base + reverse("gateway-twilio-inbound-after-dial", kwargs=path),
            )
        response = HttpResponse(document, content_type="application/xml")
        response["X-CallBridge-Route"] = reason[:200]  # why, for whoever reads Twilio's logs
        return response

    def read_callback(self, callback: Callback) -> dict[str, Any] | None:
        """Our event for a Twilio callback, once its signature checks out (if a token is set)."""
        if self.auth_token:
            self.check_signature(callback)
        return twilio_event({name: values[-1] for name, values in callback.form.items()})


def leg_event(call: Call, leg: str, form: dict[str, str]) -> dict[str, Any] | None:
    """Our event for one progress callback of a leg we placed; None when it changes nothing.

    The agent's leg decides until the agent answers; from then on the customer's leg does (its
    answer is the call's, its end the call's end). A transferred-to party's leg changes nothing:
    the customer's leg stays the call.
    """
    call_status = form.get("CallStatus", "")
    sequence = form.get("SequenceNumber", "")
    event: dict[str, Any] = {
        "id": f"twilio:{form.get('CallSid', '')}:{call_status}:{sequence}",
        "call_id": call.external_id,
        "direction": call.direction,
    }
    if leg == "recording":
        if form.get("RecordingStatus") != "completed" or not form.get("RecordingUrl"):
            return None
        event["id"] = f"twilio:{form.get('RecordingSid', '')}:recording"
        return {**event, "type": "recording.ready", "recording_url": form["RecordingUrl"]}
    if leg not in ("agent", "customer") or call_status in ("queued", "initiated"):
        return None
    if call_status == "ringing":
        return {**event, "type": "call.ringing", "ringing": leg}
    if call_status == "in-progress":
        return {**event, "type": "call.answered"} if leg == "customer" else None
    if call_status not in END_STATUSES:
        return None
    if leg == "agent" and call_status == "completed" and call.engine_legs.get("customer"):
        return None  # answered, then bridged: the customer's leg ends the call
    event.update(type="call.end", status=END_STATUSES[call_status])
    if leg == "agent" and call_status == "completed":
        event["status"] = "CANCELED"  # the agent answered and left before the customer rang
    if leg == "customer" and call_status == "completed" and form.get("CallDuration", "").isdigit():
        event["duration"] = int(form["CallDuration"])
    return event


# DialCallStatus (https://www.twilio.com/docs/voice/twiml/dial#dialcallstatus) -> our end status.
DIAL_END_STATUSES = {
    "completed": "ANSWER",
    "answered": "ANSWER",
    "busy": "BUSY",
    "no-answer": "NO_ANSWER",
    "failed": "FAILED",
    "canceled": "CANCELED",
}


def inbound_event(call_sid: str, form: dict[str, str]) -> dict[str, Any] | None:
    """Our event about inbound call `call_sid` for its agent leg's progress or its dial's end."""
    event: dict[str, Any] = {"call_id": call_sid, "direction": "inbound"}
    dial_status = form.get("DialCallStatus", "")
    if dial_status:
        if dial_status not in DIAL_END_STATUSES:
            return None
        event.update(id=f"twilio:{call_sid}:dial", type="call.end")
        event["status"] = DIAL_END_STATUSES[dial_status]
        if event["status"] == "ANSWER" and form.get("DialCallDuration", "").isdigit():
            event["duration"] = int(form["DialCallDuration"])
        return event
    call_status = form.get("CallStatus", "")
    event["id"] = f"twilio:{form.get('CallSid', '')}:{call_status}:{form.get('SequenceNumber', '')}"
    if call_status == "ringing":
        return {**event, "type": "call.ringing", "ringing": "agent"}
    if call_status == "in-progress":
        return {**event, "type": "call.answered"}
    return None  # initiated, or the leg's end: the dial's end says how the call ended


def conference_key(call_id: str) -> str:
    return f"twilio:conference:{call_id}"
