"""A strict fake Asterisk REST Interface (ARI) on 127.0.0.1: REST and the events WebSocket.

Written from Asterisk's ARI documents (../shared/reference/gateways.md part 2 and 3.2):
- Auth: HTTP Basic or `api_key=user:password`; none or wrong: 401 with `WWW-Authenticate`; a
  read-only user writing: 403 "Write access denied". Every error body is `{"message": ...}`.
- `POST /ari/channels` (query parameters, as ARI takes them): `endpoint` as `tech/resource`
  (400 "Invalid endpoint specified"), `app` xor `extension` (400 "Application or extension must be
  specified"), `app` with a connected WebSocket (a strict-fake rule: unverified on real
  Asterisk), `channelId` unique (409), `timeout` an integer; answers the Channel snapshot.
- `GET /ari/channels/{id}`, `DELETE /ari/channels/{id}` (`reason` from ARI's list, never with
  `reason_code`; 404 when gone), `POST /ari/bridges` (`type`, `bridgeId`: 409 when taken),
  `POST /ari/bridges/{id}/addChannel?channel=a,b` (404 bridge, 400 channel unknown, 422 "Channel
  not in Stasis application"), `DELETE /ari/bridges/{id}`, `GET /ari/applications/{app}`.
- `GET /ari/events?app=NAME` upgraded to a WebSocket (RFC 6455, written here: text frames out,
  pings answered); a second socket for the same app replaces the first (`ApplicationReplaced`).

A channel plays like a PJSIP one: `ChannelCreated` (Down), `Dial` "", then after the ring time
`Dial` RINGING with `ChannelStateChange` Ringing, then per its number's outcome `Dial` ANSWER,
`ChannelStateChange` Up and `StasisStart` (args = appArgs), or `Dial` BUSY / NOANSWER /
CHANUNAVAIL and `ChannelDestroyed` (cause 17 / 19 / 20). A hang-up (ours or the party's) is
`ChannelHangupRequest`, `StasisEnd`, `ChannelLeftBridge` when bridged, `ChannelDestroyed`.
Events for an app without a socket are lost, as Asterisk loses them; its channels stay.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import itertools
import json
import secrets
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fakes.server import FakeServer, JsonHandler

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 section 1.3
HANGUP_REASONS = {
    "normal": 16, "busy": 17, "congestion": 34, "no_answer": 19, "timeout": 18, "rejected": 21,
    "unallocated": 1, "normal_unspecified": 31, "number_incomplete": 28, "codec_mismatch": 58,
    "interworking": 127, "failure": 38, "answered_elsewhere": 26,
}  # fmt: skip
# outcome -> (Dial's dialstatus, ChannelDestroyed's cause) for a channel that is not answered
UNANSWERED = {
    "busy": ("BUSY", 17),
    "no-answer": ("NOANSWER", 19),
    "unavailable": ("CHANUNAVAIL", 20),
}
CAUSE_TEXT = {
    16: "Normal Clearing", 17: "User busy", 19: "No user responding", 20: "Subscriber absent",
    21: "Call Rejected", 34: "Circuit/channel congestion",
}  # fmt: skip


# What every recording holds: a second of 8 kHz mono silence, as a WAV file.
WAV_SILENCE = (
    b"RIFF" + struct.pack("<I", 36 + 8000) + b"WAVEfmt "
    + struct.pack("<IHHIIHH", 16, 1, 1, 8000, 8000, 1, 8)
    + b"data" + struct.pack("<I", 8000) + b"\x80" * 8000
)  # fmt: skip


class ApiError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        self.status, self.body, self.headers = status, {"message": message}, headers or {}


@dataclass
class Channel:
    id: str
    endpoint: str
    app: str
    args: list[str]
    caller_id: str = ""
    state: str = "Down"
    in_stasis: bool = False
    bridge: str | None = None
    destroyed: bool = False
    created: str = field(default_factory=lambda: _now())

    @property
    def resource(self) -> str:
        """The dialled party: `PJSIP/+447400123456@trunk` -> `+447400123456`."""
        return self.endpoint.split("/", 1)[1].split("@", 1)[0]

    def snapshot(self) -> dict[str, Any]:
        name, number = (
            (self.caller_id.split(" <")[0], self.caller_id) if self.caller_id else ("", "")
        )
        return {
            "id": self.id, "name": f"{self.endpoint}-{self.id[-8:]}", "state": self.state,
            "protocol_id": "", "caller": {"name": name, "number": number},
            "connected": {"name": "", "number": self.resource}, "accountcode": "",
            "dialplan": {"context": "default", "exten": self.resource, "priority": 1,
                         "app_name": "Stasis" if self.in_stasis else "", "app_data": ""},
            "creationtime": self.created, "language": "en",
        }  # fmt: skip


class Handler(JsonHandler):
    api_error = ApiError

    def do_GET(self) -> None:
        if self.headers.get("Upgrade", "").lower() == "websocket":
            self.fake.websocket(self)
        else:
            self._serve()


class FakeAsterisk(FakeServer):
    handler_class = Handler

    def __init__(self, *, ring_seconds: float = 0.1) -> None:
        self.username, self.password = "callbridge", secrets.token_hex(8)
        self.read_only_users = {"reader": "reader-pass"}
        self.ring_seconds = ring_seconds
        self.outcomes: dict[
            str, str
        ] = {}  # number/extension -> answer | busy | no-answer | unavailable
        self.talk_seconds: dict[str, float] = {}  # number -> hangs up after (else stays)
        self.channels: dict[str, Channel] = {}
        self.bridges: dict[str, set[str]] = {}
        self.sockets: dict[str, Handler] = {}  # app -> its connected WebSocket
        self.sent: list[dict[str, Any]] = []  # every event delivered
        self.lost: list[dict[str, Any]] = []  # events for an app with no socket
        self.requests: list[tuple[str, str, dict[str, list[str]]]] = []
        self.live_recordings: dict[str, str] = {}  # bridge id -> the recording's name
        self.stored: dict[str, bytes] = {}  # finished recordings' audio, by name
        self.lock = threading.RLock()
        self.faults = []
        self._ids = itertools.count(1)

    # ----- test controls
    def credentials(self) -> dict[str, str]:
        return {"username": self.username, "password": self.password}

    def channel_to(self, resource: str) -> Channel | None:
        return next((c for c in self.channels.values() if c.resource == resource), None)

    def hang_up(self, resource: str) -> None:
        """The party at `resource` hangs up."""
        channel = self.channel_to(resource)
        if channel and not channel.destroyed:
            self._destroy(channel, 16)

    def drop_sockets(self) -> None:
        """The network drops every events socket (Asterisk then loses their apps' events)."""
        with self.lock:
            handlers, self.sockets = list(self.sockets.values()), {}
        for handler in handlers:
            handler.connection.shutdown(socket.SHUT_RDWR)

    def connected(self, app: str) -> bool:
        return app in self.sockets

    # ----- REST
    def handle(
        self, method: str, path: str, query: dict[str, list[str]], headers: Any, body: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        self._authenticate(headers, query, write=method != "GET")
        with self.lock:
            self.requests.append((method, path, query))
        params = {name: values[-1] for name, values in query.items() if name != "api_key"}
        parts = path.strip("/").split("/")
        if parts[:1] != ["ari"]:
            raise ApiError(404, "Resource not found")
        route = (method, *parts[1:])
        match route:
            case ("POST", "channels"):
                return 200, self._originate(params).snapshot(), {}
            case ("GET", "channels", channel_id):
                return 200, self._channel(channel_id).snapshot(), {}
            case ("DELETE", "channels", channel_id):
                self._hang_up(self._channel(channel_id), params)
                return 204, b"", {}
            case ("POST", "bridges"):
                return 200, self._bridge_create(params), {}
            case ("POST", "bridges", bridge_id, "addChannel"):
                self._bridge_add(bridge_id, params)
                return 204, b"", {}
            case ("DELETE", "bridges", bridge_id):
                if self.bridges.pop(bridge_id, None) is None:
                    raise ApiError(404, "Bridge not found")
                self._recording_finish(bridge_id)
                return 204, b"", {}
            case ("POST", "bridges", bridge_id, "record"):
                return 201, self._record(bridge_id, params), {}
            case ("GET", "recordings", "stored", name):
                if name not in self.stored:
                    raise ApiError(404, "Recording not found")
                return 200, {"name": name, "format": "wav"}, {}
            case ("GET", "recordings", "stored", name, "file"):
                if name not in self.stored:
                    raise ApiError(404, "Recording not found")
                return 200, self.stored[name], {"Content-Type": "audio/wav"}
            case ("GET", "applications", app):
                return 200, self._application(app), {}
        raise ApiError(404, "Resource not found")

    def _authenticate(self, headers: Any, query: dict[str, list[str]], *, write: bool) -> None:
        user, password = "", ""
        authorization = headers.get("Authorization", "")
        if authorization.startswith("Basic "):
            decoded = base64.b64decode(authorization[6:]).decode(errors="replace")
            user, _, password = decoded.partition(":")
        elif query.get("api_key"):
            user, _, password = query["api_key"][-1].partition(":")
        if user == self.username and password == self.password:
            return
        if self.read_only_users.get(user) == password and user:
            if write:
                raise ApiError(403, "Write access denied")
            return
        raise ApiError(
            401,
            "Authentication required",
            {"WWW-Authenticate": 'Basic realm="Asterisk REST Interface"'},
        )

    def _originate(self, params: dict[str, str]) -> Channel:
        endpoint = params.get("endpoint", "")
        if not endpoint:
            raise ApiError(400, "Endpoint must be specified")
        tech, _, resource = endpoint.partition("/")
        if not tech or not resource:
            raise ApiError(400, "Invalid endpoint specified")
        app, extension = params.get("app"), params.get("extension")
        if bool(app) == bool(extension):
            raise ApiError(400, "Application or extension must be specified")
        if app not in self.sockets:
            raise ApiError(400, f"Stasis application {app} has no connected WebSocket")
        timeout = params.get("timeout", "30")
        if not timeout.lstrip("-").isdigit():
            raise ApiError(400, "timeout: an integer")
        channel_id = params.get("channelId") or f"{time.time():.0f}.{next(self._ids)}"
        with self.lock:
            if channel_id in self.channels:
                raise ApiError(409, "Channel with given unique ID already exists")
            args = params["appArgs"].split(",") if params.get("appArgs") else []
            channel = Channel(channel_id, endpoint, str(app), args, params.get("callerId", ""))
            self.channels[channel_id] = channel
        threading.Thread(target=self._play, args=(channel, int(timeout)), daemon=True).start()
        return channel

    def _channel(self, channel_id: str) -> Channel:
        channel = self.channels.get(channel_id)
        if channel is None or channel.destroyed:
            raise ApiError(404, "Channel not found")
        return channel

    def _hang_up(self, channel: Channel, params: dict[str, str]) -> None:
        if "reason" in params and "reason_code" in params:
            raise ApiError(400, "The reason and reason_code can't both be specified")
        reason = params.get("reason", "normal")
        if reason not in HANGUP_REASONS:
            raise ApiError(400, "Invalid reason for hangup provided")
        cause = int(params["reason_code"]) if "reason_code" in params else HANGUP_REASONS[reason]
        threading.Thread(target=self._destroy, args=(channel, cause), daemon=True).start()

    def _bridge_create(self, params: dict[str, str]) -> dict[str, Any]:
        bridge_id = params.get("bridgeId") or secrets.token_hex(8)
        kinds = set(params.get("type", "mixing").split(","))
        if not kinds <= {
            "mixing",
            "holding",
            "dtmf_events",
            "proxy_media",
            "video_sfu",
            "video_single",
            "sdp_label",
        }:
            raise ApiError(400, "Invalid bridge type")
        with self.lock:
            if bridge_id in self.bridges:
                raise ApiError(409, "Bridge with id already exists")
            self.bridges[bridge_id] = set()
        return self._bridge(bridge_id, kinds)

    def _bridge_add(self, bridge_id: str, params: dict[str, str]) -> None:
        with self.lock:
            if bridge_id not in self.bridges:
                raise ApiError(404, "Bridge not found")
            channels = []
            for channel_id in params.get("channel", "").split(","):
                channel = self.channels.get(channel_id)
                if channel is None or channel.destroyed:
                    raise ApiError(400, "Channel not found")
                if not channel.in_stasis:
                    raise ApiError(422, "Channel not in Stasis application")
                channels.append(channel)
            for channel in channels:
                self.bridges[bridge_id].add(channel.id)
                channel.bridge = bridge_id
        for channel in channels:
            bridge = self._bridge(bridge_id, {"mixing"})
            self._emit(
                channel.app, "ChannelEnteredBridge", channel=channel.snapshot(), bridge=bridge
            )

    def _bridge(self, bridge_id: str, kinds: set[str]) -> dict[str, Any]:
        return {
            "id": bridge_id, "technology": "simple_bridge", "bridge_type": ",".join(sorted(kinds)),
            "bridge_class": "stasis", "channels": sorted(self.bridges.get(bridge_id, ())),
        }  # fmt: skip

    def _record(self, bridge_id: str, params: dict[str, str]) -> dict[str, Any]:
        """POST /ari/bridges/{id}/record: the mixed audio, until the bridge goes."""
        if bridge_id not in self.bridges:
            raise ApiError(404, "Bridge not found")
        name, audio_format = params.get("name", ""), params.get("format", "")
        if not name or not audio_format:
            raise ApiError(400, "Missing required parameter: name and format")
        if audio_format not in ("wav", "gsm", "ulaw", "alaw", "sln", "g722"):
            raise ApiError(422, "Format specified is unknown on this system")
        if params.get("ifExists", "fail") == "fail" and name in self.stored:
            raise ApiError(409, "A recording with the same name already exists on the system")
        with self.lock:
            self.live_recordings[bridge_id] = name
        live = self._live_recording(name, bridge_id, "recording")
        app = next((c.app for c in self.channels.values() if c.bridge == bridge_id), "")
        self._emit(app, "RecordingStarted", recording=live)
        return live

    def _recording_finish(self, bridge_id: str) -> None:
        with self.lock:
            name = self.live_recordings.pop(bridge_id, None)
        if name is None:
            return
        self.stored[name] = WAV_SILENCE
        app = next((c.app for c in self.channels.values() if c.bridge == bridge_id), "")
        self._emit(
            app, "RecordingFinished", recording=self._live_recording(name, bridge_id, "done")
        )

    @staticmethod
    def _live_recording(name: str, bridge_id: str, state: str) -> dict[str, Any]:
        return {
            "name": name, "format": "wav", "target_uri": f"bridge:{bridge_id}", "state": state,
            "duration": 1, "talking_duration": 1, "silence_duration": 0,
        }  # fmt: skip

    def _application(self, app: str) -> dict[str, Any]:
        live = [c for c in self.channels.values() if c.app == app and not c.destroyed]
        bridges = {c.bridge for c in live if c.bridge}
        return {
            "name": app, "channel_ids": [c.id for c in live], "bridge_ids": sorted(bridges),
            "endpoint_ids": [], "device_names": [], "events_allowed": [], "events_disallowed": [],
        }  # fmt: skip

    # ----- a channel's life
    def _play(self, channel: Channel, timeout: int) -> None:
        app = channel.app
        self._emit(app, "ChannelCreated", channel=channel.snapshot())
        self._emit(app, "Dial", peer=channel.snapshot(), dialstatus="", dialstring=channel.resource)
        time.sleep(self.ring_seconds)
        if channel.destroyed:
            return
        channel.state = "Ringing"
        self._emit(
            app, "Dial", peer=channel.snapshot(), dialstatus="RINGING", dialstring=channel.resource
        )
        self._emit(app, "ChannelStateChange", channel=channel.snapshot())
        time.sleep(self.ring_seconds)
        if channel.destroyed:
            return
        outcome = self.outcomes.get(channel.resource, "answer")
        if outcome in UNANSWERED:
            dialstatus, cause = UNANSWERED[outcome]
            self._emit(
                app,
                "Dial",
                peer=channel.snapshot(),
                dialstatus=dialstatus,
                dialstring=channel.resource,
            )
            self._destroy(channel, cause)
            return
        channel.state, channel.in_stasis = "Up", True
        self._emit(
            app, "Dial", peer=channel.snapshot(), dialstatus="ANSWER", dialstring=channel.resource
        )
        self._emit(app, "ChannelStateChange", channel=channel.snapshot())
        self._emit(app, "StasisStart", channel=channel.snapshot(), args=channel.args)
        talk = self.talk_seconds.get(channel.resource)
        if talk is not None:
            time.sleep(talk)
            self._destroy(channel, 16)

    def _destroy(self, channel: Channel, cause: int) -> None:
        with self.lock:
            if channel.destroyed:
                return
            channel.destroyed = True
            bridge = channel.bridge
            if bridge and bridge in self.bridges:
                self.bridges[bridge].discard(channel.id)
        app, snapshot = channel.app, channel.snapshot()
        self._emit(app, "ChannelHangupRequest", channel=snapshot, cause=cause)
        if channel.in_stasis:
            self._emit(app, "StasisEnd", channel=snapshot)
        if bridge:
            self._emit(
                app, "ChannelLeftBridge", channel=snapshot, bridge=self._bridge(bridge, {"mixing"})
            )
        channel.state = "Down"
        self._emit(app, "ChannelDestroyed", channel=channel.snapshot(), cause=cause,
                   cause_txt=CAUSE_TEXT.get(cause, "Unknown"), tech_cause=0)  # fmt: skip

    # ----- the events WebSocket
    def _emit(self, app: str, kind: str, **fields: Any) -> None:
        event = {
            "type": kind,
            "application": app,
            "timestamp": _now(),
            "asterisk_id": "fa:ke:00:00:00:01",
            **fields,
        }
        with self.lock:
            handler = self.sockets.get(app)
            if handler is None:
                self.lost.append(event)
                return
            try:
                _send_frame(handler, 0x1, json.dumps(event).encode())
                self.sent.append(event)
            except OSError:
                self.lost.append(event)

    def websocket(self, handler: Handler) -> None:
        """Upgrade `GET /ari/events?app=...` and keep the socket until either side closes it."""
        from urllib.parse import parse_qs, urlsplit

        url = urlsplit(handler.path)
        query = parse_qs(url.query)
        try:
            self._authenticate(handler.headers, query, write=False)
            if url.path != "/ari/events" or not query.get("app"):
                raise ApiError(400, "Missing required parameter: app")
            key = handler.headers.get("Sec-WebSocket-Key", "")
            if handler.headers.get("Sec-WebSocket-Version") != "13" or not key:
                raise ApiError(400, "WebSocket version 13 and a key are required")
        except ApiError as error:
            handler.send_response(error.status)
            raw = json.dumps(error.body).encode()
            headers = {"Content-Type": "application/json", "Content-Length": str(len(raw))}
            for name, value in {**error.headers, **headers}.items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(raw)
            return
        digest = hashlib.sha1((key + WS_GUID).encode()).digest()  # noqa: S324 (RFC 6455 says SHA-1)
        accept = base64.b64encode(digest).decode()
        handler.send_response(101, "Switching Protocols")
        handler.send_header("Upgrade", "websocket")
        handler.send_header("Connection", "Upgrade")
        handler.send_header("Sec-WebSocket-Accept", accept)
        handler.end_headers()
        handler.wfile.flush()
        apps = query["app"][-1].split(",")
        for app in apps:
            with self.lock:
                replaced = self.sockets.get(app)
                self.sockets[app] = handler
            if replaced is not None:
                _send_frame(
                    replaced,
                    0x1,
                    json.dumps(
                        {"type": "ApplicationReplaced", "application": app, "timestamp": _now()}
                    ).encode(),
                )
        self._read_until_closed(handler)
        with self.lock:
            for app in apps:
                if self.sockets.get(app) is handler:
                    del self.sockets[app]
        handler.close_connection = True

    def _read_until_closed(self, handler: Handler) -> None:
        while True:
            try:
                frame = _read_frame(handler)
            except (OSError, ValueError):
                return
            if frame is None:
                return
            opcode, payload = frame
            if opcode == 0x8:  # close: answer it and stop
                with contextlib.suppress(OSError):
                    _send_frame(handler, 0x8, payload[:2])
                return
            if opcode == 0x9:  # ping
                try:
                    _send_frame(handler, 0xA, payload)
                except OSError:
                    return


def _send_frame(handler: Handler, opcode: int, payload: bytes) -> None:
    """One unmasked, final frame from the server (RFC 6455 section 5.2)."""
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", 0x80 | opcode, size)
    elif size < 1 << 16:
        header = struct.pack("!BBH", 0x80 | opcode, 126, size)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 127, size)
    lock = handler.__dict__.setdefault("send_lock", threading.Lock())
    with lock:
        handler.connection.sendall(header + payload)


def _read_frame(handler: Handler) -> tuple[int, bytes] | None:
    """One client frame, unmasked (clients must mask: an unmasked one is refused)."""
    head = handler.rfile.read(2)
    if len(head) < 2:
        return None
    opcode, length = head[0] & 0x0F, head[1] & 0x7F
    if not head[1] & 0x80:
        raise ValueError("client frames must be masked")
    if length == 126:
        (length,) = struct.unpack("!H", handler.rfile.read(2))
    elif length == 127:
        (length,) = struct.unpack("!Q", handler.rfile.read(8))
    mask = handler.rfile.read(4)
    data = handler.rfile.read(length)
    return opcode, bytes(b ^ mask[i % 4] for i, b in enumerate(data))


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"
