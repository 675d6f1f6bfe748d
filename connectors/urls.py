from django.urls import URLPattern, URLResolver, include, path

from connectors import api, registry

urlpatterns: list[URLPattern | URLResolver] = [
    path("connections", api.ConnectionList.as_view(), name="connection-list"),
    path("connections/<int:pk>", api.ConnectionDetail.as_view(), name="connection-detail"),
    path("connections/<int:pk>/sync", api.ConnectionSync.as_view(), name="connection-sync"),
    path("connections/<int:pk>/runs", api.SyncRunList.as_view(), name="connection-runs"),
    path("connections/<int:pk>/oauth", api.ConnectionOAuthStart.as_view(), name="connection-oauth"),
    path(
        "connections/oauth/callback",
        api.ConnectionOAuthCallback.as_view(),
        name="connection-oauth-callback",
    ),
]
# A provider's own URLs (its webhook) live in its folder: connections/<id>/<provider>/...
urlpatterns += [
    path(f"connections/<int:pk>/{provider}/", include(module))
    for provider, module in registry.url_modules().items()
]
