"""The generic REST connector against the strict fake: each paging style and auth kind,
updated-since, caps, rate limits, tokens, search and the call log."""

import time
from datetime import UTC, datetime

import pytest

from connectors.generic_rest.connector import GenericRestConnector
from connectors.interface import CallLogEntry, ConnectionConfig, ConnectorError, Cursor
from fakes.generic_rest import LIST_PATH, FakeRestCrm, Fault

pytestmark = pytest.mark.django_db  # the per-connection request budget lives in the cache


@pytest.fixture
def make_crm(settings):
    settings.ALLOW_PRIVATE_URLS = True
    started = []

    def make(**options) -> FakeRestCrm:
        fake = FakeRestCrm(**{"contacts": 120} | options)
        fake.start()
        started.append(fake)
        return fake

    yield make
    for fake in started:
        fake.stop()


def connector(fake, saved=None, credentials=None, settings=None) -> GenericRestConnector:
    config = ConnectionConfig(
        connection_id=1,
        credentials=fake.credentials() | (credentials or {}),
        settings=settings or fake.settings(),
    )
    return GenericRestConnector(config, (saved if saved is not None else []).append)


def read_all(rest_connector, cursor=None):
    cursor, ids, pages = cursor or Cursor(), [], 0
    while True:
        page = rest_connector.changed_since("contacts", cursor)
        ids += [r.external_id for r in page.records]
        cursor, pages = page.cursor, pages + 1
        if page.done:
            return ids, cursor, pages


@pytest.mark.parametrize(
    ("paging", "next_link_in"),
    [
        ("page", "body"),
        ("offset", "body"),
        ("cursor", "body"),
        ("next_link", "body"),
        ("next_link", "header"),
    ],
)
def test_it_reads_every_record_in_pages_of_each_style(make_crm, paging, next_link_in):
    fake = make_crm(paging=paging, next_link_in=next_link_in)

    ids, cursor, pages = read_all(connector(fake))

    assert sorted(ids) == sorted(f"c-{i}" for i in range(1, 121))
    assert pages == 3  # 50 + 50 + 20
    assert cursor.after is None and cursor.max_seen_ms > 0
    size_param = "per_page" if paging == "page" else "limit"
    assert fake.queries(LIST_PATH)[0][size_param] == ["50"]


def test_a_page_size_above_the_apis_maximum_is_a_permanent_error(make_crm):
    fake = make_crm(max_page_size=100)
    settings = fake.settings()
    settings["list"]["paging"]["page_size"] = 150

    with pytest.raises(ConnectorError, match="per_page must be 1 to 100") as error:
        connector(fake, settings=settings).changed_since("contacts", Cursor())

    assert error.value.permanent


def test_a_killed_listing_resumes_at_its_cursor_without_duplicates(make_crm):
    fake = make_crm(paging="cursor")
    first = connector(fake).changed_since("contacts", Cursor())

    rest, _, _ = read_all(connector(fake), cursor=first.cursor)  # a new worker, the saved cursor

    ids = [r.external_id for r in first.records] + rest
    assert len(ids) == len(set(ids)) == 120


def test_the_next_run_asks_only_for_changes_since_the_latest_time_read(make_crm):
    fake = make_crm()
    _, cursor, _ = read_all(connector(fake))
    fake.touch([7, 99])

    ids, _, _ = read_all(connector(fake), cursor=cursor)

    since = fake.queries(LIST_PATH)[-1]["updated_since"][0]
    assert since == datetime.fromtimestamp(cursor.since_ms / 1000, UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    assert {"c-7", "c-99"} <= set(ids) and len(ids) < 10  # the two edits and the overlap


def test_every_auth_kind_is_sent_as_the_api_wants(make_crm):
    for kind in ("none", "basic", "bearer", "api_key", "oauth2_client_credentials"):
        fake = make_crm(auth=kind, contacts=3)

        page = connector(fake).changed_since("contacts", Cursor())

        assert len(page.records) == 3, kind


@pytest.mark.parametrize(
    ("kind", "wrong"),
    [
        ("basic", {"password": "nope"}),
        ("bearer", {"token": "nope"}),
        ("api_key", {"api_key": "nope"}),
    ],
)
def test_rejected_credentials_are_a_permanent_error(make_crm, kind, wrong):
    fake = make_crm(auth=kind)

    with pytest.raises(ConnectorError, match="rejected the connection's credentials") as error:
        connector(fake, credentials=wrong).changed_since("contacts", Cursor())

    assert error.value.permanent


def test_a_client_credentials_token_is_fetched_once_and_kept(make_crm):
    fake = make_crm(auth="oauth2_client_credentials")
    saved = []

    read_all(connector(fake, saved))

    assert fake.paths("POST") == ["/oauth/token"]
    assert saved[-1]["access_token"].startswith("cc-")
    assert saved[-1]["expires_at"] > time.time() + 3000
    read_all(connector(fake, saved, credentials=saved[-1]))  # the next run reuses it
    assert fake.paths("POST") == ["/oauth/token"]


def test_a_token_rejected_before_its_expiry_is_fetched_again_once(make_crm):
    fake = make_crm(auth="oauth2_client_credentials")
    saved = []
    connector(fake, saved).changed_since("contacts", Cursor())
    fake.expire_tokens()  # the server revoked it; our clock says it is still good

    page = connector(fake, saved, credentials=saved[-1]).changed_since("contacts", Cursor())

    assert len(page.records) == 50
    assert fake.paths("POST") == ["/oauth/token", "/oauth/token"]


def test_refused_client_credentials_are_a_permanent_error(make_crm):
    fake = make_crm(auth="oauth2_client_credentials")

    with pytest.raises(ConnectorError, match="refused the client credentials") as error:
        connector(fake, credentials={"client_secret": "nope"}).changed_since("contacts", Cursor())

    assert error.value.permanent and "invalid_client" in str(error.value)


def test_it_waits_out_a_429_for_its_retry_after(make_crm):
    fake = make_crm()
    fake.inject(Fault("status", times=1, status=429, retry_after="1"))
    rest_connector = connector(fake)
    started = time.monotonic()

    page = rest_connector.changed_since("contacts", Cursor())

    assert time.monotonic() - started >= 1.0
    assert len(page.records) == 50 and rest_connector.rate_limit_waits == 1


def test_a_malformed_page_is_an_error_not_an_empty_page(make_crm):
    fake = make_crm()
    fake.inject(Fault("malformed", times=1))

    with pytest.raises(ConnectorError, match="without a list of records") as error:
        connector(fake).changed_since("contacts", Cursor())

    assert not error.value.permanent


def test_a_next_link_to_another_host_is_never_followed(make_crm):
    fake = make_crm(paging="next_link")
    cursor = Cursor(after="http://169.254.169.254/latest/meta-data?cursor=x")

    with pytest.raises(ConnectorError, match="leads away from base_url") as error:
        connector(fake).changed_since("contacts", cursor)

    assert error.value.permanent and fake.paths() == []


def test_it_lists_every_live_id_for_the_full_diff(make_crm):
    fake = make_crm(paging="offset")
    fake.delete([3, 4])

    ids = [i for page in connector(fake).all_ids("contacts") for i in page]

    assert len(ids) == 118 and "c-3" not in ids
    assert all("updated_since" not in q for q in fake.queries(LIST_PATH))


def test_it_finds_by_phone_through_the_search_endpoint_keeping_real_matches(make_crm):
    fake = make_crm(contacts=3)
    fake.records[1]["phones"] = [{"number": "+44 20 7946 0018", "type": "office"}]
    fake.records[2]["phones"] = [{"number": "+442079460018", "type": "mobile"}]

    found = connector(fake).find_by_phone("+442079460018")

    assert sorted(r.external_id for r in found) == ["c-1", "c-2"]
    assert fake.queries("/api/v1/contacts/search") == [{"phone": ["+442079460018"]}]
    settings = fake.settings()
    del settings["search"]
    assert connector(fake, settings=settings).find_by_phone("+442079460018") == []


def entry(**fields) -> CallLogEntry:
    values = {
        "call_id": "call-7f3a",
        "direction": "inbound",
        "outcome": "answered",
        "started_at": datetime(2024, 3, 1, 9, 30, tzinfo=UTC),
        "duration_seconds": 125,
        "from_number": "+442079460018",
        "to_number": "+442045205757",
        "contact_external_id": "c-12",
    }
    return CallLogEntry(**(values | fields))


def test_it_logs_a_call_to_the_configured_endpoint_and_updates_the_same_record(make_crm):
    fake = make_crm()
    rest_connector = connector(fake)

    remote_id = rest_connector.log_call(entry())
    rest_connector.update_call_log(remote_id, entry(notes="Will pay Friday."))

    assert list(fake.calls) == [remote_id]
    assert fake.calls[remote_id] == {
        "external_call_id": "call-7f3a",
        "contact_id": "c-12",
        "direction": "inbound",
        "started_at": "2024-03-01T09:30:00Z",
        "duration": 125,
        "outcome": "answered",
        "notes": "Will pay Friday.",
        "numbers": {"from": "+442079460018", "to": "+442045205757"},
    }


def test_a_call_the_crm_refuses_is_a_permanent_error_with_its_reason(make_crm):
    fake = make_crm()

    with pytest.raises(ConnectorError, match="contact_id is required") as error:
        connector(fake).log_call(entry(contact_external_id=None))

    assert error.value.permanent and fake.calls == {}


def test_what_the_connection_cannot_do_is_a_permanent_error_saying_so(make_crm):
    fake = make_crm()
    settings = fake.settings()
    del settings["call_log"]
    rest_connector = connector(fake, settings=settings)

    for attempt, reason in [
        (lambda: rest_connector.log_call(entry()), "no call_log endpoint"),
        (lambda: rest_connector.create_task(entry()), "no call_log endpoint"),
        (lambda: rest_connector.create_contact(e164="+447700900123"), "cannot create contacts"),
        (lambda: rest_connector.authorization_url(state="s", redirect_uri="r"), "no authoriz"),
    ]:
        with pytest.raises(ConnectorError, match=reason) as error:
            attempt()
        assert error.value.permanent
    assert rest_connector.find_user("priya@acme.example") is None
    assert fake.paths() == []


def test_a_broken_config_fails_at_the_first_call_not_at_construction(make_crm):
    fake = make_crm()
    settings = fake.settings()
    settings["list"]["paging"]["style"] = "links"
    rest_connector = connector(fake, settings=settings)

    with pytest.raises(ConnectorError, match=r"settings\.list\.paging\.style") as error:
        rest_connector.object_types()

    assert error.value.permanent
