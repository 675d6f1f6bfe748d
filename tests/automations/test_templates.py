"""Webhook templates: sandboxed dotted paths, rendered per JSON value."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from automations.webhooks.templates import (
    TemplateError,
    render_text,
    render_url,
    render_value,
    template_errors,
)

CONTEXT = {
    "event": {
        "calling_number": "+1 (555) 123-4567",
        "called_number": "+442045205757",
        "duration": 42,
        "answered": True,
        "recording_url": None,
        "score": 4.5,
    },
    "contact": {"first_name": "Ada", "tags": ["vip", "gold"]},
    "app_data": {
        "phone-discovery": {"data": {"phone": {"ip": "10.1.2.3", "extension": "1093"}}},
        "crm": {"data": {"results": [{"id": "CUST-12345", "vip": True}]}},
    },
}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ event.duration }}", 42),
        ("{{ event.answered }}", True),
        ("{{ event.recording_url }}", None),
        ("{{ event.score }}", 4.5),
        ("{{ contact.tags }}", ["vip", "gold"]),
        ("{{ app_data.crm.data.results.0 }}", {"id": "CUST-12345", "vip": True}),
        ("  {{event.duration}}  ", 42),
    ],
)
def test_a_string_that_is_one_expression_keeps_the_value_type(template, expected):
    assert render_value(template, CONTEXT) == expected


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("Call lasted {{ event.duration }} s", "Call lasted 42 s"),
        ("answered={{ event.answered }}", "answered=true"),
        ("url: {{ event.recording_url }}", "url: "),
        ("{{ contact.first_name }} {{ contact.tags }}", 'Ada ["vip","gold"]'),
        ("{{ event.duration }}{{ event.duration }}", "4242"),
    ],
)
def test_text_around_expressions_makes_a_string(template, expected):
    assert render_value(template, CONTEXT) == expected


def test_slugs_with_hyphens_and_list_indexes_resolve():
    assert render_text("{{ app_data.phone-discovery.data.phone.extension }}", CONTEXT) == "1093"
    assert render_text("{{ app_data.crm.data.results.0.id }}", CONTEXT) == "CUST-12345"


def test_missing_paths_are_null_alone_and_empty_in_text():
    body = {
        "alone": "{{ app_data.not-run-yet.data.name }}",
        "in_text": "Hi {{ contact.last_name }}!",
        "past_the_end": "{{ app_data.crm.data.results.5.id }}",
        "through_a_string": "{{ event.calling_number.length }}",
    }

    assert render_value(body, CONTEXT) == {
        "alone": None,
        "in_text": "Hi !",
        "past_the_end": None,
        "through_a_string": None,
    }


def test_values_with_quotes_newlines_and_unicode_never_break_the_json():
    nasty = 'O"Brien\n\t}, "admin": true, {\\ </script> \u2028 Zoë 🎉 \x00'
    context = {"event": {"calling_name": nasty}}
    template = {"name": "{{ event.calling_name }}", "note": "From {{ event.calling_name }}."}

    encoded = json.dumps(render_value(template, context), ensure_ascii=False)

    assert json.loads(encoded) == {"name": nasty, "note": f"From {nasty}."}


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(), st.lists, max_leaves=8))
def test_any_json_value_survives_rendering_into_a_body(value):
    template = {
        "whole": "{{ event.value }}",
        "text": "v={{ event.value }}",
        "list": ["{{ event.value }}"],
    }

    rendered = json.loads(json.dumps(render_value(template, {"event": {"value": value}})))

    assert rendered["whole"] == value
    assert rendered["list"] == [value]
    assert rendered["text"].startswith("v=")


def test_keys_and_non_string_values_are_left_as_written():
    template = {"{{ event.duration }}": 7, "flag": False, "n": None}

    assert render_value(template, CONTEXT) == template


def test_url_values_are_url_encoded_as_the_seed_shows():
    url = render_url("https://api.example.com/contacts/{{ event.calling_number }}/details", CONTEXT)

    assert url == "https://api.example.com/contacts/%2B1%20%28555%29%20123-4567/details"


def test_url_values_cannot_add_path_segments_or_queries():
    context = {"event": {"calling_number": "../admin?x=1#y"}}

    url = render_url("https://api.example.com/c/{{ event.calling_number }}", context)

    assert url == "https://api.example.com/c/..%2Fadmin%3Fx%3D1%23y"


@pytest.mark.parametrize(
    "template",
    [
        "{{ event.__class__ }}",
        "{{ event.calling_number.__class__.__mro__ }}",
        "{{ event._private }}",
        "{{ event.calling_number.upper() }}",
        "{{ event.calling_number | attr('__class__') }}",
        "{{ 7 * 7 }}",
        "{{ settings.SECRET_KEY }}",
        "{{ config }}",
        "{% for x in event %}{{ x }}{% endfor %}",
        "Hello {{ event.calling_number",
        "{{ }}",
    ],
)
def test_the_sandbox_refuses_anything_but_plain_paths(template):
    assert template_errors(template)
    with pytest.raises(TemplateError):
        render_value(template, CONTEXT)


def test_lookups_never_read_attributes():
    class Event:
        calling_number = "+15551234567"

    assert render_value("{{ event.calling_number }}", {"event": Event()}) is None


def test_values_that_are_not_json_become_text():
    class Opaque:
        def __str__(self) -> str:
            return "opaque"

    context = {"event": {"when": Opaque(), "ratio": float("nan")}}

    assert render_value({"w": "{{ event.when }}", "r": "{{ event.ratio }}"}, context) == {
        "w": "opaque",
        "r": None,
    }


def test_a_valid_template_has_no_errors():
    assert template_errors("Call from {{ event.calling_number }} to {{event.called_number}}") == []
