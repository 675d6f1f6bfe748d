"""Errors from a service or an API serializer, shown beside the dashboard form's own fields."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

# "headers[1].key" -> "headers", "config.message" -> "message", "auth.password" -> "auth_password"
_INDEX = re.compile(r"\[\d+\]")


def default_field_name(key: str) -> str:
    key = _INDEX.sub("", key)
    key = key.removeprefix("config.").split(".", 1)
    return key[0] if len(key) == 1 or key[0] != "auth" else f"auth_{key[1]}"


def add_errors(
    form: forms.Form,
    errors: Mapping[str, Any] | ValidationError,
    field_name: Callable[[str], str] = default_field_name,
) -> None:
    """Add each error to the form field it names (else to the form, naming the setting)."""
    if isinstance(errors, ValidationError):
        errors = errors.message_dict if hasattr(errors, "error_dict") else {"": errors.messages}
    for key, messages in errors.items():
        if isinstance(messages, Mapping):  # a nested serializer's errors, e.g. conditions
            add_errors(form, messages, field_name)
            continue
        messages = [messages] if isinstance(messages, str) else [str(m) for m in messages]
        name = field_name(key) if key not in ("", "__all__", "non_field_errors") else ""
        for message in messages:
            if name in form.fields:
                form.add_error(name, message)
            else:
                form.add_error(None, f"{key}: {message}" if name else message)
