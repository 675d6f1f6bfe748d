import importlib
import importlib.util

from django.apps import AppConfig


class CallsConfig(AppConfig):
    name = "calls"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from calls.gateways import ENGINES

        # Each engine's own Celery tasks (calls/gateways/<engine>/tasks.py), for the worker.
        for engine in ENGINES:
            module = f"calls.gateways.{engine}.tasks"
            if importlib.util.find_spec(module) is not None:
                importlib.import_module(module)
