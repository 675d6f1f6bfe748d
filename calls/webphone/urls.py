from django.urls import path

from calls.webphone import views

urlpatterns = [
    path("", views.console_open, name="webphone-console-open"),
    path("agents/<str:token>", views.console, name="webphone-console"),
    path("agents/<str:token>/events", views.console_events, name="webphone-console-events"),
    path("launch", views.launch, name="webphone-launch"),
    path("calls/<str:token>", views.call_page, name="webphone-call"),
    path("calls/<str:token>/events", views.call_events, name="webphone-call-events"),
    path("calls/<str:token>/<slug:action>", views.call_action, name="webphone-call-action"),
]
