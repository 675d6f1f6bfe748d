"""A routing rule's conditions: the stored JSON shape, its validation and its parsed form.

Every key is optional; all the keys given must hold for the rule to match:

    {"known": true,                                   # caller is / is not in the phonebook
     "has_owner": true,                               # the caller's contact has an owner agent
     "fields": [{"field": "tier", "op": "equals", "value": "gold"},
                {"field": "language", "op": "in", "value": ["tr", "de"]}],
     "number_prefixes": ["+44", "+9021"],             # any of them
     "countries": ["GB", "IE"],                       # any of them (the calling number's country)
     "time_window": {"days": ["mon", "tue"], "start": "09:00", "end": "17:00"}}

`fields` names a contact attribute (CONTACT_ATTRIBUTES) or else a key of its custom fields;
values compare as text, ignoring case. The time window is read in the tenant's time zone; an end
before the start spans midnight (22:00-06:00 on "fri" includes Saturday 05:00).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
CONTACT_ATTRIBUTES = ("first_name", "last_name", "name", "company", "is_company", "country")
OPERATORS = ("equals", "in")
CONDITION_KEYS = ("known", "has_owner", "fields", "number_prefixes", "countries", "time_window")
MAX_ITEMS = 100
_PREFIX = re.compile(r"\+[0-9]{1,15}")
_COUNTRY = re.compile(r"[A-Z]{2}")
_FIELD_NAME = re.compile(r"[A-Za-z0-9_.\- ]{1,100}")
_CLOCK = re.compile(r"[0-2][0-9]:[0-5][0-9]")


class InvalidConditions(ValueError):
    """Names the bad part of the conditions (`field`, e.g. "time_window.start"; "": the whole)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class FieldCondition:
    field: str
    op: str  # "equals" or "in"
    values: tuple[str, ...]


@dataclass(frozen=True)
class TimeWindow:
    days: tuple[str, ...]
    start: time
    end: time

    def contains(self, moment: datetime) -> bool:
        """Whether a local time falls in the window."""
        day, clock = DAYS[moment.weekday()], moment.time()
        if self.start < self.end:
            return day in self.days and self.start <= clock < self.end
        # Spans midnight: the early-morning part belongs to the day the window opened.
        yesterday = DAYS[(moment.weekday() - 1) % 7]
        return (day in self.days and clock >= self.start) or (
            yesterday in self.days and clock < self.end
        )


@dataclass(frozen=True)
class Conditions:
    known: bool | None = None
    has_owner: bool | None = None
    fields: tuple[FieldCondition, ...] = ()
    number_prefixes: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()
    time_window: TimeWindow | None = None


def parse_conditions(data: Any) -> Conditions:
    """Read the JSON shape above, or raise InvalidConditions naming the bad part."""
    if data is None:
        return Conditions()
    if not isinstance(data, dict):
        raise InvalidConditions("", 'Conditions must be an object, e.g. {"known": true}.')
    unknown = sorted(set(data) - set(CONDITION_KEYS))
    if unknown:
        raise InvalidConditions(unknown[0], f"unknown condition; use {', '.join(CONDITION_KEYS)}.")
    window = data.get("time_window")
    return Conditions(
        known=_optional_bool(data, "known"),
        has_owner=_optional_bool(data, "has_owner"),
        fields=tuple(
            _field_condition(item, f"fields[{i}]") for i, item in enumerate(_list(data, "fields"))
        ),
        number_prefixes=tuple(
            _matching(
                _text(prefix, f"number_prefixes[{i}]").replace(" ", ""),
                _PREFIX,
                f"number_prefixes[{i}]",
                "must be '+' and 1 to 15 digits, e.g. +44 or +9021.",
            )
            for i, prefix in enumerate(_list(data, "number_prefixes"))
        ),
        countries=tuple(
            _matching(
                _text(country, f"countries[{i}]").upper(),
                _COUNTRY,
                f"countries[{i}]",
                "must be an ISO 3166 country code such as GB or TR.",
            )
            for i, country in enumerate(_list(data, "countries"))
        ),
        time_window=None if window is None else _time_window(window),
    )


def conditions_as_json(conditions: Conditions) -> dict:
    """The canonical stored form of parsed conditions (only the keys that are set)."""
    data: dict[str, Any] = {}
    if conditions.known is not None:
        data["known"] = conditions.known
    if conditions.has_owner is not None:
        data["has_owner"] = conditions.has_owner
    if conditions.fields:
        data["fields"] = [
            {"field": f.field, "op": f.op, "value": [*f.values] if f.op == "in" else f.values[0]}
            for f in conditions.fields
        ]
    if conditions.number_prefixes:
        data["number_prefixes"] = [*conditions.number_prefixes]
    if conditions.countries:
        data["countries"] = [*conditions.countries]
    if conditions.time_window:
        window = conditions.time_window
        data["time_window"] = {
            "days": [*window.days],
            "start": f"{window.start:%H:%M}",
            "end": f"{window.end:%H:%M}",
        }
    return data


def _optional_bool(data: dict, key: str) -> bool | None:
    value = data.get(key)
    if value is not None and not isinstance(value, bool):
        raise InvalidConditions(key, "must be true, false or null.")
    return value


def _list(data: dict, key: str) -> list:
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidConditions(key, "must be a list.")
    if len(value) > MAX_ITEMS:
        raise InvalidConditions(key, f"must have at most {MAX_ITEMS} items.")
    return value


def _text(value: Any, field: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise InvalidConditions(field, "must be text.")
    text = str(value).strip()
    if not text or len(text) > 200:
        raise InvalidConditions(field, "must be 1 to 200 characters.")
    return text


def _matching(value: str, pattern: re.Pattern, field: str, message: str) -> str:
    if not pattern.fullmatch(value):
        raise InvalidConditions(field, message)
    return value


def _field_condition(item: Any, path: str) -> FieldCondition:
    if not isinstance(item, dict):
        raise InvalidConditions(path, 'must be {"field": ..., "op": "equals"|"in", "value": ...}.')
    unknown = sorted(set(item) - {"field", "op", "value"})
    if unknown:
        raise InvalidConditions(f"{path}.{unknown[0]}", "unknown key; use field, op and value.")
    name = _matching(
        _text(item.get("field"), f"{path}.field"),
        _FIELD_NAME,
        f"{path}.field",
        "must be letters, digits, spaces, '_', '-' or '.'.",
    )
    op = item.get("op", "equals")
    if op not in OPERATORS:
        raise InvalidConditions(f"{path}.op", "must be 'equals' or 'in'.")
    value = item.get("value")
    values: tuple[str, ...]
    if op == "equals":
        values = (_text(value, f"{path}.value"),)
    elif not isinstance(value, list) or not value or len(value) > MAX_ITEMS:
        raise InvalidConditions(f"{path}.value", f"'in' needs a list of 1 to {MAX_ITEMS} values.")
    else:
        values = tuple(_text(v, f"{path}.value[{i}]") for i, v in enumerate(value))
    return FieldCondition(field=name, op=op, values=values)


def _time_window(data: Any) -> TimeWindow:
    if not isinstance(data, dict):
        raise InvalidConditions("time_window", 'must be {"days": [...], "start": "09:00", ...}.')
    unknown = sorted(set(data) - {"days", "start", "end"})
    if unknown:
        raise InvalidConditions(f"time_window.{unknown[0]}", "unknown key; use days, start, end.")
    days = data.get("days", [*DAYS])
    if not isinstance(days, list) or not days:
        raise InvalidConditions("time_window.days", f"must be a list of {', '.join(DAYS)}.")
    for day in days:
        if not isinstance(day, str) or day.lower() not in DAYS:
            raise InvalidConditions("time_window.days", f"'{day}' is not one of {', '.join(DAYS)}.")
    chosen = {day.lower() for day in days}
    start, end = _clock(data, "start"), _clock(data, "end")
    if start == end:
        raise InvalidConditions("time_window.end", "must differ from start.")
    return TimeWindow(days=tuple(d for d in DAYS if d in chosen), start=start, end=end)


def _clock(data: dict, key: str) -> time:
    value = data.get(key)
    if isinstance(value, str) and _CLOCK.fullmatch(value) and value < "24:00":
        return time.fromisoformat(value)
    raise InvalidConditions(f"time_window.{key}", "must be a time such as 09:00 (24-hour clock).")
