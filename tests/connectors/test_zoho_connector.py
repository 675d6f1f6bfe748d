"""The Zoho CRM connector against the strict fake: page tokens, windows, 429s, tokens, writes."""

import time
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest

from connectors.interface import CallLogEntry, ConnectionConfig, ConnectorError, Cursor
from connectors.zoho.connector import ZohoConnector
from fakes.zoho import FakeZoho, Fault

pytestmark = pytest.mark.django_db  # the per-connection request budget lives in the cache

CLIENT = {"client_id": "1000.FAKECLIENTID", "client_secret": "fake-client-secret"}


@pytest.fixture
def make_zoho(settings):
    """Start fake Zoho servers on 127.0.0.1 (stopped after the test)."""
    settings.ALLOW_PRIVATE_URLS = True
    started = []

    def make(**options) -> FakeZoho:
        fake = FakeZoho(**options)
        fake.start()
        started.append(fake)
        return fake

    yield make
    for fake in started:
        fake.stop()


@pytest.fixture
def zoho(make_zoho) -> FakeZoho:
    return make_zoho(contacts=250, accounts=20, leads=10)


def credentials(fake: FakeZoho, expires_in: float = 3600, **overrides) -> dict:
    tokens = fake.issue_tokens(expires_in=expires_in)
    return {
        **CLIENT,
        "access_token": tokens["access_token"],
        "refresh_token": tokens["refresh_token"],
        "expires_at": time.time() + expires_in,
        "accounts_url": fake.url,
        "api_domain": fake.url,
        **overrides,
    }


def connector(fake, saved=None, objects=("contacts",), **overrides) -> ZohoConnector:
    config = ConnectionConfig(
        connection_id=1,
        credentials=credentials(fake, **overrides),
        settings={
            "objects": list(objects),
            "custom_fields": ["Contacts.Lead_Source"],
            "org_id": fake.zgid,
        },
        background=False,
    )
    return ZohoConnector(config, (saved if saved is not None else []).append)


def all_changes(zoho_connector, object_type="contacts", cursor=None):
    cursor, ids, pages = cursor or Cursor(), [], 0
    while True:
        page = zoho_connector.changed_since(object_type, cursor)
        ids += [r.external_id for r in page.records]
        cursor, pages = page.cursor, pages + 1
        if page.done:
            return ids, cursor, pages


def listing_queries(fake, module="Contacts") -> list[dict]:
    return [q for m, p, q in fake.requests if m == "GET" and p == f"/crm/v8/{module}"]


def contact_ids(fake) -> set[str]:
    return {str(i) for i in fake.records["Contacts"]}


def test_it_reads_every_change_in_pages_of_200_following_page_tokens(zoho):
    ids, cursor, pages = all_changes(connector(zoho))

    assert sorted(ids) == sorted(contact_ids(zoho)) and pages == 2
    first, second = listing_queries(zoho)
    assert first["per_page"] == ["200"] and first["sort_by"] == ["Modified_Time"]
    assert first["sort_order"] == ["asc"] and "page_token" not in first
    assert "Lead_Source" in first["fields"][0].split(",")
    assert second["page_token"]
    latest = max(r.modified_s for r in zoho.records["Contacts"].values())
    assert cursor == Cursor(since_ms=(latest - 1) * 1000, max_seen_ms=latest * 1000)


def test_a_record_edited_while_we_page_is_not_skipped(zoho):
    zoho_connector = connector(zoho)
    first = zoho_connector.changed_since("contacts", Cursor())
    zoho.touch("Contacts", [int(first.records[0].external_id)])  # moves to the end

    ids, _, _ = all_changes(zoho_connector, cursor=first.cursor)

    assert {r.external_id for r in first.records} | set(ids) == contact_ids(zoho)


def test_the_next_run_asks_only_for_changes_since_the_last_second_seen(zoho):
    _, cursor, _ = all_changes(connector(zoho))
    latest = max(r.modified_s for r in zoho.records["Contacts"].values())
    in_last_second = {
        str(r.id) for r in zoho.records["Contacts"].values() if r.modified_s == latest
    }
    edited = zoho.ids("Contacts", slice(7, 9))
    zoho.touch("Contacts", edited)

    ids, _, pages = all_changes(connector(zoho), cursor=cursor)

    assert pages == 1 and set(ids) == {str(i) for i in edited} | in_last_second
    assert len(in_last_second) <= 3  # the last second again, not the account
    (query,) = [h for m, p, h in zoho.requests if p == "/crm/v8/Contacts"][-1:]
    assert "page_token" not in query


def test_nothing_new_is_a_304_not_modified_and_keeps_the_cursor(zoho):
    _, cursor, _ = all_changes(connector(zoho))
    cursor = Cursor(since_ms=cursor.max_seen_ms + 5000, max_seen_ms=cursor.max_seen_ms)

    page = connector(zoho).changed_since("contacts", cursor)

    assert page.records == () and page.done and page.cursor.since_ms == cursor.since_ms


def test_an_expired_page_token_restarts_from_the_last_change_seen(make_zoho):
    fake = make_zoho(contacts=900, page_token_seconds=0)  # every token expired at once

    ids, _, _ = all_changes(connector(fake))

    assert set(ids) == contact_ids(fake)


def test_it_moves_its_window_past_the_page_token_cap(make_zoho):
    fake = make_zoho(contacts=1000, page_token_cap=400)  # Zoho's is 100,000

    ids, _, _ = all_changes(connector(fake))

    assert set(ids) == contact_ids(fake)
    restarts = [q for q in listing_queries(fake) if "page_token" not in q]
    assert len(restarts) >= 3


def test_more_records_in_one_second_than_the_cap_is_a_permanent_error(make_zoho):
    fake = make_zoho(contacts=600, page_token_cap=400)
    fake.touch("Contacts", list(fake.records["Contacts"]), at_s=1_800_000_000)

    with pytest.raises(ConnectorError, match="share one second") as error:
        all_changes(connector(fake))

    assert error.value.permanent


def test_it_waits_out_a_429_for_the_retry_after_in_its_body(zoho):
    zoho.inject(Fault("status", times=1, status=429, retry_after=1))
    zoho_connector = connector(zoho)
    started = time.monotonic()

    page = zoho_connector.changed_since("contacts", Cursor())

    assert time.monotonic() - started >= 1.0
    assert len(page.records) == 200 and zoho_connector.rate_limit_waits == 1


def test_a_long_rate_limit_ends_the_run_with_its_retry_after(zoho):
    zoho.inject(Fault("status", times=1, status=429, retry_after=3600))

    with pytest.raises(ConnectorError) as error:
        connector(zoho).changed_since("contacts", Cursor())

    assert not error.value.permanent and error.value.retry_after == 3600


def test_it_retries_a_500_then_succeeds(zoho):
    zoho.inject(Fault("status", times=1, status=500))

    page = connector(zoho).changed_since("contacts", Cursor())

    assert len(page.records) == 200 and len(listing_queries(zoho)) == 2


def test_a_malformed_page_is_an_error_not_an_empty_page(zoho):
    zoho.inject(Fault("malformed", times=1))

    with pytest.raises(ConnectorError, match="without data and info") as error:
        connector(zoho).changed_since("contacts", Cursor())

    assert not error.value.permanent


def test_it_refreshes_the_token_before_it_expires_and_keeps_the_api_domain(zoho):
    saved = []

    connector(zoho, saved, expires_in=10, api_domain=None).changed_since("contacts", Cursor())

    assert zoho.paths("POST")[0] == "/oauth/v2/token"
    assert saved[-1]["expires_at"] > time.time() + 3000
    assert saved[-1]["api_domain"] == zoho.url  # the data centre's API host, from the token


def test_it_refreshes_on_invalid_token_and_retries_once(zoho):
    saved = []
    zoho_connector = connector(zoho, saved)
    zoho.expire_tokens()  # Zoho says expired though our clock says not yet

    page = zoho_connector.changed_since("contacts", Cursor())

    assert len(page.records) == 200
    assert zoho.paths("POST") == ["/oauth/v2/token"] and len(saved) == 1


def test_a_refused_refresh_is_permanent_with_zohos_reason(zoho):
    # Zoho's accounts server refuses with 200 and {"error": "invalid_code"}.
    with pytest.raises(ConnectorError, match="Refreshing the Zoho OAuth token failed") as error:
        connector(zoho, expires_at=0, refresh_token="1000.revoked").changed_since(
            "contacts", Cursor()
        )

    assert error.value.permanent and "invalid_code" in str(error.value)


def test_it_connects_through_the_data_centres_consent_page(zoho):
    saved = []
    zoho_connector = ZohoConnector(
        ConnectionConfig(1, {**CLIENT, "accounts_url": zoho.url}, {}), saved.append
    )

    consent = zoho_connector.authorization_url(state="s1", redirect_uri="https://cb/cb")
    url = urlsplit(consent)
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    zoho_connector.connect(code=zoho.accept(consent), redirect_uri="https://cb/cb")

    assert f"{url.scheme}://{url.netloc}{url.path}" == zoho.url + "/oauth/v2/auth"
    assert query["access_type"] == "offline" and query["state"] == "s1"
    assert "ZohoCRM.modules.calls.ALL" in query["scope"].split(",")
    assert saved[-1]["refresh_token"].startswith("1000.") and saved[-1]["api_domain"] == zoho.url
    assert zoho_connector.find_user("priya.shah@example.com") is not None


def test_it_lists_every_live_id_per_module_for_the_full_diff(zoho):
    gone = zoho.ids("Contacts", slice(3, 5))
    zoho.delete("Contacts", gone)
    zoho_connector = connector(zoho, objects=("contacts", "accounts", "leads"))

    contacts = [i for page in zoho_connector.all_ids("contacts") for i in page]
    accounts = [i for page in zoho_connector.all_ids("accounts") for i in page]
    leads = [i for page in zoho_connector.all_ids("leads") for i in page]

    assert set(contacts) == contact_ids(zoho) and len(contacts) == 248
    assert not {str(i) for i in gone} & set(contacts)
    assert len(accounts) == 20 and all(i.startswith("account:") for i in accounts)
    assert len(leads) == 10 and all(i.startswith("lead:") for i in leads)
    assert zoho_connector.object_types() == ("contacts", "accounts", "leads")


def test_it_finds_contacts_by_phone_keeping_only_real_matches(make_zoho):
    fake = make_zoho(contacts=3)
    first, second, third = sorted(fake.records["Contacts"])
    fake.records["Contacts"][first].fields.update(Phone="+44 20 7946 0018", Mailing_Country="GB")
    fake.records["Contacts"][second].fields.update(Mobile="+442079460018", Phone=None)
    fake.records["Contacts"][third].fields.update(Phone="020 7946 0018")  # not found by Zoho

    found = connector(fake).find_by_phone("+442079460018")

    assert sorted(r.external_id for r in found) == [str(first), str(second)]
    assert connector(fake).find_by_phone("+14155550100") == []  # a 204


def test_it_finds_the_agents_zoho_user_by_email(zoho):
    user = connector(zoho).find_user("Priya.Shah@Example.com")

    assert user is not None and user.external_id == "4150868000000225027"
    assert user.name == "Priya Shah"
    assert connector(zoho).find_user("nobody@example.com") is None


def call(fake, **fields) -> CallLogEntry:
    values = {
        "call_id": "call-42",
        "direction": "inbound",
        "outcome": "answered",
        "started_at": datetime(2024, 3, 5, 17, 2, 11, tzinfo=UTC),
        "duration_seconds": 125,
        "from_number": "+442079460018",
        "to_number": "+442079460999",
        "contact_external_id": str(fake.ids("Contacts", 0)[0]),
        "owner_user_id": "4150868000000225027",
        **fields,
    }
    return CallLogEntry(**values)


def test_a_logged_call_is_a_calls_record_linked_to_the_contact_and_the_user(zoho):
    remote_id = connector(zoho).log_call(call(zoho, notes="Asked for a quote."))

    stored = zoho.records["Calls"][int(remote_id)]
    assert stored.fields["Call_Type"] == "Inbound"
    assert stored.fields["Call_Duration"] == "02:05"
    assert stored.fields["Call_Start_Time"] == "2024-03-05T17:02:11+00:00"
    assert stored.fields["Who_Id"] == {"id": str(zoho.ids("Contacts", 0)[0])}
    assert stored.owner["email"] == "priya.shah@example.com"
    assert "call-42" in stored.fields["Description"]


def test_updating_a_call_log_changes_the_same_record(zoho):
    zoho_connector = connector(zoho)
    remote_id = zoho_connector.log_call(call(zoho))

    zoho_connector.update_call_log(remote_id, call(zoho, notes="Summary: renewal in May."))

    assert list(zoho.records["Calls"]) == [int(remote_id)]
    assert zoho.records["Calls"][int(remote_id)].fields["Description"].startswith("Summary:")


def test_a_missed_call_becomes_a_task_for_the_agent(zoho):
    task_id = connector(zoho).create_task(call(zoho, outcome="missed", duration_seconds=0))

    task = zoho.records["Tasks"][int(task_id)]
    assert task.fields["Subject"] == "Missed call from +442079460018: call back"
    assert task.fields["Due_Date"] == "2024-03-05" and task.owner["id"] == "4150868000000225027"


def test_an_unknown_caller_becomes_a_new_contact(zoho):
    record = connector(zoho).create_contact(e164="+442079460777", name="Ada Lovelace")

    stored = zoho.records["Contacts"][int(record.external_id)]
    assert (stored.fields["First_Name"], stored.fields["Last_Name"]) == ("Ada", "Lovelace")
    assert record.phones[0].number == "+442079460777" == stored.fields["Phone"]


def test_every_write_and_lookup_works_with_the_scopes_the_consent_page_asks_for(zoho):
    """A retried missed-call task searches /Tasks/search: tasks.CREATE alone was not enough."""
    config = ConnectionConfig(
        1, {**CLIENT, "accounts_url": zoho.url}, {"objects": ["contacts", "leads"]}
    )
    zoho_connector = ZohoConnector(config, [].append)
    consent = zoho_connector.authorization_url(state="s1", redirect_uri="https://cb/cb")
    zoho_connector.connect(code=zoho.accept(consent), redirect_uri="https://cb/cb")
    entry = call(zoho, call_id="call-scopes")

    for object_type in ("contacts", "leads"):
        assert zoho_connector.changed_since(object_type, Cursor()).records
        assert next(zoho_connector.all_ids(object_type))
    zoho_connector.find_by_phone("+442079460018")
    assert zoho_connector.find_user("priya.shah@example.com") is not None
    call_id = zoho_connector.log_call(entry)
    zoho_connector.update_call_log(call_id, entry)
    task_id = zoho_connector.create_task(call(zoho, call_id="call-scopes", outcome="missed"))
    assert zoho_connector.find_logged("call-scopes") == call_id
    assert zoho_connector.find_logged("call-scopes", task=True) == task_id
    assert zoho_connector.create_contact(e164="+442079460777").external_id


def test_a_scope_the_connection_was_not_granted_is_permanent_and_says_reconnect(zoho):
    tokens = zoho.issue_tokens(scope="ZohoCRM.modules.tasks.CREATE,ZohoSearch.securesearch.READ")

    with pytest.raises(ConnectorError, match=r"OAUTH_SCOPE_MISMATCH.*reconnect") as error:
        connector(zoho, access_token=tokens["access_token"]).find_logged("call-1", task=True)

    assert error.value.permanent


def test_a_refused_write_is_permanent_with_zohos_code_and_field(zoho):
    with pytest.raises(ConnectorError, match=r"INVALID_DATA.*Who_Id") as error:
        connector(zoho).log_call(call(zoho, contact_external_id="4150868000999999999"))

    assert error.value.permanent and zoho.records["Calls"] == {}
