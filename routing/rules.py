"""Rule evaluation: pure functions over the tenant's rules and the call being routed."""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from contacts.selectors import CallerCard, ContactSummary
from core import phone_numbers
from routing.conditions import CONTACT_ATTRIBUTES, DAYS, Conditions, FieldCondition


@dataclass(frozen=True)
class Rule:
    """A rule as evaluation needs it; `agent_extension` is the given agent's, for agent actions."""

    id: int
    name: str
    conditions: Conditions
    action: str  # "extension", "queue", "agent" or "owner"
    extension: str = ""
    queue: str = ""
    agent_extension: str = ""


@dataclass(frozen=True)
class Call:
    """The call being routed: who calls (as the phonebook knows them), from where, and when."""

    card: CallerCard
    now: datetime  # in the tenant's time zone

    @functools.cached_property
    def country(self) -> str | None:
        """ISO 3166 region of the calling number, when it can be told.

        Worked out when a rule asks: it takes a full parse of the number, a tenth of a decision.
        """
        return phone_numbers.region_of(self.card.number)


@dataclass(frozen=True)
class ConditionResult:
    condition: str  # what the rule asks, e.g. "tier equals 'gold'"
    holds: bool
    observed: str  # what the call has, e.g. "tier is 'silver'"


@dataclass(frozen=True)
class RuleResult:
    rule: Rule
    conditions: tuple[ConditionResult, ...]
    matched: bool
    extension: str | None = None
    queue: str | None = None
    note: str = ""  # why a rule whose conditions all hold still cannot route the call


@dataclass(frozen=True)
class Decision:
    extension: str | None
    reason: str
    rule: Rule | None = None
    queue: str | None = None


def decide(rules: Sequence[Rule], call: Call, *, fallback_extension: str) -> Decision:
    """The first rule whose conditions all hold and that can route the call, else the fallback."""
    for rule in rules:
        result = rule_check(rule, call)
        if result.matched:
            return _decision(result)
    return fallback(fallback_extension, "no rule matched" if rules else "no rules enabled")


def explain(
    rules: Sequence[Rule], call: Call, *, fallback_extension: str
) -> tuple[Decision, tuple[RuleResult, ...]]:
    """Check every rule in order (a dry run) and return the decision `decide` makes."""
    results = tuple(rule_check(rule, call) for rule in rules)
    matched = next((result for result in results if result.matched), None)
    if matched is not None:
        return _decision(matched), results
    reason = "no rule matched" if rules else "no rules enabled"
    return fallback(fallback_extension, reason), results


def fallback(fallback_extension: str, reason: str) -> Decision:
    """The tenant's fallback route, saying why it is used."""
    return Decision(extension=fallback_extension or None, reason=f"fallback: {reason}")


def rule_check(rule: Rule, call: Call) -> RuleResult:
    """Every condition of one rule, and where it routes when they all hold."""
    results = tuple(condition_results(rule.conditions, call))
    if not all(result.holds for result in results):
        return RuleResult(rule=rule, conditions=results, matched=False)
    extension, queue, note = _target(rule, call.card)
    return RuleResult(rule, results, not note, extension, queue, note)


def _decision(result: RuleResult) -> Decision:
    held = "; ".join(c.observed for c in result.conditions) or "it has no conditions"
    return Decision(
        extension=result.extension,
        queue=result.queue,
        rule=result.rule,
        reason=f"rule '{result.rule.name}' matched: {held}",
    )


def _target(rule: Rule, card: CallerCard) -> tuple[str | None, str | None, str]:
    """(extension, queue, note); the note says why the action cannot route this call."""
    if rule.action == "queue":
        return rule.extension or None, rule.queue, ""
    if rule.action == "agent":
        if not rule.agent_extension:
            return None, None, "the rule's agent is gone, inactive or has no extension"
        return rule.agent_extension, None, ""
    if rule.action == "owner":
        owner = card.contact.owner if card.contact else None
        if owner is None or not owner.extension:
            return None, None, "the caller has no owner agent with an extension"
        return owner.extension, None, ""
    return rule.extension or None, None, "" if rule.extension else "the rule has no extension"


def condition_texts(conditions: Conditions) -> list[str]:
    """What each condition asks, in the order condition_results checks them."""
    texts = []
    if conditions.known is not None:
        texts.append("caller is known" if conditions.known else "caller is unknown")
    if conditions.has_owner is not None:
        texts.append("caller has an owner agent" if conditions.has_owner else "caller has no owner")
    for field in conditions.fields:
        quoted = ", ".join(f"'{value}'" for value in field.values)
        texts.append(f"{field.field} {'equals' if field.op == 'equals' else 'is one of'} {quoted}")
    if conditions.number_prefixes:
        texts.append(f"number starts with {' or '.join(conditions.number_prefixes)}")
    if conditions.countries:
        texts.append(f"number is from {' or '.join(conditions.countries)}")
    if conditions.time_window:
        window = conditions.time_window
        days = ",".join(day.title() for day in window.days)
        texts.append(f"time is {days} {window.start:%H:%M}-{window.end:%H:%M}")
    return texts


def condition_results(conditions: Conditions, call: Call) -> Iterator[ConditionResult]:
    card, contact = call.card, call.card.contact
    asked = iter(condition_texts(conditions))
    if conditions.known is not None:
        seen = f"caller is known ({_who(card)})" if card.known else "caller is unknown"
        yield ConditionResult(next(asked), card.known == conditions.known, seen)
    if conditions.has_owner is not None:
        owner = contact.owner if contact else None
        seen = f"owner is {owner.display_name or owner.crm_username}" if owner else "no owner"
        yield ConditionResult(next(asked), (owner is not None) == conditions.has_owner, seen)
    for field in conditions.fields:
        yield _field_result(field, contact, next(asked))
    if conditions.number_prefixes:
        hit = next((p for p in conditions.number_prefixes if card.number.startswith(p)), None)
        yield ConditionResult(
            next(asked),
            hit is not None,
            f"number {card.number} starts with {hit}" if hit else f"number is {card.number}",
        )
    if conditions.countries:
        yield ConditionResult(
            next(asked),
            call.country in conditions.countries,
            f"number is from {call.country}" if call.country else "number's country is unknown",
        )
    if conditions.time_window:
        now = call.now
        yield ConditionResult(
            next(asked),
            conditions.time_window.contains(now),
            f"it is {DAYS[now.weekday()].title()} {now:%H:%M} {now.tzname()}",
        )


def _who(card: CallerCard) -> str:
    if card.contact is not None:
        return card.contact.name or f"contact {card.contact.id}"
    return f"{len(card.matches)} contacts share the number"


def _field_result(
    condition: FieldCondition, contact: ContactSummary | None, asked: str
) -> ConditionResult:
    if contact is None:
        return ConditionResult(asked, False, "no single contact for this caller")
    if condition.field in CONTACT_ATTRIBUTES:
        actual: Any = getattr(contact, condition.field)
    else:
        actual = (contact.custom_fields or {}).get(condition.field)
    if actual is None or actual == "":
        return ConditionResult(asked, False, f"{condition.field} is empty")
    holds = _comparable(actual) in {_comparable(value) for value in condition.values}
    return ConditionResult(asked, holds, f"{condition.field} is '{actual}'")


def _comparable(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).strip().casefold()
