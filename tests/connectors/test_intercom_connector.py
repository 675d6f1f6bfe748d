"""The Intercom connector against the strict fake over real HTTP: search, scroll, limits, notes."""

import time
from datetime import UTC, datetime
from functools import partial
from urllib.parse import parse_qs, urlsplit

import pytest

from connectors.intercom.connector import IntercomConnector
from connectors.interface import CallLogEntry, ConnectionConfig, ConnectorError, Cursor
from connectors.pacing import RateLimit
from fakes.intercom import FakeIntercom, Fault
from fakes.intercom_data import ADMINS, contact_id

pytestmark = pytest.mark.django_db  # request budgets live in the cache

REDIRECT_URI = "https://callbridge.example.com/api/v1/connections/oauth/callback"
TOKEN = {"access_token": "ic-fake-access-token"}
PRIYA = ADMINS[0]["id"]
DAY = 86_400


@pytest.fixture
def make_intercom(start_fake):
    return partial(start_fake, FakeIntercom)


@pytest.fixture
def intercom(make_intercom) -> FakeIntercom:
    return make_intercom(contacts=450, companies=120)


def connector(fake, saved=None, objects=("contacts",), settings=None, **credentials):
    config = ConnectionConfig(
        connection_id=1,
        credentials={"base_url": fake.url, **(credentials or TOKEN)},
        settings={"objects": list(objects), **(settings or {})},
    )
    return IntercomConnector(config, (saved if saved is not None else []).append)


def all_changes(intercom_connector, object_type="contacts", cursor=None):
    cursor, ids, pages = cursor or Cursor(), [], 0
    while True:
        page = intercom_connector.changed_since(object_type, cursor)
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
        "contact_external_id": contact_id(3),
        "owner_user_id": PRIYA,
    }
    return CallLogEntry(**{**defaults, **fields})


def search_bodies(fake):
    return fake.bodies("/contacts/search")


# ----- contacts: search on updated_at
def test_it_reads_every_contact_by_updated_at_with_the_cursor_in_the_body(intercom):
    ids, cursor, pages = all_changes(connector(intercom))

    assert set(ids) == set(intercom.contacts) and pages == 3
    first, second = search_bodies(intercom)[:2]
    assert first == {
        "query": {"field": "updated_at", "operator": ">", "value": 0},
        "pagination": {"per_page": 150},
        "sort": {"field": "updated_at", "order": "ascending"},
    }
    assert second["pagination"]["starting_after"]  # the cursor travels in the body
    latest = max(c["updated_at"] for c in intercom.contacts.values())
    assert cursor.max_seen_ms == latest * 1000 and cursor.after is None
    assert cursor.since_ms == latest * 1000 - 600_000  # the search lag is read again
    assert all(not query for _, path, query, _ in intercom.requests if path == "/contacts/search")


def test_every_request_pins_the_intercom_version(intercom, monkeypatch):
    sent = []
    intercom_connector = connector(intercom)
    original = intercom_connector.client.send
    monkeypatch.setattr(
        intercom_connector.client,
        "send",
        lambda *a, **k: sent.append(k["headers"]) or original(*a, **k),
    )

    intercom_connector.changed_since("contacts", Cursor())
    intercom_connector.users()

    assert [h["Intercom-Version"] for h in sent] == ["2.11", "2.11"]


def test_a_contact_edited_while_we_page_is_read_again_never_skipped(intercom):
    intercom_connector = connector(intercom)
    first = intercom_connector.changed_since("contacts", Cursor())
    read = [r.external_id for r in first.records]
    unread = next(i for i in sorted(intercom.contacts) if i not in read)
    intercom.touch([unread, read[0]])  # both move behind every other

    ids, cursor, _ = all_changes(intercom_connector, cursor=first.cursor)

    assert unread in ids and read[0] in ids  # read again, with its new updated_at
    assert set(read) | set(ids) == set(intercom.contacts)
    assert cursor.max_seen_ms == intercom.contacts[unread]["updated_at"] * 1000


def test_the_next_run_asks_from_the_day_before_and_keeps_what_changed_since(intercom):
    intercom_connector = connector(intercom)
    _, cursor, _ = all_changes(intercom_connector)
    edited = sorted(intercom.contacts)[:2]
    intercom.touch(edited)

    ids, _, _ = all_changes(intercom_connector, cursor=cursor)

    since = cursor.since_ms // 1000
    assert search_bodies(intercom)[-1]["query"]["value"] == since - DAY
    lag = {i for i, c in intercom.contacts.items() if since <= c["updated_at"]}  # read again
    assert set(ids) == set(edited) | lag and len(lag) == 4


@pytest.mark.parametrize("offset_hours", [-11, 0, 13])
def test_days_in_the_workspaces_time_zone_lose_nothing(make_intercom, offset_hours):
    fake = make_intercom(contacts=300, workspace_utc_offset=offset_hours * 3600)
    times = sorted(c["updated_at"] for c in fake.contacts.values())
    cursor = Cursor(since_ms=times[150] * 1000)

    ids, _, _ = all_changes(connector(fake), cursor=cursor)

    wanted = {i for i, c in fake.contacts.items() if c["updated_at"] >= times[150]}
    assert set(ids) == wanted


def test_a_contact_late_into_search_is_read_by_the_next_run(make_intercom):
    fake = make_intercom(contacts=20, search_lag_seconds=1.0)
    intercom_connector = connector(fake)
    created = intercom_connector.create_contact(e164="+447400123456", name="Ada Lovelace")
    fake.search_lag_seconds = 0
    fake.touch([contact_id(1)], at=int(time.time()) + 1)  # seen at once, and newer

    first, cursor, _ = all_changes(intercom_connector)
    time.sleep(1.1)
    then, _, _ = all_changes(intercom_connector, cursor=cursor)

    assert created.external_id not in first and created.external_id in then


def test_a_stale_search_cursor_is_refused(intercom):
    intercom_connector = connector(intercom)

    with pytest.raises(ConnectorError) as refused:
        intercom_connector.changed_since("contacts", Cursor(after="bm90LWEtY3Vyc29y"))

    assert refused.value.permanent and "starting_after" in str(refused.value)


def test_contacts_carry_role_owner_and_custom_attributes(intercom):
    intercom_connector = connector(intercom, settings={"custom_fields": ["tier"]})

    page = intercom_connector.changed_since("contacts", Cursor())

    by_id = {r.external_id: r for r in page.records}
    row = next(c for c in intercom.contacts.values() if c["id"] in by_id and c["owner_id"])
    record = by_id[row["id"]]
    assert record.owner_id == str(row["owner_id"])
    assert record.custom_fields["role"] == row["role"]
    assert record.crm_url.endswith(f"/users/{row['id']}/all-conversations")


# ----- companies: the scroll
def test_companies_come_from_one_scroll_to_its_empty_page(intercom):
    ids, cursor, pages = all_changes(connector(intercom, objects=("companies",)), "companies")

    assert set(ids) == {f"company:{i}" for i in intercom.companies}
    assert pages == 4  # 50, 50, 20, then the empty page that ends it
    assert cursor.after is None and intercom.scroll is None
    params = [q for _, p, q, _ in intercom.requests if p == "/companies/scroll"]
    assert params[0] == {} and all(q["scroll_param"] for q in params[1:])


def test_a_scroll_unused_for_a_minute_starts_again(make_intercom):
    fake = make_intercom(companies=120, scroll_idle_seconds=0.2)
    intercom_connector = connector(fake, objects=("companies",))
    first = intercom_connector.changed_since("companies", Cursor())
    time.sleep(0.3)  # the next task came after the scroll expired

    ids, _, _ = all_changes(intercom_connector, "companies", cursor=first.cursor)

    assert set(ids) == {f"company:{i}" for i in fake.companies}


def test_the_scrolls_documented_500_restarts_it(intercom):
    intercom_connector = connector(intercom, objects=("companies",))
    first = intercom_connector.changed_since("companies", Cursor())
    intercom.fail_scroll()

    ids, _, _ = all_changes(intercom_connector, "companies", cursor=first.cursor)

    assert set(ids) == {f"company:{i}" for i in intercom.companies}


def test_another_open_scroll_is_waited_out(intercom):
    connector(intercom, objects=("companies",)).changed_since("companies", Cursor())

    with pytest.raises(ConnectorError) as busy:
        connector(intercom, objects=("companies",)).changed_since("companies", Cursor())

    assert not busy.value.permanent and busy.value.retry_after == 60


def test_the_next_companies_run_keeps_only_what_changed(intercom):
    intercom_connector = connector(intercom, objects=("companies",))
    _, cursor, _ = all_changes(intercom_connector, "companies")
    changed = sorted(intercom.companies)[5]
    intercom.companies[changed]["updated_at"] = int(time.time())

    ids, _, _ = all_changes(intercom_connector, "companies", cursor=cursor)

    since = cursor.since_ms // 1000
    lag = {f"company:{i}" for i, c in intercom.companies.items() if since <= c["updated_at"]}
    assert set(ids) == lag and f"company:{changed}" in lag and len(lag) == 12


# ----- full diff
def test_it_lists_every_live_id_for_the_full_diff(intercom):
    intercom.delete([contact_id(7)])
    intercom_connector = connector(intercom, objects=("contacts", "companies"))

    contacts = [i for page in intercom_connector.all_ids("contacts") for i in page]
    companies = [i for page in intercom_connector.all_ids("companies") for i in page]

    assert sorted(contacts) == sorted(intercom.contacts) and len(contacts) == 449
    assert set(companies) == {f"company:{i}" for i in intercom.companies}
    listing = [q for _, p, q, _ in intercom.requests if p == "/contacts"]
    assert listing[0] == {"per_page": ["150"]} and listing[1]["starting_after"]


def test_a_scroll_lost_during_the_full_diff_fails_the_listing(intercom):
    intercom_connector = connector(intercom, objects=("companies",))
    listing = intercom_connector.all_ids("companies")
    next(listing)
    intercom.fail_scroll()

    with pytest.raises(ConnectorError):
        list(listing)


# ----- phone lookup and users
def test_it_finds_contacts_by_phone_in_the_formats_people_type(make_intercom):
    fake = make_intercom(contacts=3)
    stored = {1: "+44 20 7946 0018", 2: "020 7946 0018", 3: "+44 20 7946 0019"}
    for n, number in stored.items():
        fake.contacts[contact_id(n)]["phone"] = number
        fake.contacts[contact_id(n)]["location"]["country"] = None
        fake.touch([contact_id(n)])  # indexed again with the number

    found = connector(fake).find_by_phone("+442079460018")

    assert sorted(r.external_id for r in found) == [contact_id(1), contact_id(2)]
    query = search_bodies(fake)[-1]["query"]
    assert query["operator"] == "OR" and len(query["value"]) <= 15
    assert {"field": "phone", "operator": "=", "value": "+442079460018"} in query["value"]


def test_it_finds_the_agents_admin_by_email_from_one_listing(intercom):
    intercom_connector = connector(intercom)

    assert intercom_connector.find_user("PRIYA.SHAH@example.com").external_id == PRIYA
    assert intercom_connector.find_user("nobody@example.com") is None
    assert [u.email for u in intercom_connector.users()] == [a["email"] for a in ADMINS]
    assert intercom.paths("GET").count("/admins") == 1


# ----- errors and limits
def test_a_rejected_token_is_a_permanent_error(intercom):
    with pytest.raises(ConnectorError) as refused:
        connector(intercom, access_token="revoked").users()

    assert refused.value.permanent
    assert "unauthorized: Access Token Invalid" in str(refused.value)


def test_it_retries_a_500_then_succeeds(intercom):
    intercom.inject(Fault("status", times=1, status=500, path_contains="/contacts/search"))

    page = connector(intercom).changed_since("contacts", Cursor())

    assert len(page.records) == 150


def test_a_429_waits_for_the_windows_reset_and_goes_on(make_intercom):
    fake = make_intercom(contacts=450, requests_per_window=2, window_seconds=1.0)
    intercom_connector = connector(fake)

    ids, _, _ = all_changes(intercom_connector)
    intercom_connector.users()

    assert set(ids) == set(fake.contacts)
    assert intercom_connector.rate_limit_waits >= 1


def test_it_paces_itself_under_the_apps_limit_instead_of_hitting_it(make_intercom):
    fake = make_intercom(contacts=450, requests_per_window=2, window_seconds=1.0)
    intercom_connector = connector(fake, settings={"rate_limits": {"requests": [2, 1]}})

    ids, _, _ = all_changes(intercom_connector)

    assert set(ids) == set(fake.contacts)
    assert intercom_connector.rate_limit_waits == 0  # no 429
    assert connector(fake).client.rate_limits["requests"] == RateLimit(1666, 10)  # by default


def test_an_unknown_contact_is_a_permanent_error(intercom):
    with pytest.raises(ConnectorError) as refused:
        connector(intercom).log_call(call(contact_external_id="6650ffffffffffffffffffff"))

    assert refused.value.permanent and "User Not Found" in str(refused.value)


def test_base_url_must_be_one_of_intercoms_regions():
    check = IntercomConnector.check_config
    check({"base_url": "https://api.eu.intercom.io"}, {})
    with pytest.raises(ValueError, match="base_url"):
        check({"base_url": "https://api.evil.intercom.io"}, {})
    with pytest.raises(ValueError, match="custom_fields"):
        check({}, {"custom_fields": "tier"})


# ----- OAuth
def test_it_connects_through_oauth_with_a_token_that_never_expires(intercom):
    saved = []
    app = {"client_id": "fake-client-id", "client_secret": "fake-client-secret"}
    intercom_connector = connector(intercom, saved, **app)

    url = urlsplit(intercom_connector.authorization_url(state="s-1", redirect_uri=REDIRECT_URI))
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert (url.netloc, url.path) == ("app.intercom.com", "/oauth")  # the fake is no region
    assert query == {"client_id": "fake-client-id", "redirect_uri": REDIRECT_URI, "state": "s-1"}
    intercom_connector.connect(code=intercom.authorize(REDIRECT_URI), redirect_uri=REDIRECT_URI)

    assert saved[-1]["access_token"] in intercom.tokens and not saved[-1]["refresh_token"]
    assert intercom_connector.find_user("mehmet@example.com") is not None


# ----- calls: notes, which cannot be updated
def test_a_call_is_a_note_on_the_contact_by_the_agents_admin(intercom):
    note_id = connector(intercom).log_call(call(notes="Wants <b>40</b> units."))

    (note,) = intercom.notes_of(contact_id(3))
    assert note["id"] == note_id and note["author"]["id"] == PRIYA
    assert note["body"].startswith("<p>Inbound call</p><p>Outcome: answered; duration 1:35</p>")
    assert "<p>Wants &lt;b&gt;40&lt;/b&gt; units.</p>" in note["body"]
    assert "<p>Agent: Priya Shah &lt;priya.shah@example.com&gt;</p>" in note["body"]
    assert note["body"].endswith("<p>CallBridge call c-91</p>")


def test_a_later_change_is_a_second_note_the_first_stays_as_it_was(intercom):
    intercom_connector = connector(intercom)
    note_id = intercom_connector.log_call(call())
    first = dict(intercom.notes[note_id])

    later = call(notes="Call back on Friday.", recording_url="https://pbx.example.com/r/1")
    intercom_connector.update_call_log(note_id, later)
    intercom_connector.update_call_log(note_id, later)  # nothing new: no third note

    original, update = intercom.notes_of(contact_id(3))
    assert original == first
    assert update["body"].startswith("<p>Update to CallBridge call c-91:</p>")
    assert "<p>Call back on Friday.</p>" in update["body"]
    assert "Recording: https://pbx.example.com/r/1" in update["body"]
    assert intercom.paths("PUT") == [] and intercom.paths("PATCH") == []


def test_a_note_an_earlier_attempt_left_is_found_not_posted_again(intercom):
    lost = Fault("lost_answer", times=1, status=502, path_contains="/notes", method="POST")
    intercom.inject(lost)
    intercom_connector = connector(intercom)
    with pytest.raises(ConnectorError):
        intercom_connector.log_call(call())

    note_id = intercom_connector.log_call(call())

    assert [n["id"] for n in intercom.notes_of(contact_id(3))] == [note_id]
    assert intercom_connector.find_logged("c-91") is None  # the contact's notes are read instead


def test_a_call_without_a_contact_cannot_be_a_note(intercom):
    with pytest.raises(ConnectorError) as refused:
        connector(intercom).log_call(call(contact_external_id=None))

    assert refused.value.permanent and "create_unknown_contacts" in str(refused.value)
    assert intercom.notes == {}


def test_a_missed_call_opens_a_conversation_from_the_contact(intercom):
    intercom_connector = connector(intercom)
    missed = call(outcome="missed", duration_seconds=0)

    conversation_id = intercom_connector.create_task(missed)

    conversation = intercom.conversations[conversation_id]
    contact = intercom.contacts[contact_id(3)]
    assert conversation["source"]["author"] == {"type": contact["role"], "id": contact["id"]}
    assert conversation["source"]["body"].startswith("Missed call from +442079460018 at")
    assert conversation["state"] == "open" and intercom.notes == {}
    assert intercom_connector.find_logged("c-91", task=True) == conversation_id
    assert intercom_connector.find_logged("c-92", task=True) is None


def test_an_unknown_caller_becomes_a_lead_search_then_finds(intercom):
    intercom_connector = connector(intercom)

    created = intercom_connector.create_contact(e164="+447400999888", name="")

    assert intercom.contacts[created.external_id]["role"] == "lead"
    assert [r.external_id for r in intercom_connector.find_by_phone("+447400999888")] == [
        created.external_id
    ]
