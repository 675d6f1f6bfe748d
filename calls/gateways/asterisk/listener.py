"""The ARI events socket of each tenant on Asterisk, read by `manage.py ari_events`.

One thread per tenant keeps its app's WebSocket (`GET /ari/events?app=...`) open: it connects
through the SSRF guard (the address is checked, then that address is dialled), asks what happened
to live calls while it was away (events.ari_recover: Asterisk never replays), then hands each event
to events.ari_message_receive, which stores it before anything is applied. A closed socket or a
refused connection is logged and retried with backoff (0.5 s doubling to 30 s, with jitter); an
event that cannot be stored (database down) is retried until it is, so none is skipped.
"""

from __future__ import annotations

import json
import logging
import random
import socket
import threading
from urllib.parse import urlsplit

from django.db import DatabaseError, close_old_connections
from websockets.exceptions import WebSocketException
from websockets.sync.client import ClientConnection, connect

from calls.gateways import gateway_for
from calls.gateways.asterisk.events import ari_message_receive, ari_recover
from calls.gateways.asterisk.gateway import AsteriskGateway
from core import http
from core.scoping import tenant_scope
from tenants.models import Tenant

logger = logging.getLogger(__name__)

FIRST_BACKOFF, MAX_BACKOFF = 0.5, 30.0
CONNECT_SECONDS = 5.0


class AppListener(threading.Thread):
    """Listens to one tenant's Stasis app until `stop` is set."""

    def __init__(self, tenant_id: int) -> None:
        super().__init__(name=f"ari-events-{tenant_id}", daemon=True)
        self.tenant_id = tenant_id
        self.stop = threading.Event()
        self.connected = threading.Event()
        self.connections = 0  # how many times it has connected (for tests and logs)

    def run(self) -> None:
        backoff = FIRST_BACKOFF
        while not self.stop.is_set():
            try:
                with tenant_scope(self.tenant_id):
                    self._listen()
                backoff = FIRST_BACKOFF
            except (OSError, WebSocketException, http.HttpError, DatabaseError) as error:
                logger.warning("ARI events for tenant %s: %s; retrying", self.tenant_id, error)
            except Exception:  # a bug must not end the listening: log it, then as above
                logger.exception("ARI events for tenant %s failed; retrying", self.tenant_id)
            finally:
                self.connected.clear()
                close_old_connections()
            self.stop.wait(backoff * random.uniform(0.8, 1.2))  # noqa: S311 (jitter)
            backoff = min(backoff * 2, MAX_BACKOFF)

    def _listen(self) -> None:
        close_old_connections()
        tenant = Tenant.objects.get(pk=self.tenant_id)
        gateway = gateway_for(tenant)
        if not isinstance(gateway, AsteriskGateway):
            self.stop.set()  # the tenant left Asterisk
            return
        with _open(gateway) as socket_:
            self.connections += 1
            logger.info("ARI events for tenant %s: connected to %s", tenant.pk, gateway.app)
            ari_recover(tenant, gateway)
            self.connected.set()
            while not self.stop.is_set():
                try:
                    raw = socket_.recv(timeout=1.0)
                except TimeoutError:
                    continue
                self._receive(tenant, raw)

    def _receive(self, tenant: Tenant, raw: str | bytes) -> None:
        try:
            message = json.loads(raw)
        except ValueError:
            logger.warning("ARI sent something that is not JSON: %r", raw[:200])
            return
        if not isinstance(message, dict):
            return
        delay = FIRST_BACKOFF
        while True:
            try:
                ari_message_receive(tenant, message)
                return
            except DatabaseError as error:  # never skip a state change: wait for the database
                logger.warning("Could not store an ARI event (%s); retrying", error)
                close_old_connections()
                if self.stop.wait(delay):
                    return
                delay = min(delay * 2, MAX_BACKOFF)


def _open(gateway: AsteriskGateway) -> ClientConnection:
    """The app's events socket, dialled at an address the SSRF guard let through."""
    server = gateway.server
    url = server.events_url(gateway.app)
    http.check_url(server.base_url)
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "wss" else 80)
    family, kind, proto, _, address = http.resolve_checked(parts.hostname or "", port)[0]
    sock = socket.socket(family, kind, proto)
    sock.settimeout(CONNECT_SECONDS)
    try:
        sock.connect(address)
    except OSError:
        sock.close()
        raise
    sock.settimeout(None)  # an idle socket is normal; the handshake has open_timeout
    return connect(
        url,
        sock=sock,
        additional_headers={"Authorization": server.authorization},
        open_timeout=CONNECT_SECONDS,
        close_timeout=2,
        max_size=2**22,
        user_agent_header="CallBridge",
    )
