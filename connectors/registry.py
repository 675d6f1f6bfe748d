"""One registry: provider name -> dotted path of its connector class."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.utils.module_loading import import_string

from connectors.interface import ConnectionConfig, Connector, CredentialsSaver

PROVIDERS: dict[str, str] = {
    "hubspot": "connectors.hubspot.connector.HubSpotConnector",
    "generic_rest": "connectors.generic_rest.connector.GenericRestConnector",
    "pipedrive": "connectors.pipedrive.connector.PipedriveConnector",
    "zoho": "connectors.zoho.connector.ZohoConnector",
    "salesforce": "connectors.salesforce.connector.SalesforceConnector",
    "zendesk": "connectors.zendesk.connector.ZendeskConnector",
}


def connector_for(
    provider: str, config: ConnectionConfig, save_credentials: CredentialsSaver
) -> Connector:
    return import_string(PROVIDERS[provider])(config, save_credentials)


def check_config(
    provider: str, *, credentials: Mapping[str, Any], settings: Mapping[str, Any]
) -> None:
    """Raise ConfigError when the provider's own `check_config` (if it has one) refuses them."""
    check = getattr(import_string(PROVIDERS[provider]), "check_config", None)
    if check is not None:
        check(credentials, settings)
