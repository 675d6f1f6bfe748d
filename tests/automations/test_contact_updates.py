"""Contacts updated from call data (seed 001 "Create/update contact record"): when the tenant asks,
each ended call counts on its caller's contacts in our phonebook, and a connection that asks
copies the counts onto the CRM contact (HubSpot, against its strict fake)."""

import pytest

from calls import events as telephony
from calls.models import Call, TelephonyEvent
from connectors.models import Connection
from contacts.models import Contact
from core.scoping import tenant_scope
from tests.automations.crm_providers import CUSTOMER, START, HubSpot, connect, end
from tests.automations.test_crm_logging_providers import send

pytestmark = pytest.mark.django_db


def report(api, tenant, *bodies: dict) -> None:
    for body in bodies:
        response = api.post("/api/v1/telephony/events", body, format="json")
        assert response.status_code in (200, 202), response.json()
    with tenant_scope(tenant):
        for row in TelephonyEvent.objects.filter(processed_at=None).order_by("pk"):
            telephony.telephony_event_process(event_pk=row.pk)


def call(number: int, status: str, at: str) -> list[dict]:
    """Call pbx-<number> from the customer, started at `at`, ended with `status`."""
    ids = {"call_id": f"pbx-{number}", "from": CUSTOMER, "to": "+442079460000"}
    started = {**START, **ids, "id": f"s{number}", "timestamp": at}
    ended_at = at.replace(":00:00Z", ":01:00Z")
    ended = {**end(status, 60 if status == "ANSWER" else 0), **ids, "id": f"e{number}",
             "start_time": at, "timestamp": ended_at}  # fmt: skip
    return [started, ended]


def keeps_counts(tenant, on: bool = True) -> None:
    tenant.phonebook_settings.update_from_calls = on
    tenant.phonebook_settings.save()


def test_each_ended_call_updates_its_callers_contacts_and_an_older_one_only_counts(
    api, tenant, make_contact
):
    keeps_counts(tenant)
    ada = make_contact(tenant, CUSTOMER, first_name="Ada")
    twin = make_contact(tenant, CUSTOMER, first_name="Ada's desk")
    other = make_contact(tenant, "+447400999000", first_name="Bob")

    report(api, tenant, *call(1, "ANSWER", "2026-07-03T10:00:00Z"))
    report(api, tenant, *call(2, "NO_ANSWER", "2026-07-04T09:00:00Z"))
    report(api, tenant, *call(3, "BUSY", "2026-07-01T08:00:00Z"))  # reported late

    with tenant_scope(tenant):
        rows = {c.pk: c for c in Contact.objects.all()}
        shown = api.get(f"/api/v1/contacts/{ada.pk}").json()
    for contact in (rows[ada.pk], rows[twin.pk]):
        assert contact.call_count == 3
        assert contact.last_call_at.isoformat() == "2026-07-04T09:00:00+00:00"
        assert contact.last_call_status == "NO_ANSWER"
    assert (rows[other.pk].call_count, rows[other.pk].last_call_at) == (0, None)
    assert (shown["call_count"], shown["last_call_status"]) == (3, "NO_ANSWER")


def test_nothing_is_counted_unless_the_tenant_asks_and_the_counts_are_read_only(
    api, tenant, make_contact
):
    ada = make_contact(tenant, CUSTOMER, first_name="Ada")

    report(api, tenant, *call(1, "ANSWER", "2026-07-03T10:00:00Z"))
    changed = api.patch(f"/api/v1/contacts/{ada.pk}", {"call_count": 99}, format="json")

    ada.refresh_from_db()
    assert ada.call_count == 0 and ada.last_call_at is None
    assert changed.status_code in (200, 400) and ada.call_count == 0


def test_the_tenant_setting_is_part_of_the_tenant_api(api, tenant):
    changed = api.patch("/api/v1/tenant", {"contacts_update_from_calls": True}, format="json")

    tenant.phonebook_settings.refresh_from_db()
    assert changed.json()["contacts_update_from_calls"] is True
    assert tenant.phonebook_settings.update_from_calls


@pytest.fixture
def hubspot(settings):
    settings.ALLOW_PRIVATE_URLS = True
    crm = HubSpot()
    crm.fake.custom_properties["contacts"] |= {"cb_last_call_at", "cb_calls", "cb_last_outcome"}
    yield crm
    crm.stop()


FIELDS = {"last_call_at": "cb_last_call_at", "call_count": "cb_calls",
          "last_call_status": "cb_last_outcome"}  # fmt: skip


def logging_with(tenant, connection: Connection, fields: dict) -> None:
    with tenant_scope(tenant):
        options = {"enabled": True, "contact_fields": fields}
        Connection.objects.filter(pk=connection.pk).update(
            settings={**connection.settings, "call_logging": options}
        )


def test_a_logged_call_copies_the_counts_onto_the_crm_contact(api, tenant, hubspot):
    keeps_counts(tenant)
    connection = connect(tenant, hubspot)
    logging_with(tenant, connection, FIELDS)

    report(api, tenant, *call(1, "ANSWER", "2026-07-03T10:00:00Z"))
    with tenant_scope(tenant):
        log = send(tenant, Call.objects.get(external_id="pbx-1"))

    record = hubspot.fake.objects["contacts"][int(hubspot.contact_id())]
    assert log.state == "succeeded", log.last_error
    assert record.properties["cb_last_call_at"] == "2026-07-03T10:00:00Z"
    assert (record.properties["cb_calls"], record.properties["cb_last_outcome"]) == ("1", "ANSWER")


def test_a_crm_field_that_does_not_exist_fails_the_log_with_the_crms_reason(api, tenant, hubspot):
    connection = connect(tenant, hubspot)
    logging_with(tenant, connection, {"last_call_status": "no_such_property"})

    report(api, tenant, *call(1, "ANSWER", "2026-07-03T10:00:00Z"))
    with tenant_scope(tenant):
        log = send(tenant, Call.objects.get(external_id="pbx-1"))

    assert log.state == "failed" and "no_such_property" in log.last_error  # until it is fixed
    assert log.remote_id, "the call object itself was logged, and is not made again"


@pytest.mark.parametrize(
    ("provider", "fields", "message"),
    [
        ("hubspot", {"last_call_at": ""}, "an object of last_call_at, call_count"),
        ("hubspot", {"calls": "x"}, "an object of last_call_at, call_count"),
        ("pipedrive", {"call_count": "x"}, "cannot update contacts yet"),
    ],
)
def test_contact_fields_a_connection_cannot_use_are_refused_with_what_to_fix(
    api, provider, fields, message
):
    credentials = {"hubspot": {"private_app_token": "x"}, "pipedrive": {"api_token": "x"}}
    body = {"provider": provider, "name": provider, "credentials": credentials[provider],
            "settings": {"call_logging": {"enabled": True, "contact_fields": fields}}}  # fmt: skip

    refused = api.post("/api/v1/connections", body, format="json")

    assert refused.status_code == 400
    assert message in str(refused.json())
