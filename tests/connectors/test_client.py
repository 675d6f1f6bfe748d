"""The CRM client keeps its connection alive, and a kept-alive socket still obeys the deadline."""

import threading
import time
from http.server import BaseHTTPRequestHandler

import pytest

from connectors.client import CrmClient
from connectors.interface import ConnectorError
from fakes.server import QuietServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as CRMs answer
    client_ports: list[int]
    drip_from = 10**9  # requests from this one on drip their body

    def do_GET(self) -> None:
        self.client_ports.append(self.client_address[1])
        self.send_response(200)
        self.send_header("Content-Length", "100")
        self.end_headers()
        if len(self.client_ports) < self.drip_from:
            self.wfile.write(b"x" * 100)
            return
        for _ in range(100):  # a byte every 0.3 s: no single read ever times out
            self.wfile.write(b"x")
            self.wfile.flush()
            time.sleep(0.3)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server(settings):
    settings.ALLOW_PRIVATE_URLS = True
    Handler.client_ports, Handler.drip_from = [], 10**9
    httpd = QuietServer(("127.0.0.1", 0), Handler)  # no traceback when the client cuts a drip
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    httpd.server_close()


def test_a_client_sends_its_requests_over_one_kept_alive_connection(server):
    client = CrmClient(connection_id=1)

    for _ in range(3):
        assert client.send("GET", f"{server}/page").body == b"x" * 100

    assert len(set(Handler.client_ports)) == 1


def test_a_kept_alive_connection_is_cut_at_the_total_deadline(server):
    client = CrmClient(connection_id=1, deadline_seconds=1.0, max_attempts=1)
    client.send("GET", f"{server}/page")
    Handler.drip_from = 2
    started = time.monotonic()

    with pytest.raises(ConnectorError, match="failed"):
        client.send("GET", f"{server}/page")

    assert time.monotonic() - started < 1.5
    assert len(Handler.client_ports) == 2 and len(set(Handler.client_ports)) == 1  # reused
