"""The one outbound HTTP client: SSRF guard, total deadline, no redirects, redaction."""

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from core import http

BLOCKED_LITERALS = [
    "127.0.0.1",
    "10.0.0.5",
    "172.16.0.1",
    "192.168.1.1",
    "100.64.0.1",
    "169.254.169.254",
    "0.0.0.0",  # noqa: S104 - a target we refuse, not a bind
    "224.0.0.1",
    "::1",
    "::",
    "fe80::1",
    "fc00::1",
    "fd00:ec2::254",
    "::ffff:127.0.0.1",
    "::ffff:169.254.169.254",
    "64:ff9b::a9fe:a9fe",
    "2002:a9fe:a9fe::1",
    "::127.0.0.1",
]


@pytest.mark.parametrize("address", BLOCKED_LITERALS)
def test_private_and_reserved_addresses_are_blocked(address):
    assert http.is_blocked_address(address)


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"])
def test_public_addresses_are_not_blocked(address):
    assert not http.is_blocked_address(address)


class Handler(BaseHTTPRequestHandler):
    hits: list[str]
    mode = "ok"

    def do_POST(self) -> None:
        self.hits.append(self.path)
        if self.mode == "redirect":
            self.send_response(302)
            self.send_header("Location", "/elsewhere")
            self.end_headers()
        elif self.mode == "drip":
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            for _ in range(100):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.3)
        else:
            body = b"y" * 100_000
            self.send_response(201)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    do_GET = do_POST

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server():
    Handler.hits, Handler.mode = [], "ok"
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "localhost", "169.254.169.254", "[::ffff:127.0.0.1]", "127.1", "2130706433"],
)
def test_it_refuses_loopback_and_metadata_unless_allowed(settings, server, host):
    settings.ALLOW_PRIVATE_URLS = False
    port = server.server_port

    with pytest.raises(http.HttpError) as refused:
        http.post(f"http://{host}:{port}/hook", deadline_seconds=2, body=b"{}")

    assert refused.value.error_class == "blocked_ip"
    assert Handler.hits == []


def test_a_name_resolving_to_loopback_is_refused_at_connect_time(settings, server):
    settings.ALLOW_PRIVATE_URLS = False

    with pytest.raises(http.HttpError) as refused:
        http.post(f"http://loopback.test:{server.server_port}/", deadline_seconds=2)
    # loopback.test does not resolve here (no DNS): refused either way, and nothing was sent
    assert refused.value.error_class in ("blocked_ip", "dns")
    assert Handler.hits == []


def test_the_resolved_address_is_checked_not_the_name(settings, monkeypatch, server):
    settings.ALLOW_PRIVATE_URLS = False
    real = socket.getaddrinfo

    def resolve_to_loopback(host, port, *args, **kwargs):  # a hostile DNS answer
        return real("127.0.0.1", port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve_to_loopback)

    with pytest.raises(http.HttpError) as refused:
        http.post(f"http://crm.example.com:{server.server_port}/", deadline_seconds=2)

    assert refused.value.error_class == "blocked_ip"
    assert Handler.hits == []


@pytest.mark.parametrize(
    "url",
    ["file:///etc/passwd", "gopher://example.com/", "http://user:pw@example.com/", "https:///x"],
)
def test_it_refuses_urls_that_are_not_plain_http(settings, url):
    settings.ALLOW_PRIVATE_URLS = True

    with pytest.raises(http.HttpError) as refused:
        http.check_url(url)

    assert refused.value.error_class == "invalid_url"


def test_allowed_private_urls_reach_a_local_server_with_a_bounded_excerpt(settings, server):
    settings.ALLOW_PRIVATE_URLS = True

    response = http.post(f"http://127.0.0.1:{server.server_port}/hook", deadline_seconds=5)

    assert response.status_code == 201
    assert len(response.excerpt) == http.RESPONSE_EXCERPT_BYTES


def test_it_never_follows_a_redirect(settings, server):
    settings.ALLOW_PRIVATE_URLS = True
    Handler.mode = "redirect"

    response = http.post(f"http://127.0.0.1:{server.server_port}/hook", deadline_seconds=5)

    assert response.status_code == 302
    assert Handler.hits == ["/hook"]


def test_the_deadline_is_total_not_per_read(settings, server):
    settings.ALLOW_PRIVATE_URLS = True
    Handler.mode = "drip"  # a byte every 0.3 s: no single read ever times out
    started = time.monotonic()

    with pytest.raises(http.HttpError) as expired:
        http.post(f"http://127.0.0.1:{server.server_port}/hook", deadline_seconds=1.0)

    assert expired.value.error_class == "timeout"
    assert time.monotonic() - started < 1.5


def test_a_closed_port_is_a_connect_error_with_secrets_redacted(settings):
    settings.ALLOW_PRIVATE_URLS = True
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    with pytest.raises(http.HttpError) as failed:
        http.post(
            f"http://127.0.0.1:{port}/hook?token=s3cr3t-query",
            deadline_seconds=2,
            headers={"Authorization": "Bearer s3cr3t-header"},
            secret_headers=("Authorization",),
        )

    assert failed.value.error_class == "connect_refused"
    assert "s3cr3t" not in str(failed.value)
