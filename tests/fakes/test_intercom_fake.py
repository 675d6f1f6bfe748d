"""The fake Intercom is at least as strict as the real API (crm-apis-more.md section 6)."""

import json
import time
import urllib.error
import urllib.request

import pytest

from fakes.intercom import FakeIntercom
from fakes.intercom_data import BASE_SECONDS, contact_id

HEADERS = {
    "Authorization": "Bearer ic-fake-access-token",
    "Intercom-Version": "2.11",
    "Content-Type": "application/json",
}
DAY = 86_400


@pytest.fixture
def fake():
    server = FakeIntercom(contacts=30, companies=3)
    server.start()
    yield server
    server.stop()


def call(fake, method, path, body=None, headers=None):
    request = urllib.request.Request(  # noqa: S310 - the fake on loopback
        fake.url + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={k: v for k, v in {**HEADERS, **(headers or {})}.items() if v is not None},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), dict(error.headers)


def search(fake, query, **body):
    return call(fake, "POST", "/contacts/search", {"query": query, **body})


def codes(answer) -> list[str]:
    return [e["code"] for e in answer["errors"]]


def test_a_missing_or_wrong_token_is_an_unauthorized_error_list(fake):
    for token in (None, "Bearer nope", "ic-fake-access-token"):
        status, body, headers = call(fake, "GET", "/admins", headers={"Authorization": token})
        assert (status, body["type"], codes(body)) == (401, "error.list", ["unauthorized"])
        assert "X-RateLimit-Limit" not in headers  # only on authenticated answers


def test_the_intercom_version_must_be_a_published_one(fake):
    for version in (None, "1.4", "2.99"):
        status, body, _ = call(fake, "GET", "/admins", headers={"Intercom-Version": version})
        assert (status, codes(body)) == (400, ["intercom_version_invalid"])
    assert call(fake, "GET", "/admins", headers={"Intercom-Version": "2.16"})[0] == 200


def test_search_checks_operators_by_field_type(fake):
    refused = [
        {"field": "updated_at", "operator": ">=", "value": BASE_SECONDS},  # not on dates
        {"field": "updated_at", "operator": "!=", "value": BASE_SECONDS},
        {"field": "updated_at", "operator": ">", "value": "yesterday"},
        {"field": "phone", "operator": ">", "value": "1"},
        {"field": "shoe_size", "operator": "=", "value": "9"},
        {"field": "phone", "operator": "IN", "value": "+44"},
    ]
    for query in refused:
        assert search(fake, query)[0] == 400, query
    assert search(fake, {"field": "owner_id", "operator": ">=", "value": 1})[0] == 200


def test_search_nests_two_levels_and_fifteen_filters_a_group(fake):
    one = {"field": "phone", "operator": "=", "value": "1"}
    assert search(fake, {"operator": "OR", "value": [one] * 15})[0] == 200
    assert search(fake, {"operator": "OR", "value": [one] * 16})[0] == 400
    two_levels = {"operator": "AND", "value": [{"operator": "OR", "value": [one, one]}, one]}
    assert search(fake, two_levels)[0] == 200
    three = {"operator": "AND", "value": [{"operator": "OR", "value": [two_levels]}]}
    assert search(fake, three)[0] == 400
    assert search(fake, {"operator": "XOR", "value": [one]})[0] == 400


def test_dates_match_whole_days(fake):
    morning = BASE_SECONDS - BASE_SECONDS % DAY + 9 * 3600
    fake.contacts[contact_id(1)]["updated_at"] = morning
    fake.touch([contact_id(2)], at=morning + DAY)  # the next day, 09:00
    fake.touch([contact_id(1)], at=morning)

    def found(operator, value):
        query = {"field": "updated_at", "operator": operator, "value": value}
        ids = {r["id"] for r in search(fake, query, pagination={"per_page": 150})[1]["data"]}
        return {contact_id(1), contact_id(2)} & ids

    assert found("=", morning + 5 * 3600) == {contact_id(1)}  # the same day, later
    assert found(">", morning - 3600) == {contact_id(2)}  # from the next day's start
    assert found("<", morning + DAY) == {contact_id(1)}  # before that day's start


def test_a_query_parameter_cursor_is_ignored_and_page_one_comes_again(fake):
    query = {"field": "role", "operator": "IN", "value": ["user", "lead"]}
    _, first, _ = search(fake, query, pagination={"per_page": 10})
    cursor = first["pages"]["next"]["starting_after"]

    _, again, _ = call(fake, "POST", f"/contacts/search?starting_after={cursor}", {
        "query": query, "pagination": {"per_page": 10}})  # fmt: skip
    _, second, _ = search(fake, query, pagination={"per_page": 10, "starting_after": cursor})

    assert [r["id"] for r in again["data"]] == [r["id"] for r in first["data"]]
    assert second["pages"]["page"] == 2 and second["data"][0] not in first["data"]


def test_per_page_is_at_most_150_and_a_foreign_cursor_is_refused(fake):
    query = {"field": "role", "operator": "=", "value": "user"}
    assert search(fake, query, pagination={"per_page": 151})[0] == 400
    assert call(fake, "GET", "/contacts?per_page=151")[0] == 400
    _, page, _ = search(fake, query, pagination={"per_page": 2})
    other = {"per_page": 2, "starting_after": page["pages"]["next"]["starting_after"]}
    assert search(fake, {**query, "value": "lead"}, pagination=other)[0] == 400


def test_a_new_contact_reaches_search_after_the_lag(fake):
    fake.search_lag_seconds = 0.3
    _, created, _ = call(fake, "POST", "/contacts", {"role": "lead", "phone": "+447400999888"})
    query = {"field": "phone", "operator": "=", "value": "+447400999888"}

    assert search(fake, query)[1]["data"] == []
    assert call(fake, "GET", f"/contacts/{created['id']}")[0] == 200  # reads do not lag
    time.sleep(0.35)
    assert [r["id"] for r in search(fake, query)[1]["data"]] == [created["id"]]


def test_one_scroll_at_a_time_that_expires_after_a_minute_unused(fake):
    fake.scroll_page_size, fake.scroll_idle_seconds = 2, 0.2
    _, first, _ = call(fake, "GET", "/companies/scroll")
    assert call(fake, "GET", "/companies/scroll")[0] == 400  # one open scroll per app
    time.sleep(0.25)

    status, _, _ = call(fake, "GET", f"/companies/scroll?scroll_param={first['scroll_param']}")
    assert status == 400  # expired
    assert call(fake, "GET", "/companies/scroll")[0] == 200  # a new one may start


def test_the_scroll_ends_with_an_empty_page_and_fails_as_documented(fake):
    fake.scroll_page_size = 2
    _, first, _ = call(fake, "GET", "/companies/scroll")
    param = first["scroll_param"]
    _, second, _ = call(fake, "GET", f"/companies/scroll?scroll_param={param}")
    _, end, _ = call(fake, "GET", f"/companies/scroll?scroll_param={param}")
    assert (len(first["data"]), len(second["data"]), end["data"]) == (2, 1, [])
    assert fake.scroll is None

    _, first, _ = call(fake, "GET", "/companies/scroll")
    fake.fail_scroll()
    status, body, _ = call(fake, "GET", f"/companies/scroll?scroll_param={first['scroll_param']}")
    assert status == 500 and "restart the scroll" in body["errors"][0]["message"]
    assert call(fake, "GET", f"/companies/scroll?scroll_param={first['scroll_param']}")[0] == 400


def test_notes_cannot_be_updated_or_deleted(fake):
    path = f"/contacts/{contact_id(1)}/notes"
    _, note, _ = call(fake, "POST", path, {"body": "<p>Hello</p>", "admin_id": "991267491"})

    for method in ("PUT", "PATCH", "DELETE"):
        assert call(fake, method, f"/notes/{note['id']}", {"body": "changed"})[0] == 404
    assert call(fake, "GET", f"/notes/{note['id']}")[1]["body"] == "<p>Hello</p>"
    assert call(fake, "GET", path)[1]["data"] == [note]


def test_notes_need_a_body_a_known_contact_and_a_known_admin(fake):
    path = f"/contacts/{contact_id(1)}/notes"
    assert call(fake, "POST", path, {"admin_id": "991267491"})[0] == 400
    assert call(fake, "POST", path, {"body": "x", "admin_id": "1"})[0] == 404
    status, body, _ = call(fake, "POST", "/contacts/6650ffffffffffffffffffff/notes", {"body": "x"})
    assert (status, body["errors"][0]["message"]) == (404, "User Not Found")


def test_a_conversation_comes_from_a_contact_in_plain_text(fake):
    lead = next(c for c in fake.contacts.values() if c["role"] == "lead")
    sender = {"type": "lead", "id": lead["id"]}
    assert call(fake, "POST", "/conversations", {"from": sender, "body": "<p>Hi</p>"})[0] == 400
    wrong = {"type": "user", "id": lead["id"]}
    assert call(fake, "POST", "/conversations", {"from": wrong, "body": "Hi"})[0] == 404

    _, message, _ = call(fake, "POST", "/conversations", {"from": sender, "body": "Hi c-1"})

    assert message["type"] == "user_message" and message["conversation_id"] in fake.conversations
    query = {"field": "source.body", "operator": "=", "value": "c-1"}
    _, found, _ = call(fake, "POST", "/conversations/search", {"query": query})
    assert [c["id"] for c in found["conversations"]] == [message["conversation_id"]]


def test_over_the_windows_limit_is_a_429_with_the_reset(fake):
    fake.requests_per_window = 2
    if time.time() % 10 > 9:
        time.sleep(1.01)  # all in one ten-second window
    answers = [call(fake, "GET", "/admins") for _ in range(3)]

    assert [a[0] for a in answers] == [200, 200, 429]
    _, body, headers = answers[2]
    assert codes(body) == ["rate_limit_exceeded"]
    assert body["errors"][0]["message"] == "Exceeded rate limit of 2 in 10_seconds"
    assert headers["X-RateLimit-Remaining"] == "0"
    assert int(headers["X-RateLimit-Reset"]) > time.time()
