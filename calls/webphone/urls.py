from django.urls import path

from calls.webphone import views

urlpatterns = [
    path("launch", views.launch, name="webphone-launch"),
    path("calls/<str:token>", views.call_page, name="webphone-call"),
    path("calls/<str:token>/events", views.call_events, name="webphone-call-events"),
    path("calls/<str:token>/<slug:action>", views.call_action, name="webphone-call-action"),
]
