"""The SOQL and SOSL the fake Salesforce understands; anything else is malformed, as it should be.

SOQL: `SELECT f, g FROM Obj [WHERE a op literal [AND ...]] [ORDER BY a[, b]] [LIMIT n]` with
literals: unquoted ISO datetimes (whole seconds), 'strings' with backslash escapes, true, false,
null, integers. SOSL: `FIND {term [OR term]} IN PHONE FIELDS RETURNING Obj(f, g)[, ...]`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

_TOKEN = re.compile(
    r"\s*(?:"
    r"(?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:Z|[+-]\d{2}:\d{2}))"
    r"|(?P<string>'(?:[^'\\]|\\.)*')"
    r"|(?P<number>\d+)(?![\w:-])"
    r"|(?P<op>>=|<=|!=|=|>|<|,)"
    r"|(?P<word>[A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z][A-Za-z0-9_]*)?)"
    r")"
)
OPERATORS = {"=", "!=", ">", ">=", "<", "<="}
KEYWORDS = {"SELECT", "FROM", "WHERE", "AND", "ORDER", "BY", "LIMIT"}


class MalformedQuery(ValueError):
    pass


@dataclass(frozen=True)
class Condition:
    field: str
    operator: str
    value: Any  # datetime (aware), str, bool, None or int


@dataclass(frozen=True)
class Query:
    sobject: str
    fields: tuple[str, ...]
    conditions: tuple[Condition, ...]
    order_by: tuple[str, ...]
    limit: int | None


@dataclass(frozen=True)
class Search:
    terms: tuple[str, ...]
    returning: tuple[tuple[str, tuple[str, ...]], ...]  # (sobject, fields)


def parse_soql(text: str) -> Query:
    tokens = _tokenize(text)
    position = 0

    def take(kind: str | None = None, word: str | None = None) -> tuple[str, str]:
        nonlocal position
        if position >= len(tokens):
            raise MalformedQuery("unexpected end of query")
        token = tokens[position]
        if (kind and token[0] != kind) or (word and token[1].upper() != word):
            raise MalformedQuery(f"unexpected token: '{token[1]}'")
        position += 1
        return token

    def at(word: str) -> bool:
        return position < len(tokens) and tokens[position][1].upper() == word

    take("word", "SELECT")
    fields = [_name(take("word")[1])]
    while at(","):
        take("op")
        fields.append(_name(take("word")[1]))
    take("word", "FROM")
    sobject = _name(take("word")[1])
    conditions = []
    if at("WHERE"):
        take()
        conditions.append(_condition(take("word")[1], take("op")[1], take()))
        while at("AND"):
            take()
            conditions.append(_condition(take("word")[1], take("op")[1], take()))
    order_by = []
    if at("ORDER"):
        take()
        take("word", "BY")
        order_by.append(_name(take("word")[1]))
        while at(","):
            take("op")
            order_by.append(_name(take("word")[1]))
    limit = None
    if at("LIMIT"):
        take()
        limit = int(take("number")[1])
    if position != len(tokens):
        raise MalformedQuery(f"unexpected token: '{tokens[position][1]}'")
    return Query(sobject, tuple(fields), tuple(conditions), tuple(order_by), limit)


_SOSL = re.compile(
    r"^\s*FIND\s*\{(?P<terms>[^{}]*)\}\s+IN\s+PHONE\s+FIELDS\s+RETURNING\s+(?P<returning>.+?)\s*$",
    re.IGNORECASE | re.DOTALL,
)
_RETURNING = re.compile(r"\s*([A-Za-z]\w*)\s*\(([^()]*)\)\s*(,|$)")
# A term is digits, or a "phrase" in which SOSL's reserved characters are escaped with "\".
_TERM = re.compile(r'^(\d{2,})$|^"((?:[^"\\?&|!{}\[\]()^~*:\'+-]|\\.)+)"$')


def parse_sosl(text: str) -> Search:
    match = _SOSL.match(text)
    if not match:
        raise MalformedQuery("The fake understands FIND {...} IN PHONE FIELDS RETURNING ... only")
    terms = []
    for part in re.split(r"\s+OR\s+", match["terms"].strip()):
        term = _TERM.match(part.strip())
        if not term:
            raise MalformedQuery(f"search term must be digits or a phrase, escaped: {part!r}")
        terms.append(term[1] or re.sub(r"\\(.)", r"\1", term[2]))
    returning, rest = [], match["returning"]
    while rest:
        item = _RETURNING.match(rest)
        if not item:
            raise MalformedQuery(f"unexpected token in RETURNING: {rest[:20]!r}")
        names = tuple(_name(n.strip()) for n in item[2].split(","))
        returning.append((item[1], names))
        rest = rest[item.end() :]
    return Search(tuple(terms), tuple(returning))


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    while position < len(text.rstrip()):
        match = _TOKEN.match(text, position)
        if not match or match.end() == position:
            raise MalformedQuery(f"unexpected character at {position}: {text[position:][:10]!r}")
        kind = match.lastgroup or ""
        tokens.append((kind, match[kind]))
        position = match.end()
    return tokens


def _name(word: str) -> str:
    if word.upper() in KEYWORDS or not re.fullmatch(r"[A-Za-z]\w*(\.[A-Za-z]\w*)?", word):
        raise MalformedQuery(f"unexpected token: '{word}'")
    return word


def _condition(field: str, operator: str, literal: tuple[str, str]) -> Condition:
    if operator not in OPERATORS:
        raise MalformedQuery(f"unexpected token: '{operator}'")
    kind, text = literal
    value: Any
    if kind == "datetime":
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    elif kind == "string":
        value = re.sub(r"\\(.)", r"\1", text[1:-1])
    elif kind == "number":
        value = int(text)
    elif kind == "word" and text.lower() in ("true", "false", "null"):
        value = {"true": True, "false": False, "null": None}[text.lower()]
    else:
        raise MalformedQuery(f"unexpected token: '{text}'")
    return Condition(_name(field), operator, value)
