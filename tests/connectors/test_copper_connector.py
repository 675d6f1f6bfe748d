"""The Copper connector against the strict fake over real HTTP: paging, cursors, limits, writes."""

import time
from datetime import UTC, datetime
from functools import partial
from urllib.parse import parse_qs, urlsplit

import pytest

from connectors.copper.connector import CopperConnector
from connectors.interface import CallLogEntry, ConnectionConfig, ConnectorError, Cursor
from connectors.pacing import RateLimit
from fakes.copper import FakeCopper, Fault
from fakes.copper_data import ACCOUNT_ID, PHONE_CALL_TYPE_ID, TIER_FIELD_ID

pytestmark = pytest.mark.django_db  # request budgets and pacing live in the cache

REDIRECT_URI = "https://callbridge.example.com/api/v1/connections/oauth/callback"
KEY = {"api_key": "cu-fake-api-key", "user_email": "priya.shah@example.com"}


@pytest.fixture
def make_copper(start_fake):
    return partial(start_fake, FakeCopper)


@pytest.fixture
def copper(make_copper) -> FakeCopper:
    return make_copper(people=450, companies=12)


def connector(fake, saved=None, objects=("contacts",), settings=None, **credentials):
    config = ConnectionConfig(
        connection_id=1,
        credentials={"base_url": fake.url, **(credentials or KEY)},
        settings={"objects": list(objects), **(settings or {})},
    )
    return CopperConnector(config, (saved if saved is not None else []).append)


def all_changes(copper_connector, object_type="contacts", cursor=None):
    cursor, ids, pages = cursor or Cursor(), [], 0
    while True:
        page = copper_connector.changed_since(object_type, cursor)
        ids += [r.external_id for r in page.records]
        cursor, pages = Cursor.from_json(page.cursor.as_json()), pages + 1  # as stored
        if page.done:
            return ids, cursor, pages


def call(**fields) -> CallLogEntry:
    defaults = {
        "call_id": "c-91",
        "direction": "inbound",
        "outcome": "answered",
        "started_at": datetime(2024, 3, 5, 17, 2, 11, tzinfo=UTC),
        "duration_seconds": 95,
        "from_number": "+442079460018",
        "to_number": "+442045205757",
        "contact_external_id": "3",
        "owner_user_id": "137658",
    }
    return CallLogEntry(**{**defaults, **fields})


# ----- read side
def test_it_reads_every_person_by_modification_time_in_pages_of_200(copper):
    ids, cursor, pages = all_changes(connector(copper))

    assert set(ids) == {str(i) for i in range(1, 451)}  # each at least once
    assert pages >= 3
    body = copper.bodies("/people/search")[0]
    assert body == {
        "page_size": 200, "page_number": 1, "sort_by": "date_modified",
        "sort_direction": "asc", "minimum_modified_date": 0,
    }  # fmt: skip
    latest = max(p["date_modified"] for p in copper.records["people"].values())
    assert cursor.max_seen_ms == latest * 1000 and cursor.after is None
    assert cursor.since_ms == latest * 1000 - 30_000  # the last 30 s are read again


def test_each_page_starts_a_new_search_at_the_last_time_seen(copper):
    all_changes(connector(copper))

    searches = copper.bodies("/people/search")
    starts = [s["minimum_modified_date"] for s in searches]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)
    assert {s["page_number"] for s in searches} == {1}


def test_a_person_edited_while_we_page_is_read_not_skipped(copper):
    copper_connector = connector(copper)
    first = copper_connector.changed_since("contacts", Cursor())
    read = {r.external_id for r in first.records}
    unread = next(i for i in sorted(copper.records["people"]) if str(i) not in read)
    copper.touch("people", [unread, int(next(iter(read)))])  # both move behind every other

    ids, _, _ = all_changes(copper_connector, cursor=first.cursor)

    assert str(unread) in ids
    assert read | set(ids) == {str(i) for i in range(1, 451)}


def test_a_bulk_edit_of_one_second_is_paged_by_number_inside_that_second(make_copper):
    fake = make_copper(people=520)
    for person in fake.records["people"].values():
        person["date_modified"] = 1_700_000_500 if person["id"] <= 450 else 1_700_000_600
    fake._sorted.clear()

    ids, cursor, _ = all_changes(connector(fake))

    assert set(ids) == {str(i) for i in range(1, 521)}
    inside = [b for b in fake.bodies("/people/search") if "maximum_modified_date" in b]
    assert [b["page_number"] for b in inside] == [2, 3]
    assert {(b["minimum_modified_date"], b["maximum_modified_date"]) for b in inside} == {
        (1_700_000_500, 1_700_000_500)
    }
    assert cursor.max_seen_ms == 1_700_000_600_000


def test_the_next_run_asks_only_for_what_changed_since_the_last(copper):
    _, cursor, _ = all_changes(connector(copper))
    recent = {
        str(i) for i, p in copper.records["people"].items()
        if p["date_modified"] * 1000 >= cursor.since_ms
    }  # fmt: skip
    copper.touch("people", [7, 200])

    ids, next_cursor, pages = all_changes(connector(copper), cursor=cursor)

    assert set(ids) == recent | {"7", "200"} and pages == 1
    assert copper.bodies("/people/search")[-1]["minimum_modified_date"] == cursor.since_ms // 1000
    assert next_cursor.max_seen_ms == copper.records["people"][7]["date_modified"] * 1000


def test_people_carry_their_company_owner_and_custom_fields_and_companies_are_records(copper):
    settings = {"custom_fields": [str(TIER_FIELD_ID)]}
    copper_connector = connector(copper, objects=("contacts", "companies"), settings=settings)

    people = copper_connector.changed_since("contacts", Cursor()).records
    companies, _, _ = all_changes(copper_connector, "companies")

    stored = copper.records["people"]
    for person in people:
        assert person.company == (stored[int(person.external_id)]["company_name"] or "")
    assert any(p.custom_fields.get(str(TIER_FIELD_ID)) for p in people)
    assert any(p.owner_id == "137658" for p in people)
    assert people[0].crm_url.startswith(
        f"https://app.copper.com/companies/{ACCOUNT_ID}/app#/people/"
    )
    assert sorted(companies) == sorted(f"company:{i}" for i in range(1, 13))
    assert copper.paths("GET").count("/developer_api/v1/account") == 1  # asked once


def test_it_lists_every_live_id_for_the_full_diff_by_creation_time(copper):
    copper.delete("people", [3, 4])
    copper_connector = connector(copper, objects=("contacts", "companies"))

    people = {i for page in copper_connector.all_ids("contacts") for i in page}
    companies = [i for page in copper_connector.all_ids("companies") for i in page]

    assert people == {str(i) for i in range(1, 451)} - {"3", "4"}
    assert companies == [f"company:{i}" for i in range(1, 13)]
    assert {b["sort_by"] for b in copper.bodies("/people/search")} == {"date_created"}


def test_it_finds_people_by_phone_in_the_formats_people_type(make_copper):
    fake = make_copper(people=5)
    written = ["+44 20 7946 0018", "020 7946 0018", "+44 20 7946 0019", "2079460018", "7946 0018"]
    for person, number in zip(fake.records["people"].values(), written, strict=True):
        person["phone_numbers"] = [{"number": number, "category": "work"}]
        person["address"] = None

    found = connector(fake).find_by_phone("+442079460018")

    assert sorted(r.external_id for r in found) == ["1", "2", "4"]  # "7946 0018" is not it
    searched = [b["phone_number"] for b in fake.bodies("/people/search")]
    assert {"value": "2079460018", "match": "partial"} in searched


# ----- users
def test_it_finds_the_agents_user_by_email_from_one_listing(copper):
    copper_connector = connector(copper)

    user = copper_connector.find_user("Priya.Shah@example.com")

    assert (user.external_id, user.name) == ("137658", "Priya Shah")
    assert copper_connector.find_user("nobody@example.com") is None
    assert [u.email for u in copper_connector.users()] == [
        "priya.shah@example.com",
        "mehmet@example.com",
    ]
    assert copper.bodies("/users/search") == [{"page_number": 1, "page_size": 200}]


# ----- errors and limits
def test_a_wrong_key_owner_email_is_a_permanent_error(copper):
    with pytest.raises(ConnectorError, match="api_key and user_email") as error:
        connector(copper, api_key="cu-fake-api-key", user_email="other@example.com").users()

    assert error.value.permanent and "401" in str(error.value)


def test_a_refused_request_is_permanent_and_names_coppers_reason(copper):
    copper_connector = connector(copper)

    with pytest.raises(
        ConnectorError, match="Unrecognized attributes specified: pageSize"
    ) as error:
        copper_connector._json("POST", "/people/search", json_body={"pageSize": 200})

    assert error.value.permanent and "422" in str(error.value)


def test_it_retries_a_500_then_succeeds(copper):
    copper.inject(Fault("status", times=1, status=500, path_contains="/people/search"))

    page = connector(copper).changed_since("contacts", Cursor())

    assert len(page.records) == 200 and len(copper.bodies("/people/search")) == 2


def test_it_backs_off_on_copper_s_plain_429_and_goes_on(make_copper):
    fake = make_copper(people=450, requests_per_minute=2, window_seconds=1.0)
    copper_connector = connector(fake)

    ids, _, _ = all_changes(copper_connector)

    assert set(ids) == {str(i) for i in range(1, 451)}
    assert copper_connector.rate_limit_waits >= 1


def test_a_retry_after_on_a_429_is_honoured(copper):
    copper.inject(Fault("status", times=1, status=429, retry_after="1"))
    copper_connector = connector(copper)
    started = time.monotonic()

    copper_connector.users()

    assert time.monotonic() - started >= 1.0 and copper_connector.rate_limit_waits == 1


def test_it_paces_itself_under_copper_s_limit_instead_of_hitting_it(make_copper):
    fake = make_copper(people=1, requests_per_minute=4, window_seconds=1.0)
    copper_connector = connector(fake, settings={"rate_limits": {"requests": [4, 1]}})
    started = time.monotonic()

    for _ in range(6):
        copper_connector._json("GET", "/activity_types")

    assert time.monotonic() - started >= 1  # 4 at once, 2 more once the first left the window
    assert copper_connector.rate_limit_waits == 0  # no 429
    assert connector(fake).client.rate_limits["requests"] == RateLimit(180, 60)  # by default


# ----- OAuth
def test_it_connects_through_oauth_and_then_sends_the_bearer_token(copper):
    saved = []
    app = {"client_id": "fake-client-id", "client_secret": "fake-client-secret",
           "oauth_base_url": copper.url}  # fmt: skip
    copper_connector = connector(copper, saved, **app)

    url = urlsplit(copper_connector.authorization_url(state="s-1", redirect_uri=REDIRECT_URI))
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert url.path == "/oauth/authorize"
    assert query == {"client_id": "fake-client-id", "redirect_uri": REDIRECT_URI, "state": "s-1",
                     "response_type": "code", "scope": "developer/v1/all"}  # fmt: skip
    copper_connector.connect(code=copper.authorize(REDIRECT_URI), redirect_uri=REDIRECT_URI)

    assert saved[-1]["access_token"] in copper.access_tokens and not saved[-1]["refresh_token"]
    assert copper_connector.find_user("mehmet@example.com") is not None


def test_a_revoked_oauth_token_is_permanent_there_is_nothing_to_refresh(copper):
    token = copper.issue_oauth_token()
    copper.expire_tokens()

    with pytest.raises(ConnectorError, match="reconnect Copper") as error:
        connector(copper, access_token=token, client_id="fake-client-id").users()

    assert error.value.permanent and copper.paths("POST").count("/oauth/token") == 0


# ----- write side
def test_a_call_is_a_phone_call_activity_of_the_accounts_own_type(make_copper):
    fake = make_copper(people=5, phone_call_type_id=555001)  # another account, another id

    remote_id = connector(fake).log_call(call(notes="Asked about pricing"))

    activity = fake.activities[int(remote_id)]
    assert activity["type"] == {"id": 555001, "category": "user"}
    assert activity["parent"] == {"id": 3, "type": "person"}
    assert (activity["user_id"], activity["activity_date"]) == (137658, 1709658131)
    assert "Asked about pricing" in activity["details"]
    assert activity["details"].endswith("CallBridge call c-91")
    assert "Agent: Priya Shah <priya.shah@example.com>" in activity["details"]


def test_updating_a_call_changes_the_same_activity(copper):
    copper_connector = connector(copper)
    remote_id = copper_connector.log_call(call())

    copper_connector.update_call_log(
        remote_id, call(notes="Summary: renewal in May", recording_url="https://rec.example/9")
    )

    (activity,) = copper.activities.values()
    assert str(activity["id"]) == remote_id
    assert "Summary: renewal in May" in activity["details"]
    assert "https://rec.example/9" in activity["details"]
    assert activity["type"]["id"] == PHONE_CALL_TYPE_ID


def test_updating_an_activity_that_is_gone_is_a_permanent_error(copper):
    with pytest.raises(ConnectorError) as error:
        connector(copper).update_call_log("999", call())

    assert error.value.permanent and "404" in str(error.value)


def test_a_call_without_a_contact_cannot_be_an_activity(copper):
    with pytest.raises(ConnectorError, match="create_unknown_contacts") as error:
        connector(copper).log_call(call(contact_external_id=None))

    assert error.value.permanent and copper.activities == {}


def test_a_missed_call_is_an_open_high_priority_task_on_the_person(copper):
    remote_id = connector(copper).create_task(call(outcome="missed", duration_seconds=0))

    task = copper.tasks[int(remote_id)]
    assert (task["status"], task["priority"], task["due_date"]) == ("Open", "High", 1709658131)
    assert task["related_resource"] == {"id": 3, "type": "person"}
    assert task["assignee_id"] == 137658


def test_a_logged_call_or_task_is_found_again_by_our_call_id(copper):
    copper_connector = connector(copper)
    remote_id = copper_connector.log_call(call(started_at=datetime.now(UTC)))
    task_id = copper_connector.create_task(call(call_id="c-92", outcome="missed"))

    assert copper_connector.find_logged("c-91") == remote_id
    assert copper_connector.find_logged("c-92", task=True) == task_id
    assert copper_connector.find_logged("c-9") is None  # the whole line, not a prefix
    assert copper_connector.find_logged("c-91", task=True) is None


def test_it_creates_a_person_for_an_unknown_number_that_search_then_finds(copper):
    copper_connector = connector(copper)

    record = copper_connector.create_contact(e164="+447700900999", name="")

    stored = copper.records["people"][int(record.external_id)]
    assert stored["name"] == "+447700900999"
    assert stored["phone_numbers"] == [{"number": "+447700900999", "category": "mobile"}]
    found = copper_connector.find_by_phone("+447700900999")
    assert [r.external_id for r in found] == [record.external_id]
