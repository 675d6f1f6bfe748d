"""The fake Keap is at least as strict as the real API (crm-apis-more.md section 7, [KP1])."""

import base64
import json
import time
import urllib.error
import urllib.request
from urllib.parse import urlencode

import pytest

from fakes.keap import API, FakeKeap

KEY = "KeapAK-fake-personal-access-token"


@pytest.fixture
def fake():
    server = FakeKeap(contacts=30, companies=3)
    server.start()
    yield server
    server.stop()


def call(fake, method, path, params=None, body=None, headers=None):
    query = f"?{urlencode(params)}" if params else ""
    request = urllib.request.Request(  # noqa: S310 - the fake on loopback
        fake.url + API + path + query,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={
            k: v
            for k, v in {
                "X-Keap-API-Key": KEY,
                "Content-Type": "application/json",
                **(headers or {}),
            }.items()
            if v is not None
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), dict(error.headers)


def token(fake, form, client=("fake-client-id", "fake-client-secret")):
    pair = base64.b64encode(":".join(client).encode()).decode()
    request = urllib.request.Request(  # noqa: S310
        fake.url + "/token",
        method="POST",
        data=urlencode(form).encode(),
        headers={
            "Authorization": f"Basic {pair}",
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


# ----- auth
@pytest.mark.parametrize(
    "headers",
    [{"X-Keap-API-Key": "wrong"}, {"X-Keap-API-Key": None},
     {"X-Keap-API-Key": None, "Authorization": "Bearer nope"}],
)  # fmt: skip
def test_a_wrong_or_missing_key_is_the_gateways_401_fault(fake, headers):
    status, body, _ = call(fake, "GET", "/v2/users", headers=headers)

    assert status == 401 and set(body["fault"]) == {"faultstring", "detail"}


def test_a_key_passes_as_x_keap_api_key_or_bearer(fake):
    assert call(fake, "GET", "/v2/users")[0] == 200
    bearer = {"X-Keap-API-Key": None, "Authorization": f"Bearer {KEY}"}
    assert call(fake, "GET", "/v2/users", headers=bearer)[0] == 200


def test_an_oauth_access_token_expires(fake):
    bearer = {
        "X-Keap-API-Key": None,
        "Authorization": f"Bearer {fake.issue_tokens()['access_token']}",
    }
    assert call(fake, "GET", "/v2/users", headers=bearer)[0] == 200

    fake.expire_tokens()
    status, body, _ = call(fake, "GET", "/v2/users", headers=bearer)

    assert status == 401 and "expired" in body["fault"]["faultstring"]


def test_a_code_is_traded_once_for_its_redirect_uri(fake):
    code = fake.authorize("https://cb.example.com/callback")
    form = {"grant_type": "authorization_code", "code": code,
            "redirect_uri": "https://cb.example.com/callback"}  # fmt: skip

    status, tokens = token(fake, form)
    assert status == 200 and tokens["refresh_token"] and tokens["expires_in"] == 86_399
    assert token(fake, form) == (
        400,
        {"error": "invalid_grant", "error_description": "Invalid code"},
    )
    other = fake.authorize("https://cb.example.com/callback")
    assert token(fake, {**form, "code": other, "redirect_uri": "https://x.example"})[0] == 400


def test_each_refresh_rotates_the_refresh_token_and_the_old_one_is_refused(fake):
    first = fake.issue_tokens()["refresh_token"]

    status, tokens = token(fake, {"grant_type": "refresh_token", "refresh_token": first})
    assert status == 200 and tokens["refresh_token"] != first

    again = token(fake, {"grant_type": "refresh_token", "refresh_token": first})
    assert again[0] == 400 and again[1]["error"] == "invalid_grant"
    renewed = token(fake, {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert renewed[0] == 200


def test_a_wrong_client_is_refused_at_the_token_endpoint(fake):
    refresh = fake.issue_tokens()["refresh_token"]
    form = {"grant_type": "refresh_token", "refresh_token": refresh}

    assert token(fake, form, client=("fake-client-id", "wrong")) == (
        401,
        {"error": "invalid_client"},
    )


# ----- listings
@pytest.mark.parametrize(
    "params",
    [
        {"filter": "update_time==2024-01-01T00:00:00.000Z"},  # not a filter field
        {"filter": "start_update_time==2024-01-01T00:00:00Z"},  # no milliseconds
        {"filter": "start_update_time==2024-01-01T00:00:00.000"},  # no offset
        {"filter": "given_name>A"},  # == only
        {"filter": "phone_number==+442079460018"},  # phone_fields is required
        {"filter": "phone_number==1;phone_fields==PHONE9"},
        {"order_by": "name asc"},
        {"page_size": "1001"},
        {"fields": "phone_numbers,mood"},
        {"limit": "10"},
        {"page_token": "made-up"},
    ],
)
def test_contact_listings_refuse_what_keap_does_not_document(fake, params):
    status, body, _ = call(fake, "GET", "/v2/contacts", params)

    assert status == 400 and set(body) == {"code", "message", "status", "details"}


def test_companies_cannot_be_ordered_by_update_time(fake):
    status, _, _ = call(fake, "GET", "/v2/companies", {"order_by": "update_time asc"})

    assert status == 400


def test_a_listing_answers_only_the_fields_asked_for(fake):
    _, plain, _ = call(fake, "GET", "/v2/contacts", {"page_size": 2})
    _, chosen, _ = call(fake, "GET", "/v2/contacts", {"page_size": 2, "fields": "phone_numbers"})

    assert "phone_numbers" not in plain["contacts"][0]
    assert set(chosen["contacts"][0]) == {"id", "phone_numbers"}


def test_page_tokens_page_on_through_one_query_only(fake):
    params = {"order_by": "update_time asc", "page_size": 20}
    _, first, _ = call(fake, "GET", "/v2/contacts", params)
    _, second, _ = call(
        fake, "GET", "/v2/contacts", {**params, "page_token": first["next_page_token"]}
    )
    mixed = {"page_size": 10, "page_token": first["next_page_token"]}

    ids = [c["id"] for c in first["contacts"] + second["contacts"]]
    assert sorted(ids, key=int) == [str(i) for i in range(1, 31)]
    assert second["next_page_token"] == ""
    assert call(fake, "GET", "/v2/contacts", mixed)[0] == 400


def test_start_update_time_is_inclusive_and_ids_break_ties(fake):
    times = sorted({c["update_time"] for c in fake.records["contacts"].values()})
    params = {"filter": f"start_update_time=={times[-2]}", "order_by": "update_time asc",
              "page_size": 100, "fields": "update_time"}  # fmt: skip

    _, body, _ = call(fake, "GET", "/v2/contacts", params)

    assert {c["update_time"] for c in body["contacts"]} == set(times[-2:])
    same = [c["id"] for c in body["contacts"] if c["update_time"] == times[-2]]
    assert same == sorted(same, key=int)


def test_the_phone_filter_matches_the_number_as_typed_in_the_named_fields(fake):
    contact = next(c for c in fake.records["contacts"].values() if c["phone_numbers"])
    typed = contact["phone_numbers"][0]["number"]
    slot = contact["phone_numbers"][0]["field"]

    def search(value, fields):
        params = {"filter": f"phone_number=={value};phone_fields=={fields}", "fields": "id"}
        return [c["id"] for c in call(fake, "GET", "/v2/contacts", params)[1]["contacts"]]

    assert contact["id"] in search(typed, "PHONE1,PHONE2,PHONE3,PHONE4,PHONE5")
    assert contact["id"] not in search(typed, "PHONE4" if slot != "PHONE4" else "PHONE5")


# ----- notes and tasks
def test_a_call_note_needs_an_active_user_and_a_title_or_type(fake):
    path = "/v2/contacts/3/notes"

    assert call(fake, "POST", path, body={"text": "hi", "type": "Call"})[0] == 400
    assert call(fake, "POST", path, body={"text": "hi", "user_id": "11", "type": "Call"})[0] == 400
    assert call(fake, "POST", path, body={"text": "hi", "user_id": "7"})[0] == 400
    assert call(fake, "POST", path, body={"type": "Phone", "user_id": "7"})[0] == 400
    assert call(fake, "POST", path, body={"type": "Call", "user_id": "7", "mood": 1})[0] == 400
    assert (
        call(fake, "POST", "/v2/contacts/999/notes", body={"type": "Call", "user_id": "7"})[0]
        == 404
    )
    status, note, _ = call(fake, "POST", path, body={"type": "Call", "user_id": "7", "text": "hi"})

    assert status == 201 and fake.notes[int(note["id"])]["contact_id"] == "3"


def test_a_note_update_writes_the_masked_fields_or_every_field(fake):
    first = {"type": "Call", "title": "T", "text": "one", "user_id": "7"}
    _, note, _ = call(fake, "POST", "/v2/contacts/3/notes", body=first)
    path = f"/v2/contacts/3/notes/{note['id']}"

    masked = call(fake, "PATCH", path, {"update_mask": "text"}, {"text": "two", "user_id": "7"})
    assert masked[0] == 200 and fake.notes[int(note["id"])]["title"] == "T"
    whole = call(fake, "PATCH", path, body={"text": "three", "type": "Call", "user_id": "7"})
    assert whole[0] == 200 and fake.notes[int(note["id"])]["title"] is None  # unsent: cleared
    assert (
        call(fake, "PATCH", "/v2/contacts/4/notes/" + note["id"], body={"user_id": "7"})[0] == 404
    )
    assert call(fake, "PATCH", path, {"update_mask": "owner"}, {"user_id": "7"})[0] == 400


def test_a_task_needs_an_assignee_and_keaps_priorities(fake):
    good = {"title": "Call back", "assigned_to_user_id": "7", "contact_id": "3",
            "priority": "ESSENTIAL", "due_time": "2026-07-03T10:00:00.000Z"}  # fmt: skip

    assert call(fake, "POST", "/v2/tasks", body={**good, "assigned_to_user_id": None})[0] == 400
    assert call(fake, "POST", "/v2/tasks", body={**good, "priority": "HIGH"})[0] == 400
    assert call(fake, "POST", "/v2/tasks", body={**good, "due_time": "2026-07-03"})[0] == 400
    assert call(fake, "POST", "/v2/tasks", body={**good, "contact_id": "999"})[0] == 404
    status, task, _ = call(fake, "POST", "/v2/tasks", body=good)
    assert status == 201 and fake.tasks[int(task["id"])]["priority"] == "ESSENTIAL"


def test_users_page_at_most_100_and_hide_the_inactive(fake):
    assert call(fake, "GET", "/v2/users", {"page_size": 101})[0] == 400
    _, body, _ = call(fake, "GET", "/v2/users")
    _, every, _ = call(fake, "GET", "/v2/users", {"filter": "include_inactive==true"})

    assert len(body["users"]) == 2 and len(every["users"]) == 3


# ----- limits
def test_a_key_gets_10_requests_a_second_then_a_429_with_throttle_headers(fake):
    answers = [call(fake, "GET", "/v2/users") for _ in range(11)]

    status, body, headers = answers[-1]
    assert [a[0] for a in answers[:10]] == [200] * 10
    assert status == 429 and "fault" in body
    assert headers["x-keap-product-throttle-available"] == "0"
    assert headers["x-keap-product-throttle-time-unit"] == "second"
    time.sleep(1.05)
    assert call(fake, "GET", "/v2/users")[0] == 200


def test_a_key_gets_240_requests_a_minute(fake):
    fake.limits = ((1.0, 1000, "second"), (60.0, 5, "minute"))
    answers = [call(fake, "GET", "/v2/users")[0] for _ in range(6)]

    assert answers == [200] * 5 + [429]
