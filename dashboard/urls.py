"""Every dashboard URL, under /app/. A page's views live in dashboard/views/<page>.py.

URL names: the page's index is its navigation `url_name`; its other views are
`<url_name>-<what>` so the menu highlights the page (dashboard/navigation.py).
"""

from django.urls import path

from dashboard.views import agents, auth, connections, overview, phonebook
from dashboard.views.placeholder import placeholder

app_name = "dashboard"

urlpatterns = [
    # Signing in (no tenant yet)
    path("login", auth.LoginView.as_view(), name="login"),
    path("logout", auth.LogoutView.as_view(), name="logout"),
    path("password-reset", auth.PasswordResetView.as_view(), name="password-reset"),
    path("password-reset/sent", auth.PasswordResetDoneView.as_view(), name="password-reset-sent"),
    path(
        "password-reset/<uidb64>/<token>",
        auth.PasswordResetConfirmView.as_view(),
        name="password-reset-confirm",
    ),
    path(
        "password-reset/done",
        auth.PasswordResetCompleteView.as_view(),
        name="password-reset-complete",
    ),
    path("switch-tenant", auth.tenant_switch, name="switch-tenant"),
    # Pages, in navigation order
    path("", overview.overview, name="overview"),
    path("calls/", placeholder("calls"), name="calls"),
    path("callbacks/", placeholder("callbacks"), name="callbacks"),
    path("connections/", connections.connections, name="connections"),
    path(
        "connections/new/<str:provider>/<str:mode>",
        connections.connection_new,
        name="connections-new",
    ),
    path(
        "connections/oauth/callback",
        connections.connection_oauth_callback,
        name="connections-oauth-callback",
    ),
    path("connections/<int:pk>/", connections.connection_detail, name="connections-detail"),
    path(
        "connections/<int:pk>/call-logging",
        connections.connection_call_logging,
        name="connections-call-logging",
    ),
    path(
        "connections/<int:pk>/credentials",
        connections.connection_credentials,
        name="connections-credentials",
    ),
    path(
        "connections/<int:pk>/authorize",
        connections.connection_authorize,
        name="connections-authorize",
    ),
    path("connections/<int:pk>/test", connections.connection_test, name="connections-test"),
    path("connections/<int:pk>/sync", connections.connection_sync, name="connections-sync"),
    path("connections/<int:pk>/delete", connections.connection_delete, name="connections-delete"),
    path("phonebook/", phonebook.phonebook, name="phonebook"),
    path("phonebook/import", phonebook.contact_import, name="phonebook-import"),
    path("phonebook/<int:pk>/", phonebook.contact_detail, name="phonebook-detail"),
    path("agents/", agents.agents, name="agents"),
    path("agents/new", agents.agent_new, name="agents-new"),
    path("agents/<int:pk>/edit", agents.agent_edit, name="agents-edit"),
    path("agents/<int:pk>/delete", agents.agent_delete, name="agents-delete"),
    path("routing/", placeholder("routing"), name="routing"),
    path("apps/", placeholder("apps"), name="apps"),
    path("api-keys/", placeholder("api-keys"), name="api-keys"),
    path("settings/", placeholder("settings"), name="settings"),
]
