import pytest

from automations.conditions import ConditionError, matches, validate

CONTEXT = {
    "event": {"satisfaction": 2, "status": "NO_ANSWER", "transfer_requested": False},
    "contact": {"custom": {"vip": True, "tier": "gold"}},
    "app_data": {"crm": {"data": {"score": 7}}},
}


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("", True),
        ("satisfaction <= 2", True),
        ("satisfaction < 2", False),
        ('status == "NO_ANSWER"', True),
        ('status != "NO_ANSWER"', False),
        ("contact.custom.vip == true", True),
        ("transfer_requested", False),
        ('contact.custom.tier in ["gold", "platinum"]', True),
        ("app_data.crm.data.score >= 7 and contact.custom.vip == true", True),
        ("transfer_requested or satisfaction <= 2", True),
        ("event.missing > 3", False),
        ('satisfaction > "high"', False),
    ],
)
def test_it_evaluates_conditions_on_the_event_context(condition, expected):
    assert matches(condition, CONTEXT) is expected


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ("satisfaction <= low", "not a JSON value"),
        ("a == 1 and b == 2 or c == 3", "not both"),
        ("__class__ == 1", "not a field path"),
        ('status in "A"', "needs a list"),
        ("x" * 1001, "at most 1000"),
    ],
)
def test_it_explains_what_is_wrong_with_a_condition(condition, message):
    with pytest.raises(ConditionError, match=message):
        validate(condition)
