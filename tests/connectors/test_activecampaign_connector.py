"""The ActiveCampaign connector against the strict fake over HTTP: sync, search, users, writes."""

import time
from datetime import UTC, datetime

import pytest

from connectors.activecampaign.connector import CLOCK_MARGIN_MS, ActiveCampaignConnector
from connectors.interface import CallLogEntry, ConnectionConfig, ConnectorError, Cursor
from connectors.pacing import RateLimit
from fakes.activecampaign import FakeActiveCampaign, Fault

pytestmark = pytest.mark.django_db  # the per-connection request budget lives in the cache

CONTACTS = 250


@pytest.fixture
def make_activecampaign(start_fake):
    def make(**options):
        return start_fake(FakeActiveCampaign, **{"retry_after": 1, **options})

    return make


@pytest.fixture
def activecampaign(make_activecampaign) -> FakeActiveCampaign:
    return make_activecampaign(contacts=CONTACTS)


def connector(fake, **credentials) -> ActiveCampaignConnector:
    config = ConnectionConfig(
        connection_id=1,
        credentials={"api_url": fake.url, "api_token": next(iter(fake.api_tokens)), **credentials},
        settings={"objects": ["contacts"]},
    )
    return ActiveCampaignConnector(config, lambda credentials: None)


def all_changes(ac_connector, cursor=None):
    cursor, ids, pages = cursor or Cursor(), [], 0
    while True:
        page = ac_connector.changed_since("contacts", cursor)
        ids += [r.external_id for r in page.records]
        cursor, pages = Cursor.from_json(page.cursor.as_json()), pages + 1  # as stored
        if page.done:
            return ids, cursor, pages


def at_ms(*parts: int) -> int:
    return int(datetime(*parts, tzinfo=UTC).timestamp() * 1000)


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
        "owner_user_id": "1",
    }
    return CallLogEntry(**{**defaults, **fields})


# ----- sync
def test_it_reads_every_contact_once_in_id_order_100_a_page(activecampaign):
    before = int(time.time() * 1000)
    ids, cursor, pages = all_changes(connector(activecampaign))

    assert ids == [str(i) for i in range(1, CONTACTS + 1)] and pages == 3
    queries = activecampaign.queries("/api/3/contacts")
    assert all(q["orders[id]"] == ["ASC"] and q["limit"] == ["100"] for q in queries)
    assert [q.get("id_greater") for q in queries] == [None, ["100"], ["200"]]
    assert "filters[updated_after]" not in queries[0]  # the first run reads everything
    # The next run starts where this listing started (less the clock margin).
    assert before - CLOCK_MARGIN_MS <= cursor.since_ms <= time.time() * 1000 - CLOCK_MARGIN_MS
    assert cursor.after is None


def test_it_never_asks_for_more_than_the_100_a_page_allowed(make_activecampaign):
    fake = make_activecampaign(contacts=CONTACTS, over_limit="error")  # a bigger one: 422

    ids, _, _ = all_changes(connector(fake))

    assert len(ids) == CONTACTS


def test_a_saved_cursor_resumes_on_the_next_page_without_duplicates(activecampaign):
    first = connector(activecampaign).changed_since("contacts", Cursor())
    saved = Cursor.from_json(first.cursor.as_json())

    rest, _, _ = all_changes(connector(activecampaign), cursor=saved)

    seen = [r.external_id for r in first.records] + rest
    assert seen == [str(i) for i in range(1, CONTACTS + 1)]


def test_a_contact_edited_behind_the_keyset_mid_sync_is_read_by_the_next_run(activecampaign):
    ac_connector = connector(activecampaign)
    first = ac_connector.changed_since("contacts", Cursor())
    activecampaign.touch([5])  # already read: id 5 is behind id_greater=100

    ids, cursor, _ = all_changes(ac_connector, cursor=first.cursor)
    assert "5" not in ids
    again, _, _ = all_changes(connector(activecampaign), cursor=cursor)

    assert again == ["5"]


def test_a_listing_resumed_hours_later_still_ends_where_it_started(activecampaign):
    # Whatever changed after the listing began may be behind the keyset: the next run starts
    # from the listing's start, not from when its last page came.
    started = at_ms(2024, 3, 5, 9, 0)
    resumed = Cursor(since_ms=0, after="100", seen_in_window=100, max_seen_ms=started)

    _, cursor, _ = all_changes(connector(activecampaign), cursor=resumed)

    assert cursor.since_ms == started


def test_the_next_run_keeps_only_what_changed_since_of_the_days_it_rereads(activecampaign):
    _, cursor, _ = all_changes(connector(activecampaign))
    activecampaign.touch([7, 200])
    activecampaign.touch([8], at_ms=cursor.since_ms - 3600_000)  # in the days re-read: seen

    ids, next_cursor, pages = all_changes(connector(activecampaign), cursor=cursor)

    assert ids == ["7", "200"] and pages == 1
    day = datetime.fromtimestamp(cursor.since_ms / 1000, UTC).date()
    sent = activecampaign.queries("/api/3/contacts")[-1]["filters[updated_after]"][0]
    assert (day - datetime.fromisoformat(sent).date()).days == 2
    assert next_cursor.since_ms >= cursor.since_ms


def test_an_edit_late_in_the_evening_in_the_accounts_zone_is_not_lost(activecampaign):
    # The cursor is 02:00 UTC on 03-05 (03-04 evening at UTC-5); the contact changes at 02:30.
    activecampaign.touch([9], at_ms=at_ms(2024, 3, 5, 2, 30))

    ids, _, _ = all_changes(connector(activecampaign), cursor=Cursor(at_ms(2024, 3, 5, 2, 0)))

    assert ids == ["9"]


def test_it_lists_every_live_id_for_the_full_diff(activecampaign):
    activecampaign.delete([3, 120])

    pages = list(connector(activecampaign).all_ids("contacts"))

    ids = [i for page in pages for i in page]
    assert ids == [str(i) for i in range(1, CONTACTS + 1) if i not in (3, 120)]
    assert [len(page) for page in pages] == [100, 100, 48]


def test_it_finds_contacts_by_phone_in_the_forms_people_type(activecampaign):
    activecampaign.contacts[3].phone = "+44 20 7946 0018"
    activecampaign.contacts[4].phone = "020 7946 0018"
    activecampaign.contacts[5].phone = "+44 20 7946 00189"  # starts the same: another number
    activecampaign.contacts[6].phone = "2079460018"

    found = connector(activecampaign).find_by_phone("+442079460018")

    assert sorted(r.external_id for r in found) == ["3", "4", "6"]
    searched = [q["phone"][0] for q in activecampaign.queries("/api/3/contacts")]
    assert "+442079460018" in searched and "020 7946 0018" in searched


# ----- users
def test_it_lists_users_and_finds_the_agents_user_by_email(activecampaign):
    ac_connector = connector(activecampaign)

    users = ac_connector.users()
    priya = ac_connector.find_user("Priya.Shah@example.com")

    assert [(u.external_id, u.email) for u in users] == [
        ("1", "priya.shah@example.com"),
        ("2", "mehmet@example.com"),
    ]
    assert priya is not None and (priya.external_id, priya.name) == ("1", "Priya Shah")
    assert ac_connector.find_user("nobody@example.com") is None


# ----- errors and limits
def test_a_refused_api_token_is_permanent(activecampaign):
    with pytest.raises(ConnectorError, match="403") as error:
        connector(activecampaign, api_token="wrong").changed_since("contacts", Cursor())

    assert error.value.permanent


def test_the_api_url_may_be_given_with_its_api_3_path(activecampaign):
    ac_connector = connector(activecampaign, api_url=f"{activecampaign.url}/api/3/")

    assert ac_connector.find_user("mehmet@example.com") is not None


def test_it_paces_itself_to_5_requests_a_second_instead_of_hitting_429(activecampaign):
    ac_connector = connector(activecampaign)
    started = time.monotonic()

    for _ in range(12):
        ac_connector.users()

    assert time.monotonic() - started >= 2  # 5 at once, then 5 a second: the 11th after 2 s
    assert activecampaign.rate_limited == 0
    assert ac_connector.rate_limit_waits == 0  # no 429 waited out
    assert ac_connector.client.rate_limits["requests"] == RateLimit(5, 1)


def test_a_429_is_retried_after_retry_after(activecampaign):
    activecampaign.inject(Fault(times=1, status=429, retry_after="1"))
    ac_connector = connector(activecampaign)

    started = time.monotonic()
    ids, _, _ = all_changes(ac_connector)

    assert len(ids) == CONTACTS and time.monotonic() - started >= 1
    assert ac_connector.rate_limit_waits >= 1


def test_a_long_retry_after_ends_the_run_with_when_to_come_back(activecampaign):
    activecampaign.inject(Fault(times=1, status=429, retry_after="120"))

    with pytest.raises(ConnectorError) as error:
        connector(activecampaign).changed_since("contacts", Cursor())

    assert not error.value.permanent and error.value.retry_after == 120


def test_a_5xx_is_retried_then_succeeds(activecampaign):
    activecampaign.inject(Fault(times=1, status=502, path_contains="/contacts"))

    ids, _, _ = all_changes(connector(activecampaign))

    assert len(ids) == CONTACTS


# ----- call logging
def test_a_call_is_a_note_on_the_contact_naming_the_agent(activecampaign):
    remote_id = connector(activecampaign).log_call(call(notes="Wants a quote."))

    note = activecampaign.notes[remote_id]
    assert (note["relid"], note["reltype"], note["userid"]) == ("3", "Subscriber", "1")
    assert "Agent: Priya Shah <priya.shah@example.com>" in note["note"]
    assert "Wants a quote." in note["note"]
    assert note["note"].endswith("CallBridge call c-91")


def test_updating_a_call_changes_the_same_note(activecampaign):
    ac_connector = connector(activecampaign)
    remote_id = ac_connector.log_call(call())

    ac_connector.update_call_log(remote_id, call(notes="Call back Friday."))

    assert list(activecampaign.notes) == [remote_id]
    assert "Call back Friday." in activecampaign.notes[remote_id]["note"]


def test_updating_a_note_that_is_gone_is_a_permanent_error(activecampaign):
    with pytest.raises(ConnectorError, match="No Result found for Note") as error:
        connector(activecampaign).update_call_log("99", call())

    assert error.value.permanent


def test_a_missed_call_is_an_open_call_task_on_the_contact_assigned_to_the_agent(
    activecampaign,
):
    missed = call(outcome="missed", duration_seconds=0, owner_user_id="2")

    remote_id = connector(activecampaign).create_task(missed)

    task = activecampaign.tasks[remote_id]
    assert (task["relid"], task["owner"]["type"], task["status"]) == ("3", "contact", 0)
    assert (task["dealTasktype"], task["assignee"]) == ("1", "2")  # the "Call" type
    assert task["duedate"] == "2024-03-05T12:02:11-05:00"
    assert activecampaign.notes == {}


def test_without_a_call_task_type_a_missed_call_task_fails_permanently(activecampaign):
    activecampaign.task_types = [t for t in activecampaign.task_types if t["title"] != "Call"]

    with pytest.raises(ConnectorError, match='no "Call" task type') as error:
        connector(activecampaign).create_task(call(outcome="missed"))

    assert error.value.permanent and activecampaign.tasks == {}


def test_a_call_from_no_contact_cannot_be_logged_and_says_how_to_fix_it(activecampaign):
    with pytest.raises(ConnectorError, match="create_unknown_contacts") as error:
        connector(activecampaign).log_call(call(contact_external_id=None))

    assert error.value.permanent and activecampaign.notes == {}


def test_it_creates_a_phone_only_contact_that_search_then_finds(activecampaign):
    ac_connector = connector(activecampaign)

    created = ac_connector.create_contact(e164="+447400999888", name="Ada King")

    assert (created.first_name, created.last_name) == ("Ada", "King")
    found = ac_connector.find_by_phone("+447400999888")
    assert [r.external_id for r in found] == [created.external_id]


def test_a_lost_note_create_cannot_be_looked_up(activecampaign):
    ac_connector = connector(activecampaign)
    ac_connector.log_call(call())

    assert ac_connector.find_logged("c-91") is None
    assert ac_connector.find_logged("c-91", task=True) is None
