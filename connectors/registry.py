"""The one list of CRMs: provider name -> (label, dotted path of its connector class).

Model choices, the API's credential rules, provider URLs and `manage.py fakecrm` all come from
here; each connector class declares its own rules (connectors/interface.py, `Connector`).
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Mapping
from typing import Any

from django.utils.module_loading import import_string

from connectors.interface import ConnectionConfig, Connector, CredentialsSaver

PROVIDERS: dict[str, tuple[str, str]] = {
    "hubspot": ("HubSpot", "connectors.hubspot.connector.HubSpotConnector"),
    "generic_rest": ("Generic REST API", "connectors.generic_rest.connector.GenericRestConnector"),
    "pipedrive": ("Pipedrive", "connectors.pipedrive.connector.PipedriveConnector"),
    "zoho": ("Zoho CRM", "connectors.zoho.connector.ZohoConnector"),
    "salesforce": ("Salesforce", "connectors.salesforce.connector.SalesforceConnector"),
    "zendesk": ("Zendesk Support", "connectors.zendesk.connector.ZendeskConnector"),
    "copper": ("Copper", "connectors.copper.connector.CopperConnector"),
    "intercom": ("Intercom", "connectors.intercom.connector.IntercomConnector"),
    "keap": ("Keap", "connectors.keap.connector.KeapConnector"),
    "activecampaign": (
        "ActiveCampaign",
        "connectors.activecampaign.connector.ActiveCampaignConnector",
    ),
    "dynamics": ("Microsoft Dynamics 365", "connectors.dynamics.connector.DynamicsConnector"),
    "sugarcrm": ("SugarCRM", "connectors.sugarcrm.connector.SugarCrmConnector"),
}
CHOICES = [(name, label) for name, (label, _) in PROVIDERS.items()]
# Each provider's fake server is `<FAKES_PACKAGE>.<provider name>`, with a `serve_demo(options)`.
FAKES_PACKAGE = "fakes"


def connector_class(provider: str) -> type[Connector]:
    return import_string(PROVIDERS[provider][1])


def connector_for(
    provider: str, config: ConnectionConfig, save_credentials: CredentialsSaver
) -> Connector:
    return connector_class(provider)(config, save_credentials)


def check_config(
    provider: str, *, credentials: Mapping[str, Any], settings: Mapping[str, Any]
) -> None:
    """Raise ConfigError when the provider's own `check_config` (if it has one) refuses them."""
    check = getattr(connector_class(provider), "check_config", None)
    if check is not None:
        check(credentials, settings)


def uses_oauth(provider: str) -> bool:
    """Whether the CRM connects through the authorization-code flow (its folder's `oauth_app`)."""
    return hasattr(importlib.import_module(connector_class(provider).__module__), "oauth_app")


def url_modules() -> dict[str, str]:
    """provider -> `connectors.<provider>.urls`, for providers that serve URLs (webhooks)."""
    found = {}
    for name, (_, path) in PROVIDERS.items():
        module = path.rsplit(".", 2)[0] + ".urls"
        if importlib.util.find_spec(module) is not None:
            found[name] = module
    return found
