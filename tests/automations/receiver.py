"""A real HTTP receiver on 127.0.0.1 for webhook apps, with a fake OAuth token endpoint."""

from __future__ import annotations

import base64
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote

CLIENT_ID, CLIENT_SECRET = "cb-client", "cb-secret/+="


@dataclass
class Answer:
    status: int = 200
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    delay: float = 0.0  # seconds to wait before answering


@dataclass
class Received:
    at: float  # time.monotonic() on arrival
    method: str
    path: str  # with its query string
    headers: dict[str, str]  # lower-cased names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class WebhookReceiver:
    """Answers /token as an OAuth client-credentials endpoint, anything else from `script`.

    Each request takes the next scripted Answer (then 200 {"ok": true}), and /token the next of
    `token_script` before it issues tokens. With `require_token`,
    a request without a Bearer token this endpoint issued (and did not revoke) gets 401.
    """

    script: list[Answer] = field(default_factory=list)
    token_script: list[Answer] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    require_token: bool = False
    token_lifetime: float = 3600
    issued: list[str] = field(default_factory=list)
    revoked: set[str] = field(default_factory=set)

    def start(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                got = Received(time.monotonic(), self.command, self.path, headers, body)
                receiver.received.append(got)
                answer = receiver.answer(got)
                time.sleep(answer.delay)
                payload = answer.body if answer.body is not None else json.dumps(answer.json)
                payload = payload.encode() if isinstance(payload, str) else payload
                try:
                    self.send_response(answer.status)
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            do_POST = do_GET

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        serve = {"poll_interval": 0.05}  # a quick stop()
        threading.Thread(target=self.server.serve_forever, kwargs=serve, daemon=True).start()
        return self

    def answer(self, got: Received) -> Answer:
        if got.path == "/token":
            return self.token_answer(got)
        if self.require_token:
            token = got.headers.get("authorization", "").removeprefix("Bearer ")
            if token not in self.issued or token in self.revoked:
                return Answer(401, {"error": "invalid_token"})
        if got.path.startswith("/redirected"):
            return Answer(200, {"redirected": True})
        return self.script.pop(0) if self.script else Answer(200, {"ok": True})

    def token_answer(self, got: Received) -> Answer:
        if self.token_script:
            return self.token_script.pop(0)
        form = {k: v[0] for k, v in parse_qs(got.body.decode()).items()}
        basic = got.headers.get("authorization", "").removeprefix("Basic ")
        if basic:  # RFC 6749 §2.3.1: form-encoded parts inside HTTP Basic
            user, _, password = base64.b64decode(basic).decode().partition(":")
            form |= {"client_id": unquote(user), "client_secret": unquote(password)}
        if form.get("grant_type") != "client_credentials":
            return Answer(400, {"error": "unsupported_grant_type"})
        if (form.get("client_id"), form.get("client_secret")) != (CLIENT_ID, CLIENT_SECRET):
            return Answer(401, {"error": "invalid_client"})
        token = f"tok-{len(self.issued) + 1}"
        self.issued.append(token)
        return Answer(
            200, {"access_token": token, "token_type": "Bearer", "expires_in": self.token_lifetime}
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def to(self, path_prefix: str) -> list[Received]:
        return [r for r in self.received if r.path.startswith(path_prefix)]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
