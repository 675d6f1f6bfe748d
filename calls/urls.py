from django.urls import path

from calls.api import events, exports, gateway, views

urlpatterns = [
    path("calls", views.CallList.as_view(), name="call-list"),
    path("calls/<uuid:call_id>", views.CallDetail.as_view(), name="call-detail"),
    path("calls/<uuid:call_id>/hangup", views.CallHangUp.as_view(), name="call-hangup"),
    path(
        "calls/<uuid:call_id>/disposition", views.CallDisposition.as_view(), name="call-disposition"
    ),
    path("calls/<uuid:call_id>/notes", views.CallNotes.as_view(), name="call-notes"),
    path("calls/<uuid:call_id>/transfer", views.CallTransfer.as_view(), name="call-transfer"),
    path("calls/<uuid:call_id>/add-party", views.CallAddParty.as_view(), name="call-add-party"),
    path("live", views.LiveFeed.as_view(), name="live-feed"),
    path("exports/calls", exports.CallExport.as_view(), name="call-export"),
    path(
        "calls/<uuid:call_id>/recording", events.CallRecordingView.as_view(), name="call-recording"
    ),
    path("telephony/events", events.EventsView.as_view(), name="telephony-events"),
    path(
        "telephony/events/<str:token>",
        events.EventsByTokenView.as_view(),
        name="telephony-events-by-token",
    ),
    path("telephony/token", events.EventsTokenView.as_view(), name="telephony-token"),
    path("deliveries", views.DeliveryList.as_view(), name="delivery-list"),
    path("deliveries/pause", views.CallbackPauseView.as_view(), name="callback-pause"),
    path("deliveries/<uuid:pk>", views.DeliveryDetail.as_view(), name="delivery-detail"),
    path("deliveries/<uuid:pk>/resend", views.DeliveryResend.as_view(), name="delivery-resend"),
    path("tenant/signing-secret", views.SigningSecretView.as_view(), name="signing-secret"),
    path("gateway", gateway.GatewayView.as_view(), name="gateway"),
]
