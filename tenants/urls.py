from django.urls import path

from tenants import api

urlpatterns = [
    path("me", api.MeView.as_view(), name="me"),
    path("tenant", api.TenantView.as_view(), name="tenant"),
    path("agents", api.AgentList.as_view(), name="agent-list"),
    path("agents/<int:pk>", api.AgentDetail.as_view(), name="agent-detail"),
    path("numbers", api.CallerIdNumberList.as_view(), name="number-list"),
]
