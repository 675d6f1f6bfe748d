"""Reading vendor values into SourceRecord fields: shared by every provider's pure mapping."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError

from connectors.interface import SourcePhone, SourceRecord
from core import phone_numbers
from tenants.models import validate_region


def plain_text(value: Any) -> str:
    """A scalar as trimmed text; None, objects and lists as ""."""
    if isinstance(value, str):  # nearly always: checked first, it costs a tenth of the ABC check
        return value.strip()
    if value is None or isinstance(value, Mapping | list):
        return ""
    return str(value).strip()


def iso_region(value: Any) -> str:
    """CRMs store countries as free text: keep one only when it is an ISO 3166 alpha-2 code."""
    text = plain_text(value)
    return _region_code(text) if text else ""


@functools.lru_cache(maxsize=4096)  # a few hundred countries, as each CRM writes them
def _region_code(text: str) -> str:
    code = text.upper()
    try:
        validate_region(code)
    except ValidationError:
        return ""
    return code


def named_phones(
    fields: tuple[tuple[str, str], ...], obj: Mapping[str, Any]
) -> tuple[SourcePhone, ...]:
    """The numbers in the named fields ((field, kind), ...), each once, as written."""
    phones, seen = [], set()
    for name, kind in fields:
        number = plain_text(obj.get(name))[:64]
        if number and number not in seen:
            seen.add(number)
            phones.append(SourcePhone(number=number, kind=kind))
    return tuple(phones)


def has_number(record: SourceRecord, e164: str, region: str | None) -> bool:
    """Whether one of the record's numbers is `e164` (read in its own country, else `region`).

    A CRM's phone search matches text, not numbers: what it finds is kept only if this holds.
    """
    return any(
        phone_numbers.normalize(phone.number, record.country or region).e164 == e164
        for phone in record.phones
    )
