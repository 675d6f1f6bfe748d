"""A generic REST connection's settings and credentials, read and checked in one place.

Every problem is a ConfigError naming the setting (`settings.list.paging.style`) so the API can
answer a 400 that says exactly what to fix.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from connectors.generic_rest import mapping
from connectors.interface import ConfigError
from core import http

AUTH_KINDS = ("none", "basic", "bearer", "api_key", "oauth2_client_credentials")
AUTH_SECRETS = {
    "none": (),
    "basic": ("username", "password"),
    "bearer": ("token",),
    "api_key": ("api_key",),
    "oauth2_client_credentials": ("client_id", "client_secret"),
}
PAGING_STYLES = ("page", "offset", "cursor", "next_link")
SINCE_FORMATS = ("iso8601", "epoch_seconds", "epoch_ms")
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100
DEFAULT_OVERLAP_SECONDS = 60


@dataclass(frozen=True)
class Paging:
    style: str
    page_size: int
    size_param: str  # "" sends no size: the server's default must then be page_size
    page_param: str = "page"
    first_page: int = 1
    offset_param: str = "offset"
    cursor_param: str = "cursor"
    next_cursor: tuple[mapping.Step, ...] | None = None  # where a page names the next cursor
    next_link: tuple[mapping.Step, ...] | None = None  # where a page names the next URL, else Link


@dataclass(frozen=True)
class Endpoint:
    path: str
    items: tuple[mapping.Step, ...]
    param: str = ""  # search: the query parameter given the number


@dataclass(frozen=True)
class CallLog:
    path: str
    body: Mapping[str, Any]
    id: tuple[mapping.Step, ...]
    update_method: str = ""  # PATCH or PUT to {path}/{id}; "" when calls cannot be updated


@dataclass(frozen=True)
class RestConfig:
    base_url: str
    auth: str
    auth_header: str
    token_url: str
    scope: str
    client_auth: str  # how the client credentials are sent: "basic" header or form "body"
    listing: Endpoint
    params: Mapping[str, str]
    paging: Paging
    since_param: str
    since_format: str
    overlap_ms: int
    record_map: mapping.RecordMap
    search: Endpoint | None
    call_log: CallLog | None


def parse(credentials: Mapping[str, Any], settings: Mapping[str, Any]) -> RestConfig:
    """Read the connection's config; ConfigError names the first thing that cannot work."""
    base_url = _url(credentials.get("base_url"), "credentials.base_url")
    auth = _section(settings, "auth")
    kind = _choice(auth.get("kind", "none"), AUTH_KINDS, "settings.auth.kind")
    for name in AUTH_SECRETS[kind]:
        if not isinstance(credentials.get(name), str) or not credentials[name]:
            raise ConfigError(f"credentials.{name}", f"required for auth kind {kind!r}.")
    token_url = ""
    if kind == "oauth2_client_credentials":
        token_url = _url(auth.get("token_url"), "settings.auth.token_url")
    listing = _section(settings, "list")
    return RestConfig(
        base_url=base_url.rstrip("/"),
        auth=kind,
        auth_header=_name(auth.get("header", "X-API-Key"), "settings.auth.header"),
        token_url=token_url,
        scope=_string(auth.get("scope", ""), "settings.auth.scope"),
        client_auth=_choice(
            auth.get("client_auth", "basic"), ("basic", "body"), "settings.auth.client_auth"
        ),
        listing=Endpoint(
            path=_path(listing.get("path"), "settings.list.path"),
            items=_json_path(listing.get("items", ""), "settings.list.items"),
        ),
        params=_params(listing.get("params", {}), "settings.list.params"),
        paging=_paging(_section(listing, "paging", "settings.list.paging")),
        **_since(listing, settings),
        record_map=_record_map(settings),
        search=_search(settings.get("search")),
        call_log=_call_log(settings.get("call_log")),
    )


def _since(listing: Mapping[str, Any], settings: Mapping[str, Any]) -> dict[str, Any]:
    since = listing.get("updated_since")
    if since is None:
        return {"since_param": "", "since_format": "iso8601", "overlap_ms": 0}
    since = _section(listing, "updated_since", "settings.list.updated_since")
    if not (settings.get("fields") or {}).get("updated_at"):
        raise ConfigError(
            "settings.fields.updated_at",
            "required with list.updated_since: the cursor moves to the latest time read.",
        )
    overlap = since.get("overlap_seconds", DEFAULT_OVERLAP_SECONDS)
    if not isinstance(overlap, int) or not 0 <= overlap <= 86_400:
        raise ConfigError("settings.list.updated_since.overlap_seconds", "0 to 86400 seconds.")
    return {
        "since_param": _name(since.get("param"), "settings.list.updated_since.param"),
        "since_format": _choice(
            since.get("format", "iso8601"), SINCE_FORMATS, "settings.list.updated_since.format"
        ),
        "overlap_ms": overlap * 1000,
    }


def _paging(paging: Mapping[str, Any]) -> Paging:
    where = "settings.list.paging"
    style = _choice(paging.get("style"), PAGING_STYLES, f"{where}.style")
    size = paging.get("page_size", DEFAULT_PAGE_SIZE)
    if not isinstance(size, int) or not 1 <= size <= MAX_PAGE_SIZE:
        raise ConfigError(f"{where}.page_size", f"a whole number from 1 to {MAX_PAGE_SIZE}.")
    first_page = paging.get("first_page", 1)
    if first_page not in (0, 1):
        raise ConfigError(f"{where}.first_page", "0 or 1.")
    default_size = "per_page" if style == "page" else "limit"
    next_cursor = next_link = None
    if style == "cursor":
        next_cursor = _json_path(paging.get("next_cursor"), f"{where}.next_cursor")
    if style == "next_link" and paging.get("next_link") is not None:
        next_link = _json_path(paging["next_link"], f"{where}.next_link")
    return Paging(
        style=style,
        page_size=size,
        size_param=_string(paging.get("size_param", default_size), f"{where}.size_param"),
        page_param=_name(paging.get("page_param", "page"), f"{where}.page_param"),
        first_page=first_page,
        offset_param=_name(paging.get("offset_param", "offset"), f"{where}.offset_param"),
        cursor_param=_name(paging.get("cursor_param", "cursor"), f"{where}.cursor_param"),
        next_cursor=next_cursor,
        next_link=next_link,
    )


def _record_map(settings: Mapping[str, Any]) -> mapping.RecordMap:
    fields = _section(settings, "fields")
    known = {"external_id", "first_name", "last_name", "company", "country", "updated_at", "phones"}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise ConfigError(f"settings.fields.{unknown[0]}", f"unknown; use {sorted(known)}.")
    paths = {
        name: _json_path(fields[name], f"settings.fields.{name}")
        for name in known - {"phones"}
        if name in fields
    }
    if "external_id" not in paths:
        raise ConfigError("settings.fields.external_id", "required: the path of the record's id.")
    phones = fields.get("phones", [])
    if not isinstance(phones, list):
        raise ConfigError("settings.fields.phones", "a list of {path, kind, number, kind_path}.")
    crm_url = _string(settings.get("crm_url", ""), "settings.crm_url")
    if crm_url:
        try:
            http.check_url(crm_url.format(id="1"))
        except (KeyError, IndexError, ValueError, http.HttpError) as error:
            raise ConfigError(
                "settings.crm_url", f"an http(s) URL template with {{id}} ({error})."
            ) from None
    return mapping.RecordMap(
        **paths,
        phones=tuple(_phone(spec, f"settings.fields.phones[{i}]") for i, spec in enumerate(phones)),
        custom_fields=_custom_fields(settings.get("custom_fields", {})),
        crm_url=crm_url,
    )


def _phone(spec: Any, where: str) -> mapping.PhoneSpec:
    if not isinstance(spec, Mapping):
        raise ConfigError(where, "an object {path, kind, number, kind_path}.")
    kind = _choice(spec.get("kind", "other"), ("mobile", "work", "home", "other"), f"{where}.kind")
    number = spec.get("number")
    kind_path = spec.get("kind_path")
    return mapping.PhoneSpec(
        path=_json_path(spec.get("path"), f"{where}.path"),
        kind=kind,
        number=_json_path(number, f"{where}.number") if number is not None else None,
        kind_path=_json_path(kind_path, f"{where}.kind_path") if kind_path is not None else None,
    )


def _custom_fields(value: Any) -> dict[str, tuple[mapping.Step, ...]]:
    """{"tier": "attributes.tier"}, or a list of paths each named after itself."""
    if isinstance(value, list):
        value = (
            {path: path for path in value if isinstance(path, str)}
            if all(isinstance(path, str) for path in value)
            else None
        )
    if not isinstance(value, Mapping):
        raise ConfigError(
            "settings.custom_fields", "an object of name -> JSON path (or a list of paths)."
        )
    return {
        str(name): _json_path(path, f"settings.custom_fields.{name}")
        for name, path in value.items()
    }


def _search(value: Any) -> Endpoint | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ConfigError("settings.search", "an object {path, param, items}.")
    return Endpoint(
        path=_path(value.get("path"), "settings.search.path"),
        items=_json_path(value.get("items", ""), "settings.search.items"),
        param=_name(value.get("param", "phone"), "settings.search.param"),
    )


def _call_log(value: Any) -> CallLog | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ConfigError("settings.call_log", "an object {path, body, id, update_method}.")
    body = value.get("body")
    if not isinstance(body, Mapping) or not body:
        raise ConfigError("settings.call_log.body", "an object of body key -> call field name.")
    _check_body(body, "settings.call_log.body")
    update = value.get("update_method", "")
    return CallLog(
        path=_path(value.get("path"), "settings.call_log.path"),
        body=body,
        id=_json_path(value.get("id", "id"), "settings.call_log.id"),
        update_method=_choice(update, ("", "PATCH", "PUT"), "settings.call_log.update_method"),
    )


def _check_body(body: Mapping[str, Any], where: str) -> None:
    for key, source in body.items():
        if isinstance(source, Mapping):
            _check_body(source, f"{where}.{key}")
        elif source not in mapping.CALL_LOG_FIELDS:
            raise ConfigError(
                f"{where}.{key}",
                f"{source!r} is not a call field; use {sorted(mapping.CALL_LOG_FIELDS)}.",
            )


def _section(parent: Mapping[str, Any], name: str, where: str = "") -> Mapping[str, Any]:
    value = parent.get(name, {})
    if not isinstance(value, Mapping):
        raise ConfigError(where or f"settings.{name}", "a JSON object.")
    return value


def _choice(value: Any, choices: tuple[str, ...], where: str) -> str:
    if value not in choices:
        raise ConfigError(where, f"one of {', '.join(repr(c) for c in choices)}; got {value!r}.")
    return value


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(where, "a string.")
    return value


def _name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip() or any(c in value for c in "\r\n"):
        raise ConfigError(where, "a non-empty name.")
    return value


def _path(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.startswith("/") or "?" in value or "#" in value:
        raise ConfigError(where, "a path under base_url starting with / (query in params).")
    return value


def _url(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(where, "required: an http(s) URL.")
    try:
        http.check_url(value)
    except http.HttpError as error:
        raise ConfigError(where, str(error)) from None
    return value


def _json_path(value: Any, where: str) -> tuple[mapping.Step, ...]:
    if not isinstance(value, str):
        raise ConfigError(where, "a JSON path such as data.items[*] or phones[0].number.")
    try:
        return mapping.parse_path(value)
    except mapping.PathError as error:
        raise ConfigError(where, f"not a JSON path: {error}.") from None


def _params(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str | int) for k, v in value.items()
    ):
        raise ConfigError(where, "an object of query parameter -> value.")
    return {k: str(v) for k, v in value.items()}
