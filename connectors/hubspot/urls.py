"""Included under connections/<int:pk>/hubspot/ (connectors/urls.py, from the registry)."""

from django.urls import path

from connectors.hubspot import api

urlpatterns = [
    path("webhook", api.HubSpotWebhook.as_view(), name="connection-hubspot-webhook"),
]
