"""One registry: provider name -> dotted path of its connector class."""

from __future__ import annotations

from django.utils.module_loading import import_string

from connectors.interface import ConnectionConfig, Connector, CredentialsSaver

PROVIDERS: dict[str, str] = {
    "hubspot": "connectors.hubspot.connector.HubSpotConnector",
    "salesforce": "connectors.salesforce.connector.SalesforceConnector",
}


def connector_for(
    provider: str, config: ConnectionConfig, save_credentials: CredentialsSaver
) -> Connector:
    return import_string(PROVIDERS[provider])(config, save_credentials)
