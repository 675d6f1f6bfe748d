"""The fake HubSpot is at least as strict as the real API (crm-apis.md section 1)."""

import json
import urllib.request
from datetime import UTC, datetime

import pytest

from fakes.hubspot import FakeHubSpot, Fault
from fakes.hubspot_data import iso

TOKEN = "pat-na1-fake-token"


@pytest.fixture(scope="module")
def fake():
    server = FakeHubSpot(contacts=10_100, companies=3, search_per_second=1000)  # limits: below
    server.start()
    yield server
    server.stop()


def call(fake, method, path, body=None, token=TOKEN, content_type="application/json"):
    request = urllib.request.Request(  # noqa: S310 - the fake on loopback
        fake.url + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {token}", "Content-Type": content_type},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), dict(error.headers)


def search(fake, **body):
    return call(fake, "POST", "/crm/v3/objects/contacts/search", body)


def test_search_pages_are_capped_at_200(fake):
    status, body, _ = search(fake, limit=201)

    assert status == 400 and body["category"] == "VALIDATION_ERROR"
    assert search(fake, limit=200)[0] == 200


def test_search_never_pages_past_10000_results(fake):
    status, body, _ = search(fake, limit=200, after="9800")
    assert status == 200 and body["total"] == 10_100 and "paging" in body

    status, body, _ = search(fake, limit=200, after="10000")
    assert status == 400 and "10000" in body["message"]


def test_list_pages_are_capped_at_100(fake):
    assert call(fake, "GET", "/crm/v3/objects/contacts?limit=101")[0] == 400
    status, body, _ = call(fake, "GET", "/crm/v3/objects/contacts?limit=100")
    assert status == 200 and len(body["results"]) == 100 and body["paging"]["next"]["after"]


def test_filters_are_limited_like_the_real_api(fake):
    group = {"filters": [{"propertyName": "phone", "operator": "EQ", "value": "1"}]}
    assert search(fake, filterGroups=[group] * 6)[0] == 400
    assert search(fake, filterGroups=[{"filters": group["filters"] * 11}])[0] == 400
    bad_operator = {"filters": [{"propertyName": "phone", "operator": "LIKE", "value": "1"}]}
    assert search(fake, filterGroups=[bad_operator])[0] == 400
    iso_date = {
        "filters": [{"propertyName": "lastmodifieddate", "operator": "GTE", "value": "2024-01-01"}]
    }
    assert search(fake, filterGroups=[iso_date])[0] == 400  # epoch ms as strings only
    assert search(fake, unknownField=1)[0] == 400


def test_it_checks_the_bearer_token_with_hubspots_error_shape(fake):
    status, body, _ = call(fake, "GET", "/crm/v3/objects/contacts", token="wrong")

    assert status == 401
    assert body["category"] == "INVALID_AUTHENTICATION" and body["correlationId"]


def test_expired_oauth_tokens_answer_401_and_refresh_through_the_token_endpoint(fake):
    tokens = fake.issue_oauth_tokens(expires_in=-1)
    status, body, _ = call(fake, "GET", "/crm/v3/objects/contacts", token=tokens["access_token"])
    assert (status, body["category"]) == (401, "EXPIRED_AUTHENTICATION")

    form = (
        "grant_type=refresh_token&client_id=fake-client-id&client_secret=fake-client-secret"
        f"&refresh_token={tokens['refresh_token']}"
    )
    request = urllib.request.Request(  # noqa: S310 - the fake on loopback
        fake.url + "/oauth/v1/token",
        method="POST",
        data=form.encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        fresh = json.loads(response.read())
    assert fresh["token_use"] == "access_token" and fresh["expires_in"] == 1800
    assert call(fake, "GET", "/crm/v3/objects/contacts", token=fresh["access_token"])[0] == 200


def test_a_burst_over_the_limit_gets_429_with_hubspots_headers():
    fake = FakeHubSpot(contacts=1, burst_limit=2)
    fake.start()
    try:
        statuses = [call(fake, "GET", "/crm/v3/objects/contacts") for _ in range(3)]
    finally:
        fake.stop()

    _, body, headers = statuses[-1]
    assert [s for s, _, _ in statuses] == [200, 200, 429]
    assert body["policyName"] == "TEN_SECONDLY_ROLLING" and body["errorType"] == "RATE_LIMIT"
    assert (
        headers["X-HubSpot-RateLimit-Max"] == "2"
        and headers["X-HubSpot-RateLimit-Remaining"] == "0"
    )
    assert int(headers["Retry-After"]) >= 1


def test_faults_are_injected_per_test(fake):
    fake.inject(Fault("status", times=1, status=503, retry_after="2"))
    status, _, headers = search(fake, limit=1)
    assert (status, headers["Retry-After"]) == (503, "2")
    assert search(fake, limit=1)[0] == 200


def test_generated_data_is_deterministic_and_messy():
    first, second = FakeHubSpot(contacts=200), FakeHubSpot(contacts=200)
    phones = [c.properties["phone"] for c in first.objects["contacts"].values()]

    assert phones == [c.properties["phone"] for c in second.objects["contacts"].values()]
    assert None in phones and "n/a" in phones and len(set(phones)) < len(phones)
    assert any(p and p.startswith("0044") for p in phones)
    assert any(c.properties["firstname"] is None for c in first.objects["contacts"].values())


def test_a_call_with_an_unknown_direction_is_a_validation_error(fake):
    properties = {"hs_timestamp": "1709285400000", "hs_call_direction": "SIDEWAYS"}
    status, body, _ = call(fake, "POST", "/crm/v3/objects/calls", {"properties": properties})

    assert status == 400 and body["category"] == "VALIDATION_ERROR"
    assert "INVALID_OPTION" in body["message"] and "hs_call_direction" in body["message"]


def test_a_call_needs_hs_timestamp_and_known_properties(fake):
    status, body, _ = call(fake, "POST", "/crm/v3/objects/calls", {"properties": {}})
    assert status == 400 and "hs_timestamp" in body["message"]

    properties = {"hs_timestamp": "1709285400000", "hs_call_seconds": "12"}
    status, body, _ = call(fake, "POST", "/crm/v3/objects/calls", {"properties": properties})
    assert status == 400 and "PROPERTY_DOESNT_EXIST" in body["message"]


def test_a_call_association_must_use_a_default_type_of_calls(fake):
    link = {"to": {"id": "1"}, "types": [{"associationCategory": "HUBSPOT_DEFINED"}]}
    link["types"][0]["associationTypeId"] = 204  # task -> contact, not call -> contact
    body = {"properties": {"hs_timestamp": "1709285400000"}, "associations": [link]}

    status, answer, _ = call(fake, "POST", "/crm/v3/objects/calls", body)
    assert status == 400 and answer["category"] == "VALIDATION_ERROR"

    link["types"][0]["associationTypeId"] = 194
    status, answer, _ = call(fake, "POST", "/crm/v3/objects/calls", body)
    assert status == 201 and answer["properties"]["hs_object_id"] == answer["id"]
    assert fake.written["calls"][answer["id"]]["associations"][0]["typeId"] == 194


def test_owners_pages_are_capped_at_500_and_writes_need_a_token(fake):
    assert call(fake, "GET", "/crm/v3/owners?limit=501")[0] == 400
    assert call(fake, "GET", "/crm/v3/owners?limit=500")[0] == 200
    status, body, _ = call(fake, "POST", "/crm/v3/objects/tasks", {"properties": {}}, token="x")
    assert status == 401 and body["category"] == "INVALID_AUTHENTICATION"


@pytest.mark.parametrize("ms", [0, 1_700_000_000_000, 1_700_000_000_007, 1_767_225_599_999])
def test_times_are_written_as_hubspot_writes_them(ms):
    expected = datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"

    assert iso(ms) == expected


def test_what_was_written_can_be_read_back_by_id_by_list_and_from_the_contact(fake):
    logged = {
        "properties": {"hs_timestamp": "1783072800000", "hs_call_body": "Wants a quote."},
        "associations": [
            {"to": {"id": "7"}, "types": [
                {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 194}]}
        ],
    }  # fmt: skip
    _, created, _ = call(fake, "POST", "/crm/v3/objects/calls", logged)
    call_id = created["id"]

    one = call(fake, "GET", f"/crm/v3/objects/calls/{call_id}?properties=hs_call_body")[1]
    listed = call(
        fake, "GET", "/crm/v3/objects/calls?properties=hs_call_body&associations=contacts"
    )
    linked = call(fake, "GET", "/crm/v4/objects/contacts/7/associations/calls")[1]

    assert one["properties"]["hs_call_body"] == "Wants a quote."
    assert "hs_timestamp" not in one["properties"]  # only what was asked for, as HubSpot does
    (mine,) = [c for c in listed[1]["results"] if c["id"] == call_id]
    assert mine["associations"]["contacts"]["results"] == [{"id": "7", "type": "call_to_contact"}]
    contact_to_call = {"category": "HUBSPOT_DEFINED", "typeId": 193, "label": None}
    assert {"toObjectId": int(call_id), "associationTypes": [contact_to_call]} in linked["results"]
    assert call(fake, "GET", "/crm/v3/objects/calls/1")[0] == 404
    assert call(fake, "GET", "/crm/v3/objects/calls", token="wrong")[0] == 401


def test_the_account_details_name_the_portal_id(fake):
    status, body, _ = call(fake, "GET", "/account-info/v3/details")

    assert status == 200 and body["portalId"] == fake.hub_id and body["uiDomain"]


def test_search_has_its_own_limit_of_5_a_second_outside_the_burst_bucket():
    fake = FakeHubSpot(contacts=1, burst_limit=2)
    fake.start()
    try:
        searches = [search(fake, limit=1)[0] for _ in range(6)]
        status, body, headers = search(fake, limit=1)
        listed = call(fake, "GET", "/crm/v3/objects/contacts")[0]
    finally:
        fake.stop()

    assert searches[:5] == [200] * 5 and 429 in [*searches[5:], status]
    assert body["errorType"] == "RATE_LIMIT" and int(headers["Retry-After"]) >= 1
    assert listed == 200 and fake.rate_limited >= 1  # searches spent none of the burst's 2
