"""Staff can resend deliveries from the admin."""

import pytest
from django.utils import timezone

from calls.models import Delivery
from calls.services import call_hang_up

pytestmark = pytest.mark.django_db


def test_staff_resend_a_failed_delivery_keeping_its_id(admin_client, tenant, place_call, in_tenant):
    tenant.callback_settings.url = "https://crm.example.com/callbacks"
    tenant.callback_settings.save()
    call_hang_up(call=place_call())
    delivery = Delivery.objects.get()
    Delivery.objects.filter(pk=delivery.pk).update(state="failed", attempt_count=4)

    response = admin_client.post(
        "/admin/calls/delivery/",
        {"action": "resend", "_selected_action": [str(delivery.pk)]},
        follow=True,
    )

    assert response.status_code == 200
    assert "Resent 1; 0 still pending." in response.content.decode()
    delivery.refresh_from_db()
    assert (delivery.state, delivery.max_attempts) == ("pending", 5)
    assert delivery.next_attempt_at <= timezone.now()


def test_staff_see_calls_and_deliveries_of_every_tenant(
    admin_client, tenant, place_call, in_tenant
):
    call = place_call()

    assert str(call.call_id) in admin_client.get("/admin/calls/call/").content.decode()
    assert admin_client.get(f"/admin/calls/call/{call.pk}/change/").status_code == 200
    assert admin_client.get("/admin/calls/delivery/").status_code == 200
