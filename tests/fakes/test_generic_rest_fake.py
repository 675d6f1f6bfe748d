"""The fake REST CRM is strict: unknown parameters, caps, cursors, credentials, bursts."""

import base64
import json
import urllib.request

import pytest

from fakes.generic_rest import FakeRestCrm


@pytest.fixture
def make_fake():
    started = []

    def make(**options) -> FakeRestCrm:
        fake = FakeRestCrm(contacts=30, **options)
        fake.start()
        started.append(fake)
        return fake

    yield make
    for fake in started:
        fake.stop()


def get(fake, path, headers=None):
    request = urllib.request.Request(fake.url + path, headers=headers or {})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), dict(error.headers)


BEARER = {"Authorization": "Bearer rest-token"}


def test_it_refuses_unknown_parameters_big_pages_and_foreign_cursors(make_fake):
    fake = make_fake(paging="cursor")

    assert get(fake, "/api/v1/contacts?page=2", BEARER)[0] == 400
    assert (
        get(fake, "/api/v1/contacts?limit=101", BEARER)[1]["error"]["code"] == "invalid_parameter"
    )
    assert get(fake, "/api/v1/contacts?cursor=abc", BEARER)[1]["error"]["code"] == "invalid_cursor"
    assert get(fake, "/api/v1/contacts?updated_since=2024-01-01", BEARER)[0] == 400
    status, body, _ = get(fake, "/api/v1/contacts?limit=100", BEARER)
    assert (
        status == 200 and len(body["data"]["items"]) == 30 and body["meta"]["next_cursor"] is None
    )


def test_it_answers_missing_or_wrong_credentials_with_401_and_www_authenticate(make_fake):
    basic = make_fake(auth="basic")
    wrong = {"Authorization": "Basic " + base64.b64encode(b"crm-user:nope").decode()}

    status, body, headers = get(basic, "/api/v1/contacts", wrong)

    assert status == 401 and body["error"]["code"] == "unauthorized"
    assert headers["WWW-Authenticate"] == "Basic"
    oauth = make_fake(auth="oauth2_client_credentials")
    status, body, headers = get(oauth, "/api/v1/contacts", BEARER)
    assert status == 401 and body["error"] == "invalid_token"


def test_a_burst_above_the_limit_gets_429_with_retry_after(make_fake):
    fake = make_fake(burst_limit=2)

    answers = [get(fake, "/api/v1/contacts", BEARER) for _ in range(3)]

    status, _, headers = answers[-1]
    assert status == 429 and headers["Retry-After"] == "1"
    assert headers["X-RateLimit-Remaining"] == "0"
