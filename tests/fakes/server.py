"""What every fake CRM shares: a real HTTP server on 127.0.0.1 in a thread."""

from __future__ import annotations

import threading
import uuid
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
    # How the CRM's OAuth authorization codes start (for fakes with an OAuth flow).
    authorization_code_prefix: ClassVar[str] = "code-"
    server: QuietServer | None = None
    lock: threading.RLock
    faults: list[Any]
    access_tokens: dict[str, float]  # token -> expiry (epoch s)
    authorization_codes: dict[str, str]  # code -> the redirect_uri it was given for

    def inject(self, fault: Any) -> None:
        """Answer the requests the fault matches with it (the fake's own Fault)."""
        with self.lock:
            self.faults.append(fault)

    def expire_tokens(self) -> None:
        """Expire every access token issued so far: the next request with one gets a 401."""
        with self.lock:
            for token in self.access_tokens:
                self.access_tokens[token] = 0

    def authorize(self, redirect_uri: str) -> str:
        """The code the CRM puts on the redirect once the user has granted access."""
        code = f"{self.authorization_code_prefix}{uuid.uuid4().hex}"
        self.authorization_codes[code] = redirect_uri
        return code

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
