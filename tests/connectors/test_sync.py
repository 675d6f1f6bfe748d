"""The sync engine against the fake HubSpot: upserts, counts, resume, guarded deletes, lock."""

import time

import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext

from connectors import sync
from connectors.models import Connection, SyncRun
from contacts.models import Contact, ContactPhone
from core.scoping import tenant_scope
from fakes.hubspot import Fault

pytestmark = pytest.mark.django_db


def run(connection, kind="incremental", **options) -> SyncRun | None:
    with tenant_scope(connection.tenant_id):
        return sync.connection_sync(connection_id=connection.pk, kind=kind, **options)


def contacts_of(connection) -> list[Contact]:
    with tenant_scope(connection.tenant_id):
        return list(Contact.objects.filter(source_connection=connection).prefetch_related("phones"))


def refreshed(connection) -> Connection:
    with tenant_scope(connection.tenant_id):
        return Connection.objects.get(pk=connection.pk)


def test_a_first_sync_brings_every_contact_and_company_with_normalized_numbers(
    tenant, hubspot, make_connection
):
    connection = make_connection(tenant, hubspot)

    result = run(connection)

    assert result.outcome == "succeeded", result.error
    assert (result.created, result.updated, result.invalid_records) == (270, 0, 0)
    assert result.unchanged == 0  # records read again at a page boundary are not counted twice
    assert result.pages == 2 + 1
    stored = contacts_of(connection)
    assert len(stored) == 270 == len({c.external_id for c in stored})
    assert sum(c.is_company for c in stored) == 20
    with tenant_scope(tenant):
        phones = ContactPhone.objects.filter(contact__source_connection=connection)
        assert (
            phones.filter(e164="+442079460001").exists()
            or phones.filter(e164__startswith="+44").exists()
        )
        assert result.invalid_numbers == phones.filter(e164__isnull=True).count() > 0
    assert refreshed(connection).sync_cursor["contacts"]["after"] is None
    assert refreshed(connection).next_incremental_at is not None


def test_synced_records_link_to_hubspot_with_the_portal_id_asked_once(
    tenant, hubspot, make_connection
):
    connection = make_connection(tenant, hubspot)  # a private-app token: no hub id given

    run(connection)
    run(connection)

    contact = next(c for c in contacts_of(connection) if c.external_id == "12")
    company = next(c for c in contacts_of(connection) if c.is_company)
    portal = hubspot.hub_id
    assert contact.crm_url == f"https://app.hubspot.com/contacts/{portal}/record/0-1/12"
    assert company.crm_url == (
        f"https://app.hubspot.com/contacts/{portal}/record/0-2/"
        f"{company.external_id.removeprefix('company:')}"
    )
    assert refreshed(connection).credentials["hub_id"] == str(portal)  # kept: asked only once
    assert hubspot.paths("GET").count("/account-info/v3/details") == 1


def test_a_portal_id_hubspot_will_not_tell_leaves_links_empty_and_the_sync_whole(
    tenant, hubspot, make_connection
):
    connection = make_connection(tenant, hubspot, settings={"objects": ["contacts"]})
    hubspot.inject(Fault("status", times=1, path_contains="/account-info", status=403))

    result = run(connection)

    assert result.outcome == "succeeded" and result.created == 250
    assert {c.crm_url for c in contacts_of(connection)} == {""}
    assert "hub_id" not in refreshed(connection).credentials  # asked again next run


def test_a_second_sync_changes_only_what_changed(tenant, hubspot, make_connection):
    connection = make_connection(tenant, hubspot)
    run(connection)
    hubspot.touch("contacts", [12])

    result = run(connection)

    assert result.updated == 1 and result.created == 0
    assert result.unchanged > 0
    (edited,) = [c for c in contacts_of(connection) if c.external_id == "12"]
    assert edited.last_name.startswith("Edited")


def test_a_failed_page_keeps_the_cursor_and_the_next_run_resumes_without_duplicates(
    tenant, hubspot, make_connection
):
    connection = make_connection(tenant, hubspot, settings={"objects": ["contacts"]})
    hubspot.inject(Fault("slow", times=1, path_contains="/search", seconds=0))  # page 1 fine
    hubspot.inject(Fault("malformed", times=1, path_contains="/search"))  # page 2 broken

    failed = run(connection)
    cursor_after_failure = refreshed(connection).sync_cursor["contacts"]
    resumed = run(connection)

    assert failed.outcome == "failed" and failed.pages == 1 and failed.created == 200
    assert "without results" in failed.error
    assert cursor_after_failure["since_ms"] > 0 and cursor_after_failure["after"] is None
    assert resumed.outcome == "succeeded" and resumed.created == 50 and resumed.pages == 1
    assert len(contacts_of(connection)) == 250


def test_it_saves_its_place_every_few_pages_and_where_it_ends(
    tenant, make_hubspot, make_connection
):
    hubspot = make_hubspot(contacts=1_300, companies=0)
    connection = make_connection(tenant, hubspot, settings={"objects": ["contacts"]})

    with CaptureQueriesContext(connections["default"]) as queries:
        result = run(connection)

    cursor_saves = [
        query
        for query in queries.captured_queries
        if query["sql"].startswith('UPDATE "connectors_connection" SET "sync_cursor"')
    ]
    assert result.outcome == "succeeded" and result.created == 1_300 and result.pages > 5
    assert len(cursor_saves) == -(-result.pages // sync.PROGRESS_EVERY_PAGES)  # not one a page
    assert refreshed(connection).sync_cursor["contacts"]["after"] is None
    assert run(connection).created == 0  # the next run starts where this one ended


def test_a_run_that_hits_its_time_budget_saves_its_place_for_the_next_task(
    tenant, hubspot, make_connection
):
    connection = make_connection(tenant, hubspot, settings={"objects": ["contacts"]})

    first = run(connection, time_budget=0)
    rest = run(connection)

    assert first.more_pending and first.pages == 1
    assert rest.created == 50 and not rest.more_pending
    with tenant_scope(tenant):
        assert [r.outcome for r in SyncRun.objects.all()] == ["succeeded", "succeeded"]


def test_each_page_is_fetched_once_and_written_once_while_the_next_is_fetched(
    tenant, make_hubspot, make_connection
):
    hubspot = make_hubspot(contacts=1_000)
    connection = make_connection(tenant, hubspot, settings={"objects": ["contacts"]})

    result = run(connection)

    searches = hubspot.paths("POST")
    assert result.outcome == "succeeded", result.error
    assert result.created == 1_000 and result.pages == len(searches) > 5
    stored = contacts_of(connection)
    assert len(stored) == 1_000 == len({c.external_id for c in stored})


@pytest.mark.django_db(transaction=True)  # the fetch thread's own connection sees the row
def test_a_token_refreshed_on_the_fetch_thread_mid_run_is_saved(tenant, hubspot, make_connection):
    tokens = hubspot.issue_oauth_tokens()
    credentials = {**tokens, "expires_at": time.time() + 1800, "client_id": "fake-client-id"}
    credentials["client_secret"] = "fake-client-secret"
    connection = make_connection(
        tenant, hubspot, credentials=credentials, settings={"objects": ["contacts"]}
    )
    hubspot.inject(Fault("status", times=1, status=401, path_contains="/search", skip=1))

    result = run(connection)

    assert result.outcome == "succeeded", result.error
    assert result.created == 250 and hubspot.paths("POST").count("/oauth/v1/token") == 1
    assert refreshed(connection).credentials["access_token"] != tokens["access_token"]


def test_the_full_diff_soft_deletes_what_vanished_from_the_crm(tenant, hubspot, make_connection):
    connection = make_connection(tenant, hubspot)
    run(connection)
    hubspot.archive("contacts", [5, 6, 7])

    result = run(connection, "full")

    assert result.outcome == "succeeded" and result.deleted == 3
    assert result.unchanged == 270 - 3  # the rest is still in the CRM and kept
    gone = {c.external_id for c in contacts_of(connection) if c.deleted_at is not None}
    assert gone == {"5", "6", "7"}
    assert refreshed(connection).last_full_diff_at is not None


def test_the_full_diff_deletes_nothing_when_too_many_would_vanish(tenant, hubspot, make_connection):
    connection = make_connection(tenant, hubspot)
    run(connection)
    hubspot.archive("contacts", list(range(1, 30)))  # 29 of 270: over 10 %

    result = run(connection, "full")

    assert result.outcome == "guarded" and result.deleted == 0
    assert all(c.deleted_at is None for c in contacts_of(connection))
    connection = refreshed(connection)
    assert connection.status == "needs_attention"
    assert "would delete 29 of 270" in connection.last_error


def test_the_full_diff_deletes_nothing_when_the_listing_fails_part_way(
    tenant, hubspot, make_connection
):
    connection = make_connection(tenant, hubspot)
    run(connection)
    hubspot.inject(Fault("slow", times=2, path_contains="/objects/contacts", seconds=0))
    hubspot.inject(Fault("malformed", times=1, path_contains="/objects/contacts"))

    result = run(connection, "full")

    assert result.outcome == "failed" and result.deleted == 0 and result.pages == 2
    assert all(c.deleted_at is None for c in contacts_of(connection))


def test_a_rejected_token_puts_the_connection_in_needs_attention(tenant, hubspot, make_connection):
    connection = make_connection(tenant, hubspot, credentials={"private_app_token": "pat-revoked"})

    result = run(connection)

    assert result.outcome == "failed"
    connection = refreshed(connection)
    assert connection.status == "needs_attention"
    assert "rejected the private-app token" in connection.last_error


def test_a_failed_oauth_refresh_puts_the_connection_in_needs_attention(
    tenant, hubspot, make_connection
):
    credentials = {
        "access_token": "oauth-old",
        "refresh_token": "refresh-revoked",
        "expires_at": 0,
        "client_id": "fake-client-id",
        "client_secret": "fake-client-secret",
    }
    connection = make_connection(tenant, hubspot, credentials=credentials)

    run(connection)

    assert "Refreshing the HubSpot OAuth token failed" in refreshed(connection).last_error


def test_a_refreshed_token_is_stored_encrypted(tenant, hubspot, make_connection):
    tokens = hubspot.issue_oauth_tokens(expires_in=5)
    credentials = {**tokens, "expires_at": 0, "client_id": "fake-client-id"}
    credentials["client_secret"] = "fake-client-secret"
    connection = make_connection(tenant, hubspot, credentials=credentials)

    run(connection)

    assert refreshed(connection).credentials["access_token"] != tokens["access_token"]
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT credentials_json FROM connectors_connection")
        (stored,) = cursor.fetchone()
    assert "oauth-" not in stored and "refresh-" not in stored


def test_only_one_sync_runs_per_connection_at_a_time(tenant, hubspot, make_connection):
    connection = make_connection(tenant, hubspot)
    other = connections.create_connection("default")  # another worker's database session
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [sync._LOCK_NAMESPACE | connection.pk])
            assert run(connection) is None
            cursor.execute("SELECT pg_advisory_unlock_all()")
        assert run(connection) is not None
    finally:
        other.close()


def test_the_dispatcher_queues_due_connections_once(tenant, other_tenant, hubspot, make_connection):
    due = make_connection(tenant, hubspot)
    disabled = make_connection(other_tenant, hubspot, status="disabled")

    first = sync.syncs_dispatch()
    second = sync.syncs_dispatch()

    assert first == [(tenant.pk, due.pk, "incremental")]
    assert second == []
    assert disabled.pk not in [c for _, c, _ in first]


def test_record_owners_become_owner_agents_by_email_with_the_owners_listed_once_a_run(
    tenant, hubspot, make_connection, make_agent
):
    priya = hubspot.add_owner("priya.shah@acme.example")
    stranger = hubspot.add_owner("not.an.agent@acme.example")
    hubspot.set_owner("contacts", [1, 2], priya)
    hubspot.set_owner("contacts", [3], stranger)
    agent = make_agent(tenant, email="Priya.Shah@acme.example")  # any case matches
    connection = make_connection(tenant, hubspot)

    result = run(connection)

    owners = {c.external_id: c.owner_id for c in contacts_of(connection)}
    assert owners["1"] == owners["2"] == agent.pk
    assert owners["3"] is None  # owned in HubSpot by someone who is not an agent here
    assert sum(owner is not None for owner in owners.values()) == 2
    assert result.pages == 3 and hubspot.paths("GET").count("/crm/v3/owners") == 1

    hubspot.set_owner("contacts", [1], stranger)  # reassigned in HubSpot
    run(connection)

    owners = {c.external_id: c.owner_id for c in contacts_of(connection)}
    assert (owners["1"], owners["2"]) == (None, agent.pk)


def test_a_first_sync_refreshes_the_planners_row_counts_as_the_phonebook_grows(
    tenant, hubspot, make_connection, monkeypatch
):
    """Stale statistics made each page read scan the whole source: 12x the database CPU."""
    from django.db import connection as db

    if db.vendor != "postgresql":
        pytest.skip("ANALYZE is PostgreSQL's")
    monkeypatch.setattr(sync, "ANALYZE_AFTER_CREATED", 50)
    connection = make_connection(tenant, hubspot)

    result = run(connection)

    with db.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE relname = 'contacts_contact'")
        (estimated,) = cursor.fetchone()
    assert result.created == 270
    assert estimated >= 100, "analyzed once the run had created 50, and again at 100 and 200"
