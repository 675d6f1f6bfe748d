"""App conditions: a tiny, safe expression language over the event context (pure functions).

    satisfaction <= 2
    status == "NO_ANSWER"
    contact.custom.vip == true
    transfer_requested
    status in ["NO_ANSWER", "BUSY"] and direction == "inbound"

A condition is clauses joined by `and` or by `or` (not both: no precedence to get wrong). A
clause is a dotted path, alone (truthy) or compared with `==`, `!=`, `<`, `<=`, `>`, `>=` or `in`
to a JSON literal. A bare first name looks in `event` first (`satisfaction` is
`event.satisfaction`). A path that is missing is null; comparing null with `<` is false.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

OPERATORS = ("==", "!=", "<=", ">=", "<", ">", " in ")
_PATH = re.compile(r"^[A-Za-z_][\w-]*(\.[\w-]+)*$")
MAX_LENGTH = 1000


class ConditionError(ValueError):
    pass


def validate(condition: str) -> None:
    """ConditionError with a message saying what to fix, if the condition cannot be read."""
    _parse(condition)


def matches(condition: str, context: Mapping[str, Any]) -> bool:
    """Whether the context satisfies the condition (an empty condition always matches)."""
    joiner, clauses = _parse(condition)
    results = (_clause_true(clause, context) for clause in clauses)
    return any(results) if joiner == "or" else all(results)


def _parse(condition: str) -> tuple[str, list[tuple[str, str | None, Any]]]:
    text = (condition or "").strip()
    if not text:
        return "and", []
    if len(text) > MAX_LENGTH:
        raise ConditionError(f"A condition is at most {MAX_LENGTH} characters.")
    has_and, has_or = " and " in f" {text} ", " or " in f" {text} "
    if has_and and has_or:
        raise ConditionError("Join clauses with 'and' or with 'or', not both.")
    joiner = "or" if has_or else "and"
    return joiner, [_clause(part.strip()) for part in re.split(rf"\s+{joiner}\s+", text)]


def _clause(text: str) -> tuple[str, str | None, Any]:
    for operator in OPERATORS:
        if operator in text:
            path, _, literal = text.partition(operator)
            path, literal = path.strip(), literal.strip()
            try:
                value = json.loads(literal)
            except ValueError:
                raise ConditionError(
                    f"In {text!r}, {literal!r} is not a JSON value: quote strings "
                    '("NO_ANSWER"), write true/false/null, numbers or lists.'
                ) from None
            if operator == " in " and not isinstance(value, list):
                raise ConditionError(f'In {text!r}, "in" needs a list such as ["A", "B"].')
            return _checked_path(path, text), operator.strip(), value
    return _checked_path(text, text), None, None


def _checked_path(path: str, clause: str) -> str:
    if not _PATH.match(path) or "__" in path:
        raise ConditionError(
            f"In {clause!r}, {path!r} is not a field path such as satisfaction or "
            "contact.custom.vip."
        )
    return path


def _clause_true(clause: tuple[str, str | None, Any], context: Mapping[str, Any]) -> bool:
    path, operator, expected = clause
    value = resolve(path, context)
    if operator is None:
        return bool(value)
    if operator == "==":
        return value == expected
    if operator == "!=":
        return value != expected
    if operator == "in":
        return value in expected
    try:
        return {
            "<": value < expected,
            "<=": value <= expected,
            ">": value > expected,
            ">=": value >= expected,
        }[operator]
    except TypeError:  # null or a string compared with a number
        return False


def resolve(path: str, context: Mapping[str, Any]) -> Any:
    """The value at a dotted path; a bare first name is looked up in `event` first."""
    names = path.split(".")
    event = context.get("event")
    if names[0] not in context and isinstance(event, Mapping) and names[0] in event:
        names = ["event", *names]
    value: Any = context
    for name in names:
        if isinstance(value, Mapping) and name in value:
            value = value[name]
        elif isinstance(value, list) and name.isdigit() and int(name) < len(value):
            value = value[int(name)]
        else:
            return None
    return value
