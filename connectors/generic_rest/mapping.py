"""Pure mapping for CRMs we do not ship: simple JSON paths, records, and the call-log body.

A path is dot-separated keys with list steps: `data.items[*]`, `attributes.first_name`,
`phones[0].number`; `[*]` takes every element. `""` or `$` is the document itself.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from connectors.interface import CallLogEntry, SourcePhone, SourceRecord
from connectors.record_fields import iso_region, plain_text

WILDCARD = "*"
Step = str | int  # a key, a list index, or WILDCARD
_STEP = re.compile(r"(\.)?([^.\[\]]+)|\[(\d+|\*)\]")
KINDS = {
    "mobile": "mobile", "cell": "mobile", "cellular": "mobile",
    "work": "work", "office": "work", "business": "work", "main": "work",
    "home": "home", "personal": "home",
}  # fmt: skip
CALL_LOG_FIELDS = frozenset(f.name for f in fields(CallLogEntry))


class PathError(ValueError):
    pass


class UnreadableRecord(ValueError):
    pass


@dataclass(frozen=True)
class PhoneSpec:
    """Where numbers are: `path` yields numbers, or objects holding `number` and `kind_path`."""

    path: tuple[Step, ...]
    kind: str = "other"
    number: tuple[Step, ...] | None = None
    kind_path: tuple[Step, ...] | None = None


@dataclass(frozen=True)
class RecordMap:
    external_id: tuple[Step, ...]
    first_name: tuple[Step, ...] | None = None
    last_name: tuple[Step, ...] | None = None
    company: tuple[Step, ...] | None = None
    country: tuple[Step, ...] | None = None
    updated_at: tuple[Step, ...] | None = None
    phones: tuple[PhoneSpec, ...] = ()
    custom_fields: Mapping[str, tuple[Step, ...]] = field(default_factory=dict)
    crm_url: str = ""  # a template with {id}


def parse_path(text: str) -> tuple[Step, ...]:
    """The steps of a path; PathError naming what is wrong."""
    text = text.strip()
    text = text[1:] if text.startswith("$") else text
    text = text[1:] if text.startswith(".") else text
    steps: list[Step] = []
    position = 0
    while position < len(text):
        match = _STEP.match(text, position)
        if match is None or (match.group(2) and bool(match.group(1)) != (position > 0)):
            raise PathError(f"cannot read {text!r} at character {position + 1}")
        if match.group(2):
            steps.append(match.group(2))
        else:
            index = match.group(3)
            steps.append(WILDCARD if index == WILDCARD else int(index))
        position = match.end()
    return tuple(steps)


def resolve(document: Any, steps: tuple[Step, ...]) -> list[Any]:
    """Every value at the path (several through `[*]`); missing branches are skipped."""
    found = [document]
    for step in steps:
        following = []
        for value in found:
            if isinstance(step, str) and step != WILDCARD and isinstance(value, Mapping):
                if step in value:
                    following.append(value[step])
            elif step == WILDCARD and isinstance(value, list):
                following.extend(value)
            elif isinstance(step, int) and isinstance(value, list) and step < len(value):
                following.append(value[step])
        found = following
    return [value for value in found if value is not None]


def first(document: Any, steps: tuple[Step, ...] | None) -> Any:
    if steps is None:
        return None
    values = resolve(document, steps)
    return values[0] if values else None


def items_at(document: Any, steps: tuple[Step, ...]) -> list[Any]:
    """The list of records a page holds at `steps` (a trailing `[*]` is the list itself)."""
    steps = steps[:-1] if steps and steps[-1] == WILDCARD else steps
    value = first(document, steps) if steps else document
    if not isinstance(value, list):
        raise UnreadableRecord("no list of records where the settings say")
    return value


def record_from_item(item: Any, record_map: RecordMap) -> SourceRecord:
    """One listed item as a SourceRecord; UnreadableRecord without an external id."""
    external_id = plain_text(first(item, record_map.external_id))
    if not external_id:
        raise UnreadableRecord("a record without an id")
    custom = {
        name: value
        for name, steps in record_map.custom_fields.items()
        if (value := first(item, steps)) not in (None, "")
    }
    return SourceRecord(
        external_id=external_id[:255],
        first_name=plain_text(first(item, record_map.first_name))[:150],
        last_name=plain_text(first(item, record_map.last_name))[:150],
        company=plain_text(first(item, record_map.company))[:255],
        crm_url=record_map.crm_url.format(id=quote(external_id, safe=""))
        if record_map.crm_url
        else "",
        country=iso_region(first(item, record_map.country)),
        phones=_phones(item, record_map.phones),
        custom_fields=custom,
    )


def updated_ms(item: Any, steps: tuple[Step, ...]) -> int | None:
    """The item's modification time in epoch ms: ISO 8601, or epoch seconds / milliseconds."""
    value = first(item, steps)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value if value > 100_000_000_000 else value * 1000)
    text = plain_text(value)
    if text.isdigit():
        return updated_ms({"t": int(text)}, ("t",))
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def call_log_body(template: Mapping[str, Any], entry: CallLogEntry) -> dict[str, Any]:
    """The configured body: each value names a CallLogEntry field (nested objects allowed)."""
    body: dict[str, Any] = {}
    for key, source in template.items():
        if isinstance(source, Mapping):
            body[key] = call_log_body(source, entry)
            continue
        value = getattr(entry, source)
        body[key] = (
            value.astimezone(UTC).isoformat().replace("+00:00", "Z")
            if isinstance(value, datetime)
            else value
        )
    return body


def _phones(item: Any, specs: tuple[PhoneSpec, ...]) -> tuple[SourcePhone, ...]:
    phones, seen = [], set()
    for spec in specs:
        for value in resolve(item, spec.path):
            number, kind = value, spec.kind
            if spec.number is not None:
                number = first(value, spec.number)
                kind = KINDS.get(plain_text(first(value, spec.kind_path)).lower(), spec.kind)
            number = plain_text(number)[:64] if isinstance(number, str | int) else ""
            if number and number not in seen:
                seen.add(number)
                phones.append(SourcePhone(number=number, kind=kind))
    return tuple(phones)
