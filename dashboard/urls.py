"""Every dashboard URL, under /app/. A page's views live in dashboard/views/<page>.py.

URL names: the page's index is its navigation `url_name`; its other views are
`<url_name>-<what>` so the menu highlights the page (dashboard/navigation.py).
"""

from django.urls import path

from dashboard.views import (
    agents,
    api_keys,
    apps,
    auth,
    callbacks,
    calls,
    connections,
    overview,
    phonebook,
    routing,
    settings,
    telephony,
)

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
    path("live", overview.live_calls, name="overview-live"),
    path("live/stream", overview.stream, name="overview-stream"),
    path("health", overview.health, name="overview-health"),
    path("calls/", calls.call_list, name="calls"),
    path("calls/<uuid:call_id>", calls.call_detail, name="calls-detail"),
    path(
        "calls/deliveries/<uuid:delivery_id>/resend",
        calls.delivery_resend,
        name="calls-resend-delivery",
    ),
    path(
        "calls/crm-logs/<uuid:crm_log_id>/resend",
        calls.crm_log_resend,
        name="calls-resend-crm-log",
    ),
    path(
        "calls/app-runs/<uuid:app_run_id>/resend",
        calls.app_run_resend,
        name="calls-resend-app-run",
    ),
    path("callbacks/", callbacks.callbacks, name="callbacks"),
    path("callbacks/settings", callbacks.settings_save, name="callbacks-settings"),
    path("callbacks/signing-secret", callbacks.signing_secret_rotate, name="callbacks-secret"),
    path("callbacks/test", callbacks.test_send, name="callbacks-test"),
    path("callbacks/resume", callbacks.resume, name="callbacks-resume"),
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
    path("routing/", routing.routing, name="routing"),
    path("routing/new", routing.routing_new, name="routing-new"),
    path("routing/<int:pk>/edit", routing.routing_edit, name="routing-edit"),
    path("routing/<int:pk>/delete", routing.routing_delete, name="routing-delete"),
    path("routing/<int:pk>/move", routing.routing_move, name="routing-move"),
    path("routing/dry-run", routing.routing_dry_run, name="routing-dry-run"),
    path("routing/settings", routing.routing_settings, name="routing-settings"),
    path("routing/token", routing.routing_token, name="routing-token"),
    path("routing/token/delete", routing.routing_token_delete, name="routing-token-delete"),
    path("telephony/", telephony.telephony, name="telephony"),
    path("telephony/engine", telephony.telephony_engine, name="telephony-engine"),
    path("telephony/frames", telephony.telephony_frames, name="telephony-frames"),
    path("apps/", apps.apps, name="apps"),
    path("apps/new/<str:kind>", apps.apps_new, name="apps-new"),
    path("apps/<int:pk>/edit", apps.apps_edit, name="apps-edit"),
    path("apps/<int:pk>/toggle", apps.apps_toggle, name="apps-toggle"),
    path("apps/<int:pk>/delete", apps.apps_delete, name="apps-delete"),
    path("apps/test-call", apps.apps_test_call, name="apps-test-call"),
    path("api-keys/", api_keys.api_keys, name="api-keys"),
    path("api-keys/<int:pk>/revoke", api_keys.api_key_revoke_view, name="api-keys-revoke"),
    path("settings/", settings.settings_page, name="settings"),
    path("settings/invite", settings.settings_invite, name="settings-invite"),
    path(
        "settings/members/<int:pk>/role", settings.settings_member_role, name="settings-member-role"
    ),
    path(
        "settings/members/<int:pk>/remove",
        settings.settings_member_remove,
        name="settings-member-remove",
    ),
    path("settings/audit", settings.settings_audit, name="settings-audit"),
]
