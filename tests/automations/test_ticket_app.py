"""The ticket app: a Zendesk ticket for an unresolved call, once, with the caller as requester."""

import pytest

from automations import app_runs, tickets
from automations.models import App, AppRun
from calls.models import Call
from connectors.services import connection_create
from core.scoping import tenant_scope
from fakes.zendesk import FakeZendesk, Fault

pytestmark = pytest.mark.django_db

CALLER = "+447400123456"


@pytest.fixture
def zendesk(settings):
    settings.ALLOW_PRIVATE_URLS = True
    fake = FakeZendesk()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def helpdesk(tenant, zendesk):
    with tenant_scope(tenant):
        return connection_create(
            tenant=tenant, provider="zendesk", name="Support", credentials=zendesk.credentials()
        )


@pytest.fixture
def ticket_app(make_app, helpdesk):
    def make(events=("call.end",), **config):
        config = {"connection": helpdesk.pk, "group_id": 360002, "tags": ["callbridge"], **config}
        return make_app("ticket", kind=App.Kind.TICKET, config=config, events=list(events))

    return make


def ended_call(tenant, end_call, **analytics) -> Call:
    call = end_call(customer=CALLER)
    with tenant_scope(tenant):
        Call.objects.filter(pk=call.pk).update(**analytics)
    return call


def run_all(tenant, call, event=App.Event.CALL_END) -> AppRun:
    with tenant_scope(tenant):
        app_runs.app_runs_execute(call_pk=call.pk, event=event)
        return AppRun.objects.get(call=call, event=event, app__slug="ticket")


def test_an_unresolved_angry_call_opens_a_high_priority_ticket_for_the_known_caller(
    tenant, zendesk, ticket_app, end_call
):
    known = zendesk.add_user("Ada Lovelace", phone="07400 123456")
    ticket_app(subject="Unresolved: {{ event.summary }}")
    call = ended_call(tenant, end_call, resolved=False, sentiment="negative", summary="No refund")

    run = run_all(tenant, call)

    assert run.state == "succeeded", run.error
    (ticket,) = zendesk.tickets.values()
    assert ticket["subject"] == "Unresolved: No refund" and ticket["description"] == "No refund"
    assert (ticket["priority"], ticket["group_id"]) == ("high", 360002)
    assert (ticket["requester_id"], ticket["external_id"]) == (known["id"], str(call.call_id))
    assert ticket["tags"] == ["callbridge"] and ticket["is_public"] is False
    assert run.result["data"] == {
        "ticket_id": str(ticket["id"]),
        "url": f"https://acme.zendesk.com/agent/tickets/{ticket['id']}",
        "created": True,
        "requester_id": str(known["id"]),
        "priority": "high",
    }


def test_a_resolved_call_opens_no_ticket(tenant, zendesk, ticket_app, end_call):
    ticket_app()
    call = ended_call(tenant, end_call, resolved=True, sentiment="negative")

    assert run_all(tenant, call).state == "skipped"
    assert zendesk.requests == []


def test_an_unknown_caller_becomes_the_requester_and_the_title_says_who_called(
    tenant, zendesk, ticket_app, end_call
):
    ticket_app()
    call = ended_call(tenant, end_call, resolved=False)

    run_all(tenant, call)

    (ticket,) = zendesk.tickets.values()
    requester = zendesk.users[ticket["requester_id"]]
    assert (requester["phone"], requester["role"]) == (CALLER, "end-user")
    assert ticket["subject"] == f"Call to {CALLER}"  # an outbound call: no issue type
    assert ticket["priority"] == "normal" and "no summary was given" in ticket["description"]


def test_a_call_never_gets_two_tickets(tenant, zendesk, ticket_app, end_call):
    ticket_app(events=["call.end", "analytics.completed"])
    call = ended_call(tenant, end_call, resolved=False, summary="Still broken")
    with tenant_scope(tenant):
        app_runs.app_runs_create(call=call, event=App.Event.ANALYTICS_COMPLETED)

    first = run_all(tenant, call)
    run_all(tenant, call)  # the same event again: its run is done
    second = run_all(tenant, call, App.Event.ANALYTICS_COMPLETED)

    assert len(zendesk.tickets) == 1 and len(zendesk.users) == 2  # the admin and the caller
    assert first.result["data"]["created"] and not second.result["data"]["created"]
    assert second.result["data"]["ticket_id"] == first.result["data"]["ticket_id"]


def test_a_429_from_zendesk_is_waited_out(tenant, zendesk, ticket_app, end_call):
    ticket_app()
    zendesk.inject(Fault(429, method="POST", path_contains="/tickets", retry_after="1"))
    call = ended_call(tenant, end_call, resolved=False)

    run = run_all(tenant, call)

    assert run.state == "succeeded" and len(zendesk.tickets) == 1


def test_a_refused_ticket_fails_the_run_with_zendesks_reason(tenant, zendesk, ticket_app, end_call):
    ticket_app(group_id=999)
    call = ended_call(tenant, end_call, resolved=False)

    run = run_all(tenant, call)

    assert run.state == "failed" and "Group: is invalid" in run.error
    assert zendesk.tickets == {}


def test_the_call_test_renders_the_ticket_and_opens_it_only_when_asked(api, zendesk, ticket_app):
    ticket_app()
    test_call = {
        "calling_number": "07400 123456",
        "event_data": {
            "resolved": False,
            "sentiment": "Very_Negative",
            "summary": "Cancel my plan",
            "issue_type": "Cancellation",
        },
    }

    rendered = api.post("/api/v1/apps/test-call", test_call, format="json").json()["apps"][0]
    sent = api.post("/api/v1/apps/test-call", {**test_call, "send": True}, format="json")

    assert rendered["sent"] is False and rendered["state"] == "succeeded"
    assert rendered["request"]["subject"] == "Cancellation"
    assert rendered["request"]["priority"] == "urgent"
    assert rendered["request"]["requester"] == {"number": CALLER, "name": ""}
    assert sent.json()["apps"][0]["sent"] is True
    (ticket,) = zendesk.tickets.values()
    assert (ticket["subject"], ticket["priority"]) == ("Cancellation", "urgent")


def test_a_ticket_app_brings_its_condition(api, helpdesk):
    response = api.post(
        "/api/v1/apps",
        {
            "name": "Tickets",
            "slug": "tickets",
            "kind": "ticket",
            "events": ["analytics.completed"],
            "config": {"connection": helpdesk.pk},
        },
        format="json",
    )

    assert response.status_code == 201, response.json()
    assert response.json()["condition"] == "resolved == false"


@pytest.fixture
def others_connection(other_tenant, zendesk):
    with tenant_scope(other_tenant):
        return connection_create(
            tenant=other_tenant,
            provider="zendesk",
            name="Theirs",
            credentials=zendesk.credentials(),
        )


MINE = {"connection": "mine"}


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({}, "config.connection"),
        ({"connection": "others"}, "config.connection"),  # another tenant's Zendesk
        ({"connection": "hubspot"}, "config.connection"),  # not a helpdesk
        ({**MINE, "tags": ["two words"]}, "config.tags"),
        ({**MINE, "group_id": "Billing"}, "config.group_id"),
        ({**MINE, "subject": "{{ event.summary | upper }}"}, "config.subject"),
        ({**MINE, "public_comment": "yes"}, "config.public_comment"),
        ({**MINE, "assignee": "me"}, "config"),
        ({**MINE, "timing": "realtime"}, "timing"),
    ],
)
def test_bad_settings_are_a_400_naming_the_setting(
    api, tenant, helpdesk, others_connection, config, field
):
    with tenant_scope(tenant):
        hubspot = connection_create(
            tenant=tenant, provider="hubspot", name="CRM", credentials={"private_app_token": "x"}
        )
    ids = {"mine": helpdesk.pk, "others": others_connection.pk, "hubspot": hubspot.pk}
    if "connection" in config:
        config = {**config, "connection": ids[config["connection"]]}
    app = {"name": "T", "slug": "t", "kind": "ticket", "events": ["call.end"]}
    app["timing"] = config.pop("timing", "post_call")

    response = api.post("/api/v1/apps", {**app, "config": config}, format="json")

    assert response.status_code == 400
    assert field in [d["field"] for d in response.json()["error"]["details"]]


@pytest.mark.parametrize(
    ("sentiment", "priority"),
    [
        ("very negative", "urgent"),
        ("VERY_NEGATIVE", "urgent"),
        ("negative", "high"),
        ("Neutral", "normal"),
        ("positive", "low"),
        ("very-positive", "low"),
        ("", "normal"),
        (None, "normal"),
        ("confused", "normal"),
    ],
)
def test_the_priority_follows_the_sentiment(sentiment, priority):
    assert tickets.priority_for(sentiment) == priority
