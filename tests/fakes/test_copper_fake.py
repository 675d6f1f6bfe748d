"""The fake Copper is at least as strict as the real API (crm-apis-more.md section 3)."""

import json
import time
import urllib.error
import urllib.request
from urllib.parse import urlencode

import pytest

from fakes.copper import FakeCopper

KEY_HEADERS = {
    "X-PW-AccessToken": "cu-fake-api-key",
    "X-PW-Application": "developer_api",
    "X-PW-UserEmail": "priya.shah@example.com",
    "Content-Type": "application/json",
}


@pytest.fixture
def fake():
    server = FakeCopper(people=30, companies=3)
    server.start()
    yield server
    server.stop()


def call(fake, method, path, body=None, headers=None, *, raw: bytes | None = None):
    request = urllib.request.Request(  # noqa: S310 - the fake on loopback
        fake.url + path,
        method=method,
        data=raw if raw is not None else json.dumps(body).encode() if body is not None else None,
        headers={k: v for k, v in {**KEY_HEADERS, **(headers or {})}.items() if v is not None},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), dict(error.headers)


def search(fake, body, resource="people"):
    return call(fake, "POST", f"/developer_api/v1/{resource}/search", body)


@pytest.mark.parametrize(
    "headers",
    [
        {"X-PW-AccessToken": "wrong"},
        {"X-PW-AccessToken": None},
        {"X-PW-Application": None},
        {"X-PW-Application": "other_app"},
        {"X-PW-UserEmail": None},
        {"X-PW-UserEmail": "someone.else@example.com"},
    ],
)
def test_an_api_key_needs_all_three_headers_right_or_it_is_401(fake, headers):
    status, body, _ = call(fake, "GET", "/developer_api/v1/activity_types", headers=headers)

    assert status == 401 and body == {
        "success": False,
        "status": 401,
        "message": "Invalid credentials",
    }


def test_a_bearer_token_works_until_revoked_and_never_expires_on_its_own(fake):
    token = fake.issue_oauth_token()
    bearer = {"Authorization": f"Bearer {token}", "X-PW-AccessToken": None, "X-PW-UserEmail": None}

    assert call(fake, "GET", "/developer_api/v1/account", headers=bearer)[0] == 200
    fake.expire_tokens()
    assert call(fake, "GET", "/developer_api/v1/account", headers=bearer)[0] == 401


def test_searches_answer_bare_arrays_with_an_upper_bound_total(fake):
    status, body, headers = search(fake, {"page_size": 10, "sort_by": "date_created"})

    assert status == 200 and isinstance(body, list) and len(body) == 10
    assert [p["id"] for p in body] == list(range(1, 11))
    assert int(headers["X-PW-TOTAL"]) >= 30


@pytest.mark.parametrize("size", [0, 201, "200"])
def test_a_page_size_outside_1_to_200_is_refused(fake, size):
    status, body, _ = search(fake, {"page_size": size})

    assert status == 422 and body["message"].startswith(
        "Invalid input: Validation errors: Page size"
    )


def test_unknown_attributes_are_refused_as_copper_refuses_them(fake):
    status, body, _ = search(fake, {"pageSize": 20})

    assert status == 422
    assert body["message"] == (
        "Invalid input: Validation errors: Base: Unrecognized attributes specified: pageSize"
    )


def test_a_sort_copper_does_not_offer_is_refused(fake):
    assert search(fake, {"sort_by": "id"})[0] == 422
    assert search(fake, {"sort_by": "date_modified", "sort_direction": "up"})[0] == 422


def test_modified_dates_filter_inclusively_in_unix_seconds(fake):
    people = fake.records["people"]
    people[5]["date_modified"] = 1_800_000_000
    fake._sorted.clear()
    window = {"minimum_modified_date": 1_800_000_000, "maximum_modified_date": 1_800_000_000}

    assert [p["id"] for p in search(fake, {**window, "sort_by": "date_modified"})[1]] == [5]
    assert search(fake, {"minimum_modified_date": "2027-01-15"})[0] == 422


def test_phone_search_matches_digits_at_the_end_as_the_docs_describe(fake):
    numbers = ["+44 20 7946 0018", "020 7946 0018", "(415) 946-0018", "+44 20 7946 0019"]
    for person, number in zip(fake.records["people"].values(), numbers, strict=False):
        person["phone_numbers"] = [{"number": number, "category": "work"}]
    for person in list(fake.records["people"].values())[4:]:
        person["phone_numbers"] = []

    partial = {"value": "2079460018", "match": "partial"}
    assert [
        p["id"] for p in search(fake, {"phone_number": partial, "sort_by": "date_created"})[1]
    ] == [1, 2]
    fuzzy = [
        p["id"] for p in search(fake, {"phone_number": "2079460018", "sort_by": "date_created"})[1]
    ]
    assert fuzzy == [1, 2, 3]  # fuzzy drops leading digits: "9460018" ends (415) 946-0018
    assert search(fake, {"phone_number": {"value": "1", "match": "exact"}})[0] == 422


def test_only_enabled_user_activity_types_can_be_created(fake):
    parent = {"type": "person", "id": 1}
    base = {"parent": parent, "details": "Called", "activity_date": 1_700_000_000}

    system = call(
        fake,
        "POST",
        "/developer_api/v1/activities",
        {**base, "type": {"category": "system", "id": 1}},
    )
    unknown = call(
        fake,
        "POST",
        "/developer_api/v1/activities",
        {**base, "type": {"category": "user", "id": 42}},
    )
    made = call(
        fake,
        "POST",
        "/developer_api/v1/activities",
        {**base, "type": {"category": "user", "id": 190711}},
    )

    assert system[0] == unknown[0] == 422
    assert made[0] == 200 and made[1]["user_id"] == 137658  # the key's user by default
    assert fake.activities[made[1]["id"]]["type"] == {"id": 190711, "category": "user"}


def test_an_activity_needs_a_parent_that_exists_and_details(fake):
    kind = {"category": "user", "id": 0}
    missing = call(fake, "POST", "/developer_api/v1/activities", {"type": kind, "details": "x"})
    nobody = {"type": "person", "id": 999}
    gone = call(
        fake,
        "POST",
        "/developer_api/v1/activities",
        {"type": kind, "details": "x", "parent": nobody},
    )
    no_details = call(fake, "POST", "/developer_api/v1/activities",
                      {"type": kind, "parent": {"type": "person", "id": 1}})  # fmt: skip

    assert [missing[0], gone[0], no_details[0]] == [422, 422, 422]
    assert "Parent" in missing[1]["message"] and "Details" in no_details[1]["message"]


def test_an_activity_is_updated_in_place_with_put_and_a_missing_one_is_404(fake):
    created = call(fake, "POST", "/developer_api/v1/activities",
                   {"parent": {"type": "company", "id": 2}, "type": {"category": "user", "id": 0},
                    "details": "first"})[1]  # fmt: skip

    status, updated, _ = call(
        fake, "PUT", f"/developer_api/v1/activities/{created['id']}", {"details": "second"}
    )

    assert status == 200 and updated["details"] == "second" and len(fake.activities) == 1
    assert call(fake, "PUT", "/developer_api/v1/activities/1", {"details": "x"})[0] == 404
    assert (
        call(fake, "PATCH", f"/developer_api/v1/activities/{created['id']}", {"details": "x"})[0]
        == 404
    )


def test_tasks_take_copper_s_priority_status_and_unix_due_dates(fake):
    task = {"name": "Call back", "priority": "High", "status": "Open", "due_date": 1_700_000_000}

    assert call(fake, "POST", "/developer_api/v1/tasks", task)[0] == 200
    assert call(fake, "POST", "/developer_api/v1/tasks", {**task, "priority": "Urgent"})[0] == 422
    assert (
        call(fake, "POST", "/developer_api/v1/tasks", {**task, "due_date": "11/20/2023"})[0] == 422
    )
    assert call(fake, "POST", "/developer_api/v1/tasks", {"details": "no name"})[0] == 422


def test_a_persons_email_is_a_unique_key(fake):
    taken = fake.records["people"][2]["emails"][0]["email"]

    copy = {"name": "Copy", "emails": [{"email": taken, "category": "work"}]}
    status, body, _ = call(fake, "POST", "/developer_api/v1/people", copy)

    assert status == 422 and "Emails" in body["message"]


def test_writes_must_be_json(fake):
    status, _, _ = call(
        fake, "POST", "/developer_api/v1/people/search", raw=b"page_size=5",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )  # fmt: skip

    assert status == 400


def test_more_than_the_rolling_limit_is_a_plain_429_until_requests_age_out():
    fake = FakeCopper(people=1, requests_per_minute=3, window_seconds=0.5)
    fake.start()
    try:
        answers = [call(fake, "GET", "/developer_api/v1/activity_types") for _ in range(4)]
        time.sleep(0.55)
        after = call(fake, "GET", "/developer_api/v1/activity_types")
    finally:
        fake.stop()

    assert [a[0] for a in answers] == [200, 200, 200, 429]
    assert "Retry-After" not in answers[3][2] and answers[3][1]["status"] == 429
    assert after[0] == 200


def test_the_token_endpoint_trades_a_code_once_for_a_token_without_refresh(fake):
    code = fake.authorize("https://cb.example/callback")
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": "https://cb.example/callback",
            "client_id": "fake-client-id", "client_secret": "fake-client-secret"}  # fmt: skip
    headers = {"Content-Type": "application/x-www-form-urlencoded"}

    status, tokens, _ = call(
        fake, "POST", "/oauth/token", raw=urlencode(form).encode(), headers=headers
    )
    again = call(fake, "POST", "/oauth/token", raw=urlencode(form).encode(), headers=headers)

    assert status == 200 and set(tokens) == {"access_token", "token_type", "scope"}
    assert (tokens["token_type"], tokens["scope"]) == ("Bearer", "developer/v1/all")
    assert again[0] == 400 and again[1] == {"error": "invalid_grant"}
