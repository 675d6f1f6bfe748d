from django.urls import path

from calls.gateways.twilio import views

prefix = "<int:tenant_id>/calls/<uuid:call_id>"
urlpatterns = [
    path(f"{prefix}/connect", views.connect, name="gateway-twilio-connect"),
    path(f"{prefix}/after-dial", views.after_dial, name="gateway-twilio-after-dial"),
    path(f"{prefix}/status", views.status, name="gateway-twilio-status"),
]
