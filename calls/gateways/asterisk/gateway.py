"""Asterisk through its REST Interface (ARI): click-to-call in a Stasis application of ours.

A call rings the agent's endpoint first (`POST /ari/channels` into our app); when the agent
answers (the channel's `StasisStart`), a worker dials the customer into the app; when the customer
answers, both go into one `mixing` bridge. Transfer and add-party dial the new party into the app
and add it to the bridge (a transfer then hangs up the agent). Asterisk reports every step on the
app's events WebSocket, which `manage.py ari_events` (listener.py) reads: each event about our
channels becomes our event (events.py) and takes the one ingest path (calls/events.py); the next
step is a Celery task (tasks.py), so reading the socket never waits on Asterisk.

Our channel ids say which call and leg they are (`cb-<call id>-agent|customer|party<n>`), so an
event needs no lookup and an event that arrives before the REST answer is understood.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from django.db import transaction

from calls.gateways.asterisk import rest
from calls.gateways.base import GatewayConfigError, GatewayNotSupported, TelephonyGateway
from calls.models import Call
from core import http

APP = "callbridge"
AGENT_RING_SECONDS = 20
CUSTOMER_RING_SECONDS = 45
APP_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
E164 = re.compile(r"\+[1-9][0-9]{6,14}")
LEG = re.compile(r"cb-(?P<call>[0-9a-f-]{36})-(?P<leg>agent|customer|party[0-9]+)")
RECORDING = re.compile(r"cb-(?P<call>[0-9a-f-]{36})")  # a bridge's recording: named as the bridge


class AsteriskGateway(TelephonyGateway):
    credential_keys = frozenset({"username", "password"})
    setting_keys = frozenset(
        {"ari_url", "app", "agent_endpoint", "customer_endpoint", "caller_id"}
        | {"agent_ring_seconds", "record"}
    )

    @classmethod
    def check_config(cls, credentials: Mapping[str, Any], settings: Mapping[str, Any]) -> None:
        if not credentials.get("username") or not credentials.get("password"):
            raise GatewayConfigError(
                "credentials", "username and password: an ari.conf user that may write."
            )
        try:
            http.check_url(str(settings.get("ari_url", "")))
        except http.HttpError as error:
            raise GatewayConfigError(
                "settings",
                f"ari_url: {error} ARI is served at e.g. https://pbx.example.com:8089.",
            ) from None
        if not APP_NAME.fullmatch(str(settings.get("app", APP))):
            raise GatewayConfigError(
                "settings", "app: a Stasis application name (letters, digits, _.-)."
            )
        for key, slot in (("agent_endpoint", "{extension}"), ("customer_endpoint", "{number}")):
            template = str(settings.get(key, ""))
            if slot not in template or "/" not in template:
                raise GatewayConfigError(
                    "settings", f"{key}: an endpoint with {slot}, e.g. PJSIP/{slot}@trunk."
                )
        caller_id = settings.get("caller_id", "")
        if caller_id and not E164.fullmatch(str(caller_id)):
            raise GatewayConfigError("settings", "caller_id: an E.164 number, e.g. +14155550123.")
        seconds = settings.get("agent_ring_seconds", AGENT_RING_SECONDS)
        if not isinstance(seconds, int) or isinstance(seconds, bool) or not 5 <= seconds <= 600:
            raise GatewayConfigError("settings", "agent_ring_seconds: whole seconds, 5 to 600.")
        if not isinstance(settings.get("record", False), bool):
            raise GatewayConfigError("settings", "record: true or false.")

    @property
    def server(self) -> rest.AriServer:
        return rest.AriServer(
            base_url=str(self.settings.get("ari_url", "")),
            username=str(self.credentials.get("username", "")),
            password=str(self.credentials.get("password", "")),
        )

    @property
    def app(self) -> str:
        return str(self.settings.get("app") or APP)

    def originate(self, call: Call) -> None:
        """Ring the agent from a worker once the call is committed (tasks.asterisk_step)."""
        from calls.gateways.asterisk.tasks import asterisk_step

        if not self.settings.get("ari_url"):
            raise GatewayNotSupported("The tenant's Asterisk gateway has no ari_url: set it first.")
        call.external_id = str(call.call_id)
        call.save(update_fields=["external_id", "updated_at"])
        transaction.on_commit(
            lambda: asterisk_step.delay(call.tenant_id, str(call.call_id), "dial_agent")
        )

    def dial(self, call: Call, leg: str, endpoint: str, ring_seconds: int) -> None:
        """Ring `endpoint` into our app as the call's `leg` (the channel id names both)."""
        rest.ari_request(
            self.server,
            "POST",
            "channels",
            {
                "endpoint": endpoint,
                "app": self.app,
                "appArgs": leg,
                "channelId": channel_id(call, leg),
                "callerId": str(self.settings.get("caller_id") or call.from_number),
                "timeout": str(ring_seconds),
            },
        )

    def agent_endpoint(self, call: Call) -> str:
        extension = call.agent.extension if call.agent and call.agent.extension else ""
        return str(self.settings["agent_endpoint"]).format(extension=extension or call.crm_username)

    def customer_endpoint(self, number: str) -> str:
        return str(self.settings["customer_endpoint"]).format(number=number)

    def hang_up(self, call: Call) -> None:
        """Hang up every leg the call has (an answered one ends; a ringing one stops)."""
        for leg in ("customer", "agent", *parties(call)):
            if leg in call.engine_legs:
                self.hang_up_leg(call, leg)

    def hang_up_leg(self, call: Call, leg: str) -> None:
        try:
            rest.ari_request(self.server, "DELETE", rest.channel_path(channel_id(call, leg)))
        except rest.AriError as error:
            if error.status != 404:  # gone already: what we wanted
                raise

    def transfer(self, call: Call, to_number: str) -> None:
        self._dial_party(call, to_number, transfer=True)

    def add_party(self, call: Call, number: str) -> None:
        self._dial_party(call, number, transfer=False)

    def _dial_party(self, call: Call, number: str, *, transfer: bool) -> None:
        legs = call.engine_legs  # the customer answered: bridged now, or by the bridge step soon
        if not legs.get("answered") or legs.get("transferred"):
            raise GatewayNotSupported("Only a call still bridged to its customer takes a party.")
        leg = f"party{len(parties(call)) + 1}"
        call.engine_legs = {**legs, leg: number, **({"transferred": number} if transfer else {})}
        call.save(update_fields=["engine_legs", "updated_at"])
        self.dial(call, leg, self.customer_endpoint(number), CUSTOMER_RING_SECONDS)

    def bridge_id(self, call: Call) -> str:
        return f"cb-{call.call_id}"

    def recording_url(self, name: str) -> str:
        """Where ARI keeps a finished recording's audio (behind the ARI user's credentials)."""
        return f"{self.server.base_url.rstrip('/')}/ari/recordings/stored/{name}/file"

    def recording_headers(self, url: str) -> dict[str, str]:
        stored = f"{self.server.base_url.rstrip('/')}/ari/recordings/stored/"
        return {"Authorization": self.server.authorization} if url.startswith(stored) else {}


def channel_id(call: Call, leg: str) -> str:
    return f"cb-{call.call_id}-{leg}"


def parties(call: Call) -> list[str]:
    return sorted(leg for leg in call.engine_legs if leg.startswith("party"))
