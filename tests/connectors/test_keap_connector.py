"""The Keap connector against the strict fake over real HTTP: cursors, limits, tokens, writes."""

import time
from datetime import UTC, datetime
from functools import partial
from urllib.parse import parse_qs, urlsplit

import pytest

from connectors.client import CrmResponse
from connectors.interface import CallLogEntry, ConnectionConfig, ConnectorError, Cursor
from connectors.keap.connector import KeapConnector, rate_limit_wait
from fakes.hubspot_data import iso
from fakes.keap import API, FakeKeap, Fault
from fakes.keap_data import TIER_FIELD_ID

pytestmark = pytest.mark.django_db  # request budgets and pacing live in the cache

REDIRECT_URI = "https://callbridge.example.com/api/v1/connections/oauth/callback"
KEY = {"api_key": "KeapAK-fake-personal-access-token"}
CLIENT = {"client_id": "fake-client-id", "client_secret": "fake-client-secret"}


@pytest.fixture
def make_keap(start_fake):
    return partial(start_fake, FakeKeap)


@pytest.fixture
def keap(make_keap) -> FakeKeap:
    return make_keap(contacts=450, companies=12)


def connector(fake, saved=None, objects=("contacts",), settings=None, **credentials):
    config = ConnectionConfig(
        connection_id=1,
        credentials={"base_url": fake.url + API, **(credentials or KEY)},
        settings={"objects": list(objects), **(settings or {})},
    )
    return KeapConnector(config, (saved if saved is not None else []).append)


def oauth_connector(fake, saved=None, **overrides):
    tokens = fake.issue_tokens()
    credentials = {
        **CLIENT,
        "access_token": tokens["access_token"],
        "refresh_token": tokens["refresh_token"],
        "expires_at": time.time() + 86_000,
        "oauth_base_url": fake.url,
        **overrides,
    }
    return connector(fake, saved, **credentials), tokens


def all_changes(keap_connector, object_type="contacts", cursor=None):
    cursor, ids, pages = cursor or Cursor(), [], 0
    while True:
        page = keap_connector.changed_since(object_type, cursor)
        ids += [r.external_id for r in page.records]
        cursor, pages = Cursor.from_json(page.cursor.as_json()), pages + 1  # as stored
        if page.done:
            return ids, cursor, pages


def _ms(value: str) -> int:
    return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)


def latest_ms(fake, kind="contacts"):
    return max(_ms(r["update_time"]) for r in fake.records[kind].values())


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
        "owner_user_id": "7",
    }
    return CallLogEntry(**{**defaults, **fields})


# ----- read side
def test_it_reads_every_contact_by_update_time_with_the_fields_it_maps(keap):
    ids, cursor, pages = all_changes(connector(keap))

    assert sorted(ids, key=int) == [str(i) for i in range(1, 451)] and pages == 1
    query = keap.queries("/v2/contacts")[0]
    assert query["filter"] == "start_update_time==1970-01-01T00:00:00.000Z"
    assert (query["order_by"], query["page_size"]) == ("update_time asc", "1000")
    assert set(query["fields"].split(",")) >= {"phone_numbers", "owner_id", "update_time"}
    assert cursor.max_seen_ms == latest_ms(keap) and cursor.after is None
    assert cursor.since_ms == latest_ms(keap) - 30_000  # the last 30 s are read again


def test_each_page_is_a_new_query_from_the_last_update_time_seen(make_keap):
    fake = make_keap(contacts=2500)

    ids, _, pages = all_changes(connector(fake))

    assert set(ids) == {str(i) for i in range(1, 2501)} and pages == 3
    starts = [q["filter"] for q in fake.queries("/v2/contacts")]
    assert starts == sorted(starts) and len(set(starts)) == 3
    assert all("page_token" not in q for q in fake.queries("/v2/contacts"))


def test_a_contact_edited_while_we_page_is_read_again_not_skipped(make_keap):
    fake = make_keap(contacts=2500)
    keap_connector = connector(fake)
    first = keap_connector.changed_since("contacts", Cursor())
    read = {r.external_id for r in first.records}
    unread = [i for i in sorted(fake.records["contacts"]) if str(i) not in read][:3]
    fake.touch("contacts", [*unread, int(next(iter(read)))])  # all move behind every other

    ids, _, _ = all_changes(keap_connector, cursor=first.cursor)

    assert {str(i) for i in unread} <= set(ids)
    assert read | set(ids) == {str(i) for i in range(1, 2501)}
    assert next(iter(read)) in ids  # the edit is read too


def test_a_page_full_of_one_millisecond_is_paged_on_with_its_page_token(make_keap):
    fake = make_keap(contacts=1300)
    for contact in fake.records["contacts"].values():
        contact["update_time"] = iso(
            1_700_000_500_000 if int(contact["id"]) <= 1100 else 1_700_000_600_000
        )

    ids, cursor, _ = all_changes(connector(fake))

    assert set(ids) == {str(i) for i in range(1, 1301)}
    tokens = [q for q in fake.queries("/v2/contacts") if "page_token" in q]
    assert len(tokens) == 1 and "2023-11-14T22:21:40.000Z" in tokens[0]["filter"]
    assert cursor.max_seen_ms == 1_700_000_600_000


def test_the_next_run_asks_only_for_what_changed_since_the_last(keap):
    _, cursor, _ = all_changes(connector(keap))
    keap.touch("contacts", [5])

    ids, _, _ = all_changes(connector(keap), cursor=cursor)

    recent = {
        str(i)
        for i, contact in keap.records["contacts"].items()
        if _ms(contact["update_time"]) >= cursor.since_ms  # the last 30 s again, and 5
    }
    assert "5" in recent and sorted(ids, key=int) == sorted(recent, key=int)
    assert len(ids) < 150


def test_companies_are_read_by_since_time_and_the_next_listing_starts_before_this_one(make_keap):
    fake = make_keap(contacts=0, companies=1500)
    keap_connector = connector(fake, objects=("companies",))
    first = keap_connector.changed_since("companies", Cursor())
    fake.touch("companies", [3])  # behind us: ids are read in order

    ids, cursor, _ = all_changes(
        keap_connector, "companies", Cursor.from_json(first.cursor.as_json())
    )
    later, _, _ = all_changes(connector(fake, objects=("companies",)), "companies", cursor)

    assert len({r.external_id for r in first.records} | set(ids)) == 1500
    assert "company:3" in later
    query = fake.queries("/v2/companies")[0]
    assert (query["order_by"], query["filter"]) == (
        "id asc",
        "since_time==1970-01-01T00:00:00.000Z",
    )
    assert "page_token" in fake.queries("/v2/companies")[1]


def test_the_full_diff_lists_every_id_by_id_keyset(make_keap):
    fake = make_keap(contacts=2100, companies=4)

    contacts = [i for page in connector(fake).all_ids("contacts") for i in page]
    companies = [i for page in connector(fake).all_ids("companies") for i in page]

    assert contacts == [str(i) for i in range(1, 2101)]
    assert companies == [f"company:{i}" for i in range(1, 5)]
    assert [q["filter"] for q in fake.queries("/v2/contacts")] == [
        "contact_id>0", "contact_id>1000", "contact_id>2000"
    ]  # fmt: skip


def test_records_map_their_owner_custom_fields_and_e164_numbers(keap):
    keap.records["contacts"][1].update(
        owner_id="9",
        phone_numbers=[{"field": "PHONE1", "number": "020 7946 0018", "type": "Mobile",
                        "number_e164": "+442079460018"}],
        custom_fields=[{"id": str(TIER_FIELD_ID), "content": "gold"}],
    )  # fmt: skip
    settings = {"custom_fields": [str(TIER_FIELD_ID)]}

    page = connector(keap, settings=settings).changed_since("contacts", Cursor())

    record = next(r for r in page.records if r.external_id == "1")
    assert record.owner_id == "9" and record.custom_fields == {str(TIER_FIELD_ID): "gold"}
    assert [(p.number, p.kind) for p in record.phones] == [("+442079460018", "mobile")]


def test_a_phone_search_asks_each_stored_form_and_keeps_only_real_matches(keap):
    keap.records["contacts"][1]["phone_numbers"] = [
        {
            "field": "PHONE2",
            "number": "020 7946 0018",
            "type": "Work",
            "number_e164": "+442079460018",
        }
    ]
    keap.records["contacts"][2].update(  # the same text, but an American number
        phone_numbers=[{"field": "PHONE1", "number": "020 7946 0018", "type": "Work"}],
        addresses=[{"field": "BILLING", "country_code": "USA"}],
    )

    found = connector(keap).find_by_phone("+442079460018")

    assert [r.external_id for r in found] == ["1"]
    filters = [q["filter"] for q in keap.queries("/v2/contacts")]
    assert "phone_number==020 7946 0018;phone_fields==PHONE1,PHONE2,PHONE3,PHONE4,PHONE5" in filters
    assert "phone_number==+442079460018;phone_fields==PHONE1,PHONE2,PHONE3,PHONE4,PHONE5" in filters


def test_users_are_the_active_ones_and_find_user_matches_their_email(keap):
    keap_connector = connector(keap)

    assert {u.external_id for u in keap_connector.users()} == {"7", "9"}
    assert keap_connector.find_user("PRIYA.SHAH@example.com").external_id == "7"
    assert keap_connector.find_user("old.timer@example.com") is None
    assert len(keap.queries("/v2/users")) == 1  # read once


# ----- OAuth
def test_the_consent_url_asks_for_the_full_scope(keap):
    keap_connector = connector(keap, **CLIENT, oauth_base_url=keap.url)

    url = urlsplit(keap_connector.authorization_url(state="s1", redirect_uri=REDIRECT_URI))

    assert url.path == "/app/oauth/authorize"
    assert parse_qs(url.query) == {
        "client_id": ["fake-client-id"], "redirect_uri": [REDIRECT_URI],
        "response_type": ["code"], "scope": ["full"], "state": ["s1"],
    }  # fmt: skip


def test_a_code_becomes_tokens_that_are_saved(keap):
    saved = []
    keap_connector = connector(keap, saved, **CLIENT, oauth_base_url=keap.url)

    keap_connector.connect(code=keap.authorize(REDIRECT_URI), redirect_uri=REDIRECT_URI)

    assert saved[-1]["access_token"] in keap.access_tokens
    assert saved[-1]["expires_at"] > time.time() + 86_000
    assert keap_connector.users()


def test_an_expiring_token_is_refreshed_and_the_rotated_refresh_token_saved(keap):
    saved = []
    keap_connector, tokens = oauth_connector(keap, saved, expires_at=time.time() + 10)

    keap_connector.users()
    keap_connector._users = None
    keap_connector.users()

    assert len(saved) == 1  # refreshed once, then the new token is used
    assert saved[0]["refresh_token"] != tokens["refresh_token"]
    assert saved[0]["refresh_token"] in keap.refresh_tokens
    assert tokens["refresh_token"] not in keap.refresh_tokens  # the old one is dead


def test_a_rejected_token_is_refreshed_once_then_the_request_is_sent_again(keap):
    saved = []
    keap_connector, _ = oauth_connector(keap, saved)
    keap.expire_tokens()

    assert keap_connector.users()
    assert len(saved) == 1


def test_a_refused_refresh_is_permanent(keap):
    keap_connector, _ = oauth_connector(keap, expires_at=0, refresh_token="rt-revoked")

    with pytest.raises(ConnectorError) as error:
        keap_connector.users()

    assert error.value.permanent and "Invalid refresh token" in str(error.value)
    assert "reconnect Keap" in str(error.value)


# ----- errors and limits
def test_a_wrong_key_is_permanent_with_the_gateways_words(keap):
    with pytest.raises(ConnectorError) as error:
        connector(keap, api_key="wrong").users()

    assert error.value.permanent and "Invalid ApiKey" in str(error.value)


def test_a_5xx_on_a_read_is_retried(keap):
    keap.inject(Fault("status", times=2, path_contains="/v2/users", status=503))

    assert connector(keap).users()


def test_a_429_is_waited_out_by_its_throttle_headers(keap):
    keap.limits = ((1.0, 2, "second"), (60.0, 240, "minute"))
    keap_connector = connector(keap)

    for _ in range(4):
        keap_connector._users = None
        keap_connector.users()

    assert keap_connector.rate_limit_waits >= 1


def test_a_key_is_paced_under_its_second_and_minute_limits_instead_of_hitting_them(keap):
    keap.limits = ((1.0, 3, "second"), (60.0, 240, "minute"))
    keap_connector = connector(keap, settings={"rate_limits": {"key_second": [3, 1]}})
    started = time.monotonic()

    for _ in range(5):
        keap_connector._users = None
        keap_connector.users()

    assert time.monotonic() - started >= 1  # 3 at once, 2 more once the first left the window
    assert keap_connector.rate_limit_waits == 0  # no 429
    assert set(connector(keap).client.rate_limits) >= {"key_second", "key_minute"}


def test_a_spent_daily_quota_waits_until_it_resets():
    reset = time.time() + 3600
    headers = {"x-keap-product-quota-available": "0",
               "x-keap-product-quota-expiry-time": str(int(reset * 1000))}  # fmt: skip
    minute = {
        "x-keap-product-throttle-available": "0",
        "x-keap-product-throttle-time-unit": "minute",
        "x-keap-product-throttle-interval": "1",
    }

    assert rate_limit_wait(CrmResponse(429, headers, b"")) == pytest.approx(3600, abs=5)
    assert rate_limit_wait(CrmResponse(429, minute, b"")) == 60.0
    assert rate_limit_wait(CrmResponse(429, {}, b"")) is None


# ----- write side
def test_a_call_is_a_call_note_on_the_contact_written_as_the_agent(keap):
    note_id = connector(keap).log_call(call(notes="Wants a quote."))

    note = keap.notes[int(note_id)]
    assert (note["contact_id"], note["type"], note["user_id"]) == ("3", "Call", "7")
    assert "Outcome: answered; duration 1:35" in note["text"] and "Wants a quote." in note["text"]
    assert note["text"].endswith("CallBridge call c-91")


def test_an_update_patches_the_same_note_with_a_mask(keap):
    keap_connector = connector(keap)
    note_id = keap_connector.log_call(call())

    keap_connector.update_call_log(note_id, call(notes="Call back Friday."))

    assert len(keap.notes) == 1 and "Call back Friday." in keap.notes[int(note_id)]["text"]
    assert keap.notes[int(note_id)]["type"] == "Call"
    patch = next(q for m, p, q, _ in keap.requests if m == "PATCH")
    assert sorted(patch["update_mask"]) == ["text", "title"]


def test_a_missed_call_is_an_essential_task_due_at_the_call(keap):
    task_id = connector(keap).create_task(call(outcome="missed", duration_seconds=0))

    task = keap.tasks[int(task_id)]
    assert (task["contact_id"], task["assigned_to_user_id"], task["priority"]) == (
        "3",
        "7",
        "ESSENTIAL",
    )
    assert task["due_time"] == "2024-03-05T17:02:11.000Z" and task["completed"] is False


def test_without_an_agent_the_note_is_written_as_an_admin(keap):
    note_id = connector(keap).log_call(call(owner_user_id=None))

    assert keap.notes[int(note_id)]["user_id"] == "9"


def test_a_caller_found_nowhere_cannot_be_a_note(keap):
    with pytest.raises(ConnectorError) as error:
        connector(keap).log_call(call(contact_external_id=None))

    assert error.value.permanent and "create_unknown_contacts" in str(error.value)
    assert keap.notes == {}


def test_a_create_whose_answer_was_lost_is_not_sent_again_but_found(keap):
    keap.inject(Fault("lost_answer", times=1, path_contains="/notes", status=502))
    keap_connector = connector(keap)

    with pytest.raises(ConnectorError) as error:
        keap_connector.log_call(call())

    assert not error.value.permanent and len(keap.notes) == 1
    assert len(keap.bodies("/v2/contacts/3/notes")) == 1
    assert keap_connector.find_logged("c-91") == next(iter(keap.notes.values()))["id"]
    assert keap_connector.find_logged("c-92") is None


def test_a_lost_task_is_found_by_its_call_id(keap):
    keap_connector = connector(keap)
    task_id = keap_connector.create_task(call(outcome="missed"))

    assert keap_connector.find_logged("c-91", task=True) == task_id
    assert keap_connector.find_logged("c-91") is None


def test_an_unknown_caller_becomes_a_contact_with_the_number(keap):
    record = connector(keap).create_contact(e164="+447400999888", name="Ada Lovelace")

    stored = keap.records["contacts"][int(record.external_id)]
    assert (stored["given_name"], stored["family_name"]) == ("Ada", "Lovelace")
    assert stored["phone_numbers"][0]["number"] == "+447400999888"
    assert [p.number for p in record.phones] == ["+447400999888"]
