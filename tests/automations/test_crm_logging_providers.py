"""Calls logged into every CRM we ship, against each one's strict fake (crm_providers.py): the
CRM's own call object or follow-up task with the right fields, later changes on the same record,
never a second one. In-process: the worker's service functions, run by hand."""

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from automations import crm_logging
from automations.models import CrmLog
from calls import events as telephony
from calls.models import Call, TelephonyEvent
from connectors.models import Connection
from core.scoping import tenant_scope
from fakes import dynamics, zoho
from fakes.hubspot import Fault
from tenants.models import Agent
from tests.automations.crm_providers import (
    AGENT_EMAIL,
    DETAILS,
    PROVIDERS,
    START,
    Crm,
    connect,
    end,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(params=list(PROVIDERS))
def crm(request, settings) -> Crm:
    settings.ALLOW_PRIVATE_URLS = True
    crm = PROVIDERS[request.param]()
    yield crm
    crm.stop()


@pytest.fixture
def connection(tenant, crm) -> Connection:
    """A connection that logs calls, the caller synced from it, and the agent."""
    connection = connect(tenant, crm)
    with tenant_scope(tenant):
        Agent(tenant=tenant, crm_username="agent.017", email=AGENT_EMAIL).save()
    return connection


def set_options(tenant, connection: Connection, **options) -> None:
    with tenant_scope(tenant):
        settings = {**connection.settings, "call_logging": {"enabled": True, **options}}
        Connection.objects.filter(pk=connection.pk).update(settings=settings)


def report(api, tenant, *events: dict) -> Call:
    """Post events as the phone system does, then apply them as the worker does."""
    for body in events:
        response = api.post("/api/v1/telephony/events", body, format="json")
        assert response.status_code in (200, 202), response.json()
    with tenant_scope(tenant):
        for row in TelephonyEvent.objects.filter(processed_at=None).order_by("pk"):
            telephony.telephony_event_process(event_pk=row.pk)
        return Call.objects.get(external_id=DETAILS["call_id"])


def send(tenant, call: Call) -> CrmLog:
    """Run the call's CRM log now, as the worker does when it is due."""
    with tenant_scope(tenant):
        log = CrmLog.objects.get(call=call)
        CrmLog.objects.filter(pk=log.pk).update(next_attempt_at=timezone.now())
        crm_logging.crm_log_send(crm_log_id=str(log.pk))
        return CrmLog.objects.get(pk=log.pk)


def actions(tenant, log: CrmLog) -> list[str]:
    with tenant_scope(tenant):
        return [attempt.action for attempt in log.attempts.all()]


def test_an_answered_call_is_the_crms_call_object_on_the_contact(crm, connection, api, tenant):
    call = report(api, tenant, START, end())
    log = send(tenant, call)

    assert (log.state, log.kind, log.contact_external_id) == ("succeeded", "call", crm.contact_id())
    assert list(crm.calls()) == [log.remote_id]
    crm.check_call(crm.calls()[log.remote_id], call=call, contact_id=crm.contact_id())
    assert crm.provider == "generic_rest" or crm.tasks() == {}


def test_a_missed_call_becomes_a_follow_up_task(crm, connection, api, tenant):
    call = report(api, tenant, START, end("NO_ANSWER", 0))
    log = send(tenant, call)

    assert (log.state, log.kind) == ("succeeded", "task"), log.last_error
    assert list(crm.tasks()) == [log.remote_id]
    crm.check_task(crm.tasks()[log.remote_id], call=call, contact_id=crm.contact_id())
    assert crm.provider == "generic_rest" or crm.calls() == {}


def test_a_missed_call_is_a_call_object_when_tasks_are_turned_off(crm, connection, api, tenant):
    set_options(tenant, connection, missed_call_task=False)
    call = report(api, tenant, START, end("NO_ANSWER", 0))
    log = send(tenant, call)

    assert (log.state, log.kind) == ("succeeded", "call"), log.last_error
    assert list(crm.calls()) == [log.remote_id]
    crm.check_call(crm.calls()[log.remote_id], call=call, contact_id=crm.contact_id())


def test_notes_a_summary_and_a_recording_added_later_update_the_same_record(
    crm, connection, api, tenant, settings
):
    settings.PUBLIC_BASE_URL = "https://callbridge.example.com"  # HubSpot takes HTTPS links only
    call = report(api, tenant, START, end())
    first = send(tenant, call)

    notes = api.post(
        f"/api/v1/calls/{call.call_id}/notes", {"notes": "Call back on Friday."}, format="json"
    )
    assert notes.status_code == 200, notes.json()
    second = send(tenant, call)
    report(
        api,
        tenant,
        {"id": "e-analytics", "type": "analytics.completed", "call_id": DETAILS["call_id"],
         "summary": "Booked a visit for Tuesday.", "satisfaction": 9, "resolved": True},
        {"id": "e-recording", "type": "recording.ready", "call_id": DETAILS["call_id"],
         "recording_url": "https://pbx.example.com/recordings/7731.wav"},
    )  # fmt: skip
    third = send(tenant, call)

    assert first.remote_id == second.remote_id == third.remote_id
    assert third.state == "succeeded" and third.needs_update is False, third.last_error
    assert list(crm.calls()) == [first.remote_id]
    text = crm.later_text(first.remote_id)
    assert "Call back on Friday." in text and "Booked a visit for Tuesday." in text
    assert "https://callbridge.example.com/r/" in text
    assert actions(tenant, third) == ["create", "update", "update"]


def test_a_summary_and_transcript_on_the_end_reach_the_first_log(crm, connection, api, tenant):
    ended = {**end(), "summary": "Wants a quote for 40 units.", "transcript": "Agent: Hello..."}
    call = report(api, tenant, START, ended)
    log = send(tenant, call)

    call.refresh_from_db()
    assert (call.summary, call.transcript) == ("Wants a quote for 40 units.", "Agent: Hello...")
    assert log.state == "succeeded" and actions(tenant, log) == ["create"], log.last_error
    assert "Wants a quote for 40 units." in crm.later_text(log.remote_id)


def test_a_repeated_end_and_a_re_run_never_log_twice(crm, connection, api, tenant):
    call = report(api, tenant, START, end())
    report(api, tenant, end())  # the phone system retried: the same event, a duplicate
    report(api, tenant, end(id="e-end-again"))  # or sent it again under another id
    with tenant_scope(tenant):
        crm_logging.crm_logs_create(call=call)  # the call's end handled twice
    first = send(tenant, call)
    again = send(tenant, call)  # a worker runs the task again

    with tenant_scope(tenant):
        assert CrmLog.objects.count() == 1
    assert (first.state, again.remote_id) == ("succeeded", first.remote_id)
    assert list(crm.calls()) == [first.remote_id]
    assert actions(tenant, again) == ["create"]


@pytest.mark.parametrize(
    ("crm", "status"),
    [("hubspot", "ANSWER"), ("salesforce", "ANSWER"), ("salesforce", "NO_ANSWER"),
     ("zoho", "ANSWER"), ("zoho", "NO_ANSWER"), ("copper", "ANSWER"), ("copper", "NO_ANSWER"),
     ("intercom", "ANSWER"), ("intercom", "NO_ANSWER"), ("keap", "ANSWER"), ("keap", "NO_ANSWER"),
     ("dynamics", "ANSWER"), ("dynamics", "NO_ANSWER"),
     ("sugarcrm", "ANSWER"), ("sugarcrm", "NO_ANSWER"),
     ("zendesk", "ANSWER"), ("zendesk", "NO_ANSWER")],
    indirect=["crm"],
)  # fmt: skip
def test_a_record_the_crm_kept_while_our_worker_died_is_found_not_made_again(
    crm, connection, api, tenant, status
):
    call = report(api, tenant, START, end(status, 150 if status == "ANSWER" else 0))
    logged = send(tenant, call)
    stored = crm.calls() if logged.kind == "call" else crm.tasks()
    assert list(stored) == [logged.remote_id]
    with tenant_scope(tenant):  # the worker died before saving the CRM's id: as it leaves it
        logged.attempts.all().delete()
        CrmLog.objects.filter(pk=logged.pk).update(
            remote_id="",
            state="pending",
            attempt_count=0,
            attempting_since=timezone.now() - crm_logging.STALE_ATTEMPT - timedelta(seconds=1),
        )

    again = send(tenant, call)

    assert (again.state, again.remote_id) == ("succeeded", logged.remote_id), again.last_error
    assert list(crm.calls() if logged.kind == "call" else crm.tasks()) == [logged.remote_id]


def lost_create(provider: str) -> tuple[str, Any]:
    """Where the CRM creates a call object, and a fault that loses the answer to that create."""
    if provider == "hubspot":
        return "/crm/v3/objects/calls", Fault("lost_answer", 1, "/objects/calls", status=502)
    return "/api/data/v9.2/phonecalls", dynamics.Fault("lost_answer", 1, "/phonecalls", "POST", 502)


@pytest.mark.parametrize("crm", ["hubspot", "dynamics"], indirect=True)
def test_a_create_whose_answer_was_lost_is_looked_up_not_repeated(crm, connection, api, tenant):
    create_path, fault = lost_create(crm.provider)
    crm.fake.inject(fault)
    call = report(api, tenant, START, end())

    failed = send(tenant, call)
    assert (failed.state, failed.attempt_count, failed.remote_id) == ("pending", 1, "")
    assert len(crm.calls()) == 1  # the CRM kept it; the client did not send it again
    # The retry searches for it: not before HubSpot's search can see it (seconds to a minute).
    assert failed.next_attempt_at > timezone.now() + timedelta(seconds=60)
    logged = send(tenant, call)

    assert logged.state == "succeeded" and list(crm.calls()) == [logged.remote_id]
    assert crm.fake.paths("POST").count(create_path) == 1
    crm.check_call(crm.calls()[logged.remote_id], call=call, contact_id=crm.contact_id())


@pytest.mark.parametrize(
    "crm",
    [
        "salesforce",
        "pipedrive",
        "zoho",
        "copper",
        "intercom",
        "keap",
        "activecampaign",
        "dynamics",
        "sugarcrm",
        "zendesk",
    ],
    indirect=True,
)
def test_a_delay_holds_the_log_until_it_is_due(crm, connection, api, tenant):
    set_options(tenant, connection, delay_minutes=10)
    call = report(api, tenant, START, end())

    with tenant_scope(tenant):
        log = CrmLog.objects.get(call=call)
        assert log.next_attempt_at > timezone.now() + timedelta(minutes=9)
        assert crm_logging.crm_log_send(crm_log_id=str(log.pk)) is None
    assert crm.calls() == {}
    assert send(tenant, call).state == "succeeded" and len(crm.calls()) == 1


@pytest.mark.parametrize(
    "crm",
    [
        "salesforce",
        "pipedrive",
        "zoho",
        "copper",
        "intercom",
        "keap",
        "activecampaign",
        "dynamics",
        "sugarcrm",
        "zendesk",
    ],
    indirect=True,
)
def test_an_unknown_caller_becomes_a_crm_contact_when_asked(crm, connection, api, tenant):
    set_options(tenant, connection, create_unknown_contacts=True)
    unknown = {"from": "07400 999888"}
    call = report(api, tenant, {**START, **unknown}, end(**unknown))

    log = send(tenant, call)

    assert log.state == "succeeded", log.last_error
    assert log.contact_external_id not in ("", crm.contact_id())
    assert "+447400999888" in crm.contacts()[log.contact_external_id]
    crm.check_call(crm.calls()[log.remote_id], call=call, contact_id=log.contact_external_id)


@pytest.mark.parametrize(
    "crm", ["salesforce", "zoho", "dynamics", "sugarcrm", "zendesk"], indirect=True
)
def test_an_unknown_caller_is_logged_without_a_contact_by_default(crm, connection, api, tenant):
    unknown = {"from": "07400 999888"}
    call = report(api, tenant, {**START, **unknown}, end(**unknown))

    log = send(tenant, call)

    assert (log.state, log.contact_external_id) == ("succeeded", ""), log.last_error
    assert list(crm.calls()) == [log.remote_id] and len(crm.contacts()) == 5  # none created


@pytest.mark.parametrize("crm", ["copper", "intercom", "keap", "activecampaign"], indirect=True)
def test_an_unknown_caller_cannot_be_logged_where_a_call_needs_a_contact(
    crm, connection, api, tenant
):
    unknown = {"from": "07400 999888"}
    call = report(api, tenant, {**START, **unknown}, end(**unknown))

    log = send(tenant, call)

    assert (log.state, log.remote_id) == ("failed", "")  # permanent: retrying cannot help
    assert "create_unknown_contacts" in log.last_error and crm.calls() == {}


@pytest.mark.parametrize("crm", ["hubspot", "zoho"], indirect=True)
def test_a_retry_remembers_the_contact_it_created_while_search_cannot_see_it_yet(
    crm, connection, api, tenant
):
    crm.fake.search_lag_seconds = 60  # a record just written is not searchable for a while
    set_options(tenant, connection, create_unknown_contacts=True)
    fault = Fault if crm.provider == "hubspot" else zoho.Fault
    calls_path = "/objects/calls" if crm.provider == "hubspot" else "/crm/v8/Calls"
    crm.fake.inject(fault("status", times=1, path_contains=calls_path, status=500))
    unknown = {"from": "07400 999888"}
    call = report(api, tenant, {**START, **unknown}, end(**unknown))

    failed = send(tenant, call)
    assert failed.state == "pending" and failed.remote_id == ""
    logged = send(tenant, call)

    assert logged.state == "succeeded", logged.last_error
    created = [i for i, text in crm.contacts().items() if "+447400999888" in text]
    assert created == [logged.contact_external_id]  # one contact, not one per attempt
    assert list(crm.calls()) == [logged.remote_id]


@pytest.mark.parametrize("crm", ["intercom"], indirect=True)
def test_intercom_notes_cannot_change_so_a_later_change_is_a_second_note(
    crm, connection, api, tenant
):
    call = report(api, tenant, START, end())
    first = send(tenant, call)
    stored = dict(crm.fake.notes[first.remote_id])

    notes = api.post(
        f"/api/v1/calls/{call.call_id}/notes", {"notes": "Call back on Friday."}, format="json"
    )
    assert notes.status_code == 200
    second = send(tenant, call)
    again = send(tenant, call)  # a re-run of the update adds nothing

    assert (second.state, second.remote_id, again.remote_id) == (
        "succeeded",
        *[first.remote_id] * 2,
    )
    original, update = crm.fake.notes_of(crm.contact_id())
    assert original == stored  # never edited
    assert update["body"].startswith(f"<p>Update to CallBridge call {call.call_id}:</p>")
    assert "<p>Call back on Friday.</p>" in update["body"]
    assert crm.fake.paths("PUT") == crm.fake.paths("PATCH") == []
