"""The Salesforce connector against the strict fake: queryMore paging, limits, sessions, writes."""

import time
from datetime import UTC, datetime

import pytest

from connectors.interface import CallLogEntry, ConnectionConfig, ConnectorError, Cursor
from connectors.salesforce.connector import COMMIT_LAG_OVERLAP_MS, SalesforceConnector
from fakes.salesforce import Fault
from tests.connectors.conftest import salesforce_credentials

pytestmark = pytest.mark.django_db  # the per-connection request budget lives in the cache


def connector(fake, saved=None, objects=("contacts",), background=True, **overrides):
    config = ConnectionConfig(
        connection_id=1,
        credentials=salesforce_credentials(fake, **overrides),
        settings={
            "objects": list(objects),
            "custom_fields": ["Contact.Tier__c", "Account.Tier__c"],
        },
        background=background,
    )
    return SalesforceConnector(config, (saved if saved is not None else []).append)


def all_changes(sf_connector, object_type="contacts", cursor=None):
    cursor, ids, pages = cursor or Cursor(), [], 0
    while True:
        page = sf_connector.changed_since(object_type, cursor)
        ids += [r.external_id for r in page.records]
        cursor, pages = page.cursor, pages + 1
        if page.done:
            return ids, cursor, pages


def queries(fake) -> list[str]:
    return [p for p in fake.paths("GET") if "/query" in p]


def test_it_reads_every_change_in_batches_of_2000_following_next_records_url(make_salesforce):
    fake = make_salesforce(contacts=4500)

    ids, cursor, pages = all_changes(connector(fake))

    assert sorted(ids) == fake.ids("Contact") and pages == 3
    first, *more = queries(fake)
    assert "SystemModstamp+%3E%3D+1970-01-01T00%3A00%3A00Z" in first
    assert "ORDER+BY+SystemModstamp%2C+Id" in first
    assert [p.rsplit("-", 1)[1] for p in more] == ["2000", "4000"]  # the query locator's batches
    assert cursor.after is None
    assert cursor.since_ms == cursor.max_seen_ms - COMMIT_LAG_OVERLAP_MS


def test_a_saved_cursor_resumes_the_same_query_in_a_new_run(make_salesforce):
    fake = make_salesforce(contacts=4500)
    first = connector(fake).changed_since("contacts", Cursor())
    assert first.cursor.after.startswith("/services/data/v59.0/query/")

    ids, _, pages = all_changes(connector(fake), cursor=first.cursor)

    assert sorted([r.external_id for r in first.records] + ids) == fake.ids("Contact")
    assert pages == 2 and len(queries(fake)) == 3  # no new query: the locator carried on


def test_an_expired_query_locator_restarts_at_the_last_change_seen(make_salesforce):
    fake = make_salesforce(contacts=4500)
    first = connector(fake).changed_since("contacts", Cursor())
    fake.expire_query_locators()  # 15 minutes idle, or a worker killed for too long

    ids, _, _ = all_changes(connector(fake), cursor=first.cursor)

    read = {r.external_id for r in first.records} | set(ids)
    assert read == set(fake.ids("Contact"))
    assert len(ids) < 4500 - 2000 + 10  # restarted at the page's last time, not at the start


def test_a_cursor_saved_by_another_api_version_restarts_its_query(salesforce):
    stale = Cursor(since_ms=0, after="/services/data/v52.0/query/01gOLD-2000", max_seen_ms=0)

    ids, _, _ = all_changes(connector(salesforce), cursor=stale)

    assert sorted(ids) == salesforce.ids("Contact")
    assert not any("01gOLD" in p for p in salesforce.paths())


def test_the_next_run_sees_new_edits_and_only_the_commit_lag_overlap(salesforce):
    _, cursor, _ = all_changes(connector(salesforce))
    edited = salesforce.ids("Contact")[:2]
    salesforce.touch("Contact", edited)

    ids, _, pages = all_changes(connector(salesforce), cursor=cursor)

    overlap = [
        r
        for r in salesforce.records["Contact"].values()
        if r.modified_ms >= cursor.since_ms and r.id not in edited
    ]
    assert set(ids) == set(edited) | {r.id for r in overlap}
    assert len(overlap) <= 33 and pages == 1  # ten minutes of changes, not all 300


def test_accounts_are_companies_and_converted_leads_are_skipped(salesforce):
    sf_connector = connector(salesforce, objects=("contacts", "accounts", "leads"))

    accounts, _, _ = all_changes(sf_connector, "accounts")
    leads, _, _ = all_changes(sf_connector, "leads")

    assert sf_connector.object_types() == ("contacts", "accounts", "leads")
    assert sorted(accounts) == ["account:" + i for i in salesforce.ids("Account")]
    converted = {i for i, r in salesforce.records["Lead"].items() if r.fields["IsConverted"]}
    assert len(converted) == 3 and set(leads) == set(salesforce.ids("Lead")) - converted


def test_it_lists_every_live_id_for_the_full_diff(make_salesforce):
    fake = make_salesforce(contacts=2100, accounts=3)
    gone = fake.ids("Contact")[5:7]
    fake.delete("Contact", gone)
    sf_connector = connector(fake, objects=("contacts", "accounts"))

    pages = list(sf_connector.all_ids("contacts"))
    accounts = [i for page in sf_connector.all_ids("accounts") for i in page]

    assert [len(p) for p in pages] == [2000, 98]
    assert sorted(i for p in pages for i in p) == sorted(set(fake.ids("Contact")) - set(gone))
    assert accounts == ["account:" + i for i in fake.ids("Account")]


def test_an_id_listing_cut_short_by_an_expired_locator_is_an_error(make_salesforce):
    fake = make_salesforce(contacts=2100)
    listing = connector(fake).all_ids("contacts")
    next(listing)
    fake.expire_query_locators()

    with pytest.raises(ConnectorError, match="expired"):
        next(listing)


def test_it_finds_contacts_and_leads_by_phone_keeping_only_real_matches(make_salesforce):
    fake = make_salesforce(contacts=3, leads=2)
    contact, other, american = fake.ids("Contact")
    fake.records["Contact"][contact].fields.update(Phone="020 7946 0018", MailingCountry="GB")
    fake.records["Contact"][other].fields.update(MobilePhone="+44 20 7946 0018")
    # The same digits, read as a US number: found by the search, dropped by the connector.
    fake.records["Contact"][american].fields.update(Phone="2079460018", MailingCountry="US")
    lead = fake.ids("Lead")[0]
    fake.records["Lead"][lead].fields.update(Phone="+442079460018", IsConverted=False)

    found = connector(fake, objects=("contacts", "leads")).find_by_phone("+442079460018")

    assert sorted(r.external_id for r in found) == sorted([contact, other, lead])
    (search,) = [p for p in fake.paths("GET") if "/search/" in p]
    assert "IN+PHONE+FIELDS+RETURNING+Contact%28Id%2C+FirstName" in search


def test_a_request_limit_403_ends_the_call_with_a_retry_after(salesforce):
    salesforce.inject(Fault("request_limit", times=1))
    sf_connector = connector(salesforce)

    with pytest.raises(ConnectorError, match="REQUEST_LIMIT_EXCEEDED") as error:
        sf_connector.changed_since("contacts", Cursor())

    assert not error.value.permanent and error.value.retry_after == 30
    assert sf_connector.rate_limit_waits == 1


def test_an_exhausted_daily_allocation_waits_an_hour(make_salesforce):
    fake = make_salesforce(contacts=5, daily_limit=0)

    with pytest.raises(ConnectorError, match="TotalRequests") as error:
        connector(fake, background=False).find_user("agent0@example.com")

    assert not error.value.permanent and error.value.retry_after == 3600


def test_a_sync_stops_near_the_daily_allocation_but_call_logging_goes_on(make_salesforce):
    fake = make_salesforce(contacts=4500, daily_limit=100)
    fake.api_usage = 79  # the org's other integrations spent most of today's allocation
    sync_side = connector(fake)

    page = sync_side.changed_since("contacts", Cursor())  # answered with api-usage=80/100
    with pytest.raises(ConnectorError, match="80 of its 100 daily API requests") as error:
        sync_side.changed_since("contacts", page.cursor)

    assert len(page.records) == 2000 and error.value.retry_after == 3600
    assert len(queries(fake)) == 1  # stopped before sending
    assert connector(fake, background=False).find_user("agent0@example.com") is not None


def test_it_retries_a_500_then_succeeds(salesforce):
    salesforce.inject(Fault("status", times=1, status=500))

    page = connector(salesforce).changed_since("contacts", Cursor())

    assert len(page.records) == 300 and len(queries(salesforce)) == 2


def test_a_malformed_page_is_an_error_not_an_empty_page(salesforce):
    salesforce.inject(Fault("malformed", times=1))

    with pytest.raises(ConnectorError, match="without records") as error:
        connector(salesforce).changed_since("contacts", Cursor())

    assert not error.value.permanent


def test_it_refreshes_the_session_before_it_expires_and_keeps_a_rotated_refresh_token(
    make_salesforce,
):
    fake = make_salesforce(contacts=5, rotate_refresh_tokens=True)
    saved = []
    credentials = salesforce_credentials(fake, expires_at=time.time() + 10)

    connector(fake, saved, **credentials).changed_since("contacts", Cursor())

    assert fake.paths("POST")[0] == "/services/oauth2/token"
    assert saved[-1]["access_token"] != credentials["access_token"]
    assert saved[-1]["refresh_token"] != credentials["refresh_token"]  # the old one is dead now
    assert saved[-1]["refresh_token"] in fake.refresh_tokens
    assert saved[-1]["instance_url"] == fake.url and saved[-1]["expires_at"] > time.time() + 7000


def test_it_refreshes_on_invalid_session_id_and_retries_once(salesforce):
    saved = []
    sf_connector = connector(salesforce, saved)
    salesforce.expire_tokens()  # the org's session timeout is shorter than we assumed

    page = sf_connector.changed_since("contacts", Cursor())

    assert len(page.records) == 300
    assert salesforce.paths("POST") == ["/services/oauth2/token"] and len(saved) == 1


def test_a_refused_refresh_is_permanent_with_the_oauth_reason(salesforce):
    sf_connector = connector(salesforce, expires_at=0, refresh_token="5Aep861revoked")

    with pytest.raises(ConnectorError, match="invalid_grant: expired access/refresh") as error:
        sf_connector.changed_since("contacts", Cursor())

    assert error.value.permanent and "reconnect Salesforce" in str(error.value)


def call(fake, **overrides) -> CallLogEntry:
    fields = {
        "call_id": "call-0001",
        "direction": "outbound",
        "outcome": "answered",
        "started_at": datetime(2024, 3, 5, 10, 0, tzinfo=UTC),
        "duration_seconds": 95,
        "from_number": "+442079460999",
        "to_number": "+442079460018",
        "contact_external_id": fake.ids("Contact")[0],
        "owner_user_id": fake.ids("User")[1],
        "notes": "First call.",
    }
    return CallLogEntry(**{**fields, **overrides})


def test_log_call_creates_a_call_task_linked_to_contact_and_user_in_seconds(salesforce):
    entry = call(salesforce)

    task_id = connector(salesforce, background=False).log_call(entry)

    task = salesforce.records["Task"][task_id].fields
    assert task_id.startswith("00T") and len(task_id) == 18
    assert task["TaskSubtype"] == "Call" and task["Status"] == "Completed"
    assert (task["CallType"], task["CallDurationInSeconds"]) == ("Outbound", 95)
    assert task["CallDisposition"] == "Answered" and task["CallObject"] == "call-0001"
    assert (task["WhoId"], task["OwnerId"]) == (entry.contact_external_id, entry.owner_user_id)
    assert task["ActivityDate"] == "2024-03-05"


def test_update_call_log_changes_the_same_task_without_a_duplicate(salesforce):
    sf_connector = connector(salesforce, background=False)
    task_id = sf_connector.log_call(call(salesforce))

    sf_connector.update_call_log(
        task_id, call(salesforce, notes="Summary: wants a quote.", duration_seconds=140)
    )

    assert list(salesforce.records["Task"]) == [task_id]
    task = salesforce.records["Task"][task_id].fields
    assert task["Description"].startswith("Summary: wants a quote.")
    assert task["CallDurationInSeconds"] == 140 and task["TaskSubtype"] == "Call"


def test_updating_a_task_that_is_gone_is_a_permanent_error(salesforce):
    with pytest.raises(ConnectorError, match="404 NOT_FOUND") as error:
        connector(salesforce).update_call_log("00T8d000000NOPE", call(salesforce))

    assert error.value.permanent


def test_create_task_for_a_missed_call(salesforce):
    entry = call(salesforce, direction="inbound", outcome="missed", duration_seconds=0, notes="")

    task_id = connector(salesforce, background=False).create_task(entry)

    task = salesforce.records["Task"][task_id].fields
    assert task["Subject"] == "Missed call from +442079460999: call back"
    assert (task["Status"], task["Priority"], task["TaskSubtype"]) == (
        "Not Started",
        "High",
        "Task",
    )
    assert task["WhoId"] == entry.contact_external_id


def test_a_call_linked_to_a_record_that_does_not_exist_is_refused(salesforce):
    entry = call(salesforce, contact_external_id="003000000000000AAA")

    with pytest.raises(ConnectorError, match="INVALID_CROSS_REFERENCE_KEY") as error:
        connector(salesforce).log_call(entry)

    assert error.value.permanent and salesforce.records["Task"] == {}


def test_create_contact_for_an_unknown_caller(salesforce):
    record = connector(salesforce, background=False).create_contact(
        e164="+442079460123", name="Grace Brewster Hopper"
    )

    stored = salesforce.records["Contact"][record.external_id].fields
    assert stored["FirstName"] == "Grace Brewster" and stored["LastName"] == "Hopper"
    assert stored["Phone"] == "+442079460123"
    assert record.crm_url == f"{salesforce.url}/lightning/r/Contact/{record.external_id}/view"
    nameless = connector(salesforce).create_contact(e164="+442079460124")
    assert salesforce.records["Contact"][nameless.external_id].fields["LastName"] == "+442079460124"


def test_find_user_by_email_skips_inactive_users(salesforce):
    sf_connector = connector(salesforce, background=False)

    user = sf_connector.find_user("AGENT1@example.com")

    assert user.external_id == salesforce.ids("User")[1] and user.name == "Grace Agent1"
    assert sf_connector.find_user("agent2@example.com") is None  # deactivated
    assert sf_connector.find_user("o'brien@example.com") is None  # quoted, not a MALFORMED_QUERY
