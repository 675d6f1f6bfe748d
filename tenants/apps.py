from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "tenants"
    verbose_name = "Tenants, agents and keys"

    def ready(self) -> None:
        from django.db.models.signals import post_save

        from tenants import key_cache
        from tenants.models import Tenant

        key_cache.connect_signals()
        post_save.connect(_settings_for_new_tenant, sender=Tenant, dispatch_uid="tenant_settings")


def _settings_for_new_tenant(
    sender: type, instance: object, created: bool, **kwargs: object
) -> None:
    # Every way a tenant is made (onboard, admin, tests, the demo) gets its settings rows.
    from tenants.models import Tenant, tenant_settings_create

    if created and not kwargs.get("raw") and isinstance(instance, Tenant):
        tenant_settings_create(instance)
