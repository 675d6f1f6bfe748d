from django.urls import path

from connectors import api

urlpatterns = [
    path("connections", api.ConnectionList.as_view(), name="connection-list"),
    path("connections/<int:pk>", api.ConnectionDetail.as_view(), name="connection-detail"),
    path("connections/<int:pk>/sync", api.ConnectionSync.as_view(), name="connection-sync"),
    path("connections/<int:pk>/runs", api.SyncRunList.as_view(), name="connection-runs"),
    path("connections/<int:pk>/oauth", api.ConnectionOAuthStart.as_view(), name="connection-oauth"),
    path(
        "connections/<int:pk>/hubspot/webhook",
        api.HubSpotWebhook.as_view(),
        name="connection-hubspot-webhook",
    ),
    path(
        "connections/oauth/callback",
        api.ConnectionOAuthCallback.as_view(),
        name="connection-oauth-callback",
    ),
]
