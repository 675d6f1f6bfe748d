"""The fake Pipedrive is at least as strict as the real API (crm-apis.md section 3)."""

import json
import urllib.error
import urllib.request
from urllib.parse import urlencode

import pytest

from fakes.pipedrive import READ_ONLY_PERSON_ID, FakePipedrive

TOKEN = "pd-fake-api-token"


@pytest.fixture(scope="module")
def fake():
    server = FakePipedrive(persons=30, organizations=3, burst_limit=1000)
    server.start()
    yield server
    server.stop()


def call(fake, method, path, body=None, headers=None):
    request = urllib.request.Request(  # noqa: S310 - the fake on loopback
        fake.url + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"x-api-token": TOKEN, "Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), dict(error.headers)


def test_a_missing_or_wrong_token_is_401_unauthorized_access(fake):
    for headers in ({"x-api-token": "wrong"}, {"x-api-token": "", "Authorization": "Bearer x"}):
        status, body, _ = call(fake, "GET", "/api/v2/persons", headers=headers)

        assert status == 401
        assert body["success"] is False and body["error"] == "unauthorized access"


def test_the_classic_api_token_query_parameter_works_too(fake):
    status, body, _ = call(
        fake, "GET", f"/v1/users/find?term=priya&api_token={TOKEN}", headers={"x-api-token": ""}
    )

    assert status == 200 and body["data"][0]["id"] == 11


def test_list_pages_are_capped_at_500_and_unknown_parameters_refused(fake):
    status, body, _ = call(fake, "GET", "/api/v2/persons?limit=501")
    assert status == 400 and body["success"] is False and "500" in body["error"]

    status, body, _ = call(fake, "GET", "/api/v2/persons?start=0")
    assert status == 400 and body["code"] == "ERR_SCHEMA_VALIDATION_FAILED"


def test_every_answer_carries_the_rate_limit_headers_in_the_envelope(fake):
    status, body, headers = call(fake, "GET", "/api/v2/persons?limit=10&sort_by=id")

    assert status == 200 and body["success"] is True and len(body["data"]) == 10
    assert body["additional_data"]["next_cursor"]
    assert {"x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"} <= {
        h.lower() for h in headers
    }


def test_a_cursor_only_works_with_the_sort_it_was_issued_for(fake):
    _, body, _ = call(fake, "GET", "/api/v2/persons?limit=5&sort_by=id")
    cursor = body["additional_data"]["next_cursor"]

    status, body, _ = call(
        fake, "GET", f"/api/v2/persons?limit=5&sort_by=update_time&cursor={cursor}"
    )

    assert status == 400 and "cursor" in body["error"]


def test_updated_since_must_be_rfc3339(fake):
    status, body, _ = call(fake, "GET", "/api/v2/persons?updated_since=2024-01-01")

    assert status == 400 and "updated_since" in body["error"]


def test_search_is_capped_at_100_and_needs_a_term(fake):
    assert call(fake, "GET", "/api/v2/persons/search?term=12&limit=101")[0] == 400
    assert call(fake, "GET", "/api/v2/persons/search?term=1&fields=phone")[0] == 400


def test_a_v2_activity_refuses_person_id_with_pipedrives_message(fake):
    status, body, _ = call(fake, "POST", "/api/v2/activities", {"type": "call", "person_id": 1})

    assert status == 400
    assert body == {"success": False, "error": READ_ONLY_PERSON_ID, "code": "ERR_BAD_REQUEST"}


def test_a_call_log_needs_its_required_fields_and_a_known_outcome(fake):
    good = {
        "outcome": "connected",
        "to_phone_number": "+442079460018",
        "start_time": "2024-03-05 17:02:11",
        "end_time": "2024-03-05 17:03:00",
    }
    for broken in (
        {k: v for k, v in good.items() if k != "end_time"},
        {**good, "outcome": "answered"},
        {**good, "start_time": "2024-03-05T17:02:11Z"},
        {**good, "duration": 49},  # seconds as a string
        {**good, "deal_id": 1, "lead_id": "a"},
    ):
        status, body, _ = call(fake, "POST", "/v1/callLogs", broken)
        assert status == 400 and body["success"] is False and body["error"]

    status, body, _ = call(fake, "POST", "/api/v1/callLogs", {**good, "duration": "49"})
    assert status == 200 and isinstance(body["data"]["id"], str)
    assert "activity_id" not in body["data"]  # optional in the spec: the fake never sends it
    assert fake.activities[fake.call_log_activities[body["data"]["id"]]]["type"] == "call"


def test_only_an_admin_logs_calls_for_another_user():
    fake = FakePipedrive(persons=1, admin=False)
    fake.start()
    try:
        good = {
            "outcome": "connected",
            "to_phone_number": "+442079460018",
            "start_time": "2024-03-05 17:02:11",
            "end_time": "2024-03-05 17:03:00",
        }
        mine = call(fake, "POST", "/api/v1/callLogs", {**good, "user_id": fake.token_user_id})
        other = call(fake, "POST", "/api/v1/callLogs", {**good, "user_id": 12})
    finally:
        fake.stop()

    assert mine[0] == 200 and mine[1]["data"]["user_id"] == fake.token_user_id
    assert other[0] == 403 and other[1]["success"] is False


def test_call_logs_cannot_be_updated(fake):
    status, _, _ = call(fake, "PUT", "/v1/callLogs/abc", {"note": "x"})

    assert status == 404


def test_exact_match_finds_the_stored_text_not_the_same_digits(fake):
    person = next(iter(fake.records["persons"].values()))
    stored = {"value": "+44 20 7946 0018", "primary": True, "label": "work"}
    person.fields["phones"] = [*person.fields["phones"], stored]

    def found(term: str) -> list[int]:
        query = urlencode({"term": term, "fields": "phone", "exact_match": "true"})
        status, body, _ = call(fake, "GET", f"/api/v2/persons/search?{query}")
        assert status == 200, body
        return [result["item"]["id"] for result in body["data"]["items"]]

    assert found("+442079460018") == [] and found("2079460018") == []
    assert found("+44 20 7946 0018") == [person.id]


def test_requests_spend_the_company_s_daily_token_budget_then_get_429():
    server = FakePipedrive(persons=3, daily_tokens=25)
    server.start()
    try:
        listed = [call(server, "GET", "/api/v2/persons")[0] for _ in range(3)]  # 10 tokens each
        status, _, headers = call(server, "GET", "/api/v2/persons")
    finally:
        server.stop()

    assert listed == [200, 200, 429] and status == 429
    assert headers["x-daily-requests-left"] == "0" and server.tokens_spent >= 30


def test_search_has_its_own_burst_of_10_a_2_seconds():
    server = FakePipedrive(persons=3, burst_limit=1000)
    server.start()
    try:
        path = "/api/v2/persons/search?term=123&fields=phone"
        statuses = [call(server, "GET", path)[0] for _ in range(11)]
    finally:
        server.stop()

    assert statuses[:10] == [200] * 10 and statuses[10] == 429
