from datetime import datetime, time

import pytest

from routing.conditions import (
    Conditions,
    FieldCondition,
    InvalidConditions,
    TimeWindow,
    conditions_as_json,
    parse_conditions,
)


def test_it_reads_every_condition_into_its_canonical_form():
    stored = {
        "known": True,
        "has_owner": False,
        "fields": [
            {"field": "tier", "value": "gold"},
            {"field": "language", "op": "in", "value": ["tr", "de"]},
        ],
        "number_prefixes": ["+44 20"],
        "countries": ["gb", "IE"],
        "time_window": {"days": ["FRI", "mon"], "start": "09:00", "end": "17:30"},
    }

    conditions = parse_conditions(stored)

    assert conditions == Conditions(
        known=True,
        has_owner=False,
        fields=(
            FieldCondition("tier", "equals", ("gold",)),
            FieldCondition("language", "in", ("tr", "de")),
        ),
        number_prefixes=("+4420",),
        countries=("GB", "IE"),
        time_window=TimeWindow(("mon", "fri"), time(9), time(17, 30)),
    )
    assert conditions_as_json(conditions) == {
        "known": True,
        "has_owner": False,
        "fields": [
            {"field": "tier", "op": "equals", "value": "gold"},
            {"field": "language", "op": "in", "value": ["tr", "de"]},
        ],
        "number_prefixes": ["+4420"],
        "countries": ["GB", "IE"],
        "time_window": {"days": ["mon", "fri"], "start": "09:00", "end": "17:30"},
    }


def test_it_reads_no_conditions_as_always_matching():
    assert parse_conditions({}) == parse_conditions(None) == Conditions()


@pytest.mark.parametrize(
    ("stored", "field"),
    [
        ([], ""),
        ({"vip": True}, "vip"),
        ({"known": "yes"}, "known"),
        ({"fields": {"tier": "gold"}}, "fields"),
        ({"fields": [{"field": "tier"}]}, "fields[0].value"),
        ({"fields": [{"field": "tier", "op": "like", "value": "g"}]}, "fields[0].op"),
        ({"fields": [{"field": "tier", "op": "in", "value": "gold"}]}, "fields[0].value"),
        ({"fields": [{"field": "tier", "value": "g", "x": 1}]}, "fields[0].x"),
        ({"fields": [{"field": "'; DROP TABLE x; --", "value": "g"}]}, "fields[0].field"),
        ({"number_prefixes": ["44"]}, "number_prefixes[0]"),
        ({"number_prefixes": ["+44" + "1" * 20]}, "number_prefixes[0]"),
        ({"countries": ["GBR"]}, "countries[0]"),
        ({"countries": [None]}, "countries[0]"),
        ({"time_window": {"start": "9am", "end": "17:00"}}, "time_window.start"),
        ({"time_window": {"start": "09:00", "end": "25:00"}}, "time_window.end"),
        ({"time_window": {"start": "09:00", "end": "09:00"}}, "time_window.end"),
        (
            {"time_window": {"days": ["someday"], "start": "09:00", "end": "17:00"}},
            "time_window.days",
        ),
        ({"time_window": "business hours"}, "time_window"),
        ({"number_prefixes": ["+1"] * 101}, "number_prefixes"),
    ],
)
def test_it_names_the_bad_part_of_invalid_conditions(stored, field):
    with pytest.raises(InvalidConditions) as raised:
        parse_conditions(stored)

    assert raised.value.field == field


@pytest.mark.parametrize(
    ("moment", "inside"),
    [
        (datetime(2026, 1, 5, 9, 0), True),  # Monday, opening minute
        (datetime(2026, 1, 5, 16, 59), True),
        (datetime(2026, 1, 5, 17, 0), False),  # closing minute is outside
        (datetime(2026, 1, 5, 8, 59), False),
        (datetime(2026, 1, 10, 10, 0), False),  # Saturday
    ],
)
def test_it_reads_business_hours_by_day_and_time(moment, inside):
    window = TimeWindow(("mon", "tue", "wed", "thu", "fri"), time(9), time(17))

    assert window.contains(moment) is inside


@pytest.mark.parametrize(
    ("moment", "inside"),
    [
        (datetime(2026, 1, 9, 23, 0), True),  # Friday night
        (datetime(2026, 1, 10, 5, 59), True),  # Saturday early morning belongs to Friday
        (datetime(2026, 1, 10, 6, 0), False),
        (datetime(2026, 1, 10, 23, 0), False),  # Saturday night: not a chosen day
        (datetime(2026, 1, 9, 5, 0), False),  # Friday early morning belongs to Thursday
    ],
)
def test_it_reads_a_window_spanning_midnight_from_the_day_it_opens(moment, inside):
    window = TimeWindow(("fri",), time(22), time(6))

    assert window.contains(moment) is inside
