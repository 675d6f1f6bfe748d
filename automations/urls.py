from django.urls import path

from automations import api

urlpatterns = [
    path("apps", api.AppList.as_view(), name="app-list"),
    path("apps/test-call", api.AppsTestCall.as_view(), name="apps-test-call"),
    path("apps/<int:pk>", api.AppDetail.as_view(), name="app-detail"),
    path("app-runs/<uuid:pk>/resend", api.AppRunResend.as_view(), name="app-run-resend"),
    path("lookup/enriched", api.EnrichedLookup.as_view(), name="lookup-enriched"),
    path("calls/<uuid:call_id>/activity", api.CallActivity.as_view(), name="call-activity"),
    path("crm-logs/<uuid:pk>/resend", api.CrmLogResend.as_view(), name="crm-log-resend"),
]
