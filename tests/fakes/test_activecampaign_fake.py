"""The fake ActiveCampaign is at least as strict as the real API (crm-apis-more.md section 4)."""

import json
import urllib.error
import urllib.request
from urllib.parse import urlencode

import pytest

from fakes.activecampaign import FakeActiveCampaign
from fakes.activecampaign_data import BASE_MS, account_time

TOKEN = "ac-fake-api-token"


@pytest.fixture
def fake():
    server = FakeActiveCampaign(contacts=250, rate_limit=1000)
    server.start()
    yield server
    server.stop()


def call(fake, method, path, body=None, headers=None, **params):
    query = f"?{urlencode(params)}" if params else ""
    request = urllib.request.Request(  # noqa: S310 - the fake on loopback
        f"{fake.url}/api/3{path}{query}",
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Api-Token": TOKEN, "Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), dict(error.headers)


def contact_ids(body) -> list[int]:
    return [int(c["id"]) for c in body["contacts"]]


def test_a_missing_or_wrong_token_is_403_forbidden_never_401(fake):
    for headers in (
        {"Api-Token": "wrong"},
        {"Api-Token": ""},
        {"Api-Token": "", "Authorization": f"Bearer {TOKEN}"},  # not its scheme
    ):
        status, body, _ = call(fake, "GET", "/contacts", headers=headers)

        assert (status, body) == (403, {"message": "Forbidden"})


def test_paths_live_under_api_3_only(fake):
    request = urllib.request.Request(f"{fake.url}/contacts", headers={"Api-Token": TOKEN})  # noqa: S310
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(request, timeout=10)  # noqa: S310

    assert error.value.code == 404


def test_pages_default_to_20_and_stop_at_100_with_ids_and_totals_as_strings(fake):
    _, default, _ = call(fake, "GET", "/contacts")
    _, over, _ = call(fake, "GET", "/contacts", limit=500)

    assert len(default["contacts"]) == 20 and default["meta"]["total"] == "250"
    assert len(over["contacts"]) == 100  # the documented maximum, whatever is asked
    assert isinstance(default["contacts"][0]["id"], str)


def test_a_limit_over_100_can_be_refused_instead(fake):
    fake.over_limit = "error"

    status, body, _ = call(fake, "GET", "/contacts", limit=101)

    assert status == 422 and "100" in body["errors"][0]["title"]


def test_id_greater_with_id_order_pages_by_keyset(fake):
    _, first, _ = call(fake, "GET", "/contacts", **{"orders[id]": "ASC", "limit": 100})
    _, second, _ = call(
        fake, "GET", "/contacts", **{"orders[id]": "asc", "limit": 100, "id_greater": 100}
    )

    assert contact_ids(first) == list(range(1, 101))
    assert contact_ids(second) == list(range(101, 201))


def test_a_bad_order_direction_is_422_and_unmodelled_parameters_are_refused(fake):
    status, body, _ = call(fake, "GET", "/contacts", **{"orders[id]": "DASC"})
    assert status == 422 and "Invalid order direction" in body["errors"][0]["detail"]

    for params in ({"orders[udate]": "ASC"}, {"updated_since": "2024-01-01"}):
        status, body, _ = call(fake, "GET", "/contacts", **params)
        assert status == 400 and "does not model" in body["message"]


def test_updated_after_is_a_day_in_the_account_zone_and_means_a_later_day(fake):
    # 2024-03-05T02:30Z is 2024-03-04 21:30 at UTC-5: "after 2024-03-04" does not include it.
    fake.touch([7], at_ms=1_709_605_800_000)
    fake.touch([8], at_ms=1_709_605_800_000 + 6 * 3600 * 1000)  # 03-05 03:30 local

    _, body, _ = call(fake, "GET", "/contacts", **{"filters[updated_after]": "2024-03-04"})
    _, with_time, _ = call(
        fake, "GET", "/contacts", **{"filters[updated_after]": "2024-03-04T00:00:00"}
    )

    assert contact_ids(body) == [8] == contact_ids(with_time)  # a time part changes nothing
    assert body["contacts"][0]["udate"] == "2024-03-05T03:30:00-05:00"


def test_phone_matches_numbers_that_start_with_the_stored_text(fake):
    fake.contacts[3].phone = "+44 20 7946 0018"
    fake.contacts[4].phone = "+44 20 7946 00189"

    _, exact, _ = call(fake, "GET", "/contacts", phone="+44 20 7946 0018")
    _, other_form, _ = call(fake, "GET", "/contacts", phone="+442079460018")

    assert contact_ids(exact) == [3, 4]
    assert other_form["contacts"] == []


def test_a_note_needs_its_text_contact_and_reltype_and_a_live_contact(fake):
    status, body, _ = call(fake, "POST", "/notes", {"note": {"note": "x", "relid": 3}})
    assert status == 422 and body["errors"][0]["code"] == "field_missing"

    status, body, _ = call(
        fake, "POST", "/notes", {"note": {"note": "x", "relid": 999, "reltype": "Subscriber"}}
    )
    assert (status, body) == (404, {"message": "No Result found for Subscriber with id 999"})

    status, body, _ = call(
        fake, "POST", "/notes", {"note": {"note": "x", "relid": 3, "reltype": "Contact"}}
    )
    assert status == 422 and fake.notes == {}


def test_a_note_is_stored_and_updated_in_place_with_all_three_fields(fake):
    created = {"note": {"note": "First", "relid": 3, "reltype": "Subscriber"}}
    status, body, _ = call(fake, "POST", "/notes", created)
    assert status == 201 and body["note"]["owner"] == {"type": "contact", "id": "3"}
    note_id = body["note"]["id"]

    status, body, _ = call(fake, "PUT", f"/notes/{note_id}", {"note": {"note": "Second"}})
    assert status == 422  # relid and reltype are required on update too

    changed = {"note": {"note": "Second", "relid": "3", "reltype": "Subscriber"}}
    status, body, _ = call(fake, "PUT", f"/notes/{note_id}", changed)
    _, listed, _ = call(fake, "GET", "/contacts/3/notes")

    assert status == 200 and [n["note"] for n in listed["notes"]] == ["Second"]
    assert list(fake.notes) == [note_id]
    assert call(fake, "PUT", "/notes/99", changed)[0] == 404


def test_a_task_needs_relid_duedate_and_a_real_task_type_and_defaults_to_a_deal(fake):
    task = {"relid": 3, "duedate": "2024-03-05T17:02:11+00:00", "dealTasktype": 1}

    status, body, _ = call(fake, "POST", "/dealTasks", {"dealTask": {"relid": 3}})
    assert status == 422 and body["errors"][0]["code"] == "field_missing"
    status, body, _ = call(fake, "POST", "/dealTasks", {"dealTask": task})
    assert (status, body) == (404, {"message": "No Result found for Deal with id 3"})
    bad_type = {**task, "ownerType": "contact", "dealTasktype": 9}
    assert call(fake, "POST", "/dealTasks", {"dealTask": bad_type})[0] == 422

    good = {**task, "ownerType": "contact", "assignee": 2, "status": 0}
    status, body, _ = call(fake, "POST", "/dealTasks", {"dealTask": good})
    assert status == 201 and body["dealTask"]["reltype"] == "Subscriber"
    assert body["dealTask"]["duedate"] == "2024-03-05T12:02:11-05:00"
    assert fake.tasks[body["dealTask"]["id"]]["assignee"] == "2"


def test_users_are_found_by_email_and_an_unknown_one_is_404(fake):
    status, body, _ = call(fake, "GET", "/users/email/priya.shah@example.com")
    assert status == 200 and body["user"]["id"] == "1"

    assert call(fake, "GET", "/users/email/nobody@example.com")[0] == 404


def test_a_phone_only_contact_needs_allow_null_email(fake):
    status, body, _ = call(fake, "POST", "/contacts", {"contact": {"phone": "+447400999888"}})
    assert status == 422

    body = {"contact": {"phone": "+447400999888", "allowNullEmail": True}}
    status, created, _ = call(fake, "POST", "/contacts", body)
    assert status == 201 and created["contact"]["phone"] == "+447400999888"
    assert created["contact"]["udate"].endswith("-05:00")


def test_an_existing_email_is_a_422_duplicate(fake):
    status, body, _ = call(
        fake, "POST", "/contacts", {"contact": {"email": "contact2@example.com"}}
    )

    assert status == 422 and body["errors"][0]["code"] == "duplicate"


def test_more_than_5_requests_a_second_are_429_with_retry_after_and_rate_limit_headers():
    fake = FakeActiveCampaign(contacts=5)
    fake.start()
    try:
        answers = [call(fake, "GET", "/users/me") for _ in range(6)]
    finally:
        fake.stop()

    assert [a[0] for a in answers] == [200] * 5 + [429]
    assert [a[2]["RateLimit-Remaining"] for a in answers] == ["4", "3", "2", "1", "0", "0"]
    assert answers[0][2]["RateLimit-Limit"] == "5"
    assert answers[5][2]["Retry-After"] == "30"


def test_times_are_in_the_account_zone_with_their_offset():
    assert account_time(BASE_MS) == "2023-11-14T17:13:20-05:00"
