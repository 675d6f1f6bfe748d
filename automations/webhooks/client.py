"""HTTP for webhook apps over the one outbound client, and OAuth 2.0 client-credentials tokens.

Requests go through core/http.py (SSRF guard on the resolved address, total deadline, no
redirects, redaction), which keeps the answer's headers and its body up to MAX_BODY_BYTES.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from urllib.parse import quote_plus, urlencode

from django.core.cache import cache

from automations.webhooks.config import Auth
from core import http
from core.encryption import decrypt, encrypt

# Without expires_in (RFC 6749 §5.1 only recommends it) reuse a token this long; a 401 refetches.
DEFAULT_TOKEN_SECONDS = 300
# Refetch this long before expiry (at most a tenth of the token's life) so none expires in flight.
TOKEN_MARGIN_SECONDS = 60


# One HTTP answer: status, lower-cased headers, body, latency, Retry-After.
Exchange = http.HttpResponse
MAX_BODY_BYTES = 16 * 1024 * 1024


class TokenError(Exception):
    """The token endpoint answered 2xx without a usable bearer token."""


def exchange(
    method: str, url: str, *, headers: Mapping[str, str], body: bytes | None, deadline: float
) -> Exchange:
    """Send one request within `deadline` seconds; raise http.HttpError when nothing came back."""
    return http.request(
        method,
        url,
        deadline_seconds=deadline,
        headers=headers,
        body=body,
        secret_headers=("Authorization",),
        max_body_bytes=MAX_BODY_BYTES,
    )


def basic_authorization(username: str, password: str) -> str:
    """The Authorization value for HTTP Basic (RFC 7617, UTF-8)."""
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def token_request(auth: Auth) -> tuple[dict[str, str], bytes]:
    """Headers and form body asking auth.token_url for a client-credentials token."""
    form = {"grant_type": "client_credentials"}
    if auth.scope:
        form["scope"] = auth.scope
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "Accept": "application/json",
    }
    if auth.client_auth == "body":
        form |= {"client_id": auth.client_id, "client_secret": auth.client_secret}
    else:  # RFC 6749 §2.3.1: each part form-encoded, then HTTP Basic
        headers["Authorization"] = basic_authorization(
            quote_plus(auth.client_id), quote_plus(auth.client_secret)
        )
    return headers, urlencode(form).encode()


def cached_token(auth: Auth) -> str | None:
    stored = cache.get(_token_key(auth))
    return decrypt(stored) if stored else None


def forget_token(auth: Auth) -> None:
    cache.delete(_token_key(auth))


def token_store(auth: Auth, answer: Exchange) -> str:
    """Read the access token from a 2xx token answer and cache it (encrypted) until near expiry."""
    try:
        payload = json.loads(answer.body)
    except ValueError:
        payload = None
    token = payload.get("access_token") if isinstance(payload, dict) else None
    if not isinstance(token, str) or not token:
        raise TokenError("The token endpoint's answer has no access_token.")
    token_type = payload.get("token_type", "bearer")
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        raise TokenError(f"The token endpoint gave a {token_type!r} token; only Bearer works.")
    try:
        lifetime = float(payload.get("expires_in", DEFAULT_TOKEN_SECONDS))
    except (TypeError, ValueError):
        lifetime = DEFAULT_TOKEN_SECONDS
    keep = lifetime - min(TOKEN_MARGIN_SECONDS, lifetime / 10)
    if keep >= 1:
        cache.set(_token_key(auth), encrypt(token), timeout=int(keep))
    return token


def _token_key(auth: Auth) -> str:
    """One cache entry per set of client credentials: a changed secret or scope gets a new token."""
    identity = [auth.token_url, auth.client_id, auth.client_secret, auth.scope, auth.client_auth]
    return "webhook-oauth:" + hashlib.sha256(json.dumps(identity).encode()).hexdigest()
