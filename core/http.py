"""The one outbound HTTP client: total deadline, no redirects, SSRF guard, redacted errors.

Every outbound request (callbacks, webhook apps, CRM APIs) goes through `request` here, the only
caller of `requests`: it answers the status, the lower-cased headers and the body (a 4 KB excerpt
by default, the whole body up to `max_body_bytes` when asked), and `retry_after_seconds` reads
their Retry-After. Each caller keeps its own retry policy (seed 002's callback schedule, seed
004's webhook retries, a CRM connection's request budget). Three guarantees:

- **Deadline**: one wall-clock budget per request (connect + send + headers + body), enforced by
  shutting the socket down when it runs out; a receiver dripping a byte a second cannot hold us.
- **SSRF guard**: the host is resolved once, every resolved address is checked (loopback,
  private, link-local, CGNAT, metadata, multicast, IPv4 embedded in IPv6 ...) and the socket is
  opened to the checked address itself, so DNS rebinding cannot swap it. Redirects are never
  followed. `settings.ALLOW_PRIVATE_URLS` lifts the address check (tests, local demos only).
- **Redaction**: header values and the query string never appear in raised messages or logs.
"""

from __future__ import annotations

import contextlib
import contextvars
import ipaddress
import itertools
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.http import HttpRequest
from django.http import HttpResponse as DjangoResponse
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

logger = logging.getLogger(__name__)

# One getaddrinfo row: family, type, proto, canonical name, socket address.
AddressInfo = tuple[socket.AddressFamily, socket.SocketKind, int, str, tuple[Any, ...]]
SocketOptions = list[tuple[int, int, int | bytes]]  # as urllib3 takes them

RESPONSE_EXCERPT_BYTES = 4096
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_EXTRA_BLOCKED = [
    ipaddress.ip_network(n) for n in ("100.64.0.0/10", "192.0.0.0/24", "198.18.0.0/15", "0.0.0.0/8")
]


class HttpError(Exception):
    """A request that got no HTTP response; `error_class` names why (blocked_ip, timeout, ...)."""

    def __init__(self, error_class: str, message: str) -> None:
        super().__init__(message)
        self.error_class = error_class


@dataclass(frozen=True)
class HttpResponse:
    status_code: int
    headers: Mapping[str, str]  # lower-cased names
    body: bytes  # the first RESPONSE_EXCERPT_BYTES unless the whole body was asked for
    latency_ms: int

    @property
    def excerpt(self) -> str:
        """The first RESPONSE_EXCERPT_BYTES of the body, decoded leniently."""
        return self.body[:RESPONSE_EXCERPT_BYTES].decode("utf-8", errors="replace")

    @property
    def retry_after(self) -> float | None:
        return retry_after_seconds(self.headers)


def is_blocked_address(address: str) -> bool:
    """True for any address a tenant-supplied URL must not reach (not a public unicast one)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            return is_blocked_address(str(embedded))
    if any(ip in network for network in _EXTRA_BLOCKED if network.version == ip.version):
        return True
    return not ip.is_global or ip.is_multicast


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64 or int(ip) >> 32 == 0:  # NAT64, or the deprecated IPv4-compatible ::a.b.c.d
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def check_url(url: str) -> None:
    """Raise HttpError('invalid_url' or 'blocked_ip') for a URL we must never call.

    Checks what can be checked without DNS (save time); resolved addresses are checked again
    when connecting.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise HttpError("invalid_url", "Use an http:// or https:// URL with a host name.")
    if parts.username is not None or parts.password is not None:
        raise HttpError("invalid_url", "Put credentials in a header, not in the URL.")
    try:
        port = parts.port  # raises ValueError for a port out of range
    except ValueError:
        port = 0
    if port == 0:  # port 0 connects nowhere, or wherever the system decides
        raise HttpError("invalid_url", "The URL's port is not a number from 1 to 65535.")
    check_host(parts.hostname)


def validate_outbound_url(url: str) -> None:
    """check_url as a model field validator: Django's ValidationError with the reason."""
    from django.core.exceptions import ValidationError

    try:
        check_url(url)
    except HttpError as error:
        raise ValidationError(str(error)) from error


def check_host(host: str) -> None:
    """Raise HttpError('blocked_ip') for a host we must never reach, as far as known without DNS."""
    if settings.ALLOW_PRIVATE_URLS:
        return
    if host == "localhost" or host.endswith(".localhost"):
        raise HttpError("blocked_ip", f"{host!r} is this machine (localhost).")
    try:
        blocked = is_blocked_address(_numeric_address(host))
    except ValueError:
        return  # a name: checked on its resolved addresses at connect time
    if blocked:
        raise HttpError("blocked_ip", f"{host!r} is a private or reserved address.")


def _numeric_address(host: str) -> str:
    """The address a numeric host means to the resolver, in canonical form.

    getaddrinfo reads IPv4 the way inet_aton does: 127.1, 0x7f000001, 2130706433, 0177.0.0.1
    and 0 are all addresses, not names. ValueError for a name.
    """
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    try:
        return socket.inet_ntoa(socket.inet_aton(host))
    except OSError:
        raise ValueError(f"{host!r} is a name") from None


def resolve_checked(host: str, port: int) -> Sequence[AddressInfo]:
    """Resolve host (getaddrinfo rows); HttpError('dns'/'blocked_ip') unless all may be reached."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise HttpError("dns", f"Cannot resolve the host {host!r}.") from error
    if not settings.ALLOW_PRIVATE_URLS and any(is_blocked_address(str(i[4][0])) for i in infos):
        raise HttpError("blocked_ip", f"{host!r} resolves to a private or reserved address.")
    return infos


class _Budget(threading.local):
    deadline: float | None = None
    sockets: list[socket.socket]

    def __init__(self) -> None:
        self.sockets = []


_budget = _Budget()


class _Watchdog:
    """One thread per process shutting down the sockets of requests past their deadline.

    A timer thread per request cost ~200 µs of CPU, as much as the rest of a kept-alive request.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget every watch and the thread (a forked child has no thread yet)."""
        self._due: dict[int, tuple[float, list[socket.socket]]] = {}
        self._wake = threading.Condition()
        self._tokens = itertools.count()
        self._thread: threading.Thread | None = None

    def watch(self, deadline: float, sockets: list[socket.socket]) -> int:
        with self._wake:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="http-deadlines")
                self._thread.daemon = True
                self._thread.start()
            if all(deadline < due for due, _ in self._due.values()):
                self._wake.notify()  # sooner than any it sleeps for
            token = next(self._tokens)
            self._due[token] = (deadline, sockets)
        return token

    def release(self, token: int) -> None:
        with self._wake:
            self._due.pop(token, None)

    def _run(self) -> None:
        with self._wake:
            while True:
                now = time.monotonic()
                for token, (deadline, sockets) in list(self._due.items()):
                    if deadline <= now:
                        del self._due[token]
                        _cut_sockets(sockets)
                soonest = min((due for due, _ in self._due.values()), default=None)
                self._wake.wait(None if soonest is None else soonest - now)


_watchdog = _Watchdog()
os.register_at_fork(after_in_child=_watchdog.reset)  # a worker process starts its own


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Cut every socket this thread's request uses (new or kept alive) once seconds have passed."""
    _budget.deadline, _budget.sockets = time.monotonic() + seconds, []
    token = _watchdog.watch(_budget.deadline, _budget.sockets)
    try:
        yield
    finally:
        _watchdog.release(token)
        _budget.deadline, _budget.sockets = None, []


# The end (time.monotonic()) of the current web request's time for outbound requests, if any.
_outbound_end: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "outbound_end", default=None
)


@contextlib.contextmanager
def outbound_budget(seconds: float) -> Iterator[None]:
    """Bound every outbound request made inside, and every wait between retries, to `seconds`."""
    end = time.monotonic() + seconds
    current = _outbound_end.get()
    token = _outbound_end.set(end if current is None else min(current, end))
    try:
        yield
    finally:
        _outbound_end.reset(token)


def budget_left() -> float | None:
    """Seconds left of the outbound budget; None outside one (workers use their own deadlines)."""
    end = _outbound_end.get()
    return None if end is None else end - time.monotonic()


def within_budget(seconds: float) -> float:
    """`seconds`, or what is left of the budget if less; HttpError('deadline') when none is."""
    left = budget_left()
    if left is None:
        return seconds
    if left < 0.01:
        raise HttpError("deadline", "This request's time for calls to other servers ran out.")
    return min(seconds, left)


class OutboundBudgetMiddleware:
    """A web request never waits on a tenant's servers longer than one budget in all (DESIGN.md).

    Anything longer belongs in a worker: one tenant's slow server must not hold a web worker.
    """

    def __init__(self, get_response: Callable[[HttpRequest], DjangoResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> DjangoResponse:
        with outbound_budget(settings.WEB_REQUEST_OUTBOUND_SECONDS):
            return self.get_response(request)


def _guarded_connect(
    host: str, port: int, timeout: float | None, options: SocketOptions
) -> socket.socket:
    family, kind, proto, _, address = resolve_checked(host, port)[0]
    sock = socket.socket(family, kind, proto)
    _budget.sockets.append(sock)
    for option in options:  # urllib3's TCP_NODELAY: a kept-alive request must not wait for ACKs
        sock.setsockopt(*option)
    remaining = _remaining()
    sock.settimeout(min(t for t in (timeout, remaining) if t is not None) if remaining else timeout)
    try:
        sock.connect(address)  # the very address we checked: no second lookup to rebind
    except OSError:
        sock.close()
        raise
    return sock


def _remaining() -> float | None:
    if _budget.deadline is None:
        return None
    return max(0.001, _budget.deadline - time.monotonic())


class _Guarded:
    """Opens sockets to checked addresses only; every socket a request uses obeys its deadline."""

    _dns_host: str
    port: int
    timeout: float | None
    sock: socket.socket | None
    socket_options: SocketOptions | None

    def _new_conn(self) -> socket.socket:
        return _guarded_connect(self._dns_host, self.port, self.timeout, self.socket_options or [])

    def request(self, *args: Any, **kwargs: Any) -> None:
        if self.sock is not None:  # kept alive from an earlier request: cut it at this deadline too
            _budget.sockets.append(self.sock)
        super().request(*args, **kwargs)  # type: ignore[misc]


class _GuardedHTTPConnection(_Guarded, HTTPConnection):
    pass


class _GuardedHTTPSConnection(_Guarded, HTTPSConnection):
    pass


class _GuardedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


class _GuardedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _GuardedHTTPPool,
            "https": _GuardedHTTPSPool,
        }


Session = requests.Session  # what new_session makes, for callers' type hints


def new_session() -> Session:
    """A session whose connections are guarded; keep one alive to reuse its connections."""
    session = requests.Session()
    session.trust_env = False  # no proxy or netrc from the environment: we check the real target
    adapter = _GuardedAdapter(max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def request(
    method: str,
    url: str,
    *,
    deadline_seconds: float,
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
    secret_headers: tuple[str, ...] = (),
    max_body_bytes: int | None = None,
    session: requests.Session | None = None,
) -> HttpResponse:
    """Send one request within deadline_seconds in total; never follow a redirect.

    Any HTTP status is a response (the caller decides what 3xx/4xx/5xx mean); no response at all
    raises HttpError. Values of `secret_headers` never appear in the error message. The body is
    cut to an excerpt, or with `max_body_bytes` read whole (HttpError 'too_large' beyond it).
    `session` (from new_session) keeps connections alive between requests.
    """
    check_url(url)
    deadline_seconds = within_budget(deadline_seconds)
    headers = dict(headers or {})
    secrets = [headers[h] for h in secret_headers if headers.get(h)]
    started = time.monotonic()
    try:
        with (
            deadline(deadline_seconds),
            contextlib.nullcontext(session) if session is not None else new_session() as sender,
        ):
            response = sender.request(
                method,
                url,
                headers=headers,
                data=body,
                timeout=(deadline_seconds, deadline_seconds),
                allow_redirects=False,
                stream=True,
            )
            with response:
                content = _read_body(response, max_body_bytes)
    except HttpError:
        raise
    except Exception as error:
        expired = time.monotonic() - started >= deadline_seconds - 0.01
        error_class = "timeout" if expired else _error_class(error)
        message = redact(
            f"{method} {display_url(url)} failed: {type(error).__name__}: {error}", url
        )
        for secret in secrets:
            message = message.replace(secret, "[redacted]")
        logger.info("%s", message)
        raise HttpError(error_class, message) from None
    return HttpResponse(
        status_code=response.status_code,
        headers={name.lower(): value for name, value in response.headers.items()},
        body=content,
        latency_ms=int((time.monotonic() - started) * 1000),
    )


def post(url: str, **kwargs: Any) -> HttpResponse:
    return request("POST", url, **kwargs)


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), if any."""
    value = headers.get("retry-after", "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _read_body(response: requests.Response, max_body_bytes: int | None) -> bytes:
    """Read an excerpt, or the whole body up to max_body_bytes: memory stays bounded."""
    chunks, size = [], 0
    if max_body_bytes is None:
        for chunk in response.iter_content(chunk_size=1024):
            chunks.append(chunk)
            size += len(chunk)
            if size >= RESPONSE_EXCERPT_BYTES:
                break
        return b"".join(chunks)[:RESPONSE_EXCERPT_BYTES]
    for chunk in response.iter_content(chunk_size=65536):
        chunks.append(chunk)
        size += len(chunk)
        if size > max_body_bytes:
            raise HttpError("too_large", "The answer is too large.")
    return b"".join(chunks)


def _cut_sockets(sockets: list[socket.socket]) -> None:
    for sock in list(sockets):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _error_class(error: Exception) -> str:
    if isinstance(error, requests.exceptions.SSLError):
        return "tls"
    if isinstance(error, requests.exceptions.Timeout):
        return "timeout"
    if isinstance(error, requests.exceptions.ConnectionError):
        text = str(error).lower()
        return "connect_refused" if "refused" in text else "connection"
    return "error"


def display_url(url: str) -> str:
    """The URL without its query string or fragment (where tokens tend to hide)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def redact(message: str, url: str) -> str:
    """The message without the URL's query string."""
    query = urlsplit(url).query
    return message.replace(query, "[redacted]") if query else message
