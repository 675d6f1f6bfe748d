"""The HubSpot connector against the strict fake: paging, the 10k window, 429s, tokens."""

import time

import pytest

from connectors.hubspot.connector import HubSpotConnector
from connectors.interface import ConnectionConfig, ConnectorError, Cursor
from fakes.hubspot import Fault

pytestmark = pytest.mark.django_db  # the per-connection request budget lives in Redis


def connector(
    fake, saved=None, objects=("contacts",), searches_per_second=None, **credentials
) -> HubSpotConnector:
    credentials = credentials or {"private_app_token": next(iter(fake.private_app_tokens))}
    settings: dict = {"objects": list(objects)}
    if searches_per_second:  # the fake's limit too (make_hubspot(search_per_second=...))
        settings["rate_limits"] = {"search": [searches_per_second, 1]}
    config = ConnectionConfig(
        connection_id=1, credentials={**credentials, "base_url": fake.url}, settings=settings
    )
    return HubSpotConnector(config, (saved if saved is not None else []).append)


def all_changes(hubspot_connector, object_type="contacts", cursor=None):
    cursor, ids, pages = cursor or Cursor(), [], 0
    while True:
        page = hubspot_connector.changed_since(object_type, cursor)
        ids += [r.external_id for r in page.records]
        cursor, pages = page.cursor, pages + 1
        if page.done:
            return ids, cursor, pages


def test_it_reads_every_change_in_pages_of_200(hubspot):
    ids, cursor, pages = all_changes(connector(hubspot))

    assert set(map(int, ids)) == set(range(1, 251))
    assert len(ids) - 250 <= 2  # the next page's query re-reads the last modification time
    assert pages == 2
    assert cursor.after is None and cursor.since_ms > 0


def test_a_record_edited_while_we_page_is_not_skipped(hubspot):
    hubspot_connector = connector(hubspot)
    first = hubspot_connector.changed_since("contacts", Cursor())
    hubspot.touch("contacts", [int(first.records[0].external_id)])  # moves to the end

    ids, _, _ = all_changes(hubspot_connector, cursor=first.cursor)

    assert {r.external_id for r in first.records} | set(ids) == {str(i) for i in range(1, 251)}


def test_it_pages_through_a_bulk_import_sharing_one_modification_time(hubspot):
    hubspot.touch("contacts", list(range(1, 251)), at_ms=1_800_000_000_000)

    ids, _, pages = all_changes(connector(hubspot))

    assert sorted(map(int, ids)) == list(range(1, 251)) and pages == 2


# The 10,000 tests take 50-odd searches: at HubSpot's 5 a second that is 10 s of waiting each,
# so they run on an account allowed 100 a second (fake and connector alike). The pacing under
# 5 a second is tested below (test_searches_are_paced_under_hubspot_s_5_a_second...).
FAST_SEARCH = 100


def test_more_than_10000_records_at_one_time_is_a_permanent_error(make_hubspot):
    fake = make_hubspot(contacts=10_001, search_per_second=FAST_SEARCH)
    fake.touch("contacts", list(range(1, 10_002)), at_ms=1_800_000_000_000)

    with pytest.raises(ConnectorError, match="share one modification time") as error:
        all_changes(connector(fake, searches_per_second=FAST_SEARCH))

    assert error.value.permanent


def test_it_reads_past_10000_changes_without_paging_into_the_search_cap(make_hubspot):
    fake = make_hubspot(contacts=10_450, search_per_second=FAST_SEARCH)

    ids, _, _ = all_changes(connector(fake, searches_per_second=FAST_SEARCH))

    assert set(map(int, ids)) == set(range(1, 10_451))  # nothing lost; overlap re-reads are fine
    searches = [p for p in fake.paths("POST") if p.endswith("/search")]
    assert len(searches) >= 53
    assert fake.rate_limited == 0


def test_the_next_run_starts_at_the_last_change_and_sees_only_new_edits(hubspot):
    _, cursor, _ = all_changes(connector(hubspot))
    hubspot.touch("contacts", [7, 200])

    ids, _, _ = all_changes(connector(hubspot), cursor=cursor)

    latest = max(
        c.modified_ms for c in hubspot.objects["contacts"].values() if c.id not in (7, 200)
    )
    in_overlap = [
        c for c in hubspot.objects["contacts"].values() if c.modified_ms >= latest - 30_000
    ]
    assert set(ids) >= {"7", "200"}
    assert len(ids) == len(in_overlap)  # the last 30 s again (indexing lag), not the account


def test_it_waits_out_a_429_for_its_retry_after(hubspot):
    hubspot.inject(Fault("status", times=1, status=429, retry_after="1"))
    hubspot_connector = connector(hubspot)
    started = time.monotonic()

    page = hubspot_connector.changed_since("contacts", Cursor())

    assert time.monotonic() - started >= 1.0
    assert len(page.records) == 200
    assert hubspot_connector.rate_limit_waits == 1


def test_a_daily_limit_ends_the_run_at_once_with_a_long_retry_after(hubspot):
    hubspot.inject(Fault("status", times=1, status=429, retry_after=None, policy="DAILY"))
    started = time.monotonic()

    with pytest.raises(ConnectorError) as error:
        connector(hubspot).changed_since("contacts", Cursor())

    assert time.monotonic() - started < 1
    assert not error.value.permanent and error.value.retry_after >= 3600


def test_it_retries_a_500_then_succeeds(hubspot):
    hubspot.inject(Fault("status", times=1, status=500, retry_after=None))

    page = connector(hubspot).changed_since("contacts", Cursor())

    assert len(page.records) == 200
    assert len(hubspot.paths("POST")) == 2


def test_a_malformed_page_is_an_error_not_an_empty_page(hubspot):
    hubspot.inject(Fault("malformed", times=1))

    with pytest.raises(ConnectorError) as error:
        connector(hubspot).changed_since("contacts", Cursor())

    assert not error.value.permanent


def test_a_rejected_private_app_token_is_permanent(hubspot):
    with pytest.raises(ConnectorError, match="private-app token") as error:
        connector(hubspot, private_app_token="pat-revoked").changed_since("contacts", Cursor())

    assert error.value.permanent


def oauth(fake, expires_in=1800, **overrides) -> dict:
    tokens = fake.issue_oauth_tokens(expires_in=expires_in)
    return {
        "access_token": tokens["access_token"],
        "refresh_token": tokens["refresh_token"],
        "expires_at": time.time() + expires_in,
        "client_id": "fake-client-id",
        "client_secret": "fake-client-secret",
        **overrides,
    }


def test_it_refreshes_an_oauth_token_before_it_expires(hubspot):
    saved = []
    credentials = oauth(hubspot, expires_in=10)  # inside the refresh margin

    connector(hubspot, saved, **credentials).changed_since("contacts", Cursor())

    assert hubspot.paths("POST")[0] == "/oauth/v1/token"
    assert saved and saved[-1]["access_token"] != credentials["access_token"]
    assert saved[-1]["expires_at"] > time.time() + 1000


def test_it_refreshes_on_a_401_and_retries_once(hubspot):
    saved = []
    credentials = oauth(hubspot)
    hubspot.expire_tokens()  # the server says expired though our clock says not yet

    page = connector(hubspot, saved, **credentials).changed_since("contacts", Cursor())

    assert len(page.records) == 200
    assert [p for p in hubspot.paths("POST") if p == "/oauth/v1/token"] == ["/oauth/v1/token"]
    assert len(saved) == 1


def test_a_failed_refresh_is_permanent_with_a_clear_reason(hubspot):
    credentials = oauth(hubspot, expires_at=0, refresh_token="refresh-revoked")

    with pytest.raises(ConnectorError, match="Refreshing the HubSpot OAuth token failed") as error:
        connector(hubspot, **credentials).changed_since("contacts", Cursor())

    assert error.value.permanent


def test_it_lists_every_live_id_for_the_full_diff(hubspot):
    hubspot.archive("contacts", [3, 4])
    hubspot_connector = connector(hubspot, objects=("contacts", "companies"))

    contacts = [i for page in hubspot_connector.all_ids("contacts") for i in page]
    companies = [i for page in hubspot_connector.all_ids("companies") for i in page]

    assert len(contacts) == 248 and "3" not in contacts
    assert companies[:2] == ["company:1", "company:2"] and len(companies) == 20


def test_it_finds_contacts_by_phone_keeping_only_real_matches(make_hubspot):
    fake = make_hubspot(contacts=3)
    fake.objects["contacts"][1].properties.update(phone="+442079460018", country="GB")
    fake.objects["contacts"][2].properties.update(mobilephone="+442079460018", phone=None)

    found = connector(fake).find_by_phone("+442079460018")

    assert sorted(r.external_id for r in found) == ["1", "2"]


def test_call_logging_waits_for_a_free_moment_not_for_the_sync_s_window(hubspot):
    def side(background):
        config = ConnectionConfig(
            1,
            {"private_app_token": "pat-na1-fake-token", "base_url": hubspot.url},
            {"rate_limits": {"requests": [4, 1]}},  # 4 in any second
            background=background,
        )
        return HubSpotConnector(config, [].append)

    sync_side, logging_side = side(True), side(False)
    for _ in range(4):  # the sync spends the whole second
        sync_side._json("GET", "/crm/v3/owners")
    started = time.monotonic()

    logging_side._json("GET", "/crm/v3/owners")

    waited = time.monotonic() - started
    assert 0.5 < waited < 1.5  # until the sync's first request left the window, not 10 s
    assert logging_side.rate_limit_waits == 0 and hubspot.rate_limited == 0


def test_searches_are_paced_under_hubspot_s_5_a_second_without_a_429(make_hubspot):
    fake = make_hubspot(contacts=2000)  # 10 search pages and the last one again
    started = time.monotonic()

    ids, _, pages = all_changes(connector(fake))

    assert len(set(ids)) == 2000 and pages == 11
    assert time.monotonic() - started >= (pages - 5) / 5  # 5 at once, then 5 a second
    assert fake.rate_limited == 0


def test_a_search_over_hubspot_s_limit_is_answered_429_and_waited_out(make_hubspot):
    fake = make_hubspot(contacts=2000)
    config = ConnectionConfig(
        1,
        {"private_app_token": "pat-na1-fake-token", "base_url": fake.url},
        {"rate_limits": {"search": [100, 1]}},  # a budget above the CRM's limit
    )
    unpaced = HubSpotConnector(config, [].append)

    ids, _, _ = all_changes(unpaced)

    assert len(set(ids)) == 2000
    assert fake.rate_limited >= 1 and unpaced.rate_limit_waits == fake.rate_limited
