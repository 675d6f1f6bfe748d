"""A webhook app's settings (seed 004): parsed once from JSON into a frozen, validated config.

`WebhookConfig.from_settings` raises WebhookConfigError, a Django ValidationError keyed by the
bad field (`url`, `auth.password`, `headers[1].key` ...), which the API's error handler turns
into a 400. `split_secrets` and `join_secrets` let secrets be stored encrypted apart from the
rest and never be returned.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError

from automations.webhooks.templates import EXPRESSION, template_errors, value_errors
from core import http

METHODS = ("GET", "POST")
AUTH_KINDS = ("none", "basic", "bearer", "oauth2_client_credentials")
AUTH_FIELDS = {
    "none": (),
    "basic": ("username", "password"),
    "bearer": ("token",),
    "oauth2_client_credentials": (
        "token_url",
        "client_id",
        "client_secret",
        "scope",
        "client_auth",
    ),
}
SECRET_AUTH_FIELDS = ("password", "token", "client_secret")
# Header and query parameter names whose values are treated as secrets even when not flagged.
SECRET_NAME = re.compile(r"auth|token|secret|api[-_]?key|password|cookie|session", re.IGNORECASE)
# Framing and routing headers are ours to set: a tenant value could break or smuggle requests.
RESERVED_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection", "te"})
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
SETTINGS_KEYS = frozenset(
    {"method", "url", "auth", "headers", "query_params", "body"}
    | {"timeout", "retry_count", "retry_delay"}
)
DEFAULT_TIMEOUT, REALTIME_TIMEOUT, MAX_TIMEOUT = 30.0, 5.0, 120.0
DEFAULT_RETRY_COUNT, MAX_RETRY_COUNT = 3, 10
DEFAULT_RETRY_DELAY, MAX_RETRY_DELAY = 1.0, 60.0
MAX_URL_LENGTH, MAX_BODY_BYTES = 2048, 64 * 1024


class WebhookConfigError(ValidationError):
    """Invalid webhook settings; `message_dict` maps each bad field to its messages."""


@dataclass(frozen=True)
class Auth:
    kind: str = "none"
    username: str = ""
    password: str = ""
    token: str = ""
    token_url: str = ""
    client_id: str = ""
    client_secret: str = ""
    scope: str = ""
    client_auth: str = "basic"  # OAuth client credentials in a Basic header, or "body"


@dataclass(frozen=True)
class NameValue:
    key: str
    value: str  # a template
    secret: bool = False


@dataclass(frozen=True)
class WebhookConfig:
    url: str  # a template; scheme and host are literal
    method: str = "POST"
    auth: Auth = field(default_factory=Auth)
    headers: tuple[NameValue, ...] = ()
    query_params: tuple[NameValue, ...] = ()
    body: Any = None  # a JSON value whose strings are templates; None sends no body
    timeout: float = DEFAULT_TIMEOUT  # per attempt
    retry_count: int = DEFAULT_RETRY_COUNT
    retry_delay: float = DEFAULT_RETRY_DELAY  # before the first retry, doubling after

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], *, realtime: bool = False) -> WebhookConfig:
        """Parse and validate settings; a real-time app's timeout defaults to 5 s."""
        return _Parser(realtime).parse(settings)

    @property
    def retry_delays(self) -> tuple[float, ...]:
        """Seconds to wait before each retry: retry_delay, doubling."""
        return tuple(self.retry_delay * 2**index for index in range(self.retry_count))

    @property
    def deadline_seconds(self) -> float:
        """The default total budget: every attempt timing out plus every retry delay."""
        return self.timeout * (self.retry_count + 1) + sum(self.retry_delays)

    def secret_values(self) -> list[str]:
        """Every secret this config holds (to redact them wherever they could show up)."""
        values = [getattr(self.auth, name) for name in SECRET_AUTH_FIELDS]
        values += [p.value for p in (*self.headers, *self.query_params) if p.secret]
        return [value for value in values if value]


def is_secret_name(name: str) -> bool:
    """Tell whether a header or parameter name says its value is a secret (X-Api-Key)."""
    return bool(SECRET_NAME.search(name))


def split_secrets(settings: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split valid settings into (settings without secret values, the secrets alone)."""
    public = json.loads(json.dumps(settings))
    secrets: dict[str, Any] = {}
    auth = public.get("auth") or {}
    for name in SECRET_AUTH_FIELDS:
        if auth.get(name):
            secrets.setdefault("auth", {})[name] = auth.pop(name)
    for group in ("headers", "query_params"):
        for pair in public.get(group) or []:
            if _is_secret_pair(pair) and pair.get("value"):
                secrets.setdefault(group, {})[pair["key"]] = pair.pop("value")
    return public, secrets


def join_secrets(settings: Mapping[str, Any], secrets: Mapping[str, Any]) -> dict[str, Any]:
    """Fill the secret values missing from settings with stored ones (a PATCH keeps them)."""
    joined = json.loads(json.dumps(settings))
    auth = joined.get("auth")
    if isinstance(auth, dict):
        for name, value in (secrets.get("auth") or {}).items():
            if name in AUTH_FIELDS.get(auth.get("kind", "none"), ()) and not auth.get(name):
                auth[name] = value
    for group in ("headers", "query_params"):
        stored = secrets.get(group) or {}
        for pair in joined.get(group) or []:
            if isinstance(pair, dict) and not pair.get("value") and pair.get("key") in stored:
                pair["value"] = stored[pair["key"]]
    return joined


def _is_secret_pair(pair: Mapping[str, Any]) -> bool:
    return bool(pair.get("secret")) or is_secret_name(str(pair.get("key", "")))


class _Parser:
    """Collects every problem, then raises them together."""

    def __init__(self, realtime: bool) -> None:
        self.realtime = realtime
        self.errors: dict[str, list[str]] = {}

    def fail(self, name: str, message: str) -> None:
        self.errors.setdefault(name, []).append(message)

    def parse(self, settings: Mapping[str, Any]) -> WebhookConfig:
        if not isinstance(settings, Mapping):
            raise WebhookConfigError({"settings": ["Send the webhook settings as a JSON object."]})
        for unknown in sorted(set(settings) - SETTINGS_KEYS):
            self.fail(unknown, f"Unknown setting; use {', '.join(sorted(SETTINGS_KEYS))}.")
        method = self.method(settings.get("method", "POST"))
        config = WebhookConfig(
            url=self.url(settings.get("url")),
            method=method,
            auth=self.auth(settings.get("auth")),
            headers=self.pairs("headers", settings.get("headers")),
            query_params=self.pairs("query_params", settings.get("query_params")),
            body=self.body(settings.get("body"), method),
            timeout=self.number(
                "timeout",
                settings.get("timeout"),
                REALTIME_TIMEOUT if self.realtime else DEFAULT_TIMEOUT,
                low=0.1,
                high=MAX_TIMEOUT,
            ),
            retry_count=int(
                self.number(
                    "retry_count",
                    settings.get("retry_count"),
                    DEFAULT_RETRY_COUNT,
                    low=0,
                    high=MAX_RETRY_COUNT,
                    integer=True,
                )
            ),
            retry_delay=self.number(
                "retry_delay",
                settings.get("retry_delay"),
                DEFAULT_RETRY_DELAY,
                low=0,
                high=MAX_RETRY_DELAY,
            ),
        )
        if config.auth.kind != "none" and any(
            h.key.lower() == "authorization" for h in config.headers
        ):
            self.fail("headers", "Remove the Authorization header or set auth.kind to none.")
        if self.errors:
            raise WebhookConfigError(self.errors)
        return config

    def method(self, value: Any) -> str:
        method = value.upper() if isinstance(value, str) else value
        if method not in METHODS:
            self.fail("method", "Use GET or POST.")
            return "POST"
        return method

    def url(self, value: Any, name: str = "url", templates: bool = True) -> str:
        if not isinstance(value, str) or not value.strip():
            self.fail(name, "Give the URL to call, e.g. https://api.example.com/contacts.")
            return ""
        if len(value) > MAX_URL_LENGTH:
            self.fail(name, f"Keep the URL under {MAX_URL_LENGTH} characters.")
            return value
        scheme, _, rest = value.partition("://")
        origin = f"{scheme}://{re.split(r'[/?#]', rest, maxsplit=1)[0]}"
        if "{{" in (origin if templates else value):
            where = "scheme and host" if templates else "URL"
            self.fail(name, f"Templates are not allowed in the {where}; write them out.")
            return value
        for error in template_errors(value):
            self.fail(name, error)
        try:
            http.check_url(EXPRESSION.sub("x", value))
        except http.HttpError as error:
            self.fail(name, str(error))
        return value

    def auth(self, value: Any) -> Auth:
        if value is None:
            return Auth()
        if not isinstance(value, Mapping):
            self.fail("auth", 'Send auth as an object, e.g. {"kind": "bearer", "token": "..."}.')
            return Auth()
        kind = value.get("kind", "none")
        if kind not in AUTH_KINDS:
            self.fail("auth.kind", f"Use one of {', '.join(AUTH_KINDS)}.")
            return Auth()
        allowed = AUTH_FIELDS[kind]
        for unknown in sorted(set(value) - {"kind", *allowed}):
            self.fail(f"auth.{unknown}", f"Not a field of {kind} auth; use {', '.join(allowed)}.")
        fields = {}
        for name in allowed:
            text = value.get(name, "")
            if not isinstance(text, str):
                self.fail(f"auth.{name}", "Must be a string.")
                continue
            optional = name in ("scope", "client_auth") or (kind == "basic" and name == "password")
            if not text and not optional:
                self.fail(f"auth.{name}", f"Required for {kind} auth.")
            if any(ch in text for ch in "\r\n"):
                self.fail(f"auth.{name}", "Must be a single line.")
            fields[name] = text
        if kind == "basic" and ":" in fields.get("username", ""):
            self.fail("auth.username", "A Basic auth username cannot contain ':'.")
        if kind == "oauth2_client_credentials":
            fields["token_url"] = self.url(fields["token_url"], "auth.token_url", templates=False)
            fields["client_auth"] = fields.get("client_auth") or "basic"
            if fields["client_auth"] not in ("basic", "body"):
                self.fail("auth.client_auth", "Use basic (RFC 6749 default) or body.")
        return Auth(kind=kind, **fields)

    def pairs(self, group: str, value: Any) -> tuple[NameValue, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            self.fail(group, 'Send a list of {"key": ..., "value": ...} objects.')
            return ()
        pairs, seen = [], set()
        for index, item in enumerate(value):
            name = f"{group}[{index}]"
            if not isinstance(item, Mapping) or set(item) - {"key", "value", "secret"}:
                self.fail(name, 'Send {"key": ..., "value": ..., "secret": false}.')
                continue
            key, text = item.get("key"), item.get("value", "")
            if not isinstance(key, str) or not key:
                self.fail(f"{name}.key", "Give a name.")
                continue
            if group == "headers" and not _HEADER_NAME.fullmatch(key):
                self.fail(f"{name}.key", "Not a valid header name.")
            if group == "headers" and key.lower() in RESERVED_HEADERS:
                self.fail(f"{name}.key", f"{key} is set by CallBridge itself.")
            if key.lower() in seen:
                self.fail(f"{name}.key", f"{key} is given twice.")
            seen.add(key.lower())
            if not isinstance(text, str):
                self.fail(f"{name}.value", "Must be a string (templates allowed).")
                continue
            for error in template_errors(text):
                self.fail(f"{name}.value", error)
            pairs.append(NameValue(key=key, value=text, secret=_is_secret_pair(item)))
        return tuple(pairs)

    def body(self, value: Any, method: str) -> Any:
        if value is None or value == "":
            return None
        if method == "GET":
            self.fail("body", "GET requests have no body; use query_params.")
            return None
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError as error:
                self.fail("body", f"Not valid JSON: {error}.")
                return None
        if len(json.dumps(value).encode()) > MAX_BODY_BYTES:
            self.fail("body", f"Keep the body template under {MAX_BODY_BYTES // 1024} KiB.")
        for problem in value_errors(value):
            self.fail("body", problem)
        return value

    def number(
        self,
        name: str,
        value: Any,
        default: float,
        *,
        low: float,
        high: float,
        integer: bool = False,
    ) -> float:
        if value is None:
            return default
        wrong_type = isinstance(value, bool) or not isinstance(value, int | float)
        if wrong_type or not low <= value <= high or (integer and value != int(value)):
            kind = "a whole number" if integer else "a number of seconds"
            self.fail(name, f"Use {kind} from {low:g} to {high:g}.")
            return default
        return float(value)
