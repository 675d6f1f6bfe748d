"""The Dynamics 365 connector against the strict fake Dataverse over real HTTP: change tracking,
expired delta links, the key listing, phone filters, owners, tokens, errors, 429s and writes."""

import time
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest

from connectors.dynamics.connector import DynamicsConnector
from connectors.interface import CallLogEntry, ConnectionConfig, ConnectorError, Cursor
from connectors.pacing import RateLimit
from fakes.dynamics import FakeDynamics, Fault

pytestmark = pytest.mark.django_db  # the per-connection request budget lives in the cache


@pytest.fixture
def make_dynamics(start_fake):
    return lambda **options: start_fake(FakeDynamics, **options)


@pytest.fixture
def dynamics(make_dynamics) -> FakeDynamics:
    return make_dynamics(contacts=2300, accounts=20)


def connector(
    fake, saved=None, objects=("contacts",), custom_fields=(), settings=None, **credentials
):
    config = ConnectionConfig(
        connection_id=1,
        credentials={**fake.credentials(), **credentials},
        settings={
            "objects": list(objects),
            "custom_fields": list(custom_fields),
            **(settings or {}),
        },
        background=False,
    )
    return DynamicsConnector(config, (saved if saved is not None else []).append)


def all_changes(dynamics_connector, object_type="contacts", cursor=None):
    cursor, ids, pages = cursor or Cursor(), [], 0
    while True:
        page = dynamics_connector.changed_since(object_type, cursor)
        ids += [r.external_id for r in page.records]
        cursor, pages = page.cursor, pages + 1
        if page.done:
            return ids, cursor, pages


def listings(fake, entity_set="contacts"):
    """(query, headers) of each listing request, oldest first."""
    return [(q, h) for m, p, q, h in fake.requests if m == "GET" and p.endswith(entity_set)]


def entry(**fields) -> CallLogEntry:
    values = {
        "call_id": "call-7",
        "direction": "inbound",
        "outcome": "answered",
        "started_at": datetime(2024, 3, 5, 17, 2, 11, tzinfo=UTC),
        "duration_seconds": 150,
        "from_number": "+447400123456",
        "to_number": "+442079460000",
        "subject": "Inbound call answered",
        **fields,
    }
    return CallLogEntry(**values)


def test_a_first_sync_reads_the_baseline_in_pages_and_ends_with_a_delta_link(dynamics):
    ids, cursor, pages = all_changes(connector(dynamics))

    assert sorted(ids) == sorted(dynamics.ids("contacts")) and pages == 3
    first, second, _ = listings(dynamics)
    assert first[1]["Prefer"].startswith("odata.track-changes,odata.maxpagesize=1000")
    assert (first[1]["OData-MaxVersion"], first[1]["OData-Version"]) == ("4.0", "4.0")
    assert "$skiptoken" in second[0]  # the nextLink, followed as given
    assert "$deltatoken=" in cursor.after and cursor.after.startswith(dynamics.url)


def test_rows_bring_their_company_owner_numbers_and_link(make_dynamics):
    fake = make_dynamics(contacts=5, accounts=2)
    contact_id = fake.ids("contacts")[1]  # has a parent account
    row = fake.rows["contacts"][contact_id].columns

    page = connector(fake).changed_since("contacts", Cursor())

    record = next(r for r in page.records if r.external_id == contact_id)
    assert record.company == "Company 1"  # the parent account's name (a formatted value)
    assert row["telephone1"] in [p.number for p in record.phones]
    assert record.owner_id == row["_ownerid_value"]
    assert (
        record.crm_url == f"{fake.url}/main.aspx?pagetype=entityrecord&etn=contact&id={contact_id}"
    )


def test_the_delta_link_brings_changed_and_new_rows_and_skips_deleted_ones(dynamics):
    _, cursor, _ = all_changes(connector(dynamics))
    edited = dynamics.ids("contacts")[5:7]
    dynamics.touch("contacts", edited)
    dynamics.delete("contacts", dynamics.ids("contacts")[9:10])
    created = connector(dynamics).create_contact(e164="+447400999888", name="New Caller")

    ids, next_cursor, pages = all_changes(connector(dynamics), cursor=cursor)

    assert (sorted(ids), pages) == (sorted([*edited, created.external_id]), 1)
    assert next_cursor.after != cursor.after and "$deltatoken=" in next_cursor.after
    again, _, _ = all_changes(connector(dynamics), cursor=next_cursor)
    assert again == []  # nothing changed since


def test_an_expired_delta_link_restarts_from_a_new_baseline(dynamics):
    _, cursor, _ = all_changes(connector(dynamics))
    dynamics.expire_delta_links()

    ids, next_cursor, _ = all_changes(connector(dynamics), cursor=cursor)

    assert sorted(ids) == sorted(dynamics.ids("contacts"))
    assert "$deltatoken=" in next_cursor.after and next_cursor.after != cursor.after
    expired = [q for q, _ in listings(dynamics) if q.get("$deltatoken")]
    assert len(expired) == 1  # asked once, answered 410, then the baseline


def test_a_listing_stopped_part_way_resumes_at_its_next_link(dynamics):
    first = connector(dynamics).changed_since("contacts", Cursor())

    ids, _, pages = all_changes(connector(dynamics), cursor=first.cursor)

    assert not first.done and pages == 2
    assert sorted([r.external_id for r in first.records] + ids) == sorted(dynamics.ids("contacts"))


def test_a_table_without_change_tracking_is_a_permanent_error(dynamics):
    dynamics.tracked.discard("accounts")

    with pytest.raises(ConnectorError, match="Track changes for the account table") as error:
        all_changes(connector(dynamics, objects=("accounts",)), "accounts")

    assert error.value.permanent


def test_a_since_cursor_lists_rows_modified_since_then_without_tracking(dynamics):
    page = connector(dynamics).changed_since("contacts", Cursor(since_ms=4_000_000_000_000))

    assert (page.records, page.done, page.cursor) == ((), True, Cursor())
    query, headers = listings(dynamics)[-1]
    assert query["$filter"] == ["modifiedon ge 2096-10-02T07:06:40Z"]
    assert "odata.track-changes" not in headers["Prefer"]


def test_all_ids_lists_every_live_key_with_accounts_prefixed(dynamics):
    dynamics.delete("contacts", dynamics.ids("contacts")[:3])
    dynamics_connector = connector(dynamics, objects=("contacts", "accounts"))

    contacts = [i for page in dynamics_connector.all_ids("contacts") for i in page]
    accounts = [i for page in dynamics_connector.all_ids("accounts") for i in page]

    assert sorted(contacts) == sorted(dynamics.ids("contacts")) and len(contacts) == 2297
    assert accounts == [f"account:{i}" for i in sorted(dynamics.ids("accounts"))]
    query, headers = listings(dynamics, "accounts")[-1]
    assert query["$select"] == ["accountid"] and "odata.maxpagesize=5000" in headers["Prefer"]


def test_phone_search_asks_for_every_stored_form_and_keeps_real_matches(make_dynamics):
    fake = make_dynamics(contacts=6, accounts=2)
    contacts, accounts = fake.ids("contacts"), fake.ids("accounts")
    gb, us = {"address1_country": "GB"}, {"address1_country": "US"}
    fake.rows["contacts"][contacts[0]].columns.update(telephone1="020 7946 0018", **gb)
    fake.rows["contacts"][contacts[1]].columns.update(mobilephone="+44 20 7946 0018")
    fake.rows["contacts"][contacts[2]].columns.update(telephone1="+44 20 7946 0019")
    # The same text in the US is another number: found by the filter, not kept.
    fake.rows["contacts"][contacts[3]].columns.update(telephone1="020 7946 0018", **us)
    fake.rows["accounts"][accounts[0]].columns.update(telephone2="442079460018", **gb)

    found = connector(fake, objects=("contacts", "accounts")).find_by_phone("+442079460018")

    assert {r.external_id for r in found} == {contacts[0], contacts[1], f"account:{accounts[0]}"}
    condition = listings(fake)[-1][0]["$filter"][0]
    assert "telephone1 eq '020 7946 0018'" in condition
    assert "mobilephone eq '+44 20 7946 0018'" in condition and " or " in condition


def test_owners_are_the_enabled_systemusers_and_find_user_matches_any_case(dynamics):
    dynamics_connector = connector(dynamics)

    users = dynamics_connector.users()
    priya = dynamics_connector.find_user("PRIYA.SHAH@example.com")

    assert "gone@example.com" not in {u.email for u in users}  # disabled
    assert {"pat.boyle@example.com", "priya.shah@example.com"} <= {u.email for u in users}
    assert priya is not None and (priya.email, priya.name) == (
        "priya.shah@example.com",
        "Priya Shah",
    )
    assert priya.external_id in dynamics.rows["systemusers"]
    assert dynamics_connector.find_user("nobody@example.com") is None


def test_a_token_is_fetched_once_kept_and_fetched_again_when_rejected(dynamics):
    saved = []
    dynamics_connector = connector(dynamics, saved)
    dynamics_connector.find_user("priya.shah@example.com")
    dynamics_connector.find_user("priya.shah@example.com")
    assert len(saved) == 1 and saved[0]["access_token"] in dynamics.access_tokens
    token_path = f"/{dynamics.tenant_id}/oauth2/v2.0/token"

    dynamics.expire_tokens()  # revoked or expired early: a 401
    assert connector(dynamics, saved, **saved[-1]).find_user("priya.shah@example.com")

    assert dynamics.paths("POST").count(token_path) == 2 and len(saved) == 2


def test_a_wrong_secret_or_tenant_is_a_permanent_error(dynamics):
    with pytest.raises(ConnectorError, match="AADSTS7000215") as wrong_secret:
        connector(dynamics, client_secret="nope").users()
    with pytest.raises(ConnectorError, match="AADSTS90002") as wrong_tenant:
        connector(dynamics, tenant_id="contoso.onmicrosoft.com").users()

    assert wrong_secret.value.permanent and wrong_tenant.value.permanent


def test_a_token_rejected_after_a_fresh_one_is_permanent(dynamics):
    dynamics.token_seconds = -1  # every token it issues is already expired

    with pytest.raises(ConnectorError, match="rejected the access token") as error:
        connector(dynamics).users()

    assert error.value.permanent


def test_an_unknown_column_is_dataverses_error_and_permanent(dynamics):
    with pytest.raises(ConnectorError, match="Could not find a property named 'new_rank'") as error:
        connector(dynamics, custom_fields=["new_rank"]).changed_since("contacts", Cursor())

    assert error.value.permanent and "400" in str(error.value)


def test_a_429_is_waited_out_after_retry_after(dynamics):
    dynamics.inject(Fault("status", times=1, path_contains="/contacts", status=429, retry_after=1))
    dynamics_connector = connector(dynamics)

    page = dynamics_connector.changed_since("contacts", Cursor())

    assert len(page.records) == 1000 and dynamics_connector.rate_limit_waits == 1


def test_service_protection_answers_429_with_retry_after_and_is_waited_out(make_dynamics):
    fake = make_dynamics(contacts=3, requests_per_window=2, window_seconds=1)
    dynamics_connector = connector(fake)

    for _ in range(3):
        dynamics_connector.find_user("priya.shah@example.com")

    assert dynamics_connector.rate_limit_waits >= 1


def test_it_paces_itself_under_service_protection_instead_of_hitting_it(make_dynamics):
    fake = make_dynamics(contacts=3, requests_per_window=2, window_seconds=1)
    dynamics_connector = connector(fake, settings={"rate_limits": {"requests": [2, 1]}})
    started = time.monotonic()

    for _ in range(3):
        dynamics_connector.find_user("priya.shah@example.com")

    assert time.monotonic() - started >= 1 and dynamics_connector.rate_limit_waits == 0
    assert connector(fake).client.rate_limits["requests"] == RateLimit(6000, 300)  # by default


def test_a_5xx_is_retried_by_the_client(dynamics):
    dynamics.inject(Fault("status", times=2, path_contains="/systemusers", status=503))

    assert connector(dynamics).find_user("priya.shah@example.com") is not None


def test_a_call_is_a_phonecall_regarding_the_contact_and_updated_in_place(dynamics):
    contact_id = dynamics.ids("contacts")[0]
    owner = connector(dynamics).find_user("priya.shah@example.com")
    dynamics_connector = connector(dynamics)
    call = entry(contact_external_id=contact_id, owner_user_id=owner.external_id)

    remote_id = dynamics_connector.log_call(call)
    dynamics_connector.update_call_log(remote_id, entry(**{**call.__dict__, "notes": "Friday"}))

    stored = dynamics.written("phonecalls")
    assert list(stored) == [remote_id]
    row = stored[remote_id]
    assert row["regardingobjectid_contact@odata.bind"] == f"/contacts({contact_id})"
    assert row["_regardingobjectid_value"] == contact_id
    assert row["_ownerid_value"] == owner.external_id
    assert (row["directioncode"], row["actualdurationminutes"]) == (False, 3)
    assert (row["actualstart"], row["actualend"]) == (
        "2024-03-05T17:02:11Z",
        "2024-03-05T17:04:41Z",
    )
    assert row["description"].splitlines()[0] == "Friday"
    assert row["description"].splitlines()[-1] == "CallBridge call call-7"
    assert dynamics_connector.find_logged("call-7") == remote_id
    assert dynamics_connector.find_logged("call-8") is None


def test_an_account_call_regards_the_account(dynamics):
    account_id = dynamics.ids("accounts")[0]

    remote_id = connector(dynamics).log_call(entry(contact_external_id=f"account:{account_id}"))

    row = dynamics.written("phonecalls")[remote_id]
    assert row["regardingobjectid_account@odata.bind"] == f"/accounts({account_id})"


def test_updating_a_deleted_phonecall_fails_instead_of_creating_it_again(dynamics):
    dynamics_connector = connector(dynamics)
    remote_id = dynamics_connector.log_call(entry())
    dynamics.delete("phonecalls", [remote_id])

    with pytest.raises(ConnectorError, match="Does Not Exist") as error:
        dynamics_connector.update_call_log(remote_id, entry(notes="later"))

    assert error.value.permanent and dynamics.written("phonecalls") == {}


def test_a_missed_call_task_is_high_priority_due_at_the_call_and_findable(dynamics):
    contact_id = dynamics.ids("contacts")[0]
    dynamics_connector = connector(dynamics)

    remote_id = dynamics_connector.create_task(
        entry(outcome="missed", duration_seconds=0, contact_external_id=contact_id, subject="")
    )

    row = dynamics.written("tasks")[remote_id]
    assert (row["prioritycode"], row["scheduledend"]) == (2, "2024-03-05T17:02:11Z")
    assert row["subject"] == "Missed call from +447400123456: call back"
    assert dynamics_connector.find_logged("call-7", task=True) == remote_id
    assert dynamics_connector.find_logged("call-7") is None  # not a phonecall


def test_a_contact_created_for_an_unknown_caller_is_in_dataverse(dynamics):
    created = connector(dynamics).create_contact(e164="+447400999888")

    row = dynamics.rows["contacts"][created.external_id].columns
    assert (row["lastname"], row["mobilephone"]) == ("+447400999888", "+447400999888")
    assert created.phones[0].number == "+447400999888"


def test_a_write_dataverse_refuses_is_a_permanent_error(dynamics):
    with pytest.raises(ConnectorError, match="Does Not Exist") as error:
        connector(dynamics).log_call(entry(contact_external_id=dynamics.ids("accounts")[0]))

    assert error.value.permanent and dynamics.written("phonecalls") == {}


def test_no_consent_flow_is_offered(dynamics):
    with pytest.raises(ConnectorError, match="client credentials") as error:
        connector(dynamics).authorization_url(state="s", redirect_uri="https://x.example/cb")

    assert error.value.permanent


def test_delta_links_keep_the_select(dynamics):
    _, cursor, _ = all_changes(connector(dynamics, custom_fields=["contact.new_tier"]))

    select = parse_qs(urlsplit(cursor.after).query)["$select"][0].split(",")
    assert "new_tier" in select and "telephone1" in select


REDIRECT_URI = "https://callbridge.example.com/api/v1/connections/oauth/callback"


def delegated(fake, saved=None, **credentials):
    return connector(fake, saved, **{"auth": "authorization_code", **credentials})


def test_a_delegated_connection_asks_for_user_impersonation_and_a_refresh_token(dynamics):
    url = urlsplit(delegated(dynamics).authorization_url(state="s1", redirect_uri=REDIRECT_URI))
    query = {k: v[0] for k, v in parse_qs(url.query).items()}

    assert f"{url.scheme}://{url.netloc}{url.path}" == (
        f"{dynamics.url}/{dynamics.tenant_id}/oauth2/v2.0/authorize"
    )
    assert query == {
        "client_id": dynamics.credentials()["client_id"],
        "redirect_uri": REDIRECT_URI,
        "response_type": "code",
        "response_mode": "query",
        "scope": f"{dynamics.url}/user_impersonation offline_access",
        "state": "s1",
    }


def test_a_delegated_connection_reads_with_the_users_token_and_refreshes_it(dynamics):
    saved = []
    delegated(dynamics, saved).connect(
        code=dynamics.authorize(REDIRECT_URI), redirect_uri=REDIRECT_URI
    )
    first = saved[-1]
    assert first["refresh_token"] in dynamics.refresh_tokens
    assert first["access_token"] in dynamics.access_tokens and first["auth"] == "authorization_code"

    assert delegated(dynamics, saved, **first).find_user("priya.shah@example.com")
    assert len(saved) == 1  # the token from the code grant was used as it was
    assert listings(dynamics, "systemusers")[-1][1]["Authorization"] == (
        f"Bearer {first['access_token']}"
    )

    expired = {**first, "expires_at": 0}  # past its expiry: refreshed before the request
    assert delegated(dynamics, saved, **expired).find_user("priya.shah@example.com")
    second = saved[-1]
    assert second["refresh_token"] != first["refresh_token"]  # rotated, and the new one kept
    assert first["refresh_token"] not in dynamics.refresh_tokens
    assert listings(dynamics, "systemusers")[-1][1]["Authorization"] == (
        f"Bearer {second['access_token']}"
    )
    dynamics.expire_tokens()  # revoked early: one refresh on the 401, then the request again
    assert delegated(dynamics, saved, **second).find_user("priya.shah@example.com")
    assert len(saved) == 3
    grants = [parse_qs(body)["grant_type"][0] for body in dynamics.token_forms]
    assert grants == ["authorization_code", "refresh_token", "refresh_token"]


def test_a_wrong_or_reused_code_is_refused_for_good(dynamics):
    code = dynamics.authorize(REDIRECT_URI)
    delegated(dynamics).connect(code=code, redirect_uri=REDIRECT_URI)

    with pytest.raises(ConnectorError, match="AADSTS54005") as reused:
        delegated(dynamics).connect(code=code, redirect_uri=REDIRECT_URI)
    with pytest.raises(ConnectorError, match="AADSTS70000") as wrong:
        delegated(dynamics).connect(code="code-made-up", redirect_uri=REDIRECT_URI)
    other_uri = dynamics.authorize("https://evil.example/cb")
    with pytest.raises(ConnectorError, match="AADSTS50148") as elsewhere:
        delegated(dynamics).connect(code=other_uri, redirect_uri=REDIRECT_URI)

    for error in (reused, wrong, elsewhere):
        assert error.value.permanent and "reconnect Dynamics 365" in str(error.value)


def test_a_delegated_connection_without_tokens_needs_consent(dynamics):
    with pytest.raises(ConnectorError, match="refresh_token") as error:
        delegated(dynamics).users()

    assert error.value.permanent and dynamics.paths("POST") == []


def test_a_client_credentials_connection_stays_one_by_default(dynamics):
    saved = []
    assert connector(dynamics, saved, auth="client_credentials").users()

    assert "refresh_token" not in saved[-1]
    assert [parse_qs(b)["grant_type"][0] for b in dynamics.token_forms] == ["client_credentials"]
