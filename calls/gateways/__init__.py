"""The one list of telephony engines: name -> (label, dotted path of its gateway class).

The tenant's `GatewayConfig` names its engine (the simulator without one); nothing else in
`calls` knows which engine runs. A new engine is its folder here (gateway.py implementing
`base.TelephonyGateway`), one line below, its fake and its tests.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.utils.module_loading import import_string

from calls.gateways.base import (
    Callback,
    CallbackRefused,
    GatewayConfigError,
    GatewayNotSupported,
    GatewayUnavailable,
    InboundCall,
    TelephonyGateway,
)

if TYPE_CHECKING:
    from tenants.models import Tenant

__all__ = [
    "Callback",
    "CallbackRefused",
    "GatewayConfigError",
    "GatewayNotSupported",
    "GatewayUnavailable",
    "InboundCall",
    "TelephonyGateway",
]

ENGINES: dict[str, tuple[str, str]] = {
    "simulator": ("Simulator", "calls.gateways.simulator.gateway.SimulatorGateway"),
    "twilio": ("Twilio", "calls.gateways.twilio.gateway.TwilioGateway"),
    "asterisk": ("Asterisk (ARI)", "calls.gateways.asterisk.gateway.AsteriskGateway"),
}
CHOICES = [(name, label) for name, (label, _) in ENGINES.items()]
DEFAULT_ENGINE = "simulator"


def gateway_for(tenant: Tenant) -> TelephonyGateway:
    """The tenant's gateway, with its credentials and settings."""
    from calls.models import GatewayConfig

    config = GatewayConfig.objects.filter(tenant=tenant).first()
    if config is None:
        return _gateway(DEFAULT_ENGINE, tenant, {}, {})
    return _gateway(config.engine, tenant, config.credentials, config.settings)


def callback_gateway(tenant: Tenant, media_type: str) -> TelephonyGateway | None:
    """The gateway that reads callbacks of this content type: the tenant's, else the engine's."""
    own = gateway_for(tenant)
    if media_type in own.callback_media_types:
        return own
    for name, (_, path) in ENGINES.items():
        if media_type in import_string(path).callback_media_types:
            return _gateway(name, tenant, {}, {})
    return None


def gateway_class(engine: str) -> type[TelephonyGateway]:
    gateway: type[TelephonyGateway] = import_string(ENGINES[engine][1])
    return gateway


def _gateway(
    engine: str, tenant: Tenant, credentials: dict[str, Any], settings: dict[str, Any]
) -> TelephonyGateway:
    gateway: TelephonyGateway = import_string(ENGINES[engine][1])(
        engine, tenant, credentials, settings
    )
    return gateway
