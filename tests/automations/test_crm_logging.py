"""Calls logged into the CRM against the strict fake HubSpot: right object, fields and links;
later changes update the same record; never a second activity."""

from datetime import timedelta

import pytest
from django.utils import timezone

from automations import crm_logging
from automations.models import CrmLog
from calls.models import CallStatus
from calls.services import call_notes_add
from connectors.models import Connection
from connectors.services import connection_create
from contacts.services import PhoneInput, contact_create
from core.scoping import tenant_scope
from fakes.hubspot import FakeHubSpot, Fault

pytestmark = pytest.mark.django_db

CUSTOMER = "+447400123456"


@pytest.fixture
def hubspot(settings):
    settings.ALLOW_PRIVATE_URLS = True
    fake = FakeHubSpot(contacts=5)
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def connection(tenant, hubspot) -> Connection:
    with tenant_scope(tenant):
        connection = connection_create(
            tenant=tenant,
            provider="hubspot",
            name="HubSpot",
            credentials={
                "private_app_token": next(iter(hubspot.private_app_tokens)),
                "base_url": hubspot.url,
            },
            settings={"call_logging": {"enabled": True}},
        )
        contact_create(
            tenant=tenant,
            source_connection=connection,
            external_id=str(min(hubspot.objects["contacts"])),
            first_name="Ada",
            phones=[PhoneInput(CUSTOMER, "mobile")],
        )
    return connection


def send(tenant, call) -> CrmLog:
    """Run the call's CRM log now, as the worker does when it is due."""
    with tenant_scope(tenant):
        log = CrmLog.objects.get(call=call)
        CrmLog.objects.filter(pk=log.pk).update(next_attempt_at=timezone.now())
        crm_logging.crm_log_send(crm_log_id=str(log.pk))
        return CrmLog.objects.get(pk=log.pk)


def test_an_answered_call_becomes_a_call_engagement_on_the_contact(
    tenant, hubspot, connection, end_call
):
    owner_id = hubspot.add_owner("priya@acme.example", "Priya", "Shah")

    call = end_call(CallStatus.ANSWER)
    log = send(tenant, call)

    contact_id = str(min(hubspot.objects["contacts"]))
    assert (log.state, log.kind, log.contact_external_id) == ("succeeded", "call", contact_id)
    written = hubspot.written["calls"][log.remote_id]
    props = written["properties"]
    assert props["hs_call_direction"] == "OUTBOUND" and props["hs_call_status"] == "COMPLETED"
    assert props["hs_call_from_number"] == "+442079460000"
    assert props["hs_call_to_number"] == CUSTOMER
    assert props["hs_call_external_id"] == str(call.call_id)
    assert props["hs_call_duration"] == str(call.duration * 1000)
    assert props["hubspot_owner_id"] == owner_id
    assert written["associations"] == [{"to": "contacts", "id": contact_id, "typeId": 194}]
    assert hubspot.written["tasks"] == {}


def test_a_missed_call_becomes_a_task(tenant, hubspot, connection, end_call):
    log = send(tenant, end_call(CallStatus.NO_ANSWER))

    assert (log.state, log.kind) == ("succeeded", "task")
    assert list(hubspot.written["tasks"]) == [log.remote_id] and hubspot.written["calls"] == {}


def test_notes_added_later_update_the_same_call_object(tenant, hubspot, connection, end_call):
    call = end_call(CallStatus.ANSWER)
    first = send(tenant, call)

    with tenant_scope(tenant):
        call_notes_add(call=call, notes="Wants a callback on Friday.")
        assert CrmLog.objects.get().needs_update is True
    second = send(tenant, call)

    assert second.remote_id == first.remote_id and second.needs_update is False
    assert len(hubspot.written["calls"]) == 1
    assert hubspot.written["calls"][first.remote_id]["properties"]["hs_call_body"] == (
        "Wants a callback on Friday."
    )
    with tenant_scope(tenant):
        assert [a.action for a in second.attempts.all()] == ["create", "update"]


def test_a_duplicate_end_and_a_second_send_never_log_twice(tenant, hubspot, connection, end_call):
    call = end_call(CallStatus.ANSWER)
    with tenant_scope(tenant):
        crm_logging.crm_logs_create(call=call)  # the end event again (a re-delivered task)
    send(tenant, call)
    send(tenant, call)

    with tenant_scope(tenant):
        assert CrmLog.objects.count() == 1
    assert len(hubspot.written["calls"]) == 1


def test_an_unknown_caller_is_created_in_the_crm_when_asked(tenant, hubspot, connection, end_call):
    with tenant_scope(tenant):
        Connection.objects.filter(pk=connection.pk).update(
            settings={"call_logging": {"enabled": True, "create_unknown_contacts": True}}
        )
    log = send(tenant, end_call(CallStatus.ANSWER, customer="+447400999888"))

    created = hubspot.objects["contacts"][int(log.contact_external_id)]
    assert log.state == "succeeded"
    assert "+447400999888" in str(created.properties)


def test_a_failing_crm_is_retried_with_backoff_then_failed_and_can_be_run_again(
    tenant, api, hubspot, connection, end_call
):
    # Retry-After: 0 - the client's own retries within a send go at once (its waits are tested
    # in tests/connectors); what is tested here is the log's schedule across sends.
    hubspot.inject(
        Fault("status", times=100, path_contains="/objects/calls", status=500, retry_after="0")
    )
    call = end_call(CallStatus.ANSWER)

    log = send(tenant, call)
    assert log.state == "pending" and log.attempt_count == 1
    assert log.next_attempt_at > timezone.now() + timedelta(seconds=20)
    for _ in range(crm_logging.MAX_ATTEMPTS - 1):
        log = send(tenant, call)
    assert log.state == "failed" and "500" in log.last_error

    hubspot.faults.clear()
    response = api.post(f"/api/v1/crm-logs/{log.pk}/resend")
    assert response.status_code == 202
    log = send(tenant, call)
    assert log.state == "succeeded" and len(hubspot.written["calls"]) == 1
    activity = api.get(f"/api/v1/calls/{call.call_id}/activity").json()
    assert [a["succeeded"] for a in activity["crm_logs"][0]["attempts"]][-1] is True

    again = api.post(f"/api/v1/crm-logs/{log.pk}/resend")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "crm_log_not_failed"
    assert "succeeded; only a failed one can be run again" in again.json()["error"]["message"]


def test_a_delay_holds_the_log_until_it_is_due(tenant, hubspot, connection, end_call):
    with tenant_scope(tenant):
        Connection.objects.filter(pk=connection.pk).update(
            settings={"call_logging": {"enabled": True, "delay_minutes": 10}}
        )
    call = end_call(CallStatus.ANSWER)

    with tenant_scope(tenant):
        log = CrmLog.objects.get(call=call)
        assert log.next_attempt_at > timezone.now() + timedelta(minutes=9)
        assert crm_logging.crm_log_send(crm_log_id=str(log.pk)) is None
    assert hubspot.written["calls"] == {}


def test_connections_without_call_logging_log_nothing(tenant, hubspot, connection, end_call):
    with tenant_scope(tenant):
        Connection.objects.filter(pk=connection.pk).update(settings={})
        call = end_call(CallStatus.ANSWER)
        assert CrmLog.objects.filter(call=call).count() == 0


@pytest.mark.parametrize(
    ("call_logging", "message"),
    [
        ({"enabled": "yes"}, "call_logging.enabled: true or false."),
        ({"enabled": True, "delay_minutes": -5}, "call_logging.delay_minutes: 0 to 1440."),
        ({"enabled": True, "colour": "red"}, "call_logging: unknown option 'colour'."),
        ("on", 'call_logging: an object such as {"enabled": true}.'),
    ],
)
def test_the_api_refuses_bad_call_logging_options(api, connection, call_logging, message):
    response = api.patch(
        f"/api/v1/connections/{connection.pk}",
        {"settings": {"call_logging": call_logging}},
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["error"]["message"].endswith(message)


def test_the_admin_runs_again_only_the_failed_logs_it_is_given(
    tenant, hubspot, connection, end_call, client
):
    from django.contrib.auth import get_user_model

    succeeded = send(tenant, end_call(CallStatus.ANSWER))
    failed = send(tenant, end_call(CallStatus.ANSWER))
    with tenant_scope(tenant):
        CrmLog.objects.filter(pk=failed.pk).update(state="failed")
    staff = get_user_model().objects.create_superuser("staff", "staff@example.com", "pw-1234567")
    client.force_login(staff)

    response = client.post(
        "/admin/automations/crmlog/",
        {"action": "resend", "_selected_action": [succeeded.pk, failed.pk]},
        follow=True,
    )

    assert "Queued 1 CRM logs; 1 not failed, left as they are." in response.content.decode()
    with tenant_scope(tenant):
        states = dict(CrmLog.objects.values_list("pk", "state"))
    assert (states[succeeded.pk], states[failed.pk]) == ("succeeded", "pending")
