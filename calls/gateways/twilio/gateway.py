"""Twilio Programmable Voice: its status and recording callbacks on the tenant's events URL.

Placing and controlling calls through Twilio's REST API is not built yet (the base class
answers 501); `callbacks.py` maps what Twilio posts to our events.
"""

from __future__ import annotations

from typing import Any

from calls.gateways.base import Callback, CallbackRefused, TelephonyGateway
from calls.gateways.twilio.callbacks import twilio_event, twilio_signature_valid


class TwilioGateway(TelephonyGateway):
    callback_media_types = ("application/x-www-form-urlencoded",)

    @property
    def auth_token(self) -> str:
        # The tenant setting (PATCH /api/v1/tenant twilio_auth_token) until a configured one.
        configured = self.credentials.get("auth_token")
        return str(configured or self.tenant.telephony_settings.twilio_auth_token or "")

    def read_callback(self, callback: Callback) -> dict[str, Any] | None:
        """Our event for a Twilio callback, once its signature checks out (if a token is set)."""
        if self.auth_token:
            signature = callback.headers.get("X-Twilio-Signature", "")
            if not twilio_signature_valid(self.auth_token, callback.url, callback.form, signature):
                raise CallbackRefused(
                    "X-Twilio-Signature does not match this URL and body for the tenant's "
                    "Twilio auth token."
                )
        return twilio_event({name: values[-1] for name, values in callback.form.items()})
