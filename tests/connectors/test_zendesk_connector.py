"""The Zendesk connector against the strict fake: auth, users by phone, tickets once per id."""

import time
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest

from connectors import sync
from connectors.interface import (
    CallLogEntry,
    ConnectionConfig,
    ConnectorError,
    Cursor,
    TicketRequest,
)
from connectors.pacing import RateLimit
from connectors.zendesk.connector import ZendeskConnector
from contacts.models import Contact
from core.scoping import tenant_scope
from fakes.zendesk import FakeZendesk, Fault

pytestmark = pytest.mark.django_db  # the per-connection request budget lives in the cache


@pytest.fixture
def zendesk(start_fake) -> FakeZendesk:
    return start_fake(FakeZendesk)


def connector(fake: FakeZendesk, settings=None, **credentials) -> ZendeskConnector:
    config = ConnectionConfig(
        connection_id=1,
        credentials={**fake.credentials(), **credentials},
        settings=settings or {},
    )
    return ZendeskConnector(config, lambda _: None)


def ticket(**fields) -> TicketRequest:
    defaults = {
        "external_id": "5b2c6a1e-call",
        "subject": "Refund not received",
        "description": "Still waiting for the March refund.",
        "requester_id": None,
        "priority": "high",
    }
    return TicketRequest(**{**defaults, **fields})


def test_it_authenticates_with_the_api_token_as_email_slash_token(zendesk):
    assert connector(zendesk).find_ticket("nothing") is None
    with pytest.raises(ConnectorError) as error:
        connector(zendesk, api_token="wrong").find_ticket("nothing")

    assert error.value.permanent and "Couldn't authenticate you" in str(error.value)


def test_it_authenticates_with_an_oauth_access_token(zendesk):
    zendesk.oauth_tokens.add("oauth-token-1")

    found = connector(zendesk, api_token="", access_token="oauth-token-1").find_ticket("x")

    assert found is None


def test_it_finds_end_users_by_any_stored_format_of_the_number(zendesk):
    ada = zendesk.add_user("Ada Lovelace", phone="+44 7400 123456")
    bob = zendesk.add_user("Bob Byte", phone="07400 123456")
    zendesk.add_user("Other Country", phone="+1 (740) 012-3456")  # same last digits, not him
    zendesk.add_user("Ada's Agent", phone="+447400123456", role="agent")

    found = connector(zendesk).find_by_phone("+447400123456")

    assert sorted(r.external_id for r in found) == sorted([str(ada["id"]), str(bob["id"])])
    assert found[0].crm_url.startswith("https://acme.zendesk.com/agent/users/")


def test_it_creates_an_end_user_for_an_unknown_caller(zendesk):
    record = connector(zendesk).create_contact(e164="+447400123456")

    user = zendesk.users[int(record.external_id)]
    assert (user["name"], user["phone"], user["role"]) == (
        "+447400123456",
        "+447400123456",
        "end-user",
    )


def test_a_ticket_is_created_once_per_external_id(zendesk):
    first = connector(zendesk).create_ticket(ticket())
    again = connector(zendesk).find_ticket("5b2c6a1e-call")

    assert first.created and again is not None and not again.created
    assert again.remote_id == first.remote_id and len(zendesk.tickets) == 1
    assert first.url == f"https://acme.zendesk.com/agent/tickets/{first.remote_id}"


def test_a_429_is_retried_after_retry_after(zendesk):
    zendesk.inject(Fault(429, method="POST", path_contains="/tickets", retry_after="1"))
    helpdesk = connector(zendesk)

    started = time.monotonic()
    created = helpdesk.create_ticket(ticket())

    assert time.monotonic() - started >= 1 and created.created
    assert zendesk.paths("POST") == ["/api/v2/tickets.json"] * 2 and len(zendesk.tickets) == 1
    assert helpdesk.rate_limit_waits == 1


def test_a_lost_answer_to_a_create_is_looked_up_not_created_again(zendesk):
    zendesk.inject(Fault(502, method="POST", path_contains="/tickets", after_write=True))

    created = connector(zendesk).create_ticket(ticket())

    assert len(zendesk.tickets) == 1 and not created.created
    assert zendesk.paths() == ["/api/v2/tickets.json"] * 2  # the POST, then the lookup


def test_a_refused_ticket_is_a_permanent_error_saying_why(zendesk):
    with pytest.raises(ConnectorError) as error:
        connector(zendesk).create_ticket(ticket(subject=""))

    assert error.value.permanent and "Subject: cannot be blank" in str(error.value)


def test_the_oauth_flow_without_an_oauth_client_says_what_to_give(zendesk):
    with pytest.raises(ConnectorError) as error:
        connector(zendesk).authorization_url(state="s", redirect_uri="https://x.example/cb")

    assert error.value.permanent and "needs client_id, client_secret" in str(error.value)


def test_the_api_takes_a_zendesk_connection_and_refuses_one_it_cannot_use(api):
    good = {"subdomain": "acme", "email": "admin@acme.example", "api_token": "t0k3n"}
    bad_subdomain = {**good, "subdomain": "acme.evil.example/x"}

    created = api.post(
        "/api/v1/connections",
        {"provider": "zendesk", "name": "Support", "credentials": good},
        format="json",
    )
    refused = [
        api.post(
            "/api/v1/connections",
            {"provider": "zendesk", "name": "Support", "credentials": credentials},
            format="json",
        )
        for credentials in (bad_subdomain, {"subdomain": "acme", "api_token": "t0k3n"})
    ]

    assert created.status_code == 201, created.json()
    assert "t0k3n" not in str(created.json())
    assert [r.status_code for r in refused] == [400, 400]
    assert refused[0].json()["error"]["field"] == "credentials"


def test_the_api_takes_call_logging_on_a_zendesk_connection(api):
    credentials = {"subdomain": "acme", "email": "admin@acme.example", "api_token": "t0k3n"}
    body = {"provider": "zendesk", "name": "Support", "credentials": credentials}
    logging_on = {"call_logging": {"enabled": True}, "objects": ["contacts"]}

    created = api.post("/api/v1/connections", {**body, "settings": logging_on}, format="json")
    companies = {"objects": ["companies"]}
    refused = api.post("/api/v1/connections", {**body, "settings": companies}, format="json")

    assert created.status_code == 201, created.json()
    assert refused.status_code == 400 and "syncs contacts" in str(refused.json())


# ----- sync


def exported(fake: FakeZendesk, cursor: Cursor | None = None) -> tuple[list[str], Cursor, bool]:
    page = connector(fake).changed_since("contacts", cursor or Cursor())
    return [r.external_id for r in page.records], page.cursor, page.done


def test_the_export_reads_active_end_users_with_a_phone_and_their_organization(zendesk):
    acme = zendesk.add_organization("Acme Ltd")
    ada = zendesk.add_user("Ada Lovelace", phone="+44 7400 123456", organization_id=acme["id"])
    zendesk.add_user("No Phone")
    zendesk.add_user("Priya Shah", phone="+442079460000", role="agent")
    gone = zendesk.add_user("Gone Away", phone="07400 111222")
    zendesk.delete_user(gone["id"])
    zendesk.advance(61)

    page = connector(zendesk).changed_since("contacts", Cursor())

    (record,) = page.records
    assert (record.external_id, record.first_name, record.company) == (
        str(ada["id"]),
        "Ada",
        "Acme Ltd",
    )
    assert page.done and page.cursor.after
    assert zendesk.requests[0][2] == {"start_time": ["0"]}


def test_an_export_from_now_starts_a_minute_ago_as_zendesk_asks(zendesk):
    now = time.time()

    page = connector(zendesk).changed_since("contacts", Cursor(since_ms=int(now * 1000)))

    assert page.done and page.records == ()
    assert int(now) - 61 <= int(zendesk.requests[0][2]["start_time"][0]) <= int(now) - 60


def test_a_user_changed_in_the_last_minute_is_withheld_then_read_from_the_kept_cursor(zendesk):
    ada = zendesk.add_user("Ada Lovelace", phone="+44 7400 123456")
    zendesk.advance(61)
    first, cursor, done = exported(zendesk)
    zendesk.touch_user(ada["id"], name="Ada King")
    zendesk.add_user("Bob Byte", phone="07400 999888")

    withheld, cursor, done_too = exported(zendesk, cursor)
    zendesk.advance(61)
    later = connector(zendesk).changed_since("contacts", cursor)

    assert (first, done, withheld, done_too) == ([str(ada["id"])], True, [], True)
    assert [(r.first_name, r.last_name) for r in later.records] == [
        ("Ada", "King"),
        ("Bob", "Byte"),
    ]
    assert zendesk.requests[-1][2]["cursor"] == [cursor.after]


def test_a_user_edited_mid_sync_comes_again_on_a_later_page(zendesk):
    zendesk.export_page_size = 3  # the admin, A and B
    ids = [str(zendesk.add_user(n, phone=f"07400 00000{i}")["id"]) for i, n in enumerate("ABC")]
    zendesk.advance(61)

    first, cursor, first_done = exported(zendesk)
    zendesk.touch_user(int(ids[0]), name="A Edited")
    zendesk.advance(61)
    second, cursor, second_done = exported(zendesk, cursor)

    assert (first, first_done) == (ids[:2], False)
    assert (second, second_done) == ([ids[2], ids[0]], True)


def test_the_exports_ten_requests_a_minute_are_waited_out(zendesk):
    zendesk.incremental_limit, zendesk.incremental_window = 1, 1.0
    zendesk.add_user("Ada Lovelace", phone="+44 7400 123456")
    zendesk.advance(61)
    reader = connector(zendesk)

    started = time.monotonic()
    reader.changed_since("contacts", Cursor())
    reader.changed_since("contacts", Cursor())

    assert time.monotonic() - started >= 1 and reader.rate_limit_waits == 1
    assert zendesk.paths().count("/api/v2/incremental/users/cursor.json") == 3  # one 429


def test_the_export_is_paced_under_its_own_limit_instead_of_answered_429(zendesk):
    zendesk.incremental_limit, zendesk.incremental_window = 1, 1.0
    zendesk.add_user("Ada Lovelace", phone="+44 7400 123456")
    zendesk.advance(61)
    reader = connector(zendesk, settings={"rate_limits": {"incremental": [1, 1]}})

    started = time.monotonic()
    reader.changed_since("contacts", Cursor())
    reader.changed_since("contacts", Cursor())

    assert time.monotonic() - started >= 1 and reader.rate_limit_waits == 0
    assert zendesk.paths().count("/api/v2/incremental/users/cursor.json") == 2  # no 429
    assert connector(zendesk).client.rate_limits == {  # the Team plan's, by default
        "requests": RateLimit(200, 60),
        "incremental": RateLimit(10, 60),
    }


def test_all_ids_pages_through_active_end_users_with_a_phone(zendesk):
    ids = {str(zendesk.add_user(f"User {i}", phone=f"07400 {i:06d}")["id"]) for i in range(150)}
    zendesk.delete_user(int(min(ids)))
    zendesk.add_user("No Phone")

    pages = list(connector(zendesk).all_ids("contacts"))

    assert [len(p) for p in pages] == [100, 49]  # 100 end-users a page; the last has no phone
    assert set().union(*pages) == ids - {min(ids)}


def test_agents_and_admins_are_the_users_found_by_email(zendesk):
    priya = zendesk.add_user("Priya Shah", role="agent", email="priya.shah@example.com")
    zendesk.add_user("Ada Lovelace", email="ada@example.com")
    reader = connector(zendesk)

    found = reader.find_user("Priya.Shah@Example.com")

    assert found is not None and found.external_id == str(priya["id"])
    assert reader.find_user("ada@example.com") is None  # an end-user is no agent
    assert {u.email for u in reader.users()} == {"admin@acme.example", "priya.shah@example.com"}
    _, path, query, _ = zendesk.requests[0]
    assert (path, query["role[]"]) == ("/api/v2/users.json", ["agent", "admin"])


# ----- call logging


def entry(contact_id: str | None, **fields) -> CallLogEntry:
    defaults = {
        "call_id": "pbx-7731",
        "direction": "inbound",
        "outcome": "answered",
        "started_at": datetime(2026, 7, 3, 10, 0, tzinfo=UTC),
        "duration_seconds": 150,
        "from_number": "+447400123456",
        "to_number": "+442079460000",
        "contact_external_id": contact_id,
        "notes": "Wants a quote.",
    }
    return CallLogEntry(**{**defaults, **fields})


def open_ticket(fake: FakeZendesk, requester: dict, subject: str, **fields) -> str:
    body = {"subject": subject, "description": subject, "requester_id": str(requester["id"])}
    created = connector(fake).create_ticket(ticket(external_id=subject, **body))
    fake.tickets[int(created.remote_id)].update(fields)
    return created.remote_id


def test_a_call_is_a_private_comment_by_the_agent_on_the_callers_latest_open_ticket(zendesk):
    ada = zendesk.add_user("Ada Lovelace", phone="+44 7400 123456")
    priya = zendesk.add_user("Priya Shah", role="agent", email="priya.shah@example.com")
    open_ticket(zendesk, ada, "older", updated_at="2026-07-01T09:00:00Z")
    latest = open_ticket(zendesk, ada, "latest", updated_at="2026-07-02T09:00:00Z")
    open_ticket(zendesk, ada, "solved", status="solved", updated_at="2026-07-03T09:00:00Z")

    remote_id = connector(zendesk).log_call(entry(str(ada["id"]), owner_user_id=str(priya["id"])))

    assert remote_id == latest and len(zendesk.tickets) == 3
    note = zendesk.comments[int(latest)][-1]
    assert (note["public"], note["author_id"]) == (False, priya["id"])
    assert note["body"].splitlines() == [
        "Inbound call answered, 2:30",
        "From +447400123456 to +442079460000 at 2026-07-03 10:00 UTC",
        "",
        "Wants a quote.",
        "",
        "CallBridge call pbx-7731",
    ]
    assert "callbridge_call_pbx_7731" in zendesk.tickets[int(latest)]["tags"]


def test_a_caller_without_an_open_ticket_gets_a_ticket_for_the_call(zendesk):
    ada = zendesk.add_user("Ada Lovelace", phone="+44 7400 123456")
    open_ticket(zendesk, ada, "closed", status="closed")

    remote_id = connector(zendesk).log_call(entry(str(ada["id"]), subject="Inbound call answered"))

    created = zendesk.tickets[int(remote_id)]
    assert (created["subject"], created["requester_id"]) == ("Inbound call answered", ada["id"])
    assert created["external_id"] == "pbx-7731" and created["is_public"] is False
    assert zendesk.comments[int(remote_id)][0]["body"].endswith("CallBridge call pbx-7731")


def test_an_update_is_a_second_comment_because_comments_cannot_be_edited(zendesk):
    ada = zendesk.add_user("Ada Lovelace", phone="+44 7400 123456")
    helpdesk = connector(zendesk)
    remote_id = helpdesk.log_call(entry(str(ada["id"])))
    first = dict(zendesk.comments[int(remote_id)][0])

    later = entry(str(ada["id"]), notes="Call back Friday.", recording_url="https://r.example/1")
    helpdesk.update_call_log(remote_id, later)

    comments = zendesk.comments[int(remote_id)]
    assert comments[0] == first and len(comments) == 2
    assert comments[1]["body"].splitlines() == [
        "Update to CallBridge call pbx-7731: Inbound call answered, 2:30",
        "",
        "Call back Friday.",
        "",
        "Recording: https://r.example/1",
    ]
    assert comments[1]["public"] is False


def test_a_missed_call_opens_one_high_priority_ticket_per_call(zendesk):
    ada = zendesk.add_user("Ada Lovelace", phone="+44 7400 123456")
    missed = entry(str(ada["id"]), outcome="missed", duration_seconds=0)

    first = connector(zendesk).create_task(missed)
    again = connector(zendesk).create_task(missed)

    (task,) = zendesk.tickets.values()
    assert first == again == str(task["id"])
    assert (task["subject"], task["priority"]) == ("Call back +447400123456 (missed call)", "high")
    assert (task["external_id"], task["tags"]) == (
        "pbx-7731",
        ["callbridge", "callbridge_missed_call"],
    )
    assert connector(zendesk).find_logged("pbx-7731", task=True) == first


def test_a_missed_call_takes_the_ticket_the_ticket_app_opened_for_it(zendesk):
    opened = connector(zendesk).create_ticket(ticket(external_id="pbx-7731"))

    task = connector(zendesk).create_task(entry(None, outcome="missed", duration_seconds=0))

    assert task == opened.remote_id and len(zendesk.tickets) == 1


def test_find_logged_finds_a_call_note_by_its_tag_not_another_calls(zendesk):
    ada = zendesk.add_user("Ada Lovelace", phone="+44 7400 123456")
    on_open = open_ticket(zendesk, ada, "open")
    helpdesk = connector(zendesk)
    helpdesk.log_call(entry(str(ada["id"])))
    zendesk.tickets[int(on_open)]["status"] = "solved"  # the next call opens its own ticket
    own = helpdesk.log_call(entry(str(ada["id"]), call_id="pbx-7732"))

    assert helpdesk.find_logged("pbx-7731") == on_open
    assert helpdesk.find_logged("pbx-7732") == own != on_open
    assert helpdesk.find_logged("pbx-9999") is None
    assert helpdesk.find_logged("pbx-7731", task=True) is None


def test_a_comment_on_a_closed_ticket_is_a_permanent_error(zendesk):
    ada = zendesk.add_user("Ada Lovelace", phone="+44 7400 123456")
    remote_id = connector(zendesk).log_call(entry(str(ada["id"])))
    zendesk.tickets[int(remote_id)]["status"] = "closed"

    with pytest.raises(ConnectorError) as error:
        connector(zendesk).update_call_log(remote_id, entry(str(ada["id"])))

    assert error.value.permanent and "closed prevents ticket update" in str(error.value)


def test_a_zendesk_connection_syncs_end_users_and_the_full_diff_deletes_a_deleted_one(
    api, tenant, zendesk
):
    ada = zendesk.add_user("Ada Lovelace", phone="+44 7400 123456")
    bob = zendesk.add_user("Bob Byte", phone="07400 999888")
    zendesk.advance(61)
    created = api.post(
        "/api/v1/connections",
        {
            "provider": "zendesk",
            "name": "Support",
            "credentials": zendesk.credentials(),
            "settings": {"max_delete_share": 0.5},  # one of two
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    connection_id = created.json()["id"]

    with tenant_scope(tenant):
        first = sync.connection_sync(connection_id=connection_id, kind="incremental")
        zendesk.delete_user(bob["id"])
        diff = sync.connection_sync(connection_id=connection_id, kind="full")
        stored = Contact.objects.filter(source_connection_id=connection_id)

        assert (first.outcome, first.created) == ("succeeded", 2), first.error
        assert (diff.outcome, diff.deleted) == ("succeeded", 1), diff.error
        assert stored.get(external_id=str(bob["id"])).deleted_at is not None
        assert stored.get(external_id=str(ada["id"])).deleted_at is None


# ----- OAuth
REDIRECT_URI = "https://callbridge.example.com/api/v1/connections/oauth/callback"


def oauth_connector(fake: FakeZendesk, saved: list, **credentials) -> ZendeskConnector:
    config = ConnectionConfig(
        connection_id=1, credentials={**fake.oauth_credentials(), **credentials}, settings={}
    )
    return ZendeskConnector(config, saved.append)


def test_it_connects_through_oauth_and_then_sends_the_bearer_token(zendesk):
    saved: list = []
    zendesk_connector = oauth_connector(zendesk, saved)

    url = urlsplit(zendesk_connector.authorization_url(state="s-1", redirect_uri=REDIRECT_URI))
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert url.path == "/oauth/authorizations/new"
    assert query == {"client_id": "fake-client-id", "redirect_uri": REDIRECT_URI, "state": "s-1",
                     "response_type": "code", "scope": "read write"}  # fmt: skip
    zendesk_connector.connect(code=zendesk.authorize(REDIRECT_URI), redirect_uri=REDIRECT_URI)

    assert saved[-1]["access_token"] in zendesk.oauth_tokens and not saved[-1]["refresh_token"]
    assert saved[-1]["expires_at"] > time.time() + 365 * 86_400  # no expires_in: lasting
    grant = zendesk.token_requests[-1]
    assert grant["grant_type"] == "authorization_code" and grant["scope"] == "read write"
    assert zendesk_connector.find_user("admin@acme.example") is not None


def test_an_oauth_connection_without_a_token_yet_says_to_connect(zendesk):
    with pytest.raises(ConnectorError, match="not connected yet") as error:
        oauth_connector(zendesk, []).users()

    assert error.value.permanent and zendesk.paths() == []


def test_a_reused_or_misdirected_code_is_refused_for_good(zendesk):
    zendesk_connector = oauth_connector(zendesk, [])
    code = zendesk.authorize(REDIRECT_URI)
    zendesk_connector.connect(code=code, redirect_uri=REDIRECT_URI)
    other = zendesk.authorize(REDIRECT_URI)

    with pytest.raises(ConnectorError, match="invalid_grant") as reused:
        zendesk_connector.connect(code=code, redirect_uri=REDIRECT_URI)
    with pytest.raises(ConnectorError, match="reconnect Zendesk Support") as misdirected:
        zendesk_connector.connect(code=other, redirect_uri="https://elsewhere.example/cb")

    assert reused.value.permanent and misdirected.value.permanent


def test_a_revoked_oauth_token_is_permanent_there_is_nothing_to_refresh(zendesk):
    token = zendesk.issue_oauth_token()
    zendesk.revoke_tokens()

    with pytest.raises(ConnectorError, match="reconnect Zendesk Support") as error:
        oauth_connector(zendesk, [], access_token=token).users()

    assert error.value.permanent and "/oauth/tokens" not in zendesk.paths()


def test_api_token_connections_still_use_basic_auth_when_an_oauth_app_is_given(zendesk):
    credentials = {**zendesk.credentials(), "client_id": "fake-client-id"}

    assert connector(zendesk, **credentials).find_ticket("nothing") is None
