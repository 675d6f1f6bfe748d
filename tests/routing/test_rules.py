"""Rule evaluation on calls built by hand: no database."""

from datetime import UTC, datetime

import pytest

from contacts.selectors import CallerCard, ContactSummary, OwnerSummary
from routing.conditions import parse_conditions
from routing.rules import Call, Rule, decide, explain

MONDAY_10AM = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
SUNDAY_10AM = datetime(2026, 1, 4, 10, 0, tzinfo=UTC)
PRIYA = OwnerSummary(id=7, crm_username="agent.017", display_name="Priya", extension="2001")


def contact(owner: OwnerSummary | None = None, **fields) -> ContactSummary:
    values = {
        "id": 1,
        "first_name": "Ada",
        "last_name": "Lovelace",
        "name": "Ada Lovelace",
        "company": "Analytical Ltd",
        "is_company": False,
        "crm_url": "",
        "country": "GB",
        "custom_fields": {"tier": "Gold", "language": "tr", "seats": 12},
        "owner": owner,
        "updated_at": MONDAY_10AM,
        **fields,
    }
    return ContactSummary(**values)


def known(number: str = "+442045205757", **fields) -> CallerCard:
    summary = contact(**fields)
    return CallerCard(number, known=True, ambiguous=False, contact=summary, matches=(summary,))


def unknown(number: str = "+905321234567") -> CallerCard:
    return CallerCard(number, known=False, ambiguous=False, contact=None, matches=())


def call(card: CallerCard, now: datetime = MONDAY_10AM) -> Call:
    return Call(card=card, now=now)


def rule(name: str = "VIP", conditions: dict | None = None, **fields) -> Rule:
    fields.setdefault("action", "extension")
    if fields["action"] == "extension":
        fields.setdefault("extension", "1093")
    return Rule(
        id=fields.pop("id", 1), name=name, conditions=parse_conditions(conditions), **fields
    )


def test_it_routes_known_callers_to_one_extension_and_unknown_to_another():
    rules = [
        rule("Customers", {"known": True}, extension="1093"),
        rule("Everyone else", {"known": False}, id=2, extension="1094"),
    ]

    assert decide(rules, call(known()), fallback_extension="1000").extension == "1093"
    assert decide(rules, call(unknown()), fallback_extension="1000").extension == "1094"


def test_it_takes_the_first_matching_rule_in_order_and_says_why():
    rules = [
        rule("Turkish speakers", {"fields": [{"field": "language", "value": "de"}]}),
        rule(
            "Gold",
            {
                "known": True,
                "fields": [{"field": "tier", "op": "in", "value": ["gold", "platinum"]}],
            },
            id=2,
            extension="1200",
        ),
        rule("Known", {"known": True}, id=3, extension="1300"),
    ]

    decision = decide(rules, call(known()), fallback_extension="1000")

    assert (decision.extension, decision.rule.name) == ("1200", "Gold")
    assert decision.reason == "rule 'Gold' matched: caller is known (Ada Lovelace); tier is 'Gold'"


def test_it_compares_contact_attributes_and_custom_fields_as_text_ignoring_case():
    conditions = {
        "fields": [
            {"field": "company", "value": "ANALYTICAL LTD"},
            {"field": "seats", "value": 12},
            {"field": "is_company", "value": "false"},
        ]
    }

    assert decide([rule(conditions=conditions)], call(known()), fallback_extension="").rule


@pytest.mark.parametrize(
    "field",
    [
        {"field": "tier", "value": "silver"},
        {"field": "region", "value": "emea"},  # a custom field the contact does not have
        {"field": "company", "op": "in", "value": ["Acme"]},
    ],
)
def test_it_does_not_match_a_field_the_contact_does_not_have(field):
    decision = decide([rule(conditions={"fields": [field]})], call(known()), fallback_extension="9")

    assert decision.rule is None
    assert decision.extension == "9"


def test_it_never_matches_field_conditions_for_unknown_callers():
    conditions = {"fields": [{"field": "tier", "value": "gold"}]}

    decision, results = explain(
        [rule(conditions=conditions)], call(unknown()), fallback_extension=""
    )

    assert decision.rule is None
    assert results[0].conditions[0].observed == "no single contact for this caller"


def test_it_routes_to_the_callers_owner_agent():
    owner_rule = rule("Owner", {"has_owner": True}, action="owner")

    decision = decide([owner_rule], call(known(owner=PRIYA)), fallback_extension="1000")

    assert decision.extension == "2001"
    assert decision.reason == "rule 'Owner' matched: owner is Priya"


def test_it_skips_an_owner_rule_when_the_owner_has_no_extension():
    owner_rule = rule("Owner", action="owner")
    no_extension = OwnerSummary(id=8, crm_username="a.8", display_name="", extension="")

    decision, results = explain(
        [owner_rule, rule("Rest", id=2, extension="1094")],
        call(known(owner=no_extension)),
        fallback_extension="1000",
    )

    assert decision.extension == "1094"
    assert results[0].note == "the caller has no owner agent with an extension"


def test_it_routes_to_a_given_agent_or_skips_the_rule_when_the_agent_cannot_take_calls():
    to_agent = rule("Agent", action="agent", agent_extension="2002")
    gone = rule("Gone agent", action="agent", agent_extension="")

    assert decide([to_agent], call(unknown()), fallback_extension="").extension == "2002"
    assert decide([gone], call(unknown()), fallback_extension="1000").extension == "1000"


def test_it_answers_a_queue_with_its_extension():
    support = rule("Support", action="queue", queue="support", extension="1500")

    decision = decide([support], call(unknown()), fallback_extension="")

    assert (decision.queue, decision.extension) == ("support", "1500")


@pytest.mark.parametrize(
    ("conditions", "card", "country", "matches"),
    [
        ({"number_prefixes": ["+4420"]}, known("+442045205757"), "GB", True),
        ({"number_prefixes": ["+4420", "+90"]}, unknown("+905321234567"), "TR", True),
        ({"number_prefixes": ["+4420"]}, known("+447911123456"), "GG", False),
        ({"countries": ["TR", "DE"]}, unknown("+905321234567"), "TR", True),
        ({"countries": ["GB"]}, unknown("+905321234567"), "TR", False),
        ({"countries": ["GB"]}, unknown("+999"), None, False),
    ],
)
def test_it_matches_the_number_by_prefix_or_country(conditions, card, country, matches):
    decision = decide([rule(conditions=conditions)], call(card), fallback_extension="")

    assert call(card).country == country
    assert (decision.rule is not None) is matches


def test_it_honours_business_hours_in_the_given_local_time():
    hours = {
        "time_window": {
            "days": ["mon", "tue", "wed", "thu", "fri"],
            "start": "09:00",
            "end": "17:00",
        }
    }
    rules = [rule("Office", hours)]

    open_decision = decide(rules, call(unknown(), now=MONDAY_10AM), fallback_extension="")
    closed, results = explain(rules, call(unknown(), now=SUNDAY_10AM), fallback_extension="1999")

    assert open_decision.reason == "rule 'Office' matched: it is Mon 10:00 UTC"
    assert closed.extension == "1999"
    assert closed.reason == "fallback: no rule matched"
    assert results[0].conditions[0].holds is False
    assert results[0].conditions[0].observed == "it is Sun 10:00 UTC"


def test_it_answers_the_fallback_with_the_reason_when_nothing_applies():
    assert (
        decide([], call(known()), fallback_extension="1000").reason == "fallback: no rules enabled"
    )
    assert decide([], call(known()), fallback_extension="").extension is None


def test_it_explains_every_rule_with_per_condition_results():
    rules = [
        rule("Unknown UK", {"known": False, "countries": ["GB"]}),
        rule("Known", {"known": True}, id=2, extension="1300"),
        rule("Never reached", id=3),
    ]

    decision, results = explain(rules, call(known()), fallback_extension="")

    assert decision.rule.name == "Known"
    assert [r.matched for r in results] == [False, True, True]
    assert [(c.condition, c.holds) for c in results[0].conditions] == [
        ("caller is unknown", False),
        ("number is from GB", True),
    ]


def test_it_treats_an_ambiguous_caller_as_known_without_a_single_contact():
    shared = (contact(id=1), contact(id=2))
    card = CallerCard("+442045205757", known=True, ambiguous=True, contact=None, matches=shared)
    rules = [
        rule("Gold", {"fields": [{"field": "tier", "value": "gold"}]}),
        rule("Known", {"known": True}, id=2, extension="1300"),
    ]

    decision = decide(rules, call(card), fallback_extension="")

    assert decision.extension == "1300"
    assert "2 contacts share the number" in decision.reason
