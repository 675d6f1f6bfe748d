"""What every telephony gateway answers to (calls/gateways/<engine>/gateway.py).

A gateway places and controls calls, and reads the callbacks its engine posts to the tenant's
events URL into our event format (calls/inbound.py), so they take the one ingest path
(calls/events.py). Operations it cannot do raise `GatewayNotSupported` (answered as 501); an
engine that fails to take a request raises `GatewayUnavailable` (502).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from django.http import HttpResponse

    from calls.models import Call
    from tenants.models import Agent, Tenant


class GatewayNotSupported(Exception):
    """The tenant's gateway cannot do this operation."""


class GatewayUnavailable(Exception):
    """The engine did not take the request (down, refused, too slow); nothing was changed."""


class GatewayConfigError(ValueError):
    """Credentials or settings an engine cannot work with; `field` names the bad one."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class CallbackRefused(Exception):
    """A callback whose signature does not check out for the gateway's credentials."""


@dataclass(frozen=True)
class Callback:
    """One request the engine posted to the events URL, as received."""

    url: str  # as the engine called it (PUBLIC_BASE_URL + path and query)
    form: Mapping[str, list[str]]  # every value of every field
    headers: Mapping[str, str]


@dataclass(frozen=True)
class InboundCall:
    """A call reaching one of the tenant's numbers through the engine, as it asks where to go."""

    caller: str  # as the engine wrote it (routing reads any form)
    called: str
    engine_call_id: str
    event: dict[str, Any]  # its call.start in our event format (calls/inbound.py)


class TelephonyGateway:
    """One engine for one tenant; operations it cannot do raise GatewayNotSupported."""

    # The content types of the engine's own callbacks (our JSON events need no gateway).
    callback_media_types: ClassVar[tuple[str, ...]] = ()
    # What a tenant's GatewayConfig may hold for this engine (the API refuses anything else).
    credential_keys: ClassVar[frozenset[str]] = frozenset()
    setting_keys: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def check_config(cls, credentials: Mapping[str, Any], settings: Mapping[str, Any]) -> None:
        """Raise GatewayConfigError for credentials or settings this engine cannot use."""

    def __init__(
        self,
        engine: str,
        tenant: Tenant,
        credentials: Mapping[str, Any],
        settings: Mapping[str, Any],
    ) -> None:
        self.engine = engine  # its name in the registry (calls/gateways/__init__.py)
        self.tenant = tenant
        self.credentials = credentials
        self.settings = settings

    def originate(self, call: Call) -> None:
        raise GatewayNotSupported(f"{type(self).__name__} cannot place calls yet.")

    def hang_up(self, call: Call) -> None:
        raise GatewayNotSupported(f"{type(self).__name__} cannot hang up calls yet.")

    def transfer(self, call: Call, to_number: str) -> None:
        raise GatewayNotSupported(f"{type(self).__name__} cannot transfer calls yet.")

    def add_party(self, call: Call, number: str) -> None:
        raise GatewayNotSupported(f"{type(self).__name__} cannot add parties yet.")

    def recording_headers(self, url: str) -> dict[str, str]:
        """Headers that fetch a recording this engine keeps behind its credentials at `url`.

        {} for a URL anyone holding it may fetch. A recording that needs them is always copied
        to our storage (calls/recordings.py): our link cannot hand the credentials on.
        """
        return {}

    def read_inbound(self, callback: Callback) -> InboundCall:
        """The call an engine's inbound request announces (CallbackRefused if not signed)."""
        raise GatewayNotSupported(f"{type(self).__name__} does not route inbound calls.")

    def route_answer(
        self, inbound: InboundCall, extension: str | None, reason: str, *, agent: Agent | None
    ) -> HttpResponse:
        """What the engine runs to put the call through to `extension` (None: nobody)."""
        raise GatewayNotSupported(f"{type(self).__name__} does not route inbound calls.")

    def read_callback(self, callback: Callback) -> dict[str, Any] | None:
        """Our event (calls/inbound.py's format) for one callback; None: nothing to record.

        Raises CallbackRefused for a bad signature, InvalidEvent for a body it cannot read.
        """
        raise GatewayNotSupported(f"{type(self).__name__} posts no callbacks of its own.")
