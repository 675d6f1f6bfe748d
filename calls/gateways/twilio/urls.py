from django.urls import path

from calls.gateways.twilio import views

placed = "<int:tenant_id>/calls/<uuid:call_id>"
inbound = "<int:tenant_id>/inbound/<str:call_sid>"
urlpatterns = [
    path(f"{placed}/connect", views.connect, name="gateway-twilio-connect"),
    path(f"{placed}/after-dial", views.after_dial, name="gateway-twilio-after-dial"),
    path(f"{placed}/status", views.status, name="gateway-twilio-status"),
    path(f"{inbound}/leg", views.inbound_leg, name="gateway-twilio-inbound-leg"),
    path(
        f"{inbound}/after-dial", views.inbound_after_dial, name="gateway-twilio-inbound-after-dial"
    ),
]
