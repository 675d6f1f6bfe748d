"""The SugarCRM connector against the strict fake over real HTTP: keyset pages, sessions, writes."""

import time
from datetime import UTC, datetime

import pytest

from connectors.interface import CallLogEntry, ConfigError, ConnectionConfig, ConnectorError, Cursor
from connectors.sugarcrm.connector import SugarCrmConnector
from fakes.sugarcrm import FakeSugarCrm, Fault
from fakes.sugarcrm_data import USERS

pytestmark = pytest.mark.django_db  # the per-connection request budget lives in the cache

PRIYA = USERS[1][0]


@pytest.fixture
def make_sugar(start_fake):
    def make(**options) -> FakeSugarCrm:
        return start_fake(FakeSugarCrm, **options)

    return make


@pytest.fixture
def sugar(make_sugar) -> FakeSugarCrm:
    return make_sugar(contacts=250, accounts=20, leads=10)


def credentials(fake: FakeSugarCrm, **overrides) -> dict:
    username, password = next(iter(fake.logins.items()))
    return {"instance_url": fake.url, "username": username, "password": password, **overrides}


def connector(fake, saved=None, objects=("contacts",), **overrides) -> SugarCrmConnector:
    config = ConnectionConfig(
        connection_id=1,
        credentials=credentials(fake, **overrides),
        settings={"objects": list(objects), "custom_fields": ["Contacts.lead_source"]},
        background=False,
    )
    return SugarCrmConnector(config, (saved if saved is not None else []).append)


def all_changes(sugar_connector, object_type="contacts", cursor=None):
    cursor, ids, pages = cursor or Cursor(), [], 0
    while True:
        page = sugar_connector.changed_since(object_type, cursor)
        ids += [r.external_id for r in page.records]
        cursor, pages = page.cursor, pages + 1
        if page.done:
            return ids, cursor, pages


def filters(fake, module="Contacts") -> list[dict]:
    return fake.bodies("POST", f"/rest/v11/{module}/filter")


# ----- reading
def test_it_reads_every_change_in_pages_after_the_last_record_read(make_sugar):
    fake = make_sugar(contacts=250, max_num_cap=100)  # Sugar answers fewer than asked for

    ids, cursor, pages = all_changes(connector(fake))

    assert ids == fake.ordered_ids("Contacts") and pages == 3
    first, second, _ = filters(fake)
    assert (first["order_by"], first["max_num"], first["offset"]) == (
        "date_modified:ASC,id:ASC",
        500,
        0,
    )
    assert first["filter"] == [] and "lead_source" in first["fields"].split(",")
    last = fake.records["Contacts"][ids[99]]
    assert second["offset"] == 0 and second["filter"][0]["$or"][1]["$and"][1] == {
        "id": {"$gt": last.id}
    }
    latest = max(r.modified_s for r in fake.records["Contacts"].values())
    assert cursor == Cursor(since_ms=(latest - 5) * 1000, max_seen_ms=latest * 1000)


def test_a_record_edited_while_we_page_neither_hides_another_nor_is_lost(make_sugar):
    fake = make_sugar(contacts=250, max_num_cap=100)
    sugar_connector = connector(fake)
    first = sugar_connector.changed_since("contacts", Cursor())
    read = [r.external_id for r in first.records]
    unread = fake.ordered_ids("Contacts")[150]
    fake.touch("Contacts", [read[0], unread])  # an offset of 100 would now skip a record

    ids, _, _ = all_changes(sugar_connector, cursor=first.cursor)

    assert set(read) | set(ids) == set(fake.records["Contacts"])
    assert ids[-2:] == sorted([read[0], unread])  # both come again, now the latest


def test_more_records_in_one_second_than_a_page_are_all_read(make_sugar):
    fake = make_sugar(contacts=230, max_num_cap=100)
    fake.touch("Contacts", list(fake.records["Contacts"]), at_s=1_800_000_000)

    ids, _, pages = all_changes(connector(fake))

    assert sorted(ids) == sorted(fake.records["Contacts"]) and pages == 3


def test_the_next_run_asks_only_for_the_last_seconds_and_what_changed(sugar):
    _, cursor, _ = all_changes(connector(sugar))
    latest = max(r.modified_s for r in sugar.records["Contacts"].values())
    recent = {r.id for r in sugar.records["Contacts"].values() if r.modified_s >= latest - 5}
    edited = sugar.ordered_ids("Contacts")[7:9]
    sugar.touch("Contacts", edited)

    ids, _, pages = all_changes(connector(sugar), cursor=cursor)

    assert pages == 1 and set(ids) == set(edited) | recent
    assert len(recent) <= 18  # the overlap's seconds again, not the account
    assert filters(sugar)[-1]["filter"] == [
        {"date_modified": {"$gte": datetime.fromtimestamp(latest - 5, UTC).isoformat()}}
    ]


def test_nothing_new_is_an_empty_last_page_keeping_the_cursor(sugar):
    now_ms = int(time.time() * 1000)

    page = connector(sugar).changed_since("contacts", Cursor(since_ms=now_ms))

    assert page.records == () and page.done and page.cursor.since_ms == now_ms


def test_it_lists_every_live_id_per_module_for_the_full_diff(sugar):
    gone = sugar.ordered_ids("Contacts")[3:5]
    sugar.delete("Contacts", gone)
    sugar_connector = connector(sugar, objects=("contacts", "accounts", "leads"))

    contacts = [i for page in sugar_connector.all_ids("contacts") for i in page]
    accounts = [i for page in sugar_connector.all_ids("accounts") for i in page]
    leads = [i for page in sugar_connector.all_ids("leads") for i in page]

    assert contacts == sorted(sugar.records["Contacts"]) and len(contacts) == 248
    assert len(accounts) == 20 and all(i.startswith("account:") for i in accounts)
    assert len(leads) == 10 and all(i.startswith("lead:") for i in leads)
    assert sugar_connector.object_types() == ("contacts", "accounts", "leads")


def test_the_full_diff_pages_by_id_past_the_servers_cap(make_sugar):
    fake = make_sugar(contacts=230, max_num_cap=100)

    pages = list(connector(fake).all_ids("contacts"))

    assert [len(p) for p in pages] == [100, 100, 30]
    assert filters(fake)[1]["filter"] == [{"id": {"$gt": pages[0][-1]}}]


def test_it_finds_contacts_by_phone_in_any_stored_form_keeping_only_real_matches(make_sugar):
    fake = make_sugar(contacts=4)
    first, second, third, fourth = sorted(fake.records["Contacts"])
    for record_id in (first, second, third, fourth):
        fake.records["Contacts"][record_id].fields.update(
            phone_work="", phone_mobile="", phone_home="", primary_address_country=""
        )
    fake.records["Contacts"][first].fields.update(phone_work="+44 20 7946 0018")
    fake.records["Contacts"][second].fields.update(phone_other="020 7946 0018")
    fake.records["Contacts"][third].fields.update(phone_mobile="+442079460018")
    # The national number alone, on a US contact: +1 207-946-0018, not the caller.
    fake.records["Contacts"][fourth].fields.update(
        phone_home="2079460018", primary_address_country="US"
    )

    found = connector(fake).find_by_phone("+442079460018")

    assert sorted(r.external_id for r in found) == sorted([first, second, third])
    assert connector(fake).find_by_phone("+14155550100") == []


def test_leads_are_searched_when_synced_and_no_contact_matches(sugar):
    lead = sugar.ordered_ids("Leads")[0]
    sugar.records["Leads"][lead].fields.update(
        phone_mobile="07400 123456", primary_address_country=""
    )

    assert connector(sugar).find_by_phone("+447400123456") == []
    found = connector(sugar, objects=("contacts", "leads")).find_by_phone("+447400123456")
    assert [r.external_id for r in found] == [f"lead:{lead}"]


def test_owners_are_the_active_users_with_their_emails(sugar):
    sugar_connector = connector(sugar)

    users = sugar_connector.users()

    assert {u.email for u in users} == {u[4] for u in USERS[:3]}  # Max is Inactive
    assert sugar_connector.find_user("Priya.Shah@Example.com").external_id == PRIYA
    assert sugar_connector.find_user("max.jensen@example.com") is None
    assert sugar.paths().count("/rest/v11/Users/filter") == 1  # listed once


# ----- sessions
def test_it_logs_in_on_its_own_platform_and_keeps_the_tokens(sugar):
    saved = []

    connector(sugar, saved).changed_since("contacts", Cursor())

    (login,) = sugar.bodies("POST", "/rest/v11/oauth2/token")
    assert (login["grant_type"], login["platform"], login["client_id"]) == (
        "password",
        "callbridge",
        "sugar",
    )
    assert saved[-1]["access_token"] and saved[-1]["refresh_token"]
    assert saved[-1]["expires_at"] > time.time() + 3000


def test_it_refreshes_a_token_about_to_expire_with_the_refresh_token(sugar):
    tokens = sugar.login()
    saved = []
    stale = {**tokens, "expires_at": time.time() + 10}

    connector(sugar, saved, **stale).changed_since("contacts", Cursor())

    (refresh,) = sugar.bodies("POST", "/rest/v11/oauth2/token")
    assert refresh["grant_type"] == "refresh_token"
    assert refresh["refresh_token"] == tokens["refresh_token"]
    assert saved[-1]["refresh_token"] != tokens["refresh_token"]  # the refreshed one replaces it


def test_a_rejected_token_is_refreshed_once_and_the_request_sent_again(sugar):
    tokens = sugar.login()
    sugar_connector = connector(sugar, **tokens, expires_at=time.time() + 3000)
    sugar.expire_tokens()  # Sugar says expired though our clock says not yet

    page = sugar_connector.changed_since("contacts", Cursor())

    assert len(page.records) == 250
    grants = [b["grant_type"] for b in sugar.bodies("POST", "/rest/v11/oauth2/token")]
    assert grants == ["refresh_token"]


def test_a_refused_refresh_token_falls_back_to_logging_in_again(sugar):
    saved = []
    stale = {"access_token": "gone", "refresh_token": "expired", "expires_at": 0}

    connector(sugar, saved, **stale).changed_since("contacts", Cursor())

    grants = [b["grant_type"] for b in sugar.bodies("POST", "/rest/v11/oauth2/token")]
    assert grants == ["refresh_token", "password"] and saved[-1]["refresh_token"] != "expired"


def test_a_wrong_password_is_permanent_with_sugars_reason(sugar):
    with pytest.raises(ConnectorError, match="need_login") as error:
        connector(sugar, password="wrong").changed_since("contacts", Cursor())

    assert error.value.permanent and "wrong" not in str(error.value)


def test_an_unregistered_platform_is_permanent_and_says_so(sugar):
    with pytest.raises(ConnectorError, match="platform") as error:
        connector(sugar, platform="not-registered").changed_since("contacts", Cursor())

    assert error.value.permanent


def test_a_session_rejected_again_after_renewing_is_permanent(make_sugar):
    fake = make_sugar(contacts=3, token_seconds=-1)  # every token it issues is dead

    with pytest.raises(ConnectorError, match="401 invalid_grant") as error:
        connector(fake, access_token="x", expires_at=time.time() + 3000).changed_since(
            "contacts", Cursor()
        )

    assert error.value.permanent
    assert len(fake.bodies("POST", "/rest/v11/oauth2/token")) == 1  # renewed once only


def test_check_config_wants_an_instance_url_the_ssrf_guard_allows(settings):
    settings.ALLOW_PRIVATE_URLS = False
    good = {"instance_url": "https://acme.sugarondemand.com", "username": "u", "password": "p"}

    SugarCrmConnector.check_config(good, {})
    with pytest.raises(ConfigError, match="instance_url"):
        SugarCrmConnector.check_config({**good, "instance_url": "http://10.0.0.5"}, {})
    with pytest.raises(ConfigError, match="platform"):
        SugarCrmConnector.check_config({**good, "platform": "call bridge!"}, {})


def test_a_password_connection_has_no_consent_page(sugar):
    with pytest.raises(ConnectorError, match="username and password") as error:
        connector(sugar).authorization_url(state="s", redirect_uri="https://cb/cb")

    assert error.value.permanent


# ----- errors and limits
def test_it_waits_out_a_429_for_its_retry_after(sugar):
    sugar.inject(Fault("status", status=429, retry_after=1, path_contains="/filter"))
    sugar_connector = connector(sugar)
    started = time.monotonic()

    page = sugar_connector.changed_since("contacts", Cursor())

    assert time.monotonic() - started >= 1.0
    assert len(page.records) == 250 and sugar_connector.rate_limit_waits == 1


def test_a_long_rate_limit_ends_the_run_with_its_retry_after(sugar):
    sugar.inject(Fault("status", status=429, retry_after=3600, path_contains="/filter"))

    with pytest.raises(ConnectorError) as error:
        connector(sugar).changed_since("contacts", Cursor())

    assert not error.value.permanent and error.value.retry_after == 3600


def test_it_retries_a_500_then_succeeds(sugar):
    sugar.inject(Fault("status", status=500, path_contains="/filter"))

    page = connector(sugar).changed_since("contacts", Cursor())

    assert len(page.records) == 250 and len(filters(sugar)) == 2


def test_a_module_the_api_user_may_not_read_is_permanent(sugar):
    sugar.forbidden.add(("POST", "Leads"))

    with pytest.raises(ConnectorError, match=r"403 .*not_authorized") as error:
        connector(sugar, objects=("leads",)).changed_since("leads", Cursor())

    assert error.value.permanent


# ----- writing
def call(fake, **fields) -> CallLogEntry:
    values = {
        "call_id": "call-42",
        "direction": "inbound",
        "outcome": "answered",
        "started_at": datetime(2024, 3, 5, 17, 2, 11, tzinfo=UTC),
        "duration_seconds": 125,
        "from_number": "+442079460018",
        "to_number": "+442079460999",
        "contact_external_id": fake.ordered_ids("Contacts")[0],
        "owner_user_id": PRIYA,
        **fields,
    }
    return CallLogEntry(**values)


def test_a_logged_call_is_a_calls_record_on_the_contact_with_a_note(sugar):
    remote_id = connector(sugar).log_call(call(sugar, notes="Asked for a quote."))

    stored = sugar.records["Calls"][remote_id].fields
    assert (stored["direction"], stored["status"]) == ("Inbound", "Held")
    assert (stored["duration_hours"], stored["duration_minutes"]) == (0, 3)
    assert stored["date_start"] == "2024-03-05T17:02:11+00:00"
    assert (stored["parent_type"], stored["parent_id"]) == (
        "Contacts",
        sugar.ordered_ids("Contacts")[0],
    )
    assert stored["assigned_user_id"] == PRIYA
    assert stored["description"].startswith("CallBridge call call-42\nAsked for a quote.")
    (note,) = sugar.records["Notes"].values()
    assert (note.fields["parent_type"], note.fields["parent_id"]) == ("Calls", remote_id)
    assert note.fields["description"] == "Asked for a quote."


def test_a_call_without_notes_has_no_note(sugar):
    connector(sugar).log_call(call(sugar))

    assert len(sugar.records["Calls"]) == 1 and sugar.records["Notes"] == {}


def test_updating_a_call_log_changes_the_same_call_and_note(sugar):
    sugar_connector = connector(sugar)
    remote_id = sugar_connector.log_call(call(sugar))

    sugar_connector.update_call_log(remote_id, call(sugar, notes="Call back Friday."))
    sugar_connector.update_call_log(remote_id, call(sugar, notes="Summary: renewal in May."))

    assert list(sugar.records["Calls"]) == [remote_id]
    assert "Summary: renewal in May." in sugar.records["Calls"][remote_id].fields["description"]
    (note,) = sugar.records["Notes"].values()
    assert note.fields["description"] == "Summary: renewal in May."
    assert sugar.paths("PUT") == [f"/rest/v11/Calls/{remote_id}"] * 2 + [
        f"/rest/v11/Notes/{note.id}"
    ]


def test_a_missed_call_becomes_a_task_for_the_agent(sugar):
    task_id = connector(sugar).create_task(call(sugar, outcome="missed", duration_seconds=0))

    task = sugar.records["Tasks"][task_id].fields
    assert task["name"] == "Missed call from +442079460018: call back"
    assert (task["status"], task["priority"]) == ("Not Started", "High")
    assert (task["date_due"], task["assigned_user_id"]) == ("2024-03-05T17:02:11+00:00", PRIYA)


def test_find_logged_finds_our_call_and_task_by_the_id_opening_the_description(sugar):
    sugar_connector = connector(sugar)
    sugar_connector.log_call(call(sugar, call_id="call-4"))  # a prefix of call-42's marker
    remote_id = sugar_connector.log_call(call(sugar))
    task_id = sugar_connector.create_task(call(sugar, outcome="missed"))

    assert sugar_connector.find_logged("call-42") == remote_id
    assert sugar_connector.find_logged("call-42", task=True) == task_id
    assert sugar_connector.find_logged("call-43") is None


def test_an_unknown_caller_becomes_a_new_contact(sugar):
    record = connector(sugar).create_contact(e164="+442079460777", name="Ada Lovelace")

    stored = sugar.records["Contacts"][record.external_id].fields
    assert (stored["first_name"], stored["last_name"]) == ("Ada", "Lovelace")
    assert record.phones[0].number == "+442079460777" == stored["phone_work"]
    assert record.crm_url == f"{sugar.url}/#Contacts/{record.external_id}"


def test_a_refused_write_is_permanent_with_sugars_label(sugar):
    with pytest.raises(ConnectorError, match=r"422 .*invalid_parameter") as error:
        connector(sugar).log_call(call(sugar, contact_external_id="no-such-contact"))

    assert error.value.permanent and sugar.records["Calls"] == {}


def test_a_create_whose_answer_was_lost_is_not_sent_again(sugar):
    sugar.inject(Fault("lost_answer", status=502, path_contains="/Calls"))

    with pytest.raises(ConnectorError) as error:
        connector(sugar).log_call(call(sugar))

    assert not error.value.permanent and len(sugar.records["Calls"]) == 1
    assert connector(sugar).find_logged("call-42") == next(iter(sugar.records["Calls"]))


def test_a_contact_create_answered_with_a_500_is_not_sent_again(sugar):
    sugar.inject(Fault("status", status=500, path_contains="/rest/v11/Contacts"))

    with pytest.raises(ConnectorError) as error:
        connector(sugar).create_contact(e164="+442079460777")

    assert not error.value.permanent
    assert sugar.paths("POST").count("/rest/v11/Contacts") == 1
