"""Calls: the list with its filters, a call's page, resends; roles and tenant isolation."""

import pytest

from calls.models import Attempt, Delivery
from core.scoping import tenant_scope
from tenants.models import AuditEntry

pytestmark = pytest.mark.django_db

ISOLATED_ROUTES = {
    "calls/",
    "calls/<uuid:call_id>",
    "calls/deliveries/<uuid:delivery_id>/resend",
    "calls/crm-logs/<uuid:crm_log_id>/resend",
    "calls/app-runs/<uuid:app_run_id>/resend",
}


def test_the_list_shows_calls_and_filters_them_by_number_status_agent_and_date(
    admin_client, ended_call
):
    listed = admin_client.get("/app/calls/")
    by_national_number = admin_client.get("/app/calls/", {"number": "07400 123456"})
    by_digits = admin_client.get("/app/calls/", {"number": "123456"})
    other_number = admin_client.get("/app/calls/", {"number": "+14155550199"})
    by_status = admin_client.get("/app/calls/", {"status": "CANCELED", "agent": "agent.017"})
    other_status = admin_client.get("/app/calls/", {"status": "ANSWER"})
    today = ended_call.start_time.date().isoformat()
    by_date = admin_client.get("/app/calls/", {"since": today, "until": today})

    detail_link = f"/app/calls/{ended_call.call_id}"
    for name, response in {
        "listed": listed,
        "national": by_national_number,
        "digits": by_digits,
        "status": by_status,
        "date": by_date,
    }.items():
        assert detail_link in response.text, name
    for response in (other_number, other_status):
        assert detail_link not in response.text
        assert "No calls match these filters" in response.text


def test_bad_filters_are_form_errors_not_500(admin_client, ended_call):
    response = admin_client.get(
        "/app/calls/", {"since": "2026-13-45", "status": "LOUD", "until": "2026-01-01"}
    )

    assert response.status_code == 200
    assert "Enter a valid date." in response.text
    assert "Select a valid choice." in response.text


def test_an_htmx_filter_request_gets_only_the_results(admin_client, ended_call):
    response = admin_client.get("/app/calls/", {"number": "123456"}, HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    assert "<nav" not in response.text and f"/app/calls/{ended_call.call_id}" in response.text
    assert response.headers["Vary"].count("HX-Request") == 1


def test_the_empty_list_says_where_calls_come_from(admin_client):
    response = admin_client.get("/app/calls/")

    assert "No calls yet" in response.text


def test_a_calls_page_shows_timeline_delivery_attempts_and_forms(admin_client, ended_call):
    response = admin_client.get(f"/app/calls/{ended_call.call_id}")

    assert response.status_code == 200
    text = response.text
    assert "Timeline" in text and "Initiated" in text and "Ended" in text
    assert "HTTP 200" in text and "/callbacks" in text and " ms" in text
    assert "Resend" in text and "Add notes" in text and "Save disposition" in text


def test_a_viewer_sees_the_call_without_any_write_control(viewer_client, ended_call):
    response = viewer_client.get(f"/app/calls/{ended_call.call_id}")

    assert response.status_code == 200
    assert "Resend" not in response.text and "Add notes" not in response.text
    assert response.text.count('method="post"') == 1  # signing out


def test_an_admin_resends_a_delivery_and_it_is_audited(admin_client, ended_call, tenant):
    with tenant_scope(tenant):
        delivery = Delivery.objects.get(call=ended_call)

    response = admin_client.post(f"/app/calls/deliveries/{delivery.pk}/resend", follow=True)

    assert "Callback queued to be sent again." in response.text
    with tenant_scope(tenant):
        delivery.refresh_from_db()
        entry = AuditEntry.objects.get()
    assert delivery.state == "pending" and delivery.next_trigger == "manual"
    assert (entry.action, entry.target) == ("delivery.resend", str(delivery.pk))


def test_a_resend_of_a_pending_delivery_changes_nothing(admin_client, ended_call, tenant):
    with tenant_scope(tenant):
        delivery = Delivery.objects.get(call=ended_call)
    admin_client.post(f"/app/calls/deliveries/{delivery.pk}/resend")

    again = admin_client.post(f"/app/calls/deliveries/{delivery.pk}/resend", follow=True)

    assert "being delivered right now" in again.text
    with tenant_scope(tenant):
        assert AuditEntry.objects.count() == 1
        assert Attempt.objects.filter(delivery=delivery).count() == 1


def test_a_viewers_resend_is_refused(viewer_client, ended_call, tenant):
    with tenant_scope(tenant):
        delivery = Delivery.objects.get(call=ended_call)

    response = viewer_client.post(f"/app/calls/deliveries/{delivery.pk}/resend")

    assert response.status_code == 403
    with tenant_scope(tenant):
        assert Delivery.objects.get().state == "succeeded"


def test_notes_and_disposition_are_saved_once_with_errors_beside_the_field(
    admin_client, ended_call, tenant
):
    page = admin_client.get(f"/app/calls/{ended_call.call_id}")
    token = page.context["notes_form"]["submit_token"].value()
    notes = {"notes-notes": "Wants a callback", "notes-submit_token": token}

    first = admin_client.post(f"/app/calls/{ended_call.call_id}", notes)
    double = admin_client.post(f"/app/calls/{ended_call.call_id}", notes)
    too_long = admin_client.post(
        f"/app/calls/{ended_call.call_id}",
        {"disposition-disposition": "x" * 65, "disposition-submit_token": "t" * 20},
    )

    assert first.status_code == 302
    assert double.status_code == 200 and "already submitted" in double.text
    assert too_long.status_code == 200
    assert "Ensure this value has at most 64 characters" in too_long.text
    ended_call.refresh_from_db()
    assert ended_call.notes == "Wants a callback"
    assert ended_call.disposition == "CRM_CALL"


def test_another_tenants_member_gets_404_on_the_call_and_its_resends(
    other_client, ended_call, tenant
):
    with tenant_scope(tenant):
        delivery = Delivery.objects.get(call=ended_call)
    missing = "00000000-0000-0000-0000-000000000000"

    assert other_client.get(f"/app/calls/{ended_call.call_id}").status_code == 404
    assert other_client.post(f"/app/calls/deliveries/{delivery.pk}/resend").status_code == 404
    assert other_client.post(f"/app/calls/crm-logs/{missing}/resend").status_code == 404
    assert other_client.post(f"/app/calls/app-runs/{missing}/resend").status_code == 404
    assert str(ended_call.call_id) not in other_client.get("/app/calls/").text
    with tenant_scope(tenant):
        assert Delivery.objects.get().state == "succeeded"


def test_a_call_id_that_is_not_a_uuid_is_404(admin_client):
    assert admin_client.get("/app/calls/not-a-call").status_code == 404
