"""Sandboxed `{{ path }}` templates over a plain dict context, rendered per JSON value.

An expression is only a dotted path (`event.calling_number`, `app_data.crm.data.items.0.id`)
looked up with dict keys and list indexes, never attributes: there is no code to run and nothing
of Python's to reach. Paths start at `event`, `contact` or `app_data`; a segment may not start
with `_`. No filters.

- A string that is exactly one expression (surrounding spaces aside) becomes the value itself,
  keeping its JSON type (number, bool, null, object, list); a missing path gives `null`.
- A string with text around expressions stays a string: strings go in as they are, `null` and
  missing paths as "", booleans as `true`/`false`, numbers, objects and lists as compact JSON.
- Rendering works on parsed JSON values, never on JSON text, so no value can break the JSON.
- URL templates URL-encode every inserted value (`+1 (555)` -> `%2B1%20%28555%29`).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

ROOTS = ("event", "contact", "app_data")
EXPRESSION = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
_PATH = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*(?:\.[A-Za-z0-9][A-Za-z0-9_-]*)*")
_MISSING = object()


class TemplateError(ValueError):
    """A template that is not made of plain `{{ path }}` expressions."""


def template_errors(text: str) -> list[str]:
    """Return what is wrong with a template string (empty when it is fine)."""
    errors = []
    for expression in EXPRESSION.findall(text):
        if not _PATH.fullmatch(expression):
            errors.append(
                f"'{{{{ {expression} }}}}' is not a dotted path such as "
                "'{{ event.calling_number }}' (no filters, calls or '_' names)."
            )
        elif expression.split(".", 1)[0] not in ROOTS:
            errors.append(f"'{{{{ {expression} }}}}' must start with one of {', '.join(ROOTS)}.")
    if "{{" in EXPRESSION.sub("", text):
        errors.append("A '{{' is not closed by '}}'.")
    return errors


def value_errors(template: Any) -> list[str]:
    """Return the template errors in every string of a JSON value."""
    if isinstance(template, str):
        return template_errors(template)
    if isinstance(template, Mapping):
        return [error for item in template.values() for error in value_errors(item)]
    if isinstance(template, list):
        return [error for item in template for error in value_errors(item)]
    return []


def render_value(template: Any, context: Mapping[str, Any]) -> Any:
    """Render every string inside a JSON value; keys and non-strings are kept as they are."""
    if isinstance(template, str):
        return _render_string_value(template, context)
    if isinstance(template, Mapping):
        return {key: render_value(item, context) for key, item in template.items()}
    if isinstance(template, list):
        return [render_value(item, context) for item in template]
    return template


def render_text(text: str, context: Mapping[str, Any]) -> str:
    """Render a template into a string (header values, query parameter values)."""
    return _substitute(text, context, lambda inserted: inserted)


def render_url(text: str, context: Mapping[str, Any]) -> str:
    """Render a URL template, URL-encoding every inserted value."""
    return _substitute(text, context, lambda inserted: quote(inserted, safe=""))


def _render_string_value(text: str, context: Mapping[str, Any]) -> Any:
    whole = EXPRESSION.fullmatch(text.strip())
    if whole:
        _check(text)
        value = _lookup(context, whole.group(1))
        return None if value is _MISSING else _jsonable(value)
    return render_text(text, context)


def _substitute(text: str, context: Mapping[str, Any], encode: Callable[[str], str]) -> str:
    _check(text)
    return EXPRESSION.sub(lambda match: encode(_as_text(_lookup(context, match.group(1)))), text)


def _check(text: str) -> None:
    errors = template_errors(text)
    if errors:
        raise TemplateError(errors[0])


def _lookup(context: Mapping[str, Any], path: str) -> Any:
    """Follow dict keys and list indexes only: no attribute is ever read."""
    value: Any = context
    for segment in path.split("."):
        if segment.startswith("_"):
            return _MISSING
        if isinstance(value, Mapping) and segment in value:
            value = value[segment]
        elif isinstance(value, list | tuple) and segment.isdigit() and int(segment) < len(value):
            value = value[int(segment)]
        else:
            return _MISSING
    return value


def _jsonable(value: Any) -> Any:
    """Make a context value plain JSON (unknown types become their text, NaN becomes null)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    return str(value)


def _as_text(value: Any) -> str:
    value = None if value is _MISSING else _jsonable(value)
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
