"""What every fake CRM shares: a real HTTP server on 127.0.0.1 in a thread."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up (deadline, killed worker) is not the fake's problem


class FakeServer:
    """start()/url/stop() for a fake; its handler reaches it as `handler_attribute`."""

    handler_class: ClassVar[type[BaseHTTPRequestHandler]]
    handler_attribute: ClassVar[str]
    server: QuietServer | None = None

    def start(self, port: int = 0) -> str:
        # No Nagle: a kept-alive client would wait for the delayed ACK of each answer's headers.
        attributes = {self.handler_attribute: self, "disable_nagle_algorithm": True}
        handler = type("Handler", (self.handler_class,), attributes)
        self.server = QuietServer(("127.0.0.1", port), handler)
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        return self.url

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
