"""Authentication by the secret token in a tenant's routing URL (phone systems given a URL)."""

from routing.models import RoutingToken
from tenants.url_tokens import UrlTokenAuthentication


class RoutingTokenAuthentication(UrlTokenAuthentication):
    token_model = RoutingToken
    not_found_message = "No routing URL like this; ask for the current one."
