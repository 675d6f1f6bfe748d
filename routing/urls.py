from django.urls import path

from routing import api

urlpatterns = [
    path("routing/rules", api.RuleList.as_view(), name="routing-rule-list"),
    path("routing/rules/<int:pk>", api.RuleDetail.as_view(), name="routing-rule-detail"),
    path("routing/decide", api.DecideView.as_view(), name="routing-decide"),
    path(
        "routing/decide/<str:token>",
        api.DecideByTokenView.as_view(),
        name="routing-decide-by-token",
    ),
    path("routing/dry-run", api.DryRunView.as_view(), name="routing-dry-run"),
    path("routing/token", api.RoutingTokenView.as_view(), name="routing-token"),
]
