from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from calls.api.events import recording_download
from core.health import healthz
from routing.api import rules_documentation
from routing.inbound import engine_inbound_call

handler400 = "core.errors.bad_request"
handler403 = "core.errors.permission_denied"
handler404 = "core.errors.not_found"
handler500 = "core.errors.server_error"

urlpatterns = [
    path("", RedirectView.as_view(url="/app/"), name="home"),
    path("app/", include("dashboard.urls")),
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("r/<str:token>", recording_download, name="recording"),  # call recordings (seed 002)
    path("api/v1/", include("tenants.urls")),
    path("api/v1/", include("contacts.urls")),
    path("api/v1/", include("routing.urls")),
    path("api/v1/", include("calls.urls")),
    path("api/v1/", include("connectors.urls")),
    path("api/v1/", include("automations.urls")),
    path("webphone/", include("calls.webphone.urls")),
    # Telephony engines: where their calls to a tenant's numbers go, and their own callbacks.
    path(
        "gateways/<str:engine>/<int:tenant_id>/inbound",
        engine_inbound_call,
        name="gateway-inbound",
    ),
    path("gateways/", include("calls.gateways.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/docs/routing-rules", rules_documentation, name="routing-rules-docs"),
]
