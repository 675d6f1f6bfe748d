"""The fake Zendesk is at least as strict as the real API (crm-apis.md section 5)."""

import base64
import json
import urllib.error
import urllib.request
from urllib.parse import urlencode

import pytest

from fakes.zendesk import FakeZendesk, Fault

BASIC = "Basic " + base64.b64encode(b"admin@acme.example/token:zd-fake-api-token").decode()


@pytest.fixture(scope="module")
def fake():
    server = FakeZendesk()
    server.start()
    yield server
    server.stop()


def call(fake, method, path, body=None, authorization=BASIC):
    request = urllib.request.Request(  # noqa: S310 - the fake on loopback
        fake.url + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": authorization, "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read(), dict(error.headers)


def ticket(**fields):
    return {"ticket": {"subject": "Help", "comment": {"body": "Details"}, **fields}}


@pytest.mark.parametrize(
    "authorization",
    [
        "",
        "Basic " + base64.b64encode(b"admin@acme.example:zd-fake-api-token").decode(),  # no /token
        "Basic " + base64.b64encode(b"admin@acme.example/token:wrong").decode(),
        "Bearer nope",
    ],
)
def test_bad_credentials_get_zendesks_401(fake, authorization):
    status, body, _ = call(fake, "GET", "/api/v2/tickets.json", authorization=authorization)

    assert (status, json.loads(body)) == (401, {"error": "Couldn't authenticate you"})


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"subject": ""}, "Subject: cannot be blank"),
        ({"comment": {"body": " "}}, "Description: cannot be blank"),
        ({"priority": "critical"}, "Priority: is not valid"),
        ({"group_id": 1}, "Group: is invalid"),
        ({"requester_id": 1}, "Requester: is invalid"),
        ({"colour": "red"}, "colour: is not a field"),
    ],
)
def test_invalid_tickets_get_a_422_record_invalid(fake, fields, reason):
    status, body, _ = call(fake, "POST", "/api/v2/tickets.json", ticket(**fields))

    error = json.loads(body)
    assert status == 422 and error["error"] == "RecordInvalid"
    assert [d["description"] for d in next(iter(error["details"].values()))] == [reason]


def test_a_ticket_is_created_201_with_its_location_and_listed_by_external_id(fake):
    status, body, headers = call(
        fake, "POST", "/api/v2/tickets.json", ticket(external_id="c-1", priority="urgent")
    )
    created = json.loads(body)["ticket"]

    _, listed, _ = call(fake, "GET", "/api/v2/tickets.json?external_id=c-1")

    assert status == 201 and headers["Location"] == created["url"]
    assert created["priority"] == "urgent" and created["status"] == "new"
    assert [t["id"] for t in json.loads(listed)["tickets"]] == [created["id"]]
    assert headers["x-rate-limit"] == "700"


def test_the_users_search_matches_digits_with_a_leading_wildcard_only(fake):
    fake.add_user("Ada", phone="(513) 555-7611")

    def found(query):
        _, body, _ = call(fake, "GET", f"/api/v2/users/search.json?query={query}")
        return [u["name"] for u in json.loads(body)["users"]]

    assert found("phone:*5135557611") == found("phone:5135557611") == ["Ada"]
    assert found("phone:15135557611") == [] and found("phone:%2B15135557611") == []
    status, _, _ = call(fake, "GET", "/api/v2/users/search.json?query=Ada&page=abc")
    assert status == 400


def test_an_injected_429_is_plain_text_with_retry_after(fake):
    fake.inject(Fault(429, path_contains="/tickets", retry_after="7"))

    status, body, headers = call(fake, "GET", "/api/v2/tickets.json")

    assert (status, body, headers["Retry-After"]) == (429, b"Rate limit exceeded", "7")
    assert headers["Content-Type"] == "text/plain"


@pytest.fixture
def fresh():
    server = FakeZendesk()
    server.start()
    yield server
    server.stop()


def answer(fake, method, path, body=None):
    status, raw, headers = call(fake, method, path, body)
    return status, json.loads(raw) if raw.startswith(b"{") else raw.decode(), headers


def test_the_export_wants_a_start_time_a_minute_old_or_its_cursor(fresh):
    recent = int(fresh.now()) - 30

    missing = answer(fresh, "GET", "/api/v2/incremental/users/cursor.json")
    too_recent = answer(fresh, "GET", f"/api/v2/incremental/users/cursor.json?start_time={recent}")
    bad_cursor = answer(fresh, "GET", "/api/v2/incremental/users/cursor.json?cursor=nope")

    assert [a[0] for a in (missing, too_recent, bad_cursor)] == [400, 400, 400]
    assert "one minute in the past" in too_recent[1]["description"]


def test_the_export_withholds_the_last_minute_and_says_when_its_stream_ends(fresh):
    fresh.export_page_size = 1
    path = "/api/v2/incremental/users/cursor.json"
    fresh.advance(61)  # the admin is old enough now
    ada = fresh.add_user("Ada Lovelace", phone="07400 123456")

    _, first, _ = answer(fresh, "GET", f"{path}?start_time=0")
    _, caught_up, _ = answer(fresh, "GET", f"{path}?cursor={first['after_cursor']}")
    fresh.advance(61)
    _, then, _ = answer(fresh, "GET", f"{path}?cursor={caught_up['after_cursor']}")

    assert ([u["id"] for u in first["users"]], first["end_of_stream"]) == ([fresh.admin_id], True)
    assert (caught_up["users"], caught_up["after_cursor"]) == ([], first["after_cursor"])
    assert ([u["id"] for u in then["users"]], then["end_of_stream"]) == ([ada["id"]], True)


def test_the_export_allows_ten_requests_a_minute_then_429_with_retry_after(fresh):
    fresh.advance(61)
    path = "/api/v2/incremental/users/cursor.json?start_time=0"

    statuses = [answer(fresh, "GET", path)[0] for _ in range(11)]
    status, _, headers = answer(fresh, "GET", path)

    assert statuses == [200] * 10 + [429] and status == 429
    assert 1 <= int(headers["Retry-After"]) <= 60 and headers["Content-Type"] == "text/plain"


def test_users_are_listed_by_role_with_cursor_paging_of_at_most_100(fresh):
    for i in range(3):
        fresh.add_user(f"Agent {i}", role="agent", email=f"agent{i}@acme.example")
    path = "/api/v2/users.json?role[]=agent&role[]=admin&page[size]=2"

    too_big = answer(fresh, "GET", "/api/v2/users.json?page[size]=101")[0]
    _, first, _ = answer(fresh, "GET", path)
    _, second, _ = answer(fresh, "GET", f"{path}&page[after]={first['meta']['after_cursor']}")

    assert too_big == 400
    assert (len(first["users"]), first["meta"]["has_more"]) == (2, True)
    assert (len(second["users"]), second["meta"]["has_more"]) == (2, False)
    assert second["links"]["next"] is None


def test_a_comment_is_appended_never_edited_and_a_closed_ticket_refuses_it(fresh):
    _, created, _ = answer(fresh, "POST", "/api/v2/tickets.json", ticket())
    ticket_id = created["ticket"]["id"]
    path = f"/api/v2/tickets/{ticket_id}.json"

    status, updated, _ = answer(
        fresh, "PUT", path, {"ticket": {"comment": {"body": "Call", "public": False}}}
    )
    blank = answer(fresh, "PUT", path, {"ticket": {"comment": {"body": " "}}})[0]
    fresh.tickets[ticket_id]["status"] = "closed"
    closed = answer(fresh, "PUT", path, {"ticket": {"comment": {"body": "Late"}}})

    assert status == 200 and updated["audit"]["events"][0]["body"] == "Call"
    assert [c["body"] for c in fresh.comments[ticket_id]] == ["Details", "Call"]
    assert fresh.comments[ticket_id][1]["public"] is False
    assert (blank, closed[0]) == (422, 422)
    assert "closed prevents ticket update" in str(closed[1])


# ----- OAuth
REDIRECT = "https://callbridge.example.com/api/v1/connections/oauth/callback"
CLIENT = {"client_id": "fake-client-id", "client_secret": "fake-client-secret"}


def grant(fake, form, *, as_json=False):
    if as_json:
        data, content_type = json.dumps(form).encode(), "application/json"
    else:
        data, content_type = urlencode(form).encode(), "application/x-www-form-urlencoded"
    request = urllib.request.Request(  # noqa: S310 - the fake on loopback
        fake.url + "/oauth/tokens", method="POST", data=data,
        headers={"Content-Type": content_type},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def code_grant(code, **fields):
    return {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
            "scope": "read write", **CLIENT, **fields}  # fmt: skip


@pytest.mark.parametrize("as_json", [False, True])
def test_a_code_is_traded_once_for_a_bearer_token_the_api_takes(fake, as_json):
    code = fake.authorize(REDIRECT)

    status, answer = grant(fake, code_grant(code), as_json=as_json)
    again, refused = grant(fake, code_grant(code), as_json=as_json)

    assert status == 200 and answer["token_type"] == "bearer" and "expires_in" not in answer
    assert answer["scope"] == "read write" and "refresh_token" not in answer
    bearer = "Bearer " + answer["access_token"]
    assert call(fake, "GET", "/api/v2/users.json", authorization=bearer)[0] == 200
    assert again == 400 and refused["error"] == "invalid_grant" and refused["error_description"]


def test_the_token_endpoint_checks_the_client_the_grant_type_and_the_redirect(fake):
    code = fake.authorize(REDIRECT)

    wrong_secret = grant(fake, code_grant(code, client_secret="nope"))
    wrong_type = grant(fake, code_grant(code, grant_type="password"))
    wrong_redirect = grant(fake, code_grant(code, redirect_uri="https://elsewhere.example/cb"))
    unknown = grant(fake, code_grant("code-made-up"))

    assert wrong_secret[0] == 401 and wrong_secret[1]["error"] == "invalid_client"
    assert wrong_type[0] == 400 and wrong_type[1]["error"] == "unsupported_grant_type"
    assert wrong_redirect[0] == 400 and wrong_redirect[1]["error"] == "invalid_grant"
    assert unknown[0] == 400 and unknown[1]["error"] == "invalid_grant"
    assert call(fake, "GET", "/api/v2/users.json", authorization="Bearer made-up")[0] == 401


def test_the_consent_page_is_the_browsers(fake):
    query = urlencode({"response_type": "code", "client_id": "fake-client-id",
                       "redirect_uri": REDIRECT, "scope": "read write", "state": "s"})  # fmt: skip
    with urllib.request.urlopen(fake.url + "/oauth/authorizations/new?" + query) as page:  # noqa: S310
        assert page.status == 200
    bad = call(fake, "GET", "/oauth/authorizations/new?response_type=code&client_id=x")

    assert bad[0] == 400
