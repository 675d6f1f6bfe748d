"""The fake Zendesk is at least as strict as the real API (crm-apis.md section 5)."""

import base64
import json
import urllib.error
import urllib.request

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
