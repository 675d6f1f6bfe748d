"""The API's JSON: what DRF's JSONRenderer writes, written by orjson.

DRF's renderer (the standard library's encoder calling back into Python for every date) cost a
caller lookup more than its own number check (bench/README.md). orjson writes the same bytes for
what the API sends; what it cannot write (integers over 64 bits, keys that are not strings) is
written by DRF's encoder, as before. One difference: a float with an exponent is written as
1e-7 where the standard library writes 1e-07 (the same number).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from rest_framework import renderers
from rest_framework.settings import api_settings
from rest_framework.utils.encoders import JSONEncoder

# DRF's settings for its renderer: compact, unicode, strict. orjson writes only that form.
_DRF_FORM = api_settings.COMPACT_JSON and api_settings.UNICODE_JSON and api_settings.STRICT_JSON
_encoder = JSONEncoder(
    ensure_ascii=not api_settings.UNICODE_JSON,
    allow_nan=not api_settings.STRICT_JSON,
    separators=(",", ":") if api_settings.COMPACT_JSON else None,
)


def json_bytes(data: Any) -> bytes:
    """`data` as DRF's JSONRenderer renders it (without indent)."""
    if not _DRF_FORM:
        return _escape_separators(_encoder.encode(data).encode())
    try:
        # OPT_UTC_Z: DRF writes UTC times with "Z"; whatever else orjson does not know goes to
        # DRF's encoder (lazy strings, decimals, durations).
        body = orjson.dumps(data, default=_encoder.default, option=orjson.OPT_UTC_Z)
    except TypeError:
        body = _encoder.encode(data).encode()
    return _escape_separators(body)


def _escape_separators(body: bytes) -> bytes:
    # As DRF: the two characters JSON allows in strings but JavaScript does not.
    if b"\xe2\x80" in body:
        body = body.replace("\u2028".encode(), b"\\u2028").replace("\u2029".encode(), b"\\u2029")
    return body


class JSONRenderer(renderers.JSONRenderer):
    """DRF's renderer, with json_bytes for the API's compact form (an indent asked for in the
    Accept header is left to DRF)."""

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Mapping[str, Any] | None = None,
    ) -> bytes:
        if data is None or self.get_indent(accepted_media_type or "", renderer_context or {}):
            return super().render(data, accepted_media_type, renderer_context)
        return json_bytes(data)
