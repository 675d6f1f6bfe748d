from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "tenants"
    verbose_name = "Tenants, agents and keys"

    def ready(self) -> None:
        from tenants import key_cache

        key_cache.connect_signals()
