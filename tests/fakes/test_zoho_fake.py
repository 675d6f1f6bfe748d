"""The fake Zoho CRM is at least as strict as the real API (crm-apis.md section 4)."""

import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from fakes.zoho import FakeZoho

FIXTURES = Path(__file__).parents[1] / "connectors" / "fixtures" / "zoho"


@pytest.fixture(scope="module")
def fake():
    server = FakeZoho(contacts=2_300, accounts=3, requests_per_minute=10_000)
    server.start()
    server.token = server.issue_tokens()["access_token"]
    yield server
    server.stop()


def call(fake, method, path, body=None, auth=None, headers=None):
    request = urllib.request.Request(  # noqa: S310 - the fake on loopback
        fake.url + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={
            "Authorization": auth or f"Zoho-oauthtoken {fake.token}",
            "Content-Type": "application/json",
            **(headers or {}),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as error:
        raw = error.read()
        return error.code, json.loads(raw) if raw else None


def contacts(fake, query="fields=Last_Name,Phone", **options):
    return call(fake, "GET", f"/crm/v8/Contacts?{query}", **options)


def test_a_listing_without_fields_is_refused_as_zoho_does(fake):
    status, body = contacts(fake, query="per_page=10")

    assert status == 400
    assert body == {
        "code": "REQUIRED_PARAM_MISSING",
        "details": {"param_name": "fields"},
        "message": "required param is missing",
        "status": "error",
    }


def test_pages_are_capped_at_200_and_50_fields(fake):
    assert contacts(fake, query="fields=Last_Name&per_page=201")[0] == 400
    many = ",".join(["Last_Name"] * 51)
    status, body = contacts(fake, query=f"fields={many}")
    assert status == 400 and body["code"] == "LIMIT_EXCEEDED"
    status, body = contacts(fake, query="fields=Last_Name&per_page=200")
    assert status == 200 and len(body["data"]) == 200


def test_discrete_pages_stop_at_2000_records_and_tokens_go_on(fake):
    status, body = contacts(fake, query="fields=Last_Name&per_page=200&page=11")
    assert status == 400 and body["code"] == "DISCRETE_PAGINATION_LIMIT_EXCEEDED"

    status, body = contacts(fake, query="fields=Last_Name&per_page=200&page=10")
    token = body["info"]["next_page_token"]
    status, body = contacts(fake, query=f"fields=Last_Name&per_page=200&page_token={token}")
    assert status == 200 and len(body["data"]) == 200 and body["info"]["more_records"]


def test_a_page_token_is_bound_to_its_query(fake):
    body = contacts(fake, query="fields=Last_Name&per_page=5")[1]
    token = body["info"]["next_page_token"]

    status, body = contacts(fake, query=f"fields=Phone&per_page=5&page_token={token}")

    assert status == 400 and body["code"] == "TOKEN_BOUND_DATA_MISMATCH"


def test_the_info_block_has_the_shape_zoho_answers(fake):
    captured = json.loads((FIXTURES / "get_records_contacts.json").read_text())

    body = contacts(fake, query="fields=Last_Name,Owner,Modified_Time&per_page=2")[1]

    assert set(body["info"]) == set(captured["info"])
    assert set(body["data"][0]) == {"id", "Last_Name", "Owner", "Modified_Time"}
    assert set(body["data"][0]["Owner"]) == set(captured["data"][0]["Owner"])
    assert body["data"][0]["Modified_Time"].endswith("+05:30")


def test_if_modified_since_answers_only_later_changes_and_304_when_none(fake):
    latest = max(r.modified_s for r in fake.records["Contacts"].values())
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(latest - 1))

    status, body = contacts(fake, headers={"If-Modified-Since": stamp})
    assert status == 200 and 1 <= len(body["data"]) <= 3

    stamp = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(latest))
    assert contacts(fake, headers={"If-Modified-Since": stamp}) == (304, None)
    assert contacts(fake, headers={"If-Modified-Since": "yesterday"})[0] == 400


def test_only_zoho_oauthtoken_is_accepted(fake):
    status, body = contacts(fake, auth=f"Bearer {fake.token}")
    assert status == 401 and body["code"] == "AUTHENTICATION_FAILURE"

    status, body = contacts(fake, auth="Zoho-oauthtoken 1000.unknown")
    assert status == 401
    assert body == {
        "code": "INVALID_TOKEN",
        "details": {},
        "message": "invalid oauth token",
        "status": "error",
    }


def test_a_create_answers_like_zoho_and_a_bad_record_fails_inside_data(fake):
    captured = json.loads((FIXTURES / "create_records_calls_success.json").read_text())
    good = {
        "Subject": "Call",
        "Call_Type": "Inbound",
        "Call_Start_Time": "2024-03-05T17:02:11+00:00",
        "Call_Duration": "02:05",
    }

    status, body = call(fake, "POST", "/crm/v8/Calls", {"data": [good]})
    assert status == 201
    assert set(body["data"][0]) == set(captured["data"][0])
    assert set(body["data"][0]["details"]) <= set(captured["data"][0]["details"])

    bad = {**good, "Call_Start_Time": "2024-03-05T17:02:11.000Z"}
    status, body = call(fake, "POST", "/crm/v8/Calls", {"data": [bad]})
    assert status == 400
    assert body["data"][0]["code"] == "INVALID_DATA"
    assert body["data"][0]["details"]["api_name"] == "Call_Start_Time"

    status, body = call(fake, "POST", "/crm/v8/Calls", {"data": [{"Subject": "x"}]})
    assert body["data"][0]["code"] == "MANDATORY_NOT_FOUND"


def test_a_rate_limit_is_a_429_with_retry_after_in_the_body():
    server = FakeZoho(requests_per_minute=2)
    server.start()
    server.token = server.issue_tokens()["access_token"]
    try:
        statuses = [contacts(server)[0] for _ in range(3)]
        status, body = contacts(server)
    finally:
        server.stop()

    assert statuses[:2] == [204, 204] and status == 429
    assert body["code"] == "TOO_MANY_REQUESTS" and body["details"]["retry_after"] >= 1


def test_each_call_spends_a_credit_of_the_day_and_none_are_left_after_the_last():
    server = FakeZoho(daily_credits=2)
    server.start()
    server.token = server.issue_tokens()["access_token"]
    try:
        statuses = [contacts(server)[0] for _ in range(3)]
    finally:
        server.stop()

    assert statuses == [204, 204, 429] and server.credits_spent == 3


def test_a_refused_refresh_token_is_a_200_with_an_error_as_zohos_accounts_server_answers(fake):
    request = urllib.request.Request(  # noqa: S310 - the fake on loopback
        fake.url
        + "/oauth/v2/token?grant_type=refresh_token&client_id=1000.FAKECLIENTID"
        + "&client_secret=fake-client-secret&refresh_token=1000.revoked",
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        assert response.status == 200
        assert json.loads(response.read()) == {"error": "invalid_code"}


def test_each_endpoint_needs_its_scope_as_zoho_checks_them(fake):
    mismatch = {
        "code": "OAUTH_SCOPE_MISMATCH",
        "details": {},
        "message": "invalid oauth scope to access this URL",
        "status": "error",
    }
    create_only = fake.issue_tokens(scope="ZohoCRM.modules.tasks.CREATE")["access_token"]
    no_search = fake.issue_tokens(scope="ZohoCRM.modules.tasks.READ")["access_token"]
    read = fake.issue_tokens(scope="zohocrm.modules.tasks.read,ZohoSearch.securesearch.READ")
    search = "/crm/v8/Tasks/search?word=call-1"

    assert call(fake, "GET", search, auth=f"Zoho-oauthtoken {create_only}") == (401, mismatch)
    assert call(fake, "GET", search, auth=f"Zoho-oauthtoken {no_search}") == (401, mismatch)
    assert call(fake, "GET", search, auth=f"Zoho-oauthtoken {read['access_token']}")[0] == 204
    status, _ = call(fake, "GET", "/crm/v8/users", auth=f"Zoho-oauthtoken {create_only}")
    assert status == 401
