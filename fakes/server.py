"""What every fake CRM shares: a real HTTP server on 127.0.0.1 in a thread."""

from __future__ import annotations

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up (deadline, killed worker) is not the fake's problem


class JsonHandler(BaseHTTPRequestHandler):
    """Hand each request to the fake's handle() and write its answer, or its error's.

    `fake.handle(method, path, query, headers, body)` returns (status, payload, headers) or
    raises `api_error` carrying status, body and headers; a payload is sent as it is when bytes,
    as text when a string, else as JSON.
    """

    fake: Any  # the FakeServer serving this handler (FakeServer.start sets it)
    api_error: ClassVar[type[Exception]]
    content_type: ClassVar[str] = "application/json"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def answer_headers(self, status: int, payload: Any) -> dict[str, str]:
        """The headers this API adds to every answer: a content type when there is a body."""
        bodiless = status in (204, 304) or payload == b""
        return {} if bodiless else {"Content-Type": self.content_type}

    def _serve(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        try:
            status, payload, headers = self.fake.handle(
                self.command, url.path, parse_qs(url.query), self.headers, body
            )
        except self.api_error as error:
            status, payload, headers = error.status, error.body, error.headers  # type: ignore[attr-defined]
        if isinstance(payload, bytes):
            raw = payload
        else:
            raw = (payload if isinstance(payload, str) else json.dumps(payload)).encode()
        self.send_response(status)
        for name, value in {**self.answer_headers(status, payload), **headers}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve


class FakeServer:
    """start()/url/stop() for a fake served by its handler_class (a JsonHandler)."""

    handler_class: ClassVar[type[JsonHandler]]
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
        attributes = {"fake": self, "disable_nagle_algorithm": True}
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
