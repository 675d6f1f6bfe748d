from django.urls import path

from automations import api

urlpatterns = [
    path("calls/<uuid:call_id>/activity", api.CallActivity.as_view(), name="call-activity"),
    path("crm-logs/<uuid:pk>/resend", api.CrmLogResend.as_view(), name="crm-log-resend"),
]
