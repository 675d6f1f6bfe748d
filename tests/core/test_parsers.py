"""JSON nested too deep is refused with a 400 before it is parsed into Python objects."""

import time

import pytest

from core.parsers import MAX_DEPTH, nested_deeper_than

pytestmark = pytest.mark.django_db(transaction=True)

DEEP = "[" * 10_000 + "]" * 10_000
WRITES = [
    ("patch", "/api/v1/tenant"),
    ("post", "/api/v1/agents"),
    ("post", "/api/v1/contacts"),
    ("post", "/api/v1/contacts/bulk"),
    ("post", "/api/v1/routing/rules"),
    ("post", "/api/v1/routing/dry-run"),
    ("post", "/api/v1/calls"),
    ("post", "/api/v1/telephony/events"),
    ("post", "/api/v1/connections"),
    ("post", "/api/v1/apps"),
    ("post", "/api/v1/apps/test-call"),
]


@pytest.mark.parametrize("body", [DEEP, '{"a":' * 10_000 + "1" + "}" * 10_000])
@pytest.mark.parametrize(("method", "path"), WRITES)
def test_deeply_nested_json_is_a_400_on_every_write(api, method, path, body):
    response = getattr(api, method)(path, body, content_type="application/json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_request"
    assert "nested deeper" in response.json()["error"]["message"]


def test_brackets_inside_strings_do_not_count():
    text = '{"note": "' + "[" * 500 + '\\"' + "{" * 500 + '"}'

    assert not nested_deeper_than(text.encode(), MAX_DEPTH)
    assert nested_deeper_than(("[" * (MAX_DEPTH + 1)).encode(), MAX_DEPTH)


def test_the_check_is_cheap_on_a_large_flat_body():
    body = ("[" + ",".join(['{"a": [1, 2], "b": "x"}'] * 50_000) + "]").encode()  # ~1.2 MB

    started = time.perf_counter()
    assert not nested_deeper_than(body, MAX_DEPTH)
    assert time.perf_counter() - started < 0.5
