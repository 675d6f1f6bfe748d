"""The Pipedrive connector against the strict fake: paging, cursors, limits, tokens, writes."""

import time
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest

from connectors.interface import CallLogEntry, ConnectionConfig, ConnectorError, Cursor
from connectors.pipedrive.connector import PipedriveConnector
from fakes.pipedrive import Fault
from fakes.pipedrive_data import ORG_PHONE_FIELD, TIER_FIELD, rfc3339

pytestmark = pytest.mark.django_db  # the per-connection request budget lives in the cache

REDIRECT_URI = "https://callbridge.example.com/api/v1/connections/oauth/callback"


@pytest.fixture
def pipedrive(make_pipedrive):
    return make_pipedrive(persons=1200, organizations=30)


def connector(fake, saved=None, objects=("contacts",), settings=None, **credentials):
    credentials = credentials or {"api_token": next(iter(fake.api_tokens))}
    config = ConnectionConfig(
        connection_id=1,
        credentials={"base_url": fake.url, **credentials},
        settings={"objects": list(objects), **(settings or {})},
    )
    return PipedriveConnector(config, (saved if saved is not None else []).append)


def all_changes(pipedrive_connector, object_type="contacts", cursor=None):
    cursor, ids, pages = cursor or Cursor(), [], 0
    while True:
        page = pipedrive_connector.changed_since(object_type, cursor)
        ids += [r.external_id for r in page.records]
        cursor, pages = page.cursor, pages + 1
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
        "owner_user_id": "11",
    }
    return CallLogEntry(**{**defaults, **fields})


# ----- read side
def test_it_reads_every_person_in_pages_of_500_sorted_by_update_time(pipedrive):
    ids, cursor, pages = all_changes(connector(pipedrive))

    assert sorted(map(int, ids)) == list(range(1, 1201))  # each once: keyset paging
    assert pages == 3
    query = pipedrive.queries("/api/v2/persons")[0]
    assert query["limit"] == ["500"] and query["sort_by"] == ["update_time"]
    latest = max(r.update_ms for r in pipedrive.records["persons"].values())
    assert cursor.after is None and cursor.since_ms == latest


def test_a_saved_cursor_resumes_on_the_next_page_without_duplicates(pipedrive):
    first = connector(pipedrive).changed_since("contacts", Cursor())
    saved = Cursor.from_json(first.cursor.as_json())  # as the engine stores it per page

    rest, _, _ = all_changes(connector(pipedrive), cursor=saved)

    seen = [r.external_id for r in first.records] + rest
    assert sorted(map(int, seen)) == list(range(1, 1201))


def test_a_person_edited_while_we_page_is_not_skipped(pipedrive):
    pipedrive_connector = connector(pipedrive)
    first = pipedrive_connector.changed_since("contacts", Cursor())
    last_of_all = max(pipedrive.records["persons"].values(), key=lambda r: (r.update_ms, r.id))
    unread = next(
        r for r in pipedrive.records["persons"].values() if str(r.id) not in
        {x.external_id for x in first.records} and r.id != last_of_all.id
    )  # fmt: skip
    pipedrive.touch("persons", [unread.id])  # moves behind every other record

    ids, _, _ = all_changes(pipedrive_connector, cursor=first.cursor)

    assert str(unread.id) in ids
    assert len({r.external_id for r in first.records} | set(ids)) == 1200


def test_the_next_run_asks_only_for_what_changed_since_the_last(pipedrive):
    _, cursor, _ = all_changes(connector(pipedrive))
    last_second = {
        str(r.id) for r in pipedrive.records["persons"].values() if r.update_ms == cursor.since_ms
    }
    pipedrive.touch("persons", [7, 200])

    ids, next_cursor, pages = all_changes(connector(pipedrive), cursor=cursor)

    assert sorted(ids) == sorted({"7", "200"} | last_second) and pages == 1  # >= the last second
    assert pipedrive.queries("/api/v2/persons")[-1]["updated_since"] == [rfc3339(cursor.since_ms)]
    assert next_cursor.since_ms == pipedrive.records["persons"][7].update_ms


def test_persons_carry_their_organization_name_and_organizations_are_company_records(pipedrive):
    settings = {"organization_phone_fields": [ORG_PHONE_FIELD], "custom_fields": [TIER_FIELD]}
    pipedrive_connector = connector(pipedrive, objects=("contacts", "companies"), settings=settings)

    people = pipedrive_connector.changed_since("contacts", Cursor()).records
    companies = pipedrive_connector.changed_since("companies", Cursor()).records

    persons = pipedrive.records["persons"]
    for person in people:
        org_id = persons[int(person.external_id)].fields["org_id"]
        assert person.company == (f"Company {org_id}" if org_id else "")
    assert sum(bool(p.company) for p in people) > 300
    lookups = pipedrive.queries("/api/v2/organizations")
    assert lookups[0]["ids"] and len(lookups[0]["ids"][0].split(",")) <= 100
    assert len(companies) == 30 and all(c.is_company for c in companies)
    assert companies[0].external_id.startswith("org:")
    numbered = [
        o for o in pipedrive.records["organizations"].values()
        if (o.fields["custom_fields"][ORG_PHONE_FIELD] or "").strip()
    ]  # fmt: skip
    assert sum(bool(c.phones) for c in companies) == len(numbered) > 10
    assert any(p.custom_fields.get(TIER_FIELD) for p in people)


def test_it_lists_every_live_id_for_the_full_diff(pipedrive):
    pipedrive.delete("persons", [3, 4])
    pipedrive_connector = connector(pipedrive, objects=("contacts", "companies"))

    persons = [i for page in pipedrive_connector.all_ids("contacts") for i in page]
    organizations = [i for page in pipedrive_connector.all_ids("companies") for i in page]

    assert len(persons) == 1198 and "3" not in persons and len(set(persons)) == 1198
    assert organizations[:2] == ["org:1", "org:2"] and len(organizations) == 30


def test_it_finds_persons_by_phone_in_the_formats_people_type(make_pipedrive):
    fake = make_pipedrive(persons=4)
    written = ["+44 20 7946 0018", "020 7946 0018", "+44 20 7946 0019", "2079460018"]
    for record, number in zip(fake.records["persons"].values(), written, strict=True):
        record.fields["phones"] = [{"value": number, "primary": True, "label": "work"}]

    found = connector(fake).find_by_phone("+442079460018")

    assert sorted(r.external_id for r in found) == ["1", "2", "4"]
    searches = fake.queries("/api/v2/persons/search")
    assert {q["exact_match"][0] for q in searches} == {"true"}
    assert {q["fields"][0] for q in searches} == {"phone"}


# ----- rate limits and faults
def test_it_waits_out_a_429_until_the_burst_window_resets(pipedrive):
    pipedrive.inject(Fault("status", times=1, status=429))  # x-ratelimit-reset: 1, no Retry-After
    pipedrive_connector = connector(pipedrive)
    started = time.monotonic()

    page = pipedrive_connector.changed_since("contacts", Cursor())

    assert time.monotonic() - started >= 1.0
    assert len(page.records) == 500
    assert pipedrive_connector.rate_limit_waits == 1


def test_it_paces_itself_under_its_tier_s_burst_limit_instead_of_hitting_it(make_pipedrive):
    fake = make_pipedrive(persons=1, burst_limit=3)
    pipedrive_connector = connector(fake, settings={"rate_limits": {"requests": [3, 2]}})
    started = time.monotonic()

    for _ in range(5):
        assert pipedrive_connector.find_user("priya.shah@example.com") is not None

    assert time.monotonic() - started >= 2  # 3 at once, 2 more once the first left the window
    assert fake.rate_limited == 0 and pipedrive_connector.rate_limit_waits == 0


def test_a_tier_set_too_high_is_answered_429_and_waited_out(make_pipedrive):
    fake = make_pipedrive(persons=1, burst_limit=3)
    pipedrive_connector = connector(fake, settings={"rate_limits": {"requests": [80, 2]}})

    for _ in range(5):
        assert pipedrive_connector.find_user("priya.shah@example.com") is not None

    assert fake.rate_limited >= 1 and pipedrive_connector.rate_limit_waits == fake.rate_limited


def test_a_spent_daily_budget_ends_the_run_at_once_with_a_long_retry_after(pipedrive):
    pipedrive.inject(Fault("status", times=1, status=429, daily=True))
    started = time.monotonic()

    with pytest.raises(ConnectorError) as error:
        connector(pipedrive).changed_since("contacts", Cursor())

    assert time.monotonic() - started < 1
    assert not error.value.permanent and error.value.retry_after >= 3600


def test_it_retries_a_500_then_succeeds(pipedrive):
    pipedrive.inject(Fault("status", times=1, status=500, path_contains="/persons"))

    page = connector(pipedrive).changed_since("contacts", Cursor())

    assert len(page.records) == 500
    assert len(pipedrive.queries("/api/v2/persons")) == 2


def test_a_malformed_page_is_an_error_not_an_empty_page(pipedrive):
    pipedrive.inject(Fault("malformed", times=1, path_contains="/persons"))

    with pytest.raises(ConnectorError) as error:
        connector(pipedrive).changed_since("contacts", Cursor())

    assert not error.value.permanent


# ----- auth
def test_a_rejected_api_token_is_permanent(pipedrive):
    with pytest.raises(ConnectorError, match="API token") as error:
        connector(pipedrive, api_token="revoked").changed_since("contacts", Cursor())

    assert error.value.permanent


def oauth(fake, expires_in=3599, **overrides) -> dict:
    tokens = fake.issue_oauth_tokens(expires_in=expires_in)
    return {
        "access_token": tokens["access_token"],
        "refresh_token": tokens["refresh_token"],
        "expires_at": time.time() + expires_in,
        "client_id": "fake-client-id",
        "client_secret": "fake-client-secret",
        "oauth_base_url": fake.url,
        **overrides,
    }


def test_it_refreshes_an_oauth_token_before_it_expires_and_keeps_the_api_domain(pipedrive):
    saved = []
    credentials = oauth(pipedrive, expires_in=10)  # inside the refresh margin

    connector(pipedrive, saved, **credentials).changed_since("contacts", Cursor())

    assert pipedrive.paths("POST")[0] == "/oauth/token"
    assert saved[-1]["access_token"] != credentials["access_token"]
    assert saved[-1]["expires_at"] > time.time() + 3000
    assert saved[-1]["api_domain"] == pipedrive.url


def test_it_refreshes_on_a_401_and_retries_once(pipedrive):
    saved = []
    credentials = oauth(pipedrive)
    pipedrive.expire_tokens()  # the server says expired though our clock says not yet

    page = connector(pipedrive, saved, **credentials).changed_since("contacts", Cursor())

    assert len(page.records) == 500
    assert pipedrive.paths("POST").count("/oauth/token") == 1 and len(saved) == 1


def test_a_refused_refresh_is_permanent_with_a_clear_reason(pipedrive):
    credentials = oauth(pipedrive, expires_at=0, refresh_token="refresh:revoked")

    with pytest.raises(ConnectorError, match="Refreshing the Pipedrive OAuth token") as error:
        connector(pipedrive, **credentials).changed_since("contacts", Cursor())

    assert error.value.permanent and "invalid_grant" in str(error.value)


def test_it_connects_through_oauth_and_then_calls_the_company_api_domain(pipedrive):
    saved = []
    app = {
        "client_id": "fake-client-id",
        "client_secret": "fake-client-secret",
        "oauth_base_url": pipedrive.url,
    }
    config = ConnectionConfig(1, app, {"objects": ["contacts"]})  # no base_url: api_domain it is
    pipedrive_connector = PipedriveConnector(config, saved.append)

    url = urlsplit(pipedrive_connector.authorization_url(state="s-1", redirect_uri=REDIRECT_URI))
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert url.path == "/oauth/authorize"
    assert query == {"client_id": "fake-client-id", "redirect_uri": REDIRECT_URI, "state": "s-1"}
    pipedrive_connector.connect(code=pipedrive.authorize(REDIRECT_URI), redirect_uri=REDIRECT_URI)
    page = pipedrive_connector.changed_since("contacts", Cursor())

    assert saved[-1]["api_domain"] == pipedrive.url and saved[-1]["refresh_token"]
    assert len(page.records) == 500
    assert page.records[0].crm_url.startswith(pipedrive.url + "/person/")


# ----- write side
def test_it_finds_the_agents_active_user_by_email(pipedrive):
    pipedrive_connector = connector(pipedrive)

    user = pipedrive_connector.find_user("Priya.Shah@example.com")

    assert (user.external_id, user.name) == ("11", "Priya Shah")
    assert pipedrive_connector.find_user("nobody@example.com") is None
    assert pipedrive_connector.find_user("gone@example.com") is None  # deactivated
    assert pipedrive.queries("/api/v1/users/find")[0]["search_by_email"] == ["1"]


def test_it_logs_a_call_as_a_call_log_linked_to_the_person_and_user_in_seconds(pipedrive):
    remote_id = connector(pipedrive).log_call(call(notes="Asked about pricing"))

    stored = pipedrive.call_logs[remote_id]
    assert stored["outcome"] == "connected" and stored["duration"] == "95"
    assert (stored["person_id"], stored["user_id"]) == (3, 11)
    assert (stored["start_time"], stored["end_time"]) == (
        "2024-03-05 17:02:11",
        "2024-03-05 17:03:46",
    )
    assert stored["to_phone_number"] == "+442045205757"
    assert "Asked about pricing" in stored["note"] and "c-91" in stored["note"]


def test_a_call_with_an_organization_links_the_call_log_to_it(pipedrive):
    remote_id = connector(pipedrive).log_call(call(contact_external_id="org:2", outcome="busy"))

    stored = pipedrive.call_logs[remote_id]
    assert stored["org_id"] == 2 and "person_id" not in stored and stored["outcome"] == "busy"


def test_updating_a_call_log_edits_its_activity_without_a_second_record(pipedrive):
    pipedrive_connector = connector(pipedrive)
    remote_id = pipedrive_connector.log_call(call())

    pipedrive_connector.update_call_log(
        remote_id, call(notes="Summary: renewal in May", recording_url="https://rec.example/9")
    )

    assert list(pipedrive.call_logs) == [remote_id]
    (activity,) = pipedrive.activities.values()
    assert "activity_id" not in pipedrive.call_logs[remote_id]  # not promised: the fake omits it
    assert activity["id"] == pipedrive.call_log_activities[remote_id]
    assert "Summary: renewal in May" in activity["note"]
    assert "https://rec.example/9" in activity["note"]


def test_a_user_who_may_not_log_calls_for_others_logs_them_as_itself_naming_the_agent(
    make_pipedrive,
):
    fake = make_pipedrive(persons=5, admin=False)  # the token's user is 11, not an admin
    pipedrive_connector = connector(fake)

    remote_id = pipedrive_connector.log_call(call(owner_user_id="12"))
    pipedrive_connector.update_call_log(remote_id, call(owner_user_id="12", notes="Renewal"))

    stored = fake.call_logs[remote_id]
    assert stored["user_id"] == 11 and stored["person_id"] == 3
    assert "Agent: Mehmet Yilmaz &lt;mehmet@example.com&gt;" in stored["note"]
    activity = fake.activities[fake.call_log_activities[remote_id]]
    assert "Renewal" in activity["note"] and "Agent: Mehmet Yilmaz" in activity["note"]
    assert [r for r in fake.paths("POST") if r.endswith("/callLogs")] == ["/api/v1/callLogs"] * 2


def test_updating_a_call_log_that_is_gone_is_a_permanent_error(pipedrive):
    with pytest.raises(ConnectorError) as error:
        connector(pipedrive).update_call_log("0" * 32, call())

    assert error.value.permanent


def test_a_missed_call_creates_an_open_call_activity_due_at_the_call(pipedrive):
    remote_id = connector(pipedrive).create_task(call(outcome="missed", duration_seconds=0))

    activity = pipedrive.activities[int(remote_id)]
    assert activity["type"] == "call" and activity["done"] is False
    assert (activity["due_date"], activity["due_time"]) == ("2024-03-05", "17:02")
    assert activity["person_id"] == 3 and activity["owner_id"] == 11


def test_it_creates_a_person_for_an_unknown_number_that_search_then_finds(pipedrive):
    pipedrive_connector = connector(pipedrive)

    record = pipedrive_connector.create_contact(e164="+447700900999", name="")

    stored = pipedrive.records["persons"][int(record.external_id)]
    assert stored.fields["name"] == "+447700900999"
    (phone,) = stored.fields["phones"]
    assert phone == {"value": "+447700900999", "primary": True, "label": "mobile"}
    found = pipedrive_connector.find_by_phone("+447700900999")
    assert [r.external_id for r in found] == [record.external_id]
