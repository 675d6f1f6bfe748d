"""The fake SugarCRM is at least as strict as the real API (crm-apis-more.md section 2)."""

import json
import time
import urllib.error
import urllib.request

import pytest

from fakes.sugarcrm import FakeSugarCrm, Fault
from fakes.sugarcrm_data import USERS

LOGIN = {
    "grant_type": "password",
    "client_id": "sugar",
    "client_secret": "",
    "username": "apiuser",
    "password": "s3cret-Passw0rd",
    "platform": "callbridge",
}


@pytest.fixture
def fake():
    server = FakeSugarCrm(contacts=45, accounts=3, max_num_cap=20)
    server.start()
    server.token = server.login()["access_token"]
    yield server
    server.stop()


def call(fake, method, path, body=None, token=None, headers=None):
    token = fake.token if token is None else token
    request = urllib.request.Request(  # noqa: S310 - the fake on loopback
        fake.url + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={
            "Content-Type": "application/json",
            **({"OAuth-Token": token} if token else {}),
            **(headers or {}),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), dict(error.headers)


def token(fake, **fields):
    return call(fake, "POST", "/rest/v11/oauth2/token", {**LOGIN, **fields}, token="")[:2]


def contacts(fake, body, **options):
    return call(fake, "POST", "/rest/v11/Contacts/filter", body, **options)[:2]


def test_a_password_login_answers_tokens_that_expire_in_an_hour(fake):
    status, body = token(fake)

    assert status == 200 and body["expires_in"] == 3600
    assert body["access_token"] and body["refresh_token"]


def test_a_wrong_password_or_an_unknown_platform_is_refused(fake):
    assert token(fake, password="wrong") == (
        401,
        {"error": "need_login", "error_message": "You must specify a valid username and password."},
    )
    status, body = token(fake, platform="somebody-elses")
    assert status == 422 and body["error"] == "invalid_parameter"


def test_unknown_platforms_pass_when_the_instance_allows_them():
    server = FakeSugarCrm(strict_platforms=False)
    server.start()
    try:
        assert token(server, platform="anything")[0] == 200
    finally:
        server.stop()


def test_a_second_login_on_the_same_platform_logs_the_first_session_out(fake):
    _, second = token(fake)

    status, body = contacts(fake, {})
    assert (status, body["error"]) == (401, "invalid_grant")
    assert contacts(fake, {}, token=second["access_token"])[0] == 200


def test_a_refresh_replaces_both_tokens(fake):
    _, first = token(fake)

    status, renewed = token(fake, grant_type="refresh_token", refresh_token=first["refresh_token"])

    assert status == 200 and renewed["access_token"] != first["access_token"]
    assert contacts(fake, {}, token=first["access_token"])[0] == 401
    assert contacts(fake, {}, token=renewed["access_token"])[0] == 200
    again = token(fake, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert again == (400, {"error": "invalid_grant", "error_message": "Invalid refresh token"})


def test_calls_need_a_live_oauth_token_header(fake):
    assert contacts(fake, {}, token="")[1]["error"] == "need_login"
    bearer = {"Authorization": f"Bearer {fake.token}"}  # not Sugar's header
    assert contacts(fake, {}, token="", headers=bearer)[1]["error"] == "need_login"
    assert contacts(fake, {})[0] == 200
    fake.expire_tokens()
    assert contacts(fake, {})[1]["error"] == "invalid_grant"


def test_only_version_11_paths_are_served(fake):
    status, body, _ = call(fake, "POST", "/rest/v10/Contacts/filter", {})
    assert (status, body["error"]) == (301, "incorrect_version")
    assert call(fake, "POST", "/rest/v11_20/Contacts/filter", {})[0] == 200
    assert call(fake, "POST", "/rest/v11/Widgets/filter", {})[1]["error"] == "no_method"


def test_pages_are_capped_and_the_last_one_says_next_offset_minus_one(fake):
    order = "date_modified:ASC,id:ASC"
    _, first = contacts(fake, {"max_num": 500, "order_by": order})
    _, second = contacts(fake, {"max_num": 500, "offset": first["next_offset"], "order_by": order})
    _, third = contacts(fake, {"max_num": 500, "offset": second["next_offset"], "order_by": order})

    assert (len(first["records"]), first["next_offset"]) == (20, 20)
    assert (len(third["records"]), third["next_offset"]) == (5, -1)
    ids = [r["id"] for r in first["records"] + second["records"] + third["records"]]
    assert ids == fake.ordered_ids("Contacts")


def test_the_default_page_is_20_and_id_and_date_modified_always_come(fake):
    _, body = contacts(fake, {"fields": "last_name"})

    assert len(body["records"]) == 20
    assert set(body["records"][0]) == {"id", "date_modified", "last_name", "_acl", "_module"}


def test_it_filters_on_the_operators_sugar_documents(fake):
    first, second = fake.ordered_ids("Contacts")[:2]
    record = fake.records["Contacts"][first]
    record.fields["phone_mobile"] = "+44 20 7946 0018"
    since = "2023-11-14T17:14:50-05:00"  # 22:14:50 UTC

    def ids(expression):
        _, body = contacts(fake, {"filter": [expression], "fields": "id", "max_num": 100})
        return {r["id"] for r in body["records"]}

    assert ids({"phone_mobile": {"$equals": "+44 20 7946 0018"}}) == {first}
    assert ids({"phone_mobile": "+44 20 7946 0018"}) == {first}  # short for $equals
    assert ids({"phone_mobile": {"$starts": "+44 20"}}) >= {first}
    assert ids({"id": {"$in": [first, second]}}) == {first, second}
    assert ids({"$or": [{"id": first}, {"id": second}]}) == {first, second}
    newer = {r.id for r in fake.records["Contacts"].values() if r.modified_s >= 1_700_000_090}
    assert ids({"date_modified": {"$gte": since}}) == newer
    assert ids({"$and": [{"id": {"$gt": first}}, {"id": {"$lte": first}}]}) == set()


def test_unknown_operators_and_fields_are_refused_with_sugars_error_body(fake):
    assert contacts(fake, {"filter": [{"last_name": {"$like": "A%"}}]}) == (
        422,
        {"error": "invalid_parameter", "error_message": "Did not recognize the operand: $like"},
    )
    assert contacts(fake, {"filter": [{"$not": [{"id": "x"}]}]})[0] == 422
    assert contacts(fake, {"filter": [{"Phone": "1"}]})[0] == 422
    assert contacts(fake, {"fields": "last_name,mystery"})[0] == 422
    assert contacts(fake, {"order_by": "date_modified:UP"})[0] == 422
    status, body = contacts(fake, {"filter": [{"date_modified": {"$gte": "2023-11-14 17:14"}}]})
    assert status == 422 and "offset" in body["error_message"]


def test_written_calls_tasks_and_notes_are_validated_and_kept(fake):
    contact = fake.ordered_ids("Contacts")[0]
    good = {
        "name": "Inbound call",
        "date_start": "2024-03-05T17:02:11+00:00",
        "duration_hours": 0,
        "duration_minutes": 3,
        "direction": "Inbound",
        "status": "Held",
        "parent_type": "Contacts",
        "parent_id": contact,
        "assigned_user_id": USERS[1][0],
    }
    status, created, _ = call(fake, "POST", "/rest/v11/Calls", good)
    assert status == 200 and fake.records["Calls"][created["id"]].fields["status"] == "Held"

    for wrong in (
        {"direction": "inbound"},
        {"status": "Answered"},
        {"date_start": "2024-03-05 17:02:11"},
        {"duration_minutes": 75},
        {"parent_id": "no-such-contact"},
        {"assigned_user_id": "nobody"},
        {"call_result": "ok"},
    ):
        status, body, _ = call(fake, "POST", "/rest/v11/Calls", {**good, **wrong})
        assert (status, body["error"]) == (422, "invalid_parameter"), wrong
    status, body, _ = call(fake, "POST", "/rest/v11/Calls", {**good, "name": ""})
    assert (status, body["error"]) == (422, "missing_parameter")

    note = {"name": "Notes", "parent_type": "Calls", "parent_id": created["id"]}
    assert call(fake, "POST", "/rest/v11/Notes", note)[0] == 200
    urgent = {"name": "Call back", "priority": "Urgent"}  # not in Sugar's task_priority_dom
    assert call(fake, "POST", "/rest/v11/Tasks", urgent)[0] == 422
    assert len(fake.records["Calls"]) == 1 and len(fake.records["Notes"]) == 1


def test_an_update_changes_the_record_and_an_unknown_id_is_not_found(fake):
    contact = fake.ordered_ids("Contacts")[0]
    path = f"/rest/v11/Contacts/{contact}"

    status, body, _ = call(fake, "PUT", path, {"phone_other": "020 7946 0018"})

    assert status == 200 and body["phone_other"] == "020 7946 0018"
    assert fake.records["Contacts"][contact].modified_s >= int(time.time()) - 1
    assert call(fake, "PUT", "/rest/v11/Contacts/nope", {})[1]["error"] == "not_found"
    assert call(fake, "PUT", f"/rest/v11/Users/{USERS[0][0]}", {"status": "Inactive"})[0] == 404


def test_a_forbidden_module_is_403_not_authorized(fake):
    fake.forbidden.add(("POST", "Calls"))

    status, body, _ = call(fake, "POST", "/rest/v11/Calls", {"name": "x"})

    assert (status, body["error"]) == (403, "not_authorized")


def test_an_injected_429_carries_retry_after(fake):
    fake.inject(Fault("status", status=429, retry_after=7))

    status, body, headers = call(fake, "POST", "/rest/v11/Contacts/filter", {})

    assert status == 429 and headers["Retry-After"] == "7" and "error" in body
    assert call(fake, "POST", "/rest/v11/Contacts/filter", {})[0] == 200


def test_users_are_listed_with_their_email_and_status(fake):
    status, body, _ = call(
        fake,
        "POST",
        "/rest/v11/Users/filter",
        {"filter": [{"status": {"$equals": "Active"}}], "fields": "email1,full_name,status"},
    )

    assert status == 200
    assert {u["email1"] for u in body["records"]} == {u[4] for u in USERS[:3]}
