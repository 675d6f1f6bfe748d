"""Authentication by the secret token in a tenant's routing URL (phone systems given a URL)."""

from core.url_tokens import UrlTokenAuthentication
from routing.models import RoutingToken


class RoutingTokenAuthentication(UrlTokenAuthentication):
    token_model = RoutingToken
    not_found_message = "No routing URL like this; ask for the current one."
    # A decision reads these even while the database is down (the deadline's fallback).
    related = ("tenant__routing_settings", "tenant__phonebook_settings")
