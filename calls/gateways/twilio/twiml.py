"""The TwiML our Twilio gateway answers with (https://www.twilio.com/docs/voice/twiml).

Pure functions from what a call needs to the XML Twilio runs; every URL given to Twilio here is
ours and carries nothing secret: Twilio signs its requests to them (X-Twilio-Signature).
"""

from __future__ import annotations

from xml.etree.ElementTree import Element, SubElement, tostring

# Every progress event of a leg, so the call's page and callback see each step.
LEG_EVENTS = "initiated ringing answered completed"


def connect_customer(
    *, customer: str, caller_id: str, status_url: str, after_url: str, record_url: str = ""
) -> str:
    """The agent has answered: ring the customer and bridge them (the agent hears the ringing).

    `<Dial action>` is requested when the customer's leg leaves the bridge (hung up, or moved by
    a transfer), so the agent's leg does not linger.
    """
    response = Element("Response")
    dial = SubElement(
        response,
        "Dial",
        callerId=caller_id,
        answerOnBridge="true",
        action=after_url,
        method="POST",
    )
    if record_url:
        dial.set("record", "record-from-answer")
        dial.set("recordingStatusCallback", record_url)
        dial.set("recordingStatusCallbackEvent", "completed")
    _number(dial, customer, status_url)
    return _xml(response)


def transfer_to(*, number: str, caller_id: str, status_url: str) -> str:
    """The customer's leg leaves the agent and rings `number`, who takes the call over."""
    response = Element("Response")
    dial = SubElement(response, "Dial", callerId=caller_id, answerOnBridge="true")
    _number(dial, number, status_url)
    return _xml(response)


def route_inbound(
    *, number: str, client: str, caller_id: str, status_url: str, after_url: str
) -> str:
    """Put an inbound call through to an agent's phone (`number`) or browser (`client`)."""
    response = Element("Response")
    dial = SubElement(
        response, "Dial", callerId=caller_id, answerOnBridge="true", action=after_url, method="POST"
    )
    if number:
        _number(dial, number, status_url)
    else:
        noun = SubElement(
            dial,
            "Client",
            statusCallback=status_url,
            statusCallbackEvent=LEG_EVENTS,
            statusCallbackMethod="POST",
        )
        noun.text = client
    return _xml(response)


def nobody_answers() -> str:
    """No one to put the call through to: say so and hang up."""
    response = Element("Response")
    say = SubElement(response, "Say")
    say.text = "Sorry, nobody can take your call right now. Please call again later."
    SubElement(response, "Hangup")
    return _xml(response)


def conference(room: str, *, ends_it: bool = False) -> str:
    """Join the call's conference room; the customer's leaving `ends_it` for everyone."""
    response = Element("Response")
    dial = SubElement(response, "Dial")
    noun = SubElement(
        dial, "Conference", endConferenceOnExit="true" if ends_it else "false", beep="false"
    )
    noun.text = room
    return _xml(response)


def hang_up() -> str:
    response = Element("Response")
    SubElement(response, "Hangup")
    return _xml(response)


def _number(dial: Element, number: str, status_url: str) -> None:
    noun = SubElement(
        dial,
        "Number",
        statusCallback=status_url,
        statusCallbackEvent=LEG_EVENTS,
        statusCallbackMethod="POST",
    )
    noun.text = number


def _xml(response: Element) -> str:
    return '<?xml version="1.0" encoding="UTF-8"?>' + tostring(response, encoding="unicode")
