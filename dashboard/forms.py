"""What every dashboard form shares: double-submit protection and the audit diff."""

from __future__ import annotations

import logging
import secrets
from typing import Any

from django import forms
from django.core.cache import cache

logger = logging.getLogger(__name__)

SUBMIT_TOKEN_FIELD = "submit_token"  # noqa: S105 - a field name
SUBMIT_TOKEN_SECONDS = 24 * 3600


class SubmitOnceForm(forms.Form):
    """A form whose one rendering can be accepted once: a double click creates one object.

    Each rendering carries a random hidden token; `is_valid()` claims it (SET NX in the shared
    cache) only when everything else is valid, so a form sent back with errors can be fixed and
    sent again, but the same valid submission arriving twice is refused the second time with a
    form error. Mix into ModelForms too: `class AgentForm(SubmitOnceForm, forms.ModelForm)`.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields[SUBMIT_TOKEN_FIELD] = forms.CharField(
            widget=forms.HiddenInput, initial=secrets.token_urlsafe(16), max_length=64
        )

    _claimed: str = ""  # the cache key of the token this submission claimed

    def is_valid(self) -> bool:
        return super().is_valid() and self._claim_submit_token()

    def add_error(self, field: str | None, error: Any) -> None:
        """An error found after the claim (a service refused the data): the fixed form may be
        sent again with the same token."""
        super().add_error(field, error)
        if self._claimed:
            try:
                cache.delete(self._claimed)
            except Exception:
                logger.warning("Could not release a form's submit token", exc_info=True)
            self._claimed = ""

    def _claim_submit_token(self) -> bool:
        key = f"dashboard:submit:{self.cleaned_data[SUBMIT_TOKEN_FIELD]}"
        try:
            first = cache.add(key, 1, timeout=SUBMIT_TOKEN_SECONDS)
        except Exception:  # cache down: accept (the services stay idempotent where it matters)
            logger.warning("Could not check a form's submit token", exc_info=True)
            first = True
        if not first:
            self.add_error(
                None, "This form was already submitted; reload the page to see the result."
            )
        self._claimed = key if first else ""
        return first


def form_changes(form: forms.Form) -> dict[str, list[Any]]:
    """{field: [before, after]} for the fields the form changed, for the audit log."""
    return {
        name: [_plain(form.initial.get(name)), _plain(form.cleaned_data.get(name))]
        for name in form.changed_data
        if name != SUBMIT_TOKEN_FIELD
    }


def _plain(value: Any) -> Any:
    """The value as JSON can hold it (model instances and dates as their text)."""
    if value is None or isinstance(value, str | int | float | bool | list | dict):
        return value
    return str(value)
