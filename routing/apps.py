from django.apps import AppConfig


class RoutingConfig(AppConfig):
    name = "routing"
    verbose_name = "Smart-IVR routing"

    def ready(self) -> None:
        from routing import selectors

        selectors.connect_signals()
