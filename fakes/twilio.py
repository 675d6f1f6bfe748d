"""A strict fake Twilio Programmable Voice on 127.0.0.1: REST API, TwiML and signed callbacks.

Written from Twilio's documents (../shared/reference/gateways.md part 1 and 3.1): the Calls
resource (`POST /2010-04-01/Accounts/{AccountSid}/Calls.json` to create, `…/Calls/{CallSid}.json`
to redirect or end), HTTP Basic with the account's SID and auth token (401, error 20003),
form-encoded bodies only, unknown parameters refused (400, stricter than Twilio), Twilio's error
JSON (`code`, `message`, `more_info`, `status`), 404 (20404) for an unknown call, injectable 429s
(20429, "never processed").

A created call is played in a thread like a real one: status callbacks (`initiated`, `ringing`,
`answered` as `in-progress`, `completed` or busy / no-answer / failed / canceled, each with its
SequenceNumber and only for the subscribed events) POSTed form-encoded and signed with
X-Twilio-Signature; on answer its `Url` is asked for TwiML, of which `<Dial>` with `<Number>`
nouns (a child leg with ParentCallSid, bridged once answered; `action` asked when it leaves the
bridge), `<Hangup>` and `<Say>` run; anything else fails the call (Twilio: 12100). `record` on
`<Dial>` posts a recording callback after the bridge. Redirecting a bridged leg (`Twiml`) takes
it out of the bridge and runs the new TwiML. Each number's outcome and talk time are set per test.

Choices where Twilio's documents are unclear: `Status=canceled` on a call in progress is refused
(400, 21220) rather than ignored; a redirect of an ended call is refused the same way.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import secrets
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qs, urlencode
from xml.etree import ElementTree

from fakes.server import FakeServer, JsonHandler

API = "/2010-04-01/Accounts/"
CREATE_FIELDS = {
    "To", "From", "Url", "Method", "Twiml", "ApplicationSid", "StatusCallback",
    "StatusCallbackMethod", "StatusCallbackEvent", "Timeout", "Record", "TimeLimit",
    "RecordingStatusCallback", "RecordingStatusCallbackEvent", "RecordingStatusCallbackMethod",
    "FallbackUrl", "FallbackMethod", "CallerId", "SendDigits", "MachineDetection",
}  # fmt: skip
UPDATE_FIELDS = {"Url", "Method", "Twiml", "Status", "FallbackUrl", "StatusCallback", "TimeLimit"}
EVENTS = {"initiated", "ringing", "answered", "completed"}
END_STATUSES = {"completed", "busy", "no-answer", "failed", "canceled"}
DIAL_ATTRIBUTES = {
    "callerId", "answerOnBridge", "action", "method", "record", "recordingStatusCallback",
    "recordingStatusCallbackEvent", "timeout", "timeLimit",
}  # fmt: skip
NOUN_ATTRIBUTES = {"statusCallback", "statusCallbackEvent", "statusCallbackMethod", "url"}
CONFERENCE_ATTRIBUTES = {
    "endConferenceOnExit", "startConferenceOnEnter", "beep", "muted", "waitUrl", "record",
    "statusCallback", "statusCallbackEvent",
}  # fmt: skip


class ApiError(Exception):
    def __init__(self, status: int, code: int, message: str) -> None:
        self.status, self.headers = status, dict[str, str]()
        more_info = f"https://www.twilio.com/docs/errors/{code}"
        self.body = {"code": code, "message": message, "more_info": more_info, "status": status}


@dataclass
class Leg:
    """One call leg as Twilio tracks it."""

    sid: str
    to: str
    from_: str
    direction: str
    status_callback: str = ""
    events: set[str] = field(default_factory=lambda: {"completed"})
    parent_sid: str = ""
    status: str = "queued"
    sequence: itertools.count = field(default_factory=itertools.count)
    answered_at: float | None = None
    bridge_done: threading.Event = field(default_factory=threading.Event)
    redirect: str = ""  # TwiML it was given while bridged

    @property
    def ended(self) -> bool:
        return self.status in END_STATUSES

    def resource(self, account_sid: str) -> dict[str, Any]:
        return {
            "sid": self.sid, "account_sid": account_sid, "to": self.to, "from": self.from_,
            "status": self.status, "direction": self.direction, "parent_call_sid": self.parent_sid
            or None, "duration": None, "api_version": "2010-04-01",
            "uri": f"{API}{account_sid}/Calls/{self.sid}.json",
        }  # fmt: skip


@dataclass
class Room:
    """A conference: who is in it, and whether it has ended."""

    members: set[str] = field(default_factory=set)
    ended: threading.Event = field(default_factory=threading.Event)


class Handler(JsonHandler):
    api_error = ApiError


class FakeTwilio(FakeServer):
    handler_class = Handler

    def __init__(self, *, ring_seconds: float = 0.1) -> None:
        self.account_sid = "AC" + secrets.token_hex(16)
        self.auth_token = secrets.token_hex(16)
        self.ring_seconds = ring_seconds
        self.outcomes: dict[str, str] = {}  # number -> answer | busy | no-answer | failed
        self.talk_seconds: dict[str, float] = {}  # number -> hangs up after (else stays)
        self.legs: dict[str, Leg] = {}
        self.conferences: dict[str, Room] = {}
        self.too_many_requests = 0  # answer the next N REST requests 429
        self.requests: list[tuple[str, str, dict[str, list[str]]]] = []
        self.callbacks: list[tuple[str, dict[str, str], int]] = []  # url, form, our status
        self.errors: list[str] = []  # TwiML Twilio would refuse (the call failed)
        self.lock = threading.RLock()
        self.faults = []

    # ----- test controls
    def credentials(self) -> dict[str, str]:
        return {"account_sid": self.account_sid, "auth_token": self.auth_token}

    def hang_up(self, number: str) -> None:
        """The party at `number` hangs up."""
        for leg in list(self.legs.values()):
            if leg.to == number and not leg.ended:
                self._end(leg, "completed")

    def inbound_call(self, *, caller: str, number: str, voice_url: str) -> Leg:
        """Someone calls the account's `number`: Twilio asks its Voice URL what to do."""
        leg = self._new_leg(number, caller, "inbound", "", set())
        leg.status, leg.answered_at = "ringing", time.monotonic()
        threading.Thread(target=self._answer, args=(leg, voice_url), daemon=True).start()
        return leg

    def _answer(self, leg: Leg, voice_url: str) -> None:
        self._run(leg, self._fetch(voice_url, leg))

    def leg_to(self, number: str) -> Leg | None:
        return next((leg for leg in self.legs.values() if leg.to == number), None)

    # ----- REST
    def handle(
        self, method: str, path: str, query: dict, headers: Any, body: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        form = parse_qs(body.decode(), keep_blank_values=True)
        with self.lock:
            self.requests.append((method, path, form))
        if not path.startswith(API) or not path.endswith(".json"):
            raise ApiError(404, 20404, "The requested resource was not found")
        account_sid, _, resource = path[len(API) : -len(".json")].partition("/")
        self._authenticate(account_sid, headers.get("Authorization", ""))
        if method != "POST":
            raise ApiError(405, 20004, "Method not allowed")
        if headers.get("Content-Type", "").split(";")[0] != "application/x-www-form-urlencoded":
            raise ApiError(400, 20001, "Send parameters form-encoded")
        with self.lock:
            if self.too_many_requests:
                self.too_many_requests -= 1
                raise ApiError(429, 20429, "Too Many Requests")
        if resource == "Calls":
            return 201, self._create(form).resource(self.account_sid), {}
        if resource.startswith("Calls/") and resource.count("/") == 1:
            return 200, self._update(resource[len("Calls/") :], form).resource(self.account_sid), {}
        raise ApiError(404, 20404, "The requested resource was not found")

    def _authenticate(self, account_sid: str, authorization: str) -> None:
        try:
            user, _, password = (
                base64.b64decode(authorization.removeprefix("Basic ")).decode().partition(":")
            )
        except ValueError:
            user = password = ""
        expected = (self.account_sid, self.auth_token)
        if not authorization.startswith("Basic ") or (user, password) != expected:
            raise ApiError(401, 20003, "Authenticate")
        if account_sid != self.account_sid:
            raise ApiError(404, 20404, f"The requested resource {API}{account_sid} was not found")

    def _create(self, form: dict[str, list[str]]) -> Leg:
        _refuse_unknown(form, CREATE_FIELDS)
        values = {name: value[-1] for name, value in form.items()}
        for name, code in (("To", 21201), ("From", 21603)):
            if not values.get(name):
                raise ApiError(400, code, f"No '{name}' number is specified")
        sources = [name for name in ("Url", "Twiml", "ApplicationSid") if values.get(name)]
        if len(sources) != 1:
            raise ApiError(400, 21205, "Give exactly one of Url, Twiml or ApplicationSid")
        for name in ("Method", "StatusCallbackMethod"):
            if values.get(name, "POST") not in ("GET", "POST"):
                raise ApiError(400, 21209, f"{name} must be GET or POST")
        events = set(form.get("StatusCallbackEvent", ["completed"]))
        if not events <= EVENTS:
            raise ApiError(400, 21626, f"StatusCallbackEvent must be among {sorted(EVENTS)}")
        timeout = values.get("Timeout", "60")
        if not timeout.isdigit() or not 1 <= int(timeout) <= 600:
            raise ApiError(400, 21216, "Timeout must be an integer from 1 to 600")
        leg = self._new_leg(
            values["To"], values["From"], "outbound-api", values.get("StatusCallback", ""), events
        )
        twiml_source = values.get("Url") or values.get("Twiml", "")
        threading.Thread(target=self._play, args=(leg, twiml_source), daemon=True).start()
        return leg

    def _update(self, sid: str, form: dict[str, list[str]]) -> Leg:
        _refuse_unknown(form, UPDATE_FIELDS)
        with self.lock:
            leg = self.legs.get(sid)
        if leg is None:
            raise ApiError(
                404, 20404, f"The requested resource {API}…/Calls/{sid}.json was not found"
            )
        values = {name: value[-1] for name, value in form.items()}
        if values.get("Url") and values.get("Twiml"):
            raise ApiError(400, 21205, "Give Url or Twiml, not both")
        status = values.get("Status")
        if status is not None:
            if status not in ("canceled", "completed"):
                raise ApiError(400, 21218, "Status must be canceled or completed")
            if status == "canceled" and leg.status == "in-progress":
                raise ApiError(400, 21220, "Call is in progress: end it with Status=completed")
            self._end(leg, status if leg.status != "in-progress" else "completed")
        elif values.get("Twiml"):
            if leg.status != "in-progress":
                raise ApiError(400, 21220, "Call is not in-progress. Cannot redirect.")
            leg.redirect = values["Twiml"]
            leg.bridge_done.set()  # leaves its bridge; its thread runs the new TwiML
        return leg

    # ----- playing calls
    def _new_leg(
        self, to: str, from_: str, direction: str, callback: str, events: set[str], parent: str = ""
    ) -> Leg:
        leg = Leg("CA" + secrets.token_hex(16), to, from_, direction, callback, events, parent)
        with self.lock:
            self.legs[leg.sid] = leg
        return leg

    def _play(self, leg: Leg, twiml_source: str) -> None:
        """A REST-created call: ring, then (answered) run its TwiML."""
        if self._ring(leg):
            self._run(
                leg,
                self._fetch(twiml_source, leg) if twiml_source.startswith("http") else twiml_source,
            )

    def _ring(self, leg: Leg) -> bool:
        self._status(leg, "initiated")
        time.sleep(self.ring_seconds)
        if leg.ended:
            return False
        self._status(leg, "ringing")
        time.sleep(self.ring_seconds)
        outcome = self.outcomes.get(leg.to, "answer")
        if leg.ended:
            return False
        if outcome != "answer":
            self._end(leg, outcome)
            return False
        leg.answered_at = time.monotonic()
        self._status(leg, "in-progress")
        return True

    def _run(self, leg: Leg, document: str) -> None:
        try:
            response = ElementTree.fromstring(document)  # noqa: S314 - the app under test's TwiML
        except ElementTree.ParseError:
            response = ElementTree.Element("Invalid")
        if response.tag != "Response":
            return self._fail(leg, "12100: the TwiML's root must be <Response>")
        for verb in response:
            if leg.ended:
                return
            if verb.tag == "Hangup":
                break
            if verb.tag == "Say":
                continue
            if verb.tag != "Dial":
                return self._fail(leg, f"12100: <{verb.tag}> is not a TwiML verb this fake runs")
            if not set(verb.attrib) <= DIAL_ATTRIBUTES:
                return self._fail(
                    leg, f"12200: unknown <Dial> attributes {set(verb.attrib) - DIAL_ATTRIBUTES}"
                )
            dialled = self._dial(leg, verb)
            if leg.redirect:
                document, leg.redirect = leg.redirect, ""
                leg.bridge_done.clear()
                return self._run(leg, document)
            if verb.get("action") and not leg.ended:
                return self._run(leg, self._fetch(verb.get("action", ""), leg, dialled))
        if not leg.ended:
            self._end(leg, "completed")

    def _dial(self, parent: Leg, dial: ElementTree.Element) -> dict[str, str]:
        """Ring the <Number> or <Client>; once answered, bridge until either side leaves.

        Answers what Twilio posts to the `action` URL: DialCallStatus, DialCallSid and, for an
        answered leg, DialCallDuration.
        """
        rooms = [noun for noun in dial if noun.tag == "Conference"]
        if rooms and len(dial) == 1 and set(rooms[0].attrib) <= CONFERENCE_ATTRIBUTES:
            return self._conference(parent, rooms[0])
        nouns = [noun for noun in dial if noun.tag in ("Number", "Client")]
        if len(nouns) != 1 or len(dial) != 1 or not set(nouns[0].attrib) <= NOUN_ATTRIBUTES:
            self._fail(parent, "12200: this fake dials one <Number> or <Client>, known attributes")
            return {"DialCallStatus": "failed"}
        noun = nouns[0]
        events = set(noun.get("statusCallbackEvent", "completed").split())
        if not events <= EVENTS:
            self._fail(parent, f"12200: statusCallbackEvent must be among {sorted(EVENTS)}")
            return {"DialCallStatus": "failed"}
        identity = (noun.text or "").strip()
        child = self._new_leg(
            f"client:{identity}" if noun.tag == "Client" else identity,
            dial.get("callerId", parent.from_), "outbound-dial", noun.get("statusCallback", ""),
            events, parent.sid,
        )  # fmt: skip
        if not self._ring(child):
            return {"DialCallStatus": child.status, "DialCallSid": child.sid}
        talk = self.talk_seconds.get(child.to)
        if talk is not None:
            threading.Timer(talk, self._end, (child, "completed")).start()
        while not (parent.bridge_done.is_set() or child.bridge_done.is_set() or parent.ended):
            time.sleep(0.02)
        if parent.ended and not child.ended:
            self._end(child, "completed")
        if child.redirect:  # moved elsewhere: it runs its new TwiML on its own
            document, child.redirect = child.redirect, ""
            child.bridge_done.clear()
            threading.Thread(target=self._run, args=(child, document), daemon=True).start()
        if dial.get("record", "") in ("record-from-answer", "true") and dial.get(
            "recordingStatusCallback"
        ):
            self._recording(parent, child, dial.get("recordingStatusCallback", ""))
        talked = int(time.monotonic() - child.answered_at) if child.answered_at else 0
        return {
            "DialCallStatus": "completed",
            "DialCallSid": child.sid,
            "DialCallDuration": str(talked),
        }

    def _conference(self, leg: Leg, noun: ElementTree.Element) -> dict[str, str]:
        """Stay in the named room until this leg leaves or the conference ends.

        It ends when a participant with endConferenceOnExit leaves, or the last one does.
        """
        name = (noun.text or "").strip()
        with self.lock:
            room = self.conferences.setdefault(name, Room())
            room.members.add(leg.sid)
        while not (leg.bridge_done.is_set() or room.ended.is_set() or leg.ended):
            time.sleep(0.02)
        with self.lock:
            room.members.discard(leg.sid)
            if noun.get("endConferenceOnExit") == "true" or not room.members:
                room.ended.set()
        return {"DialCallStatus": "completed"}

    def in_conference(self, name: str) -> set[str]:
        """The call SIDs in the room now."""
        with self.lock:
            room = self.conferences.get(name)
            return set(room.members) if room else set()

    def _end(self, leg: Leg, status: str) -> None:
        with self.lock:
            if leg.ended:
                return
            leg.status = status
        leg.bridge_done.set()
        duration = int(time.monotonic() - leg.answered_at) if leg.answered_at else 0
        self._status(leg, status, {"CallDuration": str(duration)} if status == "completed" else {})

    def _fail(self, leg: Leg, error: str) -> None:
        self.errors.append(error)
        self._end(leg, "failed")

    def _status(self, leg: Leg, status: str, extra: dict[str, str] | None = None) -> None:
        with self.lock:
            if not leg.ended or status in END_STATUSES:
                leg.status = status
        event = {"in-progress": "answered"}.get(status, status)
        event = "completed" if status in END_STATUSES else event
        if not leg.status_callback or event not in leg.events:
            return
        form = {
            "AccountSid": self.account_sid, "ApiVersion": "2010-04-01", "CallSid": leg.sid,
            "CallStatus": status, "Direction": leg.direction, "From": leg.from_, "To": leg.to,
            "CallbackSource": "call-progress-events", "SequenceNumber": str(next(leg.sequence)),
            "Timestamp": formatdate(usegmt=True), **({"ParentCallSid": leg.parent_sid} if
            leg.parent_sid else {}), **(extra or {}),
        }  # fmt: skip
        self._post(leg.status_callback, form)

    def _recording(self, parent: Leg, child: Leg, url: str) -> None:
        sid = "RE" + secrets.token_hex(16)
        talk = int(time.monotonic() - child.answered_at) if child.answered_at else 0
        self._post(url, {
            "AccountSid": self.account_sid, "CallSid": parent.sid, "RecordingSid": sid,
            "RecordingUrl": f"https://api.twilio.com{API}{self.account_sid}/Recordings/{sid}",
            "RecordingStatus": "completed", "RecordingDuration": str(talk),
            "RecordingChannels": "1", "RecordingSource": "DialVerb",
        })  # fmt: skip

    def _fetch(self, url: str, leg: Leg, extra: dict[str, str] | None = None) -> str:
        form = {
            "AccountSid": self.account_sid, "CallSid": leg.sid, "CallStatus": leg.status,
            "Direction": leg.direction, "From": leg.from_, "To": leg.to, **(extra or {}),
        }  # fmt: skip
        return self._post(url, form)

    def _post(self, url: str, form: dict[str, str]) -> str:
        """POST a signed form to one of the customer's URLs; the body of its answer."""
        payload = "".join(name + form[name] for name in sorted(form))
        digest = hmac.new(self.auth_token.encode(), (url + payload).encode(), hashlib.sha1)
        request = urllib.request.Request(  # noqa: S310 - a URL the app under test gave
            url,
            data=urlencode(form).encode(),
            headers={
                "X-Twilio-Signature": base64.b64encode(digest.digest()).decode(),
                "Content-Type": "application/x-www-form-urlencoded",
                "User-Agent": "TwilioProxy/1.1",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
                status, body = answer.status, answer.read().decode()
        except urllib.error.HTTPError as error:
            status, body = error.code, ""
        except OSError:
            status, body = 0, ""
        with self.lock:
            self.callbacks.append((url, form, status))
        return body


def _refuse_unknown(form: dict[str, list[str]], known: set[str]) -> None:
    unknown = sorted(set(form) - known)
    if unknown:
        raise ApiError(400, 20001, f"Unknown parameters: {', '.join(unknown)}")
