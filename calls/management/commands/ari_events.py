"""Listen to the ARI events socket of every tenant on Asterisk (calls/gateways/asterisk).

Runs until stopped (SIGTERM or Ctrl-C): every RESCAN_SECONDS it starts a listener for a tenant
newly on Asterisk and restarts one whose gateway settings changed. The Procfile runs it as
`ari-events`; one process serves every tenant (a thread each).
"""

from __future__ import annotations

import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand

from calls.gateways.asterisk.listener import AppListener
from calls.models import GatewayConfig
from core.scoping import across_all_tenants

RESCAN_SECONDS = 30.0


class Command(BaseCommand):
    help = "Read the ARI events of every tenant whose telephony engine is Asterisk."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--rescan", type=float, default=RESCAN_SECONDS)

    def handle(self, *args: Any, **options: Any) -> None:
        stopping = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stopping.set())
        listeners: dict[int, tuple[Any, AppListener]] = {}
        while not stopping.is_set():
            wanted = configured()
            for tenant_id, (version, listener) in list(listeners.items()):
                if wanted.get(tenant_id) != version or not listener.is_alive():
                    listener.stop.set()
                    del listeners[tenant_id]
            for tenant_id, version in wanted.items():
                if tenant_id not in listeners:
                    listener = AppListener(tenant_id)
                    listener.start()
                    listeners[tenant_id] = (version, listener)
                    self.stdout.write(f"Listening to tenant {tenant_id}'s Asterisk")
            stopping.wait(options["rescan"])
        for _, listener in listeners.values():
            listener.stop.set()
        for _, listener in listeners.values():
            listener.join(timeout=5)


def configured() -> dict[int, Any]:
    """tenant id -> when its Asterisk gateway settings last changed."""
    with across_all_tenants():
        rows = GatewayConfig.objects.filter(engine="asterisk").values_list(
            "tenant_id", "updated_at"
        )
        return dict(rows)
